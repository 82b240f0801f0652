"""Every objective of the course, each written once: the reconstruction errors and the autoencoders' losses (ch. 1,
2), the closed-form KL and the VAE's -ELBO or its beta form (ch. 3-5). Training losses take `(model, x)` and return
the loss, or the loss and a dict of terms to log; errors are per pixel for autoencoders, nats per image for VAEs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.checks import check_same_images, refuses_a_wrong_posterior

# The definitions between `fmt: off` and `fmt: on` are shown in the chapters that teach them, at the book's 75
# columns: the chapter's cell and the definition here are one source (tests/test_taught_code.py).


def _per_image_or_mean(per_element: torch.Tensor, per_image: bool) -> torch.Tensor:
    """The sum over each image's values, (B,), or the mean over every value (the per-pixel error)."""
    return per_element.reshape(len(per_element), -1).sum(1) if per_image else per_element.mean()


def mse(x_hat: torch.Tensor, x: torch.Tensor, *, per_image: bool = False) -> torch.Tensor:
    """Squared error (ch. 1): the mean per pixel, or with `per_image=True` the sum over each image's pixels, (B,).
    It is the negative log-likelihood of a Gaussian decoder, up to constants."""
    check_same_images(x_hat, x, who="mse")
    return _per_image_or_mean((x_hat.reshape(x.shape) - x).pow(2), per_image)


def bce(x_hat: torch.Tensor, x: torch.Tensor, *, per_image: bool = False, logits: bool = False) -> torch.Tensor:
    """Binary cross-entropy (ch. 1, 3): the negative log-likelihood of a Bernoulli decoder, as `mse` per pixel or
    per image. Needs targets in [0, 1], and x_hat in [0, 1] (or logits with `logits=True`, numerically safer).
    bce(x, x) is the entropy of the grey levels: the floor no reconstruction of grey images can go below (ch. 1)."""
    check_same_images(x_hat, x, who="bce")
    if x.numel() and (float(x.min()) < 0.0 or float(x.max()) > 1.0):
        raise ValueError("bce needs targets x in [0, 1]; scale the images or use mse for unbounded data.")
    x_hat = x_hat.reshape(x.shape).to(x.dtype)  # float32 losses under bfloat16 autocast
    loss = F.binary_cross_entropy_with_logits if logits else F.binary_cross_entropy
    return _per_image_or_mean(loss(x_hat, x, reduction="none"), per_image)


# fmt: off
def reconstruction_loss(
    model: nn.Module, x: torch.Tensor, kind: str = "mse"
) -> torch.Tensor:
    """The autoencoder's loss on a batch (ch. 1): x_hat = g(f(x)) scored
    against x itself, by the MSE or the BCE per pixel."""
    x_hat = model(x)  # the forward pass: encode, then decode
    if kind == "mse":
        return mse(x_hat, x)
    if kind == "bce":
        return bce(x_hat, x)
    raise ValueError(f"kind must be 'mse' or 'bce'; got {kind!r}.")
# fmt: on


# fmt: off
def denoising_loss(
    model: nn.Module,
    x: torch.Tensor,
    corrupt: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """The DAE's loss on a batch (ch. 2): corrupt the clean x afresh,
    reconstruct, and score the output against the clean x."""
    x_noisy = corrupt(x)  # a new draw of noise at every step
    x_hat = model(x_noisy)
    return mse(x_hat, x)  # the target is the clean image
# fmt: on


# fmt: off
@refuses_a_wrong_posterior  # mu and logvar of one batch
def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_j|x) || N(0, 1)) of each latent dimension j of each image,
    (B, latent_dim), for q = N(mu, exp(logvar)) (ch. 3, 5). Closed form
    from Appendix B of Kingma & Welling (2014); sum over j for an image."""
    return -0.5 * (1 + logvar - mu.pow(2) - logvar.exp())
# fmt: on


# fmt: off
@refuses_a_wrong_posterior  # and a beta >= 0
def vae_loss(
    x_logits: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor,
    logvar: torch.Tensor,
    beta: float = 1.0,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """-ELBO = E_q[-log p(x|z)] + KL(q(z|x) || p(z)) in nats per image,
    with beta weighing the KL (ch. 3; beta != 1 is the beta-VAE of ch. 5).
    Returns the batch's mean loss and the two terms of every image."""
    x = x.reshape(x_logits.shape)  # (B, 1, 28, 28) -> (B, 784)
    reconstruction = bce(x_logits, x, per_image=True, logits=True)
    kl = gaussian_kl(mu, logvar).sum(1)  # (B, latent_dim) -> (B,)
    return reconstruction.mean() + beta * kl.mean(), reconstruction, kl
# fmt: on


# fmt: off
def vae_batch_loss(
    model: nn.Module, x: torch.Tensor, beta: float = 1.0
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The VAE's training loss on a batch, and its two terms to log."""
    x_logits, mu, logvar = model(x)  # z ~ q(z|x), one draw per image
    loss, reconstruction, kl = vae_loss(x_logits, x, mu, logvar, beta)
    return loss, {"reconstruction": reconstruction.mean(), "kl": kl.mean()}
# fmt: on
