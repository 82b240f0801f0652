"""Latent-space mechanics of chapter 3: codes of a whole split, interpolation between codes, the decoded grid
over a 2-D latent plane, a Gaussian fitted to an autoencoder's codes, dynamic binarization, and active units.

Models are duck-typed: anything with `encode` (returning z, or (mu, logvar) for a VAE) and `decode`.
"""

from __future__ import annotations

import torch
from torch import nn

from aecourse.losses import ELBOTerms, elbo_terms
from aecourse.runtime import seeded_eval


@torch.no_grad()
def encode_codes(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The code of every image, (N, latent_dim), in eval mode: z = f(x) for an AE, the mean mu for a VAE (ch. 3)."""
    was_training = model.training
    model.eval()
    try:
        chunks = []
        for start in range(0, len(x), batch_size):
            out = model.encode(x[start : start + batch_size])
            chunks.append(out[0] if isinstance(out, tuple) else out)
        return torch.cat(chunks)
    finally:
        model.train(was_training)


@torch.no_grad()
def decode_images(model: nn.Module, z: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Decode codes (N, latent_dim) to images (N, 1, 28, 28) in eval mode; clamped to [0, 1] for display and scoring."""
    was_training = model.training
    model.eval()
    try:
        flat = torch.cat([model.decode(z[i : i + batch_size]) for i in range(0, len(z), batch_size)])
        return flat.reshape(len(z), 1, 28, 28).clamp(0.0, 1.0)  # (N, 784) -> (N, 1, 28, 28)
    finally:
        model.train(was_training)


@torch.no_grad()
def per_image_elbo_terms(model: nn.Module, x: torch.Tensor, *, batch_size: int = 1000, seed: int = 0) -> ELBOTerms:
    """log p(x|z) (one seeded z per image) and KL(q(z|x) || p(z)) for every image, in eval mode (ch. 3).

    The per-image scores of the anomaly detector: -ELBO, or either of its two terms.
    """
    with seeded_eval(model, x.device, seed):
        parts = [elbo_terms(model, x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return ELBOTerms(torch.cat([p.log_px_given_z for p in parts]), torch.cat([p.kl for p in parts]))


def interpolate(z_start: torch.Tensor, z_end: torch.Tensor, num_steps: int) -> torch.Tensor:
    """Codes on the straight line from z_start to z_end, endpoints included: (num_steps, latent_dim) (ch. 3).

    Given batches (B, latent_dim) it returns (B, num_steps, latent_dim), one path per pair.
    """
    if num_steps < 2:
        raise ValueError(f"num_steps counts both endpoints and must be >= 2; got {num_steps}.")
    if z_start.shape != z_end.shape:
        raise ValueError(f"z_start {tuple(z_start.shape)} and z_end {tuple(z_end.shape)} must have the same shape.")
    t = torch.linspace(0.0, 1.0, num_steps, device=z_start.device, dtype=z_start.dtype)
    t = t.reshape(num_steps, 1)  # (num_steps,) -> (num_steps, 1), broadcast over latent_dim
    return z_start.unsqueeze(-2) + t * (z_end - z_start).unsqueeze(-2)


def gaussian_grid_2d(num_per_side: int, *, low: float = 0.05, high: float = 0.95) -> torch.Tensor:
    """A grid over the 2-D latent plane spaced by the prior's quantiles, (num_per_side**2, 2), rows top to bottom.

    Points sit at the N(0, 1) inverse CDF of evenly spaced probabilities in [low, high] (Kingma & Welling 2014,
    Fig. 4), so each cell holds the same prior mass. Row r varies z_2 from high to low; column c varies z_1.
    """
    if num_per_side < 2:
        raise ValueError(f"num_per_side must be >= 2; got {num_per_side}.")
    if not 0.0 < low < high < 1.0:
        raise ValueError(f"low and high are probabilities with 0 < low < high < 1; got {low} and {high}.")
    values = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(low, high, num_per_side))
    z1 = values.repeat(num_per_side)  # column index runs fastest
    z2 = values.flip(0).repeat_interleave(num_per_side)  # top row = largest z_2, as on a plot
    return torch.stack([z1, z2], dim=1)  # (num_per_side**2, 2)


def fit_gaussian(z: torch.Tensor, *, jitter: float = 1e-5) -> torch.distributions.MultivariateNormal:
    """The Gaussian N(mean, covariance) with the sample mean and covariance of the codes z, (N, latent_dim) (ch. 3).

    An autoencoder has no prior to sample; this is the simplest density one can fit to its codes and draw from.
    """
    if z.dim() != 2 or len(z) <= z.shape[1]:
        raise ValueError(f"fit_gaussian needs more codes than dimensions, shape (N, latent_dim); got {tuple(z.shape)}.")
    z = z.detach().double()
    mean = z.mean(0)
    centred = z - mean
    covariance = centred.T @ centred / (len(z) - 1)
    covariance = covariance + jitter * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return torch.distributions.MultivariateNormal(mean, covariance_matrix=covariance)


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel is 1 with probability its grey level, drawn afresh at every call (ch. 3).

    Gives binary images on which a Bernoulli decoder's log p(x|z) is a true log-probability.
    """
    return torch.bernoulli(x, generator=generator)


def binarized_objective(loss_fn):
    """Wrap a loss_fn for aecourse.train.fit so that each batch is binarized afresh (dynamic binarization, ch. 3)."""

    def wrapped(model, x, y=None):
        return loss_fn(model, binarize(x), y)

    return wrapped


def active_units(mu: torch.Tensor, threshold: float = 1e-2) -> torch.Tensor:
    """Which latent dimensions the encoder uses: Var_x(E_q[z_u]) > threshold (Burda et al. 2016, Sec. 5.2).

    `mu` holds the encoder means of a data set, (N, latent_dim); returns a boolean mask (latent_dim,).
    """
    if mu.dim() != 2 or len(mu) < 2:
        raise ValueError(
            f"active_units needs the means of several images, shape (N, latent_dim); got {tuple(mu.shape)}."
        )
    return mu.detach().double().var(0) > threshold
