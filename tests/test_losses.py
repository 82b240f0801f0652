"""aecourse.losses against references: torch.distributions, Monte Carlo, and a linear-Gaussian VAE whose
log-likelihood has a closed form (probabilistic PCA, Tipping & Bishop 1999)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Normal, kl_divergence

from aecourse.evidence.ch3 import iwae_bound  # chapter 3's importance-weighted bound
from aecourse.losses import (
    bce,
    denoising_loss,
    gaussian_kl,
    mse,
    reconstruction_loss,
    vae_batch_loss,
    vae_loss,
)
from aecourse.models import VAE


def test_gaussian_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 5, generator=generator)
    logvar = torch.randn(6, 5, generator=generator)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p))  # per dimension
    torch.testing.assert_close(gaussian_kl(mu, logvar).sum(1), reference)


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[-1.0, 0.3, 0.0]])
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((400_000,))
    estimate = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert abs(float(estimate) - float(gaussian_kl(mu, logvar).sum())) < 0.02
    assert float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3)).sum()) == 0.0


def test_reconstruction_errors_match_torch_per_pixel_and_per_image():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=generator)
    x_hat = torch.rand(4, 784, generator=generator)
    flat = x.flatten(1)
    torch.testing.assert_close(mse(x_hat, x), F.mse_loss(x_hat, flat))
    torch.testing.assert_close(mse(x_hat, x, per_image=True), F.mse_loss(x_hat, flat, reduction="none").sum(1))
    torch.testing.assert_close(bce(x_hat, x), F.binary_cross_entropy(x_hat, flat))
    torch.testing.assert_close(
        bce(x_hat, x, per_image=True), F.binary_cross_entropy(x_hat, flat, reduction="none").sum(1)
    )
    logits = torch.logit(x_hat)
    torch.testing.assert_close(bce(logits, x, logits=True), bce(x_hat, x), rtol=1e-4, atol=1e-5)


def test_the_autoencoders_training_losses_score_the_output_against_the_clean_batch():
    model = nn.Sequential(nn.Flatten(), nn.Linear(784, 784), nn.Sigmoid(), nn.Unflatten(1, (1, 28, 28)))
    x = torch.rand(3, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(reconstruction_loss(model, x), mse(model(x), x))
    torch.testing.assert_close(reconstruction_loss(model, x, "bce"), bce(model(x), x))
    with pytest.raises(ValueError, match="kind must be 'mse' or 'bce'"):
        reconstruction_loss(model, x, "l1")
    noisy = []
    loss = denoising_loss(model, x, lambda batch: noisy.append(batch.flip(0)) or noisy[-1])
    torch.testing.assert_close(loss, mse(model(x.flip(0)), x))  # the corrupted batch in, the clean one as target


def test_loss_inputs_are_checked():
    with pytest.raises(ValueError, match="must hold the same images"):
        mse(torch.rand(4, 784), torch.rand(3, 784))
    with pytest.raises(ValueError, match=r"bce needs targets x in \[0, 1\]"):
        bce(torch.rand(2, 784), 2 * torch.ones(2, 784))
    with pytest.raises(ValueError, match="k is a number of importance samples"):
        iwae_bound(VAE(), torch.rand(2, 784), 0)


def test_vae_loss_is_the_article_loss_function():
    """vae_loss(beta=1) equals the article's BCE(sum) + KLD, per image, for the same z."""
    torch.manual_seed(0)
    model = VAE()
    x = torch.rand(8, 784)
    torch.manual_seed(1)
    loss, parts = vae_batch_loss(model, x)
    torch.manual_seed(1)
    mu, logvar = model.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    article = F.binary_cross_entropy(model.decode(z), x, reduction="sum") - 0.5 * torch.sum(
        1 + logvar - mu.pow(2) - logvar.exp()
    )
    torch.testing.assert_close(loss * 8, article, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(parts["reconstruction"] + parts["kl"], loss.detach())


def test_vae_loss_weighs_the_kl_by_beta_and_returns_the_terms_of_every_image():
    generator = torch.Generator().manual_seed(0)
    x_logits, x = torch.randn(5, 784, generator=generator), torch.rand(5, 1, 28, 28, generator=generator)
    mu, logvar = torch.randn(5, 3, generator=generator), torch.randn(5, 3, generator=generator)
    loss, reconstruction, kl = vae_loss(x_logits, x, mu, logvar, beta=4.0)
    assert reconstruction.shape == kl.shape == (5,)
    torch.testing.assert_close(reconstruction, bce(x_logits, x.flatten(1), per_image=True, logits=True))
    torch.testing.assert_close(kl, gaussian_kl(mu, logvar).sum(1))
    torch.testing.assert_close(loss, reconstruction.mean() + 4.0 * kl.mean())


def test_iwae_grows_with_k_on_a_fixed_vae():
    torch.manual_seed(0)
    model = VAE(latent_dim=5, hidden_dim=32)
    x = torch.rand(16, 784)
    torch.manual_seed(1)
    x_logits, mu, logvar = model(x)
    _, reconstruction, kl = vae_loss(x_logits, x, mu, logvar)
    elbo = (-reconstruction - kl).mean().detach()
    values = [float(iwae_bound(model, x, k).mean()) for k in (1, 16, 256)]
    assert values[0] < values[1] < values[2]
    assert values[2] >= float(elbo)
    assert not math.isnan(values[2])


def test_the_vae_loss_keeps_the_precision_of_the_images():
    model = VAE(latent_dim=3).double()
    x = torch.rand(4, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x_logits, mu, logvar = model(x)
    loss, reconstruction, kl = vae_loss(x_logits, x, mu, logvar)
    assert loss.dtype == reconstruction.dtype == kl.dtype == torch.float64


def test_losses_and_metrics_refuse_batches_that_are_not_the_same_images():
    from aecourse.evidence.metrics import psnr

    with pytest.raises(ValueError, match="same images"):
        psnr(torch.rand(2, 784), torch.rand(4, 392))
    with pytest.raises(ValueError, match="same images"):
        mse(torch.rand(4, 784), torch.rand(4, 392, 2))
    with pytest.raises(ValueError, match=r"\(B, latent_dim\)"):
        gaussian_kl(torch.zeros(4, 1), torch.zeros(1, 3))
    assert float(mse(torch.zeros(2, 1, 28, 28), torch.zeros(2, 784))) == 0.0  # flattened and not: same images


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf")])
def test_beta_must_be_finite_and_non_negative(beta):
    from aecourse.tb import beta_kl

    model = VAE()
    x = torch.rand(2, 784)
    x_logits, mu, logvar = model(x)
    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        vae_loss(x_logits, x, mu, logvar, beta)
    with pytest.raises(ValueError, match="beta"):
        vae_batch_loss(model, torch.rand(2, 784), beta)
    with pytest.raises(ValueError, match="beta"):
        beta_kl(beta)
