"""Every objective of the course: the reconstruction losses (ch. 1), the denoising objective (ch. 2), the
closed-form KL and the (beta-)ELBO (ch. 3, 5), and the importance-weighted bound on log p(x) (ch. 3).

Reductions say what they average: "pixel_mean" averages every pixel (the MSE per pixel the chapters report),
"image_mean" sums each image's pixels and averages the images (nats per image, the VAE convention), "sum" sums
everything (the article's `reduction='sum'`), and "none" returns one value per image, its pixels summed.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol

import torch
import torch.nn.functional as F

from aecourse.checks import check_nonnegative, check_same_images
from aecourse.data import binarize
from aecourse.models import reparameterize

Reduction = Literal["pixel_mean", "image_mean", "sum", "none"]
REDUCTIONS = ("pixel_mean", "image_mean", "sum", "none")


def _reduce(per_element: torch.Tensor, reduction: Reduction) -> torch.Tensor:
    per_image = per_element.reshape(per_element.shape[0], -1)  # (B, ...) -> (B, D)
    if reduction == "pixel_mean":
        return per_image.mean()
    if reduction == "image_mean":
        return per_image.sum(1).mean()
    if reduction == "sum":
        return per_image.sum()
    if reduction == "none":
        return per_image.sum(1)
    raise ValueError(f"reduction must be one of {', '.join(map(repr, REDUCTIONS))}; got {reduction!r}.")


def mse(x_hat: torch.Tensor, x: torch.Tensor, reduction: Reduction = "pixel_mean") -> torch.Tensor:
    """Squared error ||x - x_hat||^2 (ch. 1): the negative log-likelihood of a Gaussian decoder, up to constants."""
    check_same_images(x_hat, x, who="mse")
    return _reduce((x_hat.reshape(x.shape).to(x.dtype) - x).pow(2), reduction)


def bce(
    x_hat: torch.Tensor, x: torch.Tensor, reduction: Reduction = "pixel_mean", *, logits: bool = False
) -> torch.Tensor:
    """Binary cross-entropy (ch. 1, 3): the negative log-likelihood of a Bernoulli decoder.

    Needs targets in [0, 1], and x_hat in [0, 1] (or logits with `logits=True`, which is numerically safer).
    bce(x, x) is the entropy of the grey levels: the floor no reconstruction of grey images can go below (ch. 3).
    """
    check_same_images(x_hat, x, who="bce")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError("bce needs targets x in [0, 1]; scale the images or use mse for unbounded data.")
    x_hat = x_hat.reshape(x.shape).to(x.dtype)  # float32 losses under bfloat16 autocast
    loss = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
    return _reduce(loss(x_hat, x, reduction="none"), reduction)


def gaussian_kl_per_dim(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0, 1)) of each latent dimension j of each image, (B, latent_dim), for q = N(mu, exp(logvar)).

    Closed form from Appendix B of Kingma & Welling (2014): -1/2 (1 + logvar - mu^2 - exp(logvar)).
    """
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must both be (B, latent_dim).")
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor, reduction: Reduction = "image_mean") -> torch.Tensor:
    """KL(q(z|x) || p(z)) with p = N(0, I): the per-dimension KL summed over the latent dimensions (ch. 3).

    `reduction="pixel_mean"` has no meaning here (it would average latent dimensions) and is refused.
    """
    if reduction == "pixel_mean":
        raise ValueError('gaussian_kl sums the latent dimensions; use reduction "image_mean", "sum" or "none".')
    return _reduce(gaussian_kl_per_dim(mu, logvar), reduction)


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


def elbo_terms(model: LatentVariableModel, x: torch.Tensor) -> ELBOTerms:
    """One-sample estimate of E_q(z|x)[log p(x|z)] and the closed-form KL(q(z|x) || p(z)), per image."""
    mu, logvar = (t.to(x.dtype) for t in model.encode(x))  # the images' precision, even under bfloat16 autocast
    return ELBOTerms(model.log_px_given_z(x, reparameterize(mu, logvar)), gaussian_kl(mu, logvar, "none"))


def vae_loss(model: LatentVariableModel, x: torch.Tensor, beta: float = 1.0) -> tuple[torch.Tensor, dict]:
    """-ELBO (beta = 1) or the beta-VAE loss -E_q[log p(x|z)] + beta KL (Higgins et al. 2017), nats per image,
    with the two terms for the history."""
    beta = check_nonnegative("beta", beta)
    terms = elbo_terms(model, x)
    reconstruction, kl = -terms.log_px_given_z.mean(), terms.kl.mean()
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


# Objectives for aecourse.train.fit: loss_fn(model, x, y) -> loss, or (loss, {name: value}).
LossFn = Callable[..., "torch.Tensor | tuple[torch.Tensor, dict]"]


def reconstruction_objective(kind: Literal["mse", "bce"] = "mse") -> LossFn:
    """The autoencoder's reconstruction loss per pixel: mse(model(x), x) or bce(model(x), x) (ch. 1)."""
    if kind not in ("mse", "bce"):
        raise ValueError(f"kind must be 'mse' or 'bce'; got {kind!r}.")
    loss = mse if kind == "mse" else bce
    return lambda model, x, y=None: loss(model(x), x)


def denoising_objective(corrupt: Callable[[torch.Tensor], torch.Tensor]) -> LossFn:
    """The DAE's objective: corrupt each clean batch afresh, score the output against the clean batch (ch. 2)."""
    return lambda model, x, y=None: mse(model(corrupt(x)), x)


def vae_objective(beta: float = 1.0, *, binarized: bool = False) -> LossFn:
    """-ELBO (beta = 1) or the beta-VAE loss, nats per image, for `fit` (ch. 3, 4). `binarized=True` draws binary images
    afresh from each grey-level batch (dynamic binarization), on which log p(x|z) is a true log-probability."""
    beta = check_nonnegative("beta", beta)
    if binarized:
        return lambda model, x, y=None: vae_loss(model, binarize(x), beta)
    return lambda model, x, y=None: vae_loss(model, x, beta)
