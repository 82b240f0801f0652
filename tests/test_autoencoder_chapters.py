"""Tests of the mechanics chapters 1 and 2 rely on: PSNR, the PCA baseline and its truncation, the anomaly AUC,
the linear probe, the noise of the DAE and the small convolutional DAE. Each is held to a reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from aecourse.data import add_gaussian_noise, add_masking_noise, add_noise
from aecourse.evidence.metrics import anomaly_auc, linear_probe_accuracy, psnr
from aecourse.inference import reconstruct
from aecourse.losses import mse
from aecourse.models import ConvDenoisingAutoencoder, PCABaseline


def _low_rank_data(n: int = 400, d: int = 30, seed: int = 0) -> torch.Tensor:
    """Points with a clearly decaying spectrum, so every principal axis is well defined."""
    rng = np.random.default_rng(seed)
    scales = 2.0 ** -np.arange(d)
    return torch.from_numpy(rng.normal(size=(n, d)) * scales @ np.linalg.qr(rng.normal(size=(d, d)))[0] + 0.3)


def test_psnr_matches_torchmetrics() -> None:
    from torchmetrics.image import PeakSignalNoiseRatio

    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28)
    x_hat = (x + 0.1 * torch.randn_like(x)).clamp(0, 1)
    expected = PeakSignalNoiseRatio(data_range=1.0)(x_hat, x)
    assert psnr(x_hat, x) == pytest.approx(float(expected), abs=1e-4)
    assert psnr(x_hat.reshape(16, 784), x) == pytest.approx(float(expected), abs=1e-4)  # shape-agnostic


def test_psnr_of_known_error() -> None:
    x = torch.zeros(4, 784)
    assert psnr(x + 0.1, x) == pytest.approx(20.0, abs=1e-4)  # MSE 0.01 -> 20 dB


def test_pca_baseline_matches_numpy_svd() -> None:
    x = _low_rank_data()
    k = 4
    centred = (x - x.mean(0)).numpy()
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    expected = centred @ vt[:k].T @ vt[:k] + x.mean(0).numpy()
    got = PCABaseline(k).fit(x).reconstruct(x, clamp=False)
    np.testing.assert_allclose(got.numpy(), expected, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 7])
def test_truncated_pca_equals_a_fresh_fit(k: int) -> None:
    x = _low_rank_data()
    big = PCABaseline(10).fit(x)
    small = big.truncated(k)
    np.testing.assert_allclose(
        small.reconstruct(x, clamp=False).numpy(), PCABaseline(k).fit(x).reconstruct(x, clamp=False).numpy(), atol=1e-5
    )
    assert small.encode(x).shape == (len(x), k)
    assert big.encode(x).shape == (len(x), 10)  # the original fit is left untouched


def test_truncated_pca_error_falls_with_k_and_refuses_too_many() -> None:
    x = _low_rank_data()
    big = PCABaseline(8).fit(x)
    errors = [float((big.truncated(k).reconstruct(x, clamp=False) - x).pow(2).mean()) for k in (1, 2, 4, 8)]
    assert errors == sorted(errors, reverse=True)
    with pytest.raises(ValueError, match="n_components"):
        big.truncated(9)


def test_anomaly_auc_against_the_rank_formula() -> None:
    torch.manual_seed(0)
    scores = torch.randn(50)
    is_anomaly = torch.rand(50) < 0.3
    pos, neg = scores[is_anomaly], scores[~is_anomaly]
    # AUC = P(score of an anomaly > score of a normal example) (Mann-Whitney U / (n_pos n_neg))
    expected = float((pos[:, None] > neg[None, :]).double().mean())
    assert anomaly_auc(scores, is_anomaly) == pytest.approx(expected)
    assert anomaly_auc(is_anomaly.float(), is_anomaly) == 1.0
    with pytest.raises(ValueError, match="both"):
        anomaly_auc(scores, torch.zeros(50, dtype=torch.bool))


def test_mse_is_a_mean_per_pixel_or_a_sum_per_image() -> None:
    x = torch.zeros(3, 1, 28, 28)
    x_hat = torch.stack([torch.full((1, 28, 28), v) for v in (0.0, 0.5, 1.0)])
    torch.testing.assert_close(mse(x_hat, x, per_image=True), 784 * torch.tensor([0.0, 0.25, 1.0]))
    assert float(mse(x_hat, x)) == pytest.approx(1.25 / 3)


def test_linear_probe_separates_blobs_and_not_noise() -> None:
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (600,), generator=g)
    centres = torch.tensor([[4.0, 0.0], [0.0, 4.0], [-4.0, -4.0]])
    x = centres[y] + torch.randn(600, 2, generator=g)
    assert linear_probe_accuracy(x[:400], y[:400], x[400:], y[400:]) > 0.95
    noise = torch.randn(600, 2, generator=g)  # features that carry no label information
    assert linear_probe_accuracy(noise[:400], y[:400], noise[400:], y[400:]) < 0.5


def test_add_noise_is_seeded_in_range_and_leaves_global_rng_alone() -> None:
    x = torch.full((200, 1, 28, 28), 0.5)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    a = add_noise(x, "gaussian", 0.1, seed=7)
    b = add_noise(x, "gaussian", 0.1, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    torch.testing.assert_close(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert float((a - x).std()) == pytest.approx(0.1, rel=0.02)  # sigma = 0.1 is far from the clip at 0 and 1
    masked = add_noise(x, "masking", 0.3, seed=7)
    assert float((masked == 0).float().mean()) == pytest.approx(0.3, abs=0.01)
    with pytest.raises(ValueError, match="kind"):
        add_noise(x, "salt", 0.1)


def test_clipping_is_what_separates_the_course_noise_from_the_article() -> None:
    x = torch.zeros(100, 784)  # a black background, like most Fashion-MNIST pixels
    g = torch.Generator().manual_seed(0)
    unclipped = add_gaussian_noise(x, 0.2, clip=False, generator=g)
    assert float((unclipped < 0).float().mean()) == pytest.approx(0.5, abs=0.02)
    clipped = unclipped.clamp(0, 1)
    # clipping a zero pixel halves the noise energy: E[max(0, e)^2] = sigma^2 / 2
    assert float(clipped.pow(2).mean()) == pytest.approx(0.02, rel=0.05)
    assert torch.equal(add_masking_noise(x, 0.5), x)  # masking a black image changes nothing


def test_conv_dae_shapes_range_and_one_step_of_learning() -> None:
    torch.manual_seed(0)
    model = ConvDenoisingAutoencoder(channels=8)
    x = torch.zeros(16, 1, 28, 28)
    x[:, :, 8:20, 10:18] = 0.8  # the same garment-like block in every image: a structure the model can learn
    assert model(x).shape == (16, 1, 28, 28)
    assert model(x.reshape(16, 784)).shape == (16, 784)
    assert model.encode(x).shape == (16, 16, 7, 7)
    x_noisy = add_gaussian_noise(x, 0.3, clip=False)
    out = reconstruct(model, x_noisy)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        loss = (model(x_noisy) - x).pow(2).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < 0.5 * losses[0]
    with pytest.raises(ValueError, match="NaN"):
        model(torch.full((2, 784), float("nan")))


@pytest.mark.parametrize(("kind", "level"), [("gaussian", 0.2), ("masking", 0.3)])
def test_add_noise_with_a_seed_is_the_draw_of_a_generator_with_that_seed(kind: str, level: float) -> None:
    # chapter 2 scores the noisy input and PCA on each seed's draw (a generator seeded s + 1) and shows seed 0's
    # draw, made by add_noise(..., seed=1), in its figures: the two must be the same images (on the CPU)
    x = torch.rand(8, 1, 28, 28)
    corrupt = add_gaussian_noise if kind == "gaussian" else add_masking_noise
    for seed in (1, 2, 3):
        drawn = corrupt(x, level, generator=torch.Generator().manual_seed(seed))
        assert torch.equal(add_noise(x, kind, level, seed=seed), drawn)
