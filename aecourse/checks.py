"""Input checks shared by every public entry point: a batch of images (type, dtype, shape, values), a pair of
batches that must hold the same images, and the scalar knobs (beta, sigma, probabilities).

One place for them, so that a wrong input fails at the door with the same kind of message everywhere, instead of
deep inside torch ("mat1 and mat2 must have the same dtype") or, worse, not at all.
"""

from __future__ import annotations

import math

import torch
from torch import nn

IMAGE_SIDE = 28
NUM_PIXELS = IMAGE_SIDE * IMAGE_SIDE
IMAGE_SHAPES = ((NUM_PIXELS,), (1, IMAGE_SIDE, IMAGE_SIDE))
NOISY_RANGE = (-10.0, 11.0)  # a DAE's input: images plus unclipped noise (the article's), but not 0..255 images


class CourseError(RuntimeError):
    """An error of the reader's setup (data, checkpoints) whose message says what went wrong and what to do. In a
    notebook IPython shows that message alone (`_render_traceback_`), not a traceback through the package; the full
    traceback is still there for `%tb`."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]


def model_dtype(model: nn.Module) -> torch.dtype:
    """The floating dtype of a model's parameters: the dtype its inputs must have."""
    for parameter in model.parameters():
        if parameter.is_floating_point():
            return parameter.dtype
    return torch.get_default_dtype()


def _autocast_on(device_type: str) -> bool:
    """Whether autocast is active for this device type (inside it, the dtypes of inputs and weights may differ)."""
    try:
        return torch.is_autocast_enabled(device_type)
    except TypeError:  # torch < 2.4 has no device argument
        return torch.is_autocast_cpu_enabled() if device_type == "cpu" else torch.is_autocast_enabled()


def check_images(
    x: torch.Tensor,
    model: nn.Module | None = None,
    *,
    noisy: bool = False,
    who: str | None = None,
    low: float = 0.0,
    high: float = 1.0,
    dtype: torch.dtype | None = None,
) -> None:
    """Refuse anything but a finite float batch of 28x28 images, (B, 784) or (B, 1, 28, 28), in [low, high].

    Given the `model` that will read them, the message names it and the images must have its parameters' dtype
    (float64 or float16 images would otherwise fail deep in a matmul); `noisy=True` widens the range to what a DAE's
    noisy input may hold (NOISY_RANGE).
    """
    if model is not None:
        who = who or type(model).__name__
        dtype = dtype or model_dtype(model)
    if noisy:
        low, high = NOISY_RANGE
    who = who or "the model"
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor of images, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(
            f"{who} expects float images in [0, 1], got dtype {x.dtype}. Divide uint8 images by 255 "
            "(load_fashion_mnist already does)."
        )
    if dtype is not None and x.dtype != dtype and not _autocast_on(x.device.type):
        raise TypeError(
            f"{who} has {dtype} weights but got {x.dtype} images; convert the images (x.to({dtype})) "
            f"or the model (model.to({x.dtype}))."
        )
    if x.dim() < 2 or tuple(x.shape[1:]) not in IMAGE_SHAPES:
        raise ValueError(
            f"{who} expects a batch of shape (B, 784) or (B, 1, 28, 28); got {tuple(x.shape)}. "
            "Add the batch dimension with x.unsqueeze(0) for a single image."
        )
    if x.numel() == 0:
        return
    values = x.detach()
    if not bool(torch.isfinite(values).all()):
        raise ValueError(f"{who} got NaN or infinite pixel values; check the input pipeline.")
    smallest, largest = (float(v) for v in torch.aminmax(values))
    if smallest < low or largest > high:
        raise ValueError(
            f"{who} expects pixel values in [{low:g}, {high:g}]; got values in [{smallest:.3g}, {largest:.3g}]. "
            "Scale the images to [0, 1] (divide by 255 if they are 0..255)."
        )


def check_same_images(x_hat: torch.Tensor, x: torch.Tensor, *, who: str = "the loss") -> None:
    """x_hat and x must be batches of the same images: same batch size, and image shapes that are the same up to
    flattening ((B, 784) against (B, 1, 28, 28) is fine; (B, 392, 2) is not)."""
    for name, t in (("x_hat", x_hat), ("x", x)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{who}: {name} must be a torch.Tensor, got {type(t).__name__}.")
    same_batch = x_hat.dim() >= 1 and x.dim() >= 1 and x_hat.shape[0] == x.shape[0]
    shapes = {tuple(x_hat.shape[1:]), tuple(x.shape[1:])}
    same_images = len(shapes) == 1 or shapes <= set(IMAGE_SHAPES)
    if not (same_batch and same_images):
        raise ValueError(
            f"{who}: x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must hold the same images (same batch size "
            "and image shape); reshape one to the other, e.g. both (B, 784) or both (B, 1, 28, 28)."
        )


def check_nonnegative(name: str, value: float) -> float:
    """A finite number >= 0 (beta, sigma, a learning rate); returned as a float."""
    if isinstance(value, torch.Tensor):
        value = float(value)
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_probability(name: str, value: float) -> float:
    """A finite number in [0, 1]; returned as a float."""
    value = check_nonnegative(name, value)
    if value > 1:
        raise ValueError(f"{name} is a probability and must lie in [0, 1]; got {value!r}.")
    return value


def check_posterior(mu: torch.Tensor, logvar: torch.Tensor) -> None:
    """mu and logvar of q(z|x): two tensors of the same shape (B, latent_dim)."""
    if not (isinstance(mu, torch.Tensor) and isinstance(logvar, torch.Tensor)):
        raise TypeError(f"mu and logvar must be torch.Tensors; got {type(mu).__name__} and {type(logvar).__name__}.")
    if mu.shape != logvar.shape or mu.dim() != 2:
        raise ValueError(
            f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must both be (B, latent_dim): the encoder's two "
            "outputs for one batch."
        )
