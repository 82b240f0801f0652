"""aecourse.train and aecourse.runtime: a few steps lower the loss, the guards stop a run before a non-finite loss
or gradient reaches the weights, evaluation refuses NaN, and the budget switch reads the environment."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from aecourse.losses import gaussian_kl, mse, reconstruction_loss, vae_batch_loss
from aecourse.models import VAE, Autoencoder, ConvVAE
from aecourse.runtime import BUDGET_ENV, at_budget, budget, pick_device, seeded, set_seed
from aecourse.train import TrainingDivergedError, evaluate, fit, train_epoch


def conv_vae_loss(model, x, beta=1.0):
    """Chapter 5's objective for fit: the squared error per image + beta KL."""
    x_hat, mu, logvar = model(x)
    return mse(x_hat, x, per_image=True).mean() + beta * gaussian_kl(mu, logvar).sum(1).mean()


@pytest.fixture
def small_images():
    # smooth blobs, so that there is structure to learn
    generator = torch.Generator().manual_seed(0)
    centres = torch.rand(256, 2, 1, 1, generator=generator) * 20 + 4
    grid = torch.arange(28.0)
    rows, cols = torch.meshgrid(grid, grid, indexing="ij")
    blobs = torch.exp(-((rows - centres[:, 0]) ** 2 + (cols - centres[:, 1]) ** 2) / 18.0)
    return blobs.unsqueeze(1).clamp(0, 1)  # (256, 28, 28) -> (256, 1, 28, 28)


@pytest.mark.parametrize(
    "model, objective",
    [(Autoencoder(latent_dim=8), reconstruction_loss), (VAE(latent_dim=4), vae_batch_loss)],
    ids=["ae", "vae"],
)
def test_training_lowers_the_loss(small_images, model, objective):
    set_seed(0)
    before = evaluate(model, objective, small_images)["loss"]
    history = fit(model, objective, small_images, x_test=small_images, num_epochs=5, batch_size=32, lr=2e-3)
    assert len(history) == 5 and history["epoch"] == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert history.last["test_loss"] < 0.7 * before
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_vae_history_records_both_terms(small_images):
    history = fit(VAE(latent_dim=4), vae_batch_loss, small_images, x_test=small_images, num_epochs=1)
    row = history.last
    assert {"train_reconstruction", "train_kl", "test_reconstruction", "test_kl", "seconds"} <= set(row)
    assert row["test_loss"] == pytest.approx(row["test_reconstruction"] + row["test_kl"], rel=1e-4)


def test_conv_vae_trains_channels_last(small_images):
    set_seed(0)
    model = ConvVAE(latent_dim=4)
    history = fit(model, conv_vae_loss, small_images[:64], num_epochs=2, batch_size=32, channels_last=True)
    assert history["train_loss"][1] < history["train_loss"][0]


def _summing_terms(loss_fn, totals):
    """loss_fn with the loss alone, as train_epoch takes it; the terms it returns beside it summed into `totals`,
    weighted by batch size."""

    def loss_alone(model, x):
        out = loss_fn(model, x)
        loss, terms = out if isinstance(out, tuple) else (out, {})
        for name, value in terms.items():
            totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
        return loss

    return loss_alone


@pytest.mark.parametrize("name", ["mse", "bce", "vae"])
def test_chapter_1s_loop_is_fits_loop(small_images, name):
    """The loop chapter 1 shows, run by hand epoch after epoch, gives fit's weights and losses, to the bit: the
    stored checkpoints that fit trained are what the shown loop trains."""
    build, loss_fn = {
        "mse": (lambda: Autoencoder(8), reconstruction_loss),
        "bce": (lambda: Autoencoder(8, sigmoid_output=True), lambda m, x: reconstruction_loss(m, x, "bce")),
        "vae": (lambda: VAE(latent_dim=4), vae_batch_loss),
    }[name]
    runs = []
    for by_hand in (False, True):
        with seeded(0):
            model = build()
            if by_hand:  # the VAE's terms summed by hand, as fit logs them beside the loss
                optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
                generator = torch.Generator().manual_seed(7)
                losses = []
                for _ in range(2):
                    totals = {}
                    loss_alone = _summing_terms(loss_fn, totals)
                    losses.append(
                        train_epoch(model, optimizer, loss_alone, small_images, batch_size=64, generator=generator)
                    )
                    losses[-1] |= {name: float(t) / len(small_images) for name, t in totals.items()}
            else:
                history = fit(model, loss_fn, small_images, num_epochs=2, batch_size=64, lr=2e-3, seed=7)
                losses = [
                    {k.removeprefix("train_"): v for k, v in row.items() if k.startswith("train_")}
                    for row in history.rows
                ]
        runs.append((model.state_dict(), losses))
    (fitted, fit_losses), (by_hand, hand_losses) = runs
    assert all(torch.equal(fitted[k], by_hand[k]) for k in fitted)
    assert fit_losses == hand_losses


def test_same_seed_same_history(small_images):
    runs = []
    for _ in range(2):
        set_seed(3)
        runs.append(fit(Autoencoder(latent_dim=4), reconstruction_loss, small_images, num_epochs=2, seed=3))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]


def test_evaluate_is_repeatable_for_a_vae(small_images):
    model = VAE(latent_dim=4)
    assert evaluate(model, vae_batch_loss, small_images) == evaluate(model, vae_batch_loss, small_images)
    assert model.training  # evaluate restores the mode


