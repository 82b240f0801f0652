"""Tests of aecourse.tb, the torchbearer glue of chapter 5, against closed forms and torchbearer's own behaviour."""

from __future__ import annotations

import pytest
import torch
import torchbearer
from torch.distributions import Normal, kl_divergence

from aecourse.models import ConvVAE
from aecourse.runtime import native_bfloat16
from aecourse.tb import (
    LOGVAR,
    MU,
    DistortionMetric,
    KLMetric,
    MixedPrecisionStateVAE,
    ReconstructionProgress,
    StateVAE,
    beta_kl,
    print_epochs,
    quiet_trial,
    squared_error,
    tensor_loader,
)


def _images(n: int = 32, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


def _trial(beta: float = 5.0, callbacks=(), lr: float = 1e-3):
    torch.manual_seed(0)
    model = StateVAE(ConvVAE(latent_dim=3))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    metrics = ["loss", KLMetric(), DistortionMetric()]
    return quiet_trial(model, optimizer, squared_error, metrics=metrics, callbacks=[beta_kl(beta), *callbacks])


def test_state_vae_fills_state_and_decodes_the_mean_in_eval() -> None:
    vae = ConvVAE(latent_dim=4)
    model = StateVAE(vae).eval()
    x = _images(5)
    state: dict = {}
    x_hat = model(x, state=state)
    assert x_hat.shape == x.shape
    assert state[MU].shape == state[LOGVAR].shape == (5, 4)
    mu, _ = vae.encode(x)
    torch.testing.assert_close(x_hat, vae.decode(mu).reshape(x.shape))
    torch.testing.assert_close(model(x), x_hat)  # called without a state, unlike the article's forward
    sampled = StateVAE(vae, sample_in_eval=True).eval()
    torch.manual_seed(1)
    first = sampled(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, sampled(x)), "sample_in_eval must sample z in eval mode too"
    model.train()
    torch.manual_seed(1)
    first = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(first, model(x)), "training mode must sample z"


def test_beta_kl_adds_beta_times_the_closed_form_kl_in_training_and_validation() -> None:
    mu, logvar = torch.randn(6, 3), torch.randn(6, 3)
    posterior = Normal(mu, torch.exp(0.5 * logvar))
    reference = kl_divergence(posterior, Normal(torch.zeros(3), torch.ones(3))).sum(1).mean()
    callback = beta_kl(2.5)
    for hook in (callback.on_criterion, callback.on_criterion_validation):
        state = {MU: mu, LOGVAR: logvar, torchbearer.LOSS: torch.tensor(1.0)}
        hook(state)
        torch.testing.assert_close(state[torchbearer.LOSS], 1.0 + 2.5 * reference)
    with pytest.raises(ValueError, match="beta"):
        beta_kl(-1.0)


def test_squared_error_sums_pixels_and_averages_images() -> None:
    x, x_hat = _images(4, 0), _images(4, 1)
    torch.testing.assert_close(squared_error(x_hat, x), torch.nn.MSELoss(reduction="sum")(x_hat, x) / 4)


def test_tensor_loader_yields_every_image_once_with_itself_as_target() -> None:
    x = torch.arange(10.0).reshape(10, 1)
    batches = list(tensor_loader(x, batch_size=4, shuffle=True, seed=3))
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    seen = torch.cat([b[0] for b in batches]).flatten()
    assert sorted(seen.tolist()) == list(range(10)) and seen.tolist() != list(range(10))
    assert all(torch.equal(inputs, targets) for inputs, targets in batches)
    again = torch.cat([b[0] for b in tensor_loader(x, batch_size=4, shuffle=True, seed=3)]).flatten()
    assert torch.equal(seen, again), "the same seed must give the same order"


def test_trial_trains_and_test_loss_is_distortion_plus_beta_kl() -> None:
    x = _images(64)
    trial = _trial(beta=5.0).with_generators(
        train_generator=tensor_loader(x, batch_size=16, shuffle=True), test_generator=tensor_loader(x, batch_size=16)
    )
    history = trial.run(3)
    assert history[-1]["loss"] < history[0]["loss"]
    scores = trial.evaluate(data_key=torchbearer.TEST_DATA)
    assert set(scores) == {"test_loss", "test_kl", "test_distortion"}
    assert scores["test_loss"] == pytest.approx(scores["test_distortion"] + 5.0 * scores["test_kl"], rel=1e-5)


def test_positional_generators_make_the_second_one_validation_data() -> None:
    x = _images(16)
    trial = _trial().with_generators(tensor_loader(x, batch_size=8), tensor_loader(x, batch_size=8))
    assert trial.evaluate(data_key=torchbearer.TEST_DATA) == {}  # torchbearer 0.5.5: silently nothing
    assert "val_loss" in trial.evaluate()


def test_quiet_trial_prints_one_line_per_epoch_and_no_progress_bar(capsys) -> None:
    x = _images(16)
    trial = _trial(callbacks=[print_epochs()]).with_train_generator(tensor_loader(x, batch_size=8))
    trial.run(2)
    captured = capsys.readouterr()
    lines = captured.out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("epoch 1: loss ") and "kl " in lines[0]
    assert captured.err == ""


def test_reconstruction_progress_draws_once_per_epoch_without_showing_outside_a_notebook() -> None:
    x = _images(16)
    progress = ReconstructionProgress(x, num_images=4)
    assert progress.show is False
    trial = _trial(callbacks=[progress]).with_train_generator(tensor_loader(x, batch_size=4))
    trial.run(2)
    assert len(progress.figures) == 2
    assert trial.state[torchbearer.MODEL].training, "the callback must restore training mode"


@pytest.mark.skipif(not native_bfloat16("cpu"), reason="this CPU has no hardware bfloat16 (AVX512-BF16 or AMX)")
def test_mixed_precision_state_vae_computes_in_bfloat16_and_hands_out_float32() -> None:
    vae = ConvVAE(latent_dim=4)
    x = _images(8)
    state: dict = {}
    x_hat = MixedPrecisionStateVAE(vae).eval()(x, state=state)
    assert x_hat.dtype == state[MU].dtype == state[LOGVAR].dtype == torch.float32  # the loss sums in float32
    with torch.autocast("cpu", torch.bfloat16):  # the taught wrapper, in the same autocast: the same numbers
        torch.testing.assert_close(x_hat, StateVAE(vae).eval()(x).float(), rtol=0, atol=0)
    exact = StateVAE(vae).eval()(x)
    difference = float((x_hat - exact).detach().abs().max())
    assert 0 < difference < 0.05, "bfloat16 rounds (a difference), but only in the third significant digit"
    assert all(p.dtype == torch.float32 for p in vae.parameters())


def test_mixed_precision_state_vae_is_refused_without_hardware_bfloat16(monkeypatch) -> None:
    monkeypatch.setattr("aecourse.runtime.native_bfloat16", lambda device: False)
    with pytest.raises(ValueError, match="no hardware bfloat16"):
        MixedPrecisionStateVAE(ConvVAE(latent_dim=4))(_images(2))
