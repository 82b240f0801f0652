"""Running trained models over data in eval mode and in batches (ch. 1-5): codes, decoded images, reconstructions,
samples, interpolations, predicted classes, posterior statistics. Models are duck-typed: anything with `encode`
(z, or (mu, logvar) for a VAE) and `decode`; the model's own `encode` checks the images.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from aecourse.checks import IMAGE_SIDE, check_codes, check_int, check_nonnegative, check_tensor
from aecourse.runtime import evaluating


def _check_batch(x: torch.Tensor, who: str) -> None:
    """A non-empty tensor: a set to run a model over (its encode checks the images themselves)."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor; got {type(x).__name__}.")
    if x.dim() == 0 or len(x) == 0:
        raise ValueError(f"{who} got an empty batch, shape {tuple(x.shape)}; it needs at least one item.")


@torch.no_grad()
def batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """fn over x in batches, concatenated: keeps memory flat on a whole split."""
    _check_batch(x, "batched")
    check_int("batched: batch_size", batch_size, minimum=1)
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


def _code(out: torch.Tensor | tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    return out[0] if isinstance(out, tuple) else out  # a VAE's code is the mean of q(z|x)


def encode(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The code of every image, (N, latent_dim): z = f(x) for an autoencoder, the mean mu for a VAE."""
    _check_batch(x, "encode")
    with evaluating(model):
        return batched(lambda batch: _code(model.encode(batch)), x)


def posterior(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """mu and logvar of q(z|x) for every image, each (N, latent_dim) (ch. 3, 5)."""
    _check_batch(x, "posterior")
    with evaluating(model):
        pairs = batched(lambda batch: torch.stack(model.encode(batch), dim=1), x)  # (N, 2, latent_dim)
    return pairs[:, 0], pairs[:, 1]


def decode(model: nn.Module, z: torch.Tensor) -> torch.Tensor:
    """Images (N, 1, 28, 28) decoded from codes (N, latent_dim), clamped to [0, 1] for display and scoring."""
    check_codes(z, model, who="decode")
    with evaluating(model):
        images = batched(model.decode, z)
    return images.reshape(len(z), 1, IMAGE_SIDE, IMAGE_SIDE).clamp(0.0, 1.0)  # (N, 784) -> (N, 1, 28, 28)


def reconstruct(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """decode(encode(x)) in the shape of x, clamped to [0, 1]; a VAE decodes its mean code (deterministic)."""
    _check_batch(x, "reconstruct")
    return decode(model, encode(model, x)).reshape(x.shape)


def prior_codes(model: nn.Module, num_samples: int, *, seed: int = 0) -> torch.Tensor:
    """z ~ N(0, I), (num_samples, latent_dim), drawn from `seed` on the model's device: the codes that a VAE's
    decoder and a GAN's generator turn into new images (`generate`). A model with a prior of its own brings a
    `sample_prior(num_samples, device=, generator=)` method (chapter 4's autoencoder with a Gaussian fitted to its
    codes)."""
    check_int("num_samples", num_samples, minimum=1)
    check_int("seed", seed)
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    if hasattr(model, "sample_prior"):
        return model.sample_prior(num_samples, device=device, generator=generator)
    return torch.randn(num_samples, model.latent_dim, device=device, generator=generator)


def generate(model: nn.Module, num_samples: int, *, seed: int = 0) -> torch.Tensor:
    """num_samples new images (N, 1, 28, 28): decode(z), z ~ N(0, I) drawn from `seed` (a VAE and a GAN alike)."""
    return decode(model, prior_codes(model, num_samples, seed=seed))


def interpolate(model: nn.Module, z_start: torch.Tensor, z_end: torch.Tensor, num_steps: int) -> torch.Tensor:
    """The images decoded along the straight line from z_start to z_end, endpoints included (ch. 3, 4):
    (num_steps, 1, 28, 28) for two codes (latent_dim,), or (B, num_steps, 1, 28, 28) for two batches."""
    check_int("interpolate: num_steps (both endpoints included)", num_steps, minimum=2)
    for name, z in (("z_start", z_start), ("z_end", z_end)):
        check_codes(
            z.reshape(-1, z.shape[-1]) if isinstance(z, torch.Tensor) and z.dim() else z,
            model,
            who=f"interpolate: {name}",
        )
    if z_start.shape != z_end.shape:
        raise ValueError(f"z_start {tuple(z_start.shape)} and z_end {tuple(z_end.shape)} must have the same shape.")
    t = torch.linspace(0.0, 1.0, num_steps, device=z_start.device, dtype=z_start.dtype).unsqueeze(1)  # (T, 1)
    path = torch.lerp(z_start.unsqueeze(-2), z_end.unsqueeze(-2), t)  # (..., T, latent_dim)
    images = decode(model, path.reshape(-1, path.shape[-1]))  # (... * T, 1, 28, 28)
    return images.reshape(*path.shape[:-1], 1, IMAGE_SIDE, IMAGE_SIDE)


def predict(classifier: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The predicted class of every image, (N,) int64: what class histograms and accuracies count."""
    _check_batch(x, "predict")
    with evaluating(classifier):
        return batched(lambda batch: classifier(batch).argmax(1), x)


def fit_gaussian(z: torch.Tensor, *, jitter: float = 1e-5) -> torch.distributions.MultivariateNormal:
    """N(mean, covariance) with the sample mean and covariance of codes (N, latent_dim) (ch. 3): an autoencoder has
    no prior to sample, and this is the simplest density one can fit to its codes and draw from."""
    check_nonnegative("jitter", jitter)
    check_tensor(z, "fit_gaussian: the codes z", dims=2)
    if len(z) <= z.shape[1]:
        raise ValueError(f"fit_gaussian needs more codes than dimensions, shape (N, latent_dim); got {tuple(z.shape)}.")
    z = z.detach().double()
    centred = z - z.mean(0)
    covariance = centred.T @ centred / (len(z) - 1)
    covariance = covariance + jitter * torch.eye(z.shape[1], dtype=z.dtype, device=z.device)
    return torch.distributions.MultivariateNormal(z.mean(0), covariance_matrix=covariance)
