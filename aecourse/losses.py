"""The objectives of the course: reconstruction losses (ch. 1-2), the closed-form KL and the (beta-)ELBO
(ch. 3, 5), and the importance-weighted bound used to estimate log p(x) (ch. 3).

Reductions are named explicitly: "mean" is per pixel (the MSE the chapters report), "per_image" sums over
the pixels and averages over the batch (nats per image, the VAE convention), "sum" sums everything (the
article's `reduction='sum'`), and "none" returns one value per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

Reduction = Literal["mean", "per_image", "sum", "none"]


def _reduce_per_image(per_element: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    per_image = per_element.reshape(per_element.shape[0], -1)
    if reduction == "mean":
        return per_image.mean()
    if reduction == "per_image":
        return per_image.sum(1).mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image.sum(1)
    raise ValueError(f"reduction must be one of 'mean', 'per_image', 'sum', 'none'; got {reduction!r}.")


def _check_pair(x_hat: torch.Tensor, x: torch.Tensor) -> None:
    if x_hat.numel() != x.numel() or x_hat.shape[0] != x.shape[0]:
        raise ValueError(
            f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must hold the same images; "
            "reshape one to the other (both (B, 784) or both (B, 1, 28, 28))."
        )


def mse(x_hat: torch.Tensor, x: torch.Tensor, reduction: Reduction = "mean") -> torch.Tensor:
    """Squared error ||x - x_hat||^2 (ch. 1): the negative log-likelihood of a Gaussian decoder, up to constants."""
    _check_pair(x_hat, x)
    return _reduce_per_image((x_hat.reshape(x.shape).to(x.dtype) - x).pow(2), reduction)


def bce(x_hat: torch.Tensor, x: torch.Tensor, reduction: Reduction = "mean", *, logits: bool = False) -> torch.Tensor:
    """Binary cross-entropy (ch. 1, 3): the negative log-likelihood of a Bernoulli decoder.

    Needs targets in [0, 1], and x_hat in [0, 1] (or logits with `logits=True`, which is numerically safer).
    """
    _check_pair(x_hat, x)
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError("bce needs targets x in [0, 1]; scale the images or use mse for unbounded data.")
    x_hat = x_hat.reshape(x.shape).to(x.dtype)  # float32 losses under bfloat16 autocast
    if logits:
        per_element = F.binary_cross_entropy_with_logits(x_hat, x, reduction="none")
    else:
        per_element = F.binary_cross_entropy(x_hat, x, reduction="none")
    return _reduce_per_image(per_element, reduction)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: Reduction = "per_image") -> torch.Tensor:
    """KL(q(z|x) || p(z)) for q = N(mu, diag(exp(logvar))) and p = N(0, I), summed over latent dimensions.

    Closed form from Appendix B of Kingma & Welling (2014): -1/2 * sum(1 + logvar - mu^2 - exp(logvar)).
    """
    per_dim = -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
    if reduction == "mean":  # per latent dimension would mislead; "mean" here is per image
        reduction = "per_image"
    return _reduce_per_image(per_dim, reduction)


class LatentVariableModel(Protocol):
    """What the bounds need from a VAE: the encoder q(z|x) and the decoder's log p(x|z)."""

    latent_dim: int

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]: ...

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor: ...


@dataclass
class ELBOTerms:
    """The two terms of the ELBO, one value per image: ELBO = log_px_given_z - kl."""

    log_px_given_z: torch.Tensor
    kl: torch.Tensor

    @property
    def elbo(self) -> torch.Tensor:
        return self.log_px_given_z - self.kl

    def loss(self, beta: float = 1.0) -> torch.Tensor:
        """The beta-VAE objective to minimise, per image averaged over the batch (Higgins et al. 2017)."""
        return (-self.log_px_given_z + beta * self.kl).mean()


def elbo_terms(model: LatentVariableModel, x: torch.Tensor) -> ELBOTerms:
    """One-sample estimate of E_q(z|x)[log p(x|z)] and the closed-form KL(q(z|x) || p(z)), per image (ch. 3)."""
    mu, logvar = (t.to(x.dtype) for t in model.encode(x))  # the images' precision, even under bfloat16 autocast
    z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)  # the reparameterization trick
    return ELBOTerms(model.log_px_given_z(x, z), gaussian_kl(mu, logvar, reduction="none"))


def vae_loss(model: LatentVariableModel, x: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, dict[str, float]]:
    """-ELBO (beta = 1) or the beta-VAE loss, in nats per image; with the two terms for the history (ch. 3, 5)."""
    terms = elbo_terms(model, x)
    reconstruction = -terms.log_px_given_z.mean()
    kl = terms.kl.mean()
    return reconstruction + beta * kl, {"reconstruction": reconstruction.detach(), "kl": kl.detach()}


def _log_normal(z: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """log N(z; mu, diag(exp(logvar))) summed over the last dimension."""
    return -0.5 * (math.log(2 * math.pi) + logvar + (z - mu).pow(2) / logvar.exp()).sum(-1)


@torch.no_grad()
def iwae_bound(model: LatentVariableModel, x: torch.Tensor, k: int, *, chunk: int = 256) -> torch.Tensor:
    """The importance-weighted bound log (1/k) sum_i p(x, z_i) / q(z_i|x), one value per image (Burda et al. 2016).

    k = 1 is the ELBO; the bound grows with k towards log p(x), so a large k estimates the log-likelihood.
    Samples are drawn `chunk` at a time to bound memory.
    """
    if k < 1:
        raise ValueError(f"k is a number of importance samples and must be >= 1; got {k}.")
    mu, logvar = model.encode(x)
    std = torch.exp(0.5 * logvar)
    log_weights = []
    for start in range(0, k, chunk):
        n = min(chunk, k - start)
        z = mu + std * torch.randn((n, *mu.shape), device=mu.device, dtype=mu.dtype)  # (n, B, latent_dim)
        log_prior = _log_normal(z, torch.zeros_like(z), torch.zeros_like(z))
        log_weights.append(model.log_px_given_z(x, z) + log_prior - _log_normal(z, mu, logvar))
    return torch.logsumexp(torch.cat(log_weights), dim=0) - math.log(k)


def reconstruction_objective(kind: Literal["mse", "bce"] = "mse"):
    """A loss_fn for aecourse.train.fit: the autoencoder's reconstruction loss, per pixel (ch. 1)."""
    if kind not in ("mse", "bce"):
        raise ValueError(f"kind must be 'mse' or 'bce'; got {kind!r}.")

    def loss_fn(model, x, y=None):
        x_hat = model(x)
        return mse(x_hat, x) if kind == "mse" else bce(x_hat, x)

    return loss_fn


def vae_objective(beta: float = 1.0):
    """A loss_fn for aecourse.train.fit: -ELBO (beta = 1) or the beta-VAE loss, nats per image (ch. 3, 5)."""

    def loss_fn(model, x, y=None):
        return vae_loss(model, x, beta=beta)

    return loss_fn
