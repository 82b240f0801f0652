"""aecourse.losses against references: torch.distributions, Monte Carlo, and a linear-Gaussian VAE whose
log-likelihood has a closed form (probabilistic PCA, Tipping & Bishop 1999)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import MultivariateNormal, Normal, kl_divergence

from aecourse.losses import bce, elbo_terms, gaussian_kl, iwae_bound, mse, vae_loss
from aecourse.models import VAE


def test_gaussian_kl_matches_torch_distributions():
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(6, 5, generator=generator)
    logvar = torch.randn(6, 5, generator=generator)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    reference = kl_divergence(q, p).sum(-1)
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction="none"), reference)
    torch.testing.assert_close(gaussian_kl(mu, logvar), reference.mean())
    torch.testing.assert_close(gaussian_kl(mu, logvar, reduction="sum"), reference.sum())


def test_gaussian_kl_matches_a_monte_carlo_estimate():
    torch.manual_seed(0)
    mu = torch.tensor([[0.5, -1.0, 2.0]])
    logvar = torch.tensor([[-1.0, 0.3, 0.0]])
    q = Normal(mu, torch.exp(0.5 * logvar))
    z = q.sample((400_000,))
    estimate = (q.log_prob(z) - Normal(0.0, 1.0).log_prob(z)).sum(-1).mean()
    assert abs(float(estimate) - float(gaussian_kl(mu, logvar))) < 0.02
    assert float(gaussian_kl(torch.zeros(1, 3), torch.zeros(1, 3))) == 0.0


def test_reconstruction_losses_match_torch_and_their_reductions():
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(4, 1, 28, 28, generator=generator)
    x_hat = torch.rand(4, 784, generator=generator)
    flat = x.flatten(1)
    torch.testing.assert_close(mse(x_hat, x), F.mse_loss(x_hat, flat))
    torch.testing.assert_close(mse(x_hat, x, "sum"), F.mse_loss(x_hat, flat, reduction="sum"))
    torch.testing.assert_close(mse(x_hat, x, "image_mean"), F.mse_loss(x_hat, flat, reduction="sum") / 4)
    assert mse(x_hat, x, "none").shape == (4,)
    torch.testing.assert_close(bce(x_hat, x, "sum"), F.binary_cross_entropy(x_hat, flat, reduction="sum"))
    logits = torch.logit(x_hat)
    torch.testing.assert_close(bce(logits, x, logits=True), bce(x_hat, x), rtol=1e-4, atol=1e-5)


def test_loss_inputs_are_checked():
    with pytest.raises(ValueError, match="must hold the same images"):
        mse(torch.rand(4, 784), torch.rand(3, 784))
    with pytest.raises(ValueError, match=r"bce needs targets x in \[0, 1\]"):
        bce(torch.rand(2, 784), 2 * torch.ones(2, 784))
    with pytest.raises(ValueError, match="reduction must be one of"):
        mse(torch.rand(2, 784), torch.rand(2, 784), "average")
    with pytest.raises(ValueError, match="k is a number of importance samples"):
        iwae_bound(VAE(), torch.rand(2, 784), 0)


def test_vae_loss_is_the_article_loss_function():
    """vae_loss(beta=1) equals the article's BCE(sum) + KLD, per image, for the same z."""
    torch.manual_seed(0)
    model = VAE()
    x = torch.rand(8, 784)
    torch.manual_seed(1)
    loss, parts = vae_loss(model, x)
    torch.manual_seed(1)
    mu, logvar = model.encode(x)
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
    article = F.binary_cross_entropy(model.decode(z), x, reduction="sum") - 0.5 * torch.sum(
        1 + logvar - mu.pow(2) - logvar.exp()
    )
    torch.testing.assert_close(loss * 8, article, rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(parts["reconstruction"] + parts["kl"], loss.detach())


class LinearGaussianVAE(nn.Module):
    """p(z) = N(0, I), p(x|z) = N(W z + b, s^2 I), q(z|x) = N(A x + c, diag(exp(logvar))): log p(x) is exact."""

    def __init__(self, data_dim: int = 6, latent_dim: int = 2, noise_std: float = 0.5) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.latent_dim = latent_dim
        self.W = torch.randn(data_dim, latent_dim, generator=generator)
        self.b = torch.randn(data_dim, generator=generator)
        self.noise_std = noise_std
        # a deliberately imperfect encoder: near the true posterior mean, with a wrong variance
        covariance = self.W.T @ self.W / noise_std**2 + torch.eye(latent_dim)
        self.A = torch.linalg.solve(covariance, self.W.T / noise_std**2) * 0.9
        self.logvar = torch.full((latent_dim,), -1.0)

    def encode(self, x):
        mu = (x - self.b) @ self.A.T
        return mu, self.logvar.expand_as(mu)

    def log_px_given_z(self, x, z):
        mean = z @ self.W.T + self.b
        return Normal(mean, self.noise_std).log_prob(x.expand_as(mean)).sum(-1)

    def exact_log_px(self, x):
        covariance = self.W @ self.W.T + self.noise_std**2 * torch.eye(len(self.b))
        return MultivariateNormal(self.b, covariance).log_prob(x)


def test_iwae_bound_is_between_the_elbo_and_the_exact_log_likelihood():
    torch.manual_seed(0)
    model = LinearGaussianVAE()
    x = torch.randn(64, 2) @ model.W.T + model.b + 0.5 * torch.randn(64, 6)
    exact = model.exact_log_px(x).mean()
    elbo = torch.stack([elbo_terms(model, x).elbo.mean() for _ in range(200)]).mean()
    bounds = {k: float(iwae_bound(model, x, k, chunk=500).mean()) for k in (10, 100, 5000)}
    bounds[1] = float(torch.stack([iwae_bound(model, x, 1).mean() for _ in range(200)]).mean())
    assert abs(bounds[1] - float(elbo)) < 0.3  # k = 1 is the ELBO (both are Monte Carlo averages here)
    assert float(elbo) < bounds[10] < bounds[100] <= float(exact) + 0.01
    assert bounds[5000] <= float(exact) + 0.01
    gaps = [float(exact) - bounds[k] for k in (1, 10, 100, 5000)]
    assert gaps[0] > 1.0 and gaps[1] < gaps[0] / 5 and gaps[2] < gaps[1] / 5  # the gap closes as k grows
    assert abs(gaps[3]) < 0.01


def test_iwae_grows_with_k_on_a_fixed_vae():
    torch.manual_seed(0)
    model = VAE(latent_dim=5, hidden_dim=32)
    x = torch.rand(16, 784)
    torch.manual_seed(1)
    elbo = elbo_terms(model, x).elbo.mean().detach()
    values = [float(iwae_bound(model, x, k).mean()) for k in (1, 16, 256)]
    assert values[0] < values[1] < values[2]
    assert values[2] >= float(elbo)
    assert not math.isnan(values[2])


def test_elbo_terms_keep_the_precision_of_the_images():
    # float32 under bfloat16 autocast (see test_train), and float64 stays float64
    model = VAE(latent_dim=3).double()
    terms = elbo_terms(model, torch.rand(4, 784, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))
    assert terms.kl.dtype == torch.float64 and terms.elbo.dtype == torch.float64


def test_losses_and_metrics_refuse_batches_that_are_not_the_same_images():
    from aecourse.metrics import psnr

    with pytest.raises(ValueError, match="same images"):
        psnr(torch.rand(2, 784), torch.rand(4, 392))
    with pytest.raises(ValueError, match="same images"):
        mse(torch.rand(4, 784), torch.rand(4, 392, 2))
    with pytest.raises(ValueError, match=r"\(B, latent_dim\)"):
        gaussian_kl(torch.zeros(4, 1), torch.zeros(1, 3))
    with pytest.raises(ValueError, match="image_mean"):
        gaussian_kl(torch.zeros(4, 3), torch.zeros(4, 3), reduction="pixel_mean")
    assert float(mse(torch.zeros(2, 1, 28, 28), torch.zeros(2, 784))) == 0.0  # flattened and not: same images


@pytest.mark.parametrize("beta", [-1.0, float("nan"), float("inf")])
def test_beta_must_be_finite_and_non_negative(beta):
    from aecourse.losses import vae_objective
    from aecourse.tb import beta_kl

    with pytest.raises(ValueError, match="beta must be a finite number >= 0"):
        vae_loss(VAE(), torch.rand(2, 784), beta)
    with pytest.raises(ValueError, match="beta"):
        vae_objective(beta)
    with pytest.raises(ValueError, match="beta"):
        beta_kl(beta)