def test_nan_guard_stops_on_a_poisoned_batch(small_images):
    model = Autoencoder(latent_dim=4)
    poisoned = small_images.clone()
    poisoned[40] = 1.0

    def loss_fn(m, x):  # a loss that turns NaN on the poisoned image, like an overflow would
        loss = reconstruction_loss(m, x)
        return loss * torch.where((x == 1.0).flatten(1).all(1).any(), torch.tensor(float("nan")), torch.tensor(1.0))

    weights_before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"epoch 1: the loss became nan.*lower learning rate"):
        fit(model, loss_fn, poisoned, num_epochs=1, batch_size=256)
    # the NaN step was not applied: with one batch, the weights are untouched
    assert all(torch.equal(a, b) for a, b in zip(weights_before, model.parameters(), strict=True))


def test_fit_refuses_bad_arguments(small_images):
    model = Autoencoder(64)
    with pytest.raises(ValueError, match="batch_size must be an int >= 1; got 0"):
        fit(model, reconstruction_loss, small_images, batch_size=0)
    with pytest.raises(ValueError, match="x_train is empty"):
        fit(model, reconstruction_loss, small_images[:0])


def test_a_gradient_that_turns_nan_mid_epoch_leaves_the_last_finite_weights(small_images):
    """A finite loss with a non-finite gradient (here sqrt at 0) used to turn every weight to NaN."""
    set_seed(0)
    model = Autoencoder(latent_dim=4)
    calls = []
    snapshots = []

    def loss_fn(m, x):
        calls.append(1)
        snapshots.append([p.detach().clone() for p in m.parameters()])
        loss = reconstruction_loss(m, x)
        if len(calls) == 5:  # the fifth batch of the first epoch: d sqrt(t)/dt at t = 0 is infinite
            return loss + torch.sqrt((m(x) - m(x).detach()).pow(2).sum())
        return loss

    with pytest.raises(TrainingDivergedError, match=r"(?s)epoch 1: a gradient became NaN or infinite"):
        fit(model, loss_fn, small_images, num_epochs=2, batch_size=32)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    after_step_four = snapshots[4]  # the weights the fifth batch saw: four finite updates applied
    assert all(torch.equal(a, b) for a, b in zip(after_step_four, model.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[0], model.parameters(), strict=True))


def test_evaluate_refuses_nan_and_restores_the_mode_when_the_loss_raises(small_images):
    model = VAE(latent_dim=4)
    model.train()
    with pytest.raises(FloatingPointError, match="loss is nan"):
        evaluate(model, lambda m, x: torch.tensor(float("nan")), small_images, batch_size=100)
    assert model.training

    def broken(m, x):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        evaluate(model, broken, small_images)
    assert model.training


def test_models_refuse_images_of_another_dtype_or_scale():
    model = VAE(latent_dim=4)
    with pytest.raises(TypeError, match="float64 images"):
        model.encode(torch.rand(2, 784, dtype=torch.float64))
    with pytest.raises(TypeError, match="float16 images"):
        model.encode(torch.rand(2, 784).half())
    with pytest.raises(ValueError, match="divide by 255"):
        model.encode(255 * torch.rand(2, 784))


def test_budget_switch(monkeypatch):
    @dataclasses.dataclass(frozen=True)
    class Config:
        num_epochs: int = 30
        seeds: tuple = (0, 1, 2)

    smaller = {"short": {"num_epochs": 5}, "smoke": {"num_epochs": 1, "seeds": (0,)}}
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert budget() == "full" and at_budget(Config(), **smaller) == Config()
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    assert at_budget(Config(), **smaller) == Config(num_epochs=1, seeds=(0,))
    with pytest.raises(TypeError, match=r"no field\(s\) \['epochs'\]"):
        at_budget(Config(), short={}, smoke={"epochs": 1})
    monkeypatch.setenv(BUDGET_ENV, "tiny")
    with pytest.raises(ValueError, match="full, short, smoke"):
        budget()


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type == "cpu"
        with pytest.raises(RuntimeError, match="asks for a CUDA GPU, but torch sees none"):
            pick_device("cuda")
    from aecourse.runtime import native_bfloat16

    assert isinstance(native_bfloat16("cpu"), bool) and native_bfloat16("meta") is False


def test_device_and_retrain_switches_name_the_variable_when_their_value_is_wrong(monkeypatch):
    from aecourse.runtime import retrain_mode

    monkeypatch.setenv("AECOURSE_DEVICE", "bogus")
    with pytest.raises(ValueError, match="AECOURSE_DEVICE='bogus' is not a device; use cpu, cuda or cuda:N"):
        pick_device()
    monkeypatch.setenv("AECOURSE_DEVICE", "meta")
    with pytest.raises(ValueError, match="runs on cpu or cuda"):
        pick_device()
    monkeypatch.setenv("AECOURSE_DEVICE", " cpu ")
    assert pick_device().type == "cpu"
    for value, mode in (("", "no"), ("0", "no"), ("1", "all"), ("missing", "missing")):
        monkeypatch.setenv("AECOURSE_RETRAIN", value)
        assert retrain_mode() == mode
    monkeypatch.setenv("AECOURSE_RETRAIN", "yes please")
    with pytest.raises(ValueError, match="AECOURSE_RETRAIN='yes please' is not a setting"):
        retrain_mode()


def test_check_versions_names_a_runtime_outside_the_declared_ranges(monkeypatch, capsys):
    import importlib.metadata

    from aecourse.runtime import check_versions

    assert check_versions() == []
    note = capsys.readouterr().out
    assert note.startswith("aecourse 0.1.0 on Python 3.") and "CI runs every chapter on Colab's runtime" in note
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.0.1" if name == "torch" else real_version(name))
    problems = check_versions()
    assert problems == ["torch 2.0.1 is installed; aecourse needs torch>=2.1."]
    assert "Install a matching version" in capsys.readouterr().out
