"""aecourse.train and aecourse.runtime: a few steps lower the loss, the guards stop a run before a non-finite loss
or gradient reaches the weights, evaluation refuses NaN, and the budget switch reads the environment."""

from __future__ import annotations

import pytest
import torch

from aecourse.losses import reconstruction_objective, vae_objective
from aecourse.models import VAE, Autoencoder, ConvVAE
from aecourse.runtime import BUDGET_ENV, budget, by_budget, native_bfloat16, pick_device, set_seed
from aecourse.train import TrainingDivergedError, evaluate, fit


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
    [(Autoencoder(latent_dim=8), reconstruction_objective("mse")), (VAE(latent_dim=4), vae_objective())],
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
    history = fit(VAE(latent_dim=4), vae_objective(), small_images, x_test=small_images, num_epochs=1)
    row = history.last
    assert {"train_reconstruction", "train_kl", "test_reconstruction", "test_kl", "seconds"} <= set(row)
    assert row["test_loss"] == pytest.approx(row["test_reconstruction"] + row["test_kl"], rel=1e-4)


def test_conv_vae_trains_channels_last(small_images):
    set_seed(0)
    model = ConvVAE(latent_dim=4)
    history = fit(model, vae_objective(), small_images[:64], num_epochs=2, batch_size=32, channels_last=True)
    assert history["train_loss"][1] < history["train_loss"][0]


@pytest.mark.skipif(not native_bfloat16("cpu"), reason="this CPU has no hardware bfloat16 (AVX512-BF16 or AMX)")
def test_mixed_precision_trains_and_keeps_float32_state(small_images):
    set_seed(0)
    model = ConvVAE(latent_dim=4)
    history = fit(
        model, vae_objective(), small_images[:64], num_epochs=3, batch_size=32, channels_last=True, mixed_precision=True
    )
    assert history["train_loss"][2] < history["train_loss"][0]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, terms = vae_objective()(model, small_images[:8])
    assert loss.dtype == torch.float32 and terms["kl"].dtype == torch.float32  # the loss is summed in float32


def test_mixed_precision_is_refused_without_hardware_bfloat16(small_images, monkeypatch):
    monkeypatch.setattr("aecourse.runtime.native_bfloat16", lambda device: False)
    with pytest.raises(ValueError, match="no hardware bfloat16"):
        fit(VAE(latent_dim=4), vae_objective(), small_images, num_epochs=1, mixed_precision=True)


def test_same_seed_same_history(small_images):
    runs = []
    for _ in range(2):
        set_seed(3)
        runs.append(fit(Autoencoder(latent_dim=4), reconstruction_objective(), small_images, num_epochs=2, seed=3))
    assert runs[0]["train_loss"] == runs[1]["train_loss"]


def test_evaluate_is_repeatable_for_a_vae(small_images):
    model = VAE(latent_dim=4)
    assert evaluate(model, vae_objective(), small_images) == evaluate(model, vae_objective(), small_images)
    assert model.training  # evaluate restores the mode


def test_nan_guard_stops_on_a_poisoned_batch(small_images):
    model = Autoencoder(latent_dim=4)
    poisoned = small_images.clone()
    poisoned[40] = 1.0

    def loss_fn(m, x, y):  # a loss that turns NaN on the poisoned image, like an overflow would
        loss = reconstruction_objective()(m, x, y)
        return loss * torch.where((x == 1.0).flatten(1).all(1).any(), torch.tensor(float("nan")), torch.tensor(1.0))

    weights_before = [p.detach().clone() for p in model.parameters()]
    with pytest.raises(TrainingDivergedError, match=r"became nan at epoch 1, step \d+.*lower learning rate"):
        fit(model, loss_fn, poisoned, num_epochs=1, batch_size=256)
    # the NaN step was not applied: with one batch, the weights are untouched
    assert all(torch.equal(a, b) for a, b in zip(weights_before, model.parameters(), strict=True))


def test_fit_refuses_bad_arguments(small_images):
    model = Autoencoder()
    with pytest.raises(ValueError, match="batch_size >= 1"):
        fit(model, reconstruction_objective(), small_images, batch_size=0)
    with pytest.raises(ValueError, match="x_train is empty"):
        fit(model, reconstruction_objective(), small_images[:0])
    with pytest.raises(ValueError, match="kind must be 'mse' or 'bce'"):
        reconstruction_objective("l1")


def test_a_gradient_that_turns_nan_mid_epoch_leaves_the_last_finite_weights(small_images):
    """A finite loss with a non-finite gradient (here sqrt at 0) used to turn every weight to NaN."""
    set_seed(0)
    model = Autoencoder(latent_dim=4)
    calls = []
    snapshots = []

    def loss_fn(m, x, y):
        calls.append(1)
        snapshots.append([p.detach().clone() for p in m.parameters()])
        loss = reconstruction_objective()(m, x, y)
        if len(calls) == 5:  # the fifth batch of the first epoch: d sqrt(t)/dt at t = 0 is infinite
            return loss + torch.sqrt((m(x) - m(x).detach()).pow(2).sum())
        return loss

    with pytest.raises(TrainingDivergedError, match=r"(?s)gradient became NaN or infinite.*epoch 1, step 4"):
        fit(model, loss_fn, small_images, num_epochs=2, batch_size=32)
    assert all(torch.isfinite(p).all() for p in model.parameters())
    after_step_four = snapshots[4]  # the weights the fifth batch saw: four finite updates applied
    assert all(torch.equal(a, b) for a, b in zip(after_step_four, model.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[0], model.parameters(), strict=True))


def test_evaluate_refuses_nan_and_restores_the_mode_when_the_loss_raises(small_images):
    model = VAE(latent_dim=4)
    model.train()
    with pytest.raises(FloatingPointError, match="loss is nan"):
        evaluate(model, lambda m, x, y: torch.tensor(float("nan")), small_images, batch_size=100)
    assert model.training

    def broken(m, x, y):
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
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert budget() == "full" and by_budget(full=1, short=2, smoke=3) == 1
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    assert by_budget(full=1, short=2, smoke=3) == 3
    monkeypatch.setenv(BUDGET_ENV, "tiny")
    with pytest.raises(ValueError, match="full, short, smoke"):
        budget()


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device().type == "cpu"
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            pick_device("cuda")
    assert isinstance(native_bfloat16("cpu"), bool) and native_bfloat16("meta") is False


def test_check_versions_names_a_runtime_outside_the_declared_ranges(monkeypatch, capsys):
    import importlib.metadata

    from aecourse.runtime import check_versions

    assert check_versions() == []
    real_version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "2.0.1" if name == "torch" else real_version(name))
    problems = check_versions()
    assert problems == ["torch 2.0.1 is installed; aecourse needs torch>=2.1."]
    assert "Install a matching version" in capsys.readouterr().out
