"""Input checks shared by every public entry point (images, pairs of batches, codes, finite tensors, scalar knobs,
counts, devices), so a wrong input fails at the door with the same kind of message everywhere, not deep inside
torch or, worse, not at all.
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
from collections.abc import Callable
from typing import Any

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
    nonempty: bool = False,
) -> None:
    """Refuse anything but a finite float batch of 28x28 images, (B, 784) or (B, 1, 28, 28), in [low, high].

    Given the `model` that will read them, the message names it and the images must have its parameters' dtype
    (float64 or float16 images would otherwise fail deep in a matmul); `noisy=True` widens the range to what a DAE's
    noisy input may hold (NOISY_RANGE). `nonempty=True` refuses a batch of no images: what a measurement or a
    training run over a whole set cannot do anything with (a model's own forward pass accepts one).
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
        if nonempty:
            raise ValueError(f"{who} got an empty batch, shape {tuple(x.shape)}; it needs at least one image.")
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
        if not t.is_floating_point():
            raise TypeError(
                f"{who}: {name} must hold float images in [0, 1]; got dtype {t.dtype}. Divide uint8 images by 255 "
                "(load_fashion_mnist already does)."
            )
    same_batch = x_hat.dim() >= 1 and x.dim() >= 1 and x_hat.shape[0] == x.shape[0]
    shapes = {tuple(x_hat.shape[1:]), tuple(x.shape[1:])}
    same_images = len(shapes) == 1 or shapes <= set(IMAGE_SHAPES)
    if not (same_batch and same_images):
        raise ValueError(
            f"{who}: x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must hold the same images (same batch size "
            "and image shape); reshape one to the other, e.g. both (B, 784) or both (B, 1, 28, 28)."
        )


def _number(value: object) -> object:
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value)
    return value


def check_nonnegative(name: str, value: float) -> float:
    """A finite number >= 0 (beta, sigma, a threshold); returned as a float."""
    value = _number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0; got {value!r}.")
    return float(value)


def check_positive(name: str, value: float) -> float:
    """A finite number > 0 (a learning rate, a peak value); returned as a float. An infinite learning rate turns
    every weight into inf or NaN at the first step; a zero one trains nothing, silently."""
    value = _number(value)
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {value!r}.")
    return float(value)


def check_int(name: str, value: int, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """An int (not a bool, not a float that happens to be whole) in [minimum, maximum]; returned as an int. A float
    count would otherwise fail deep in range() or torch.randn with a message that names neither."""
    bounds = " ".join(
        part
        for part in (
            f">= {minimum}" if minimum is not None and maximum is None else "",
            f"in {minimum}..{maximum}" if minimum is not None and maximum is not None else "",
            f"<= {maximum}" if maximum is not None and minimum is None else "",
        )
        if part
    )
    expected = f"{name} must be an int{' ' + bounds if bounds else ''}; got {value!r}."
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(expected)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise ValueError(expected)
    return int(value)


def check_tensor(
    x: torch.Tensor, name: str, *, dims: int | None = None, floating: bool = True, finite: bool = True
) -> None:
    """A non-empty tensor (with `dims` dimensions, floating point, finite, as asked): what a measurement can score.
    `name` says whose argument it is ("psnr: x_hat")."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}.")
    if dims is not None and x.dim() != dims:
        raise ValueError(f"{name} must have {dims} dimension(s); got shape {tuple(x.shape)}.")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(x.shape)}): there is nothing to compute on.")
    if floating and not x.is_floating_point():
        raise TypeError(f"{name} must be a float tensor; got dtype {x.dtype}. Convert it with .float().")
    if finite and (x.is_floating_point() or x.is_complex()) and not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} holds NaN or infinite values; check the model's weights and the inputs.")


def check_codes(z: torch.Tensor, model: nn.Module, *, who: str) -> None:
    """Codes for `model`'s decoder: a finite float batch, (N, latent_dim) where the model says its latent_dim (a
    conv DAE's codes are feature maps: any (N, ...) batch there)."""
    latent_dim = getattr(model, "latent_dim", None)
    width = latent_dim if isinstance(latent_dim, int) and not isinstance(latent_dim, bool) else None
    if not isinstance(z, torch.Tensor):
        raise TypeError(f"{who} expects codes as a torch.Tensor (N, {width or 'latent_dim'}); got {type(z).__name__}.")
    if width is not None and z.dim() != 2:
        raise ValueError(
            f"{who} expects a batch of codes (N, {width}); got shape {tuple(z.shape)}. For a single code, add the "
            "batch dimension with z.unsqueeze(0)."
        )
    if width is not None and z.shape[1] != width:
        raise ValueError(
            f"{who}: {type(model).__name__} decodes codes of width {width}, (N, {width}); got {tuple(z.shape)}. "
            "Use codes of this model (its encode or prior_codes), not of a model with another latent_dim."
        )
    check_tensor(z, f"{who}: the codes z")


def check_device(device: torch.device | str, *, who: str) -> torch.device:
    """A device the course can run on, that this machine has: cpu, or cuda where torch sees a GPU."""
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"{who}: device={device!r} is not a device; use 'cpu', 'cuda' or 'cuda:N'. ({exc})") from None
    if parsed.type not in ("cpu", "cuda"):
        raise ValueError(f"{who}: the course runs on cpu or cuda, not device={device!r}.")
    if parsed.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(
                f"{who}: device={str(device)!r} asks for a CUDA GPU, but torch sees none here. Pass device='cpu', or "
                "device=pick_device() (CUDA where there is one)."
            )
        if parsed.index is not None and parsed.index >= torch.cuda.device_count():
            raise ValueError(
                f"{who}: device={str(device)!r} names GPU {parsed.index}, but torch sees "
                f"{torch.cuda.device_count()} GPU(s) (cuda:0..cuda:{torch.cuda.device_count() - 1})."
            )
    return parsed


def check_probability(name: str, value: float) -> float:
    """A finite number in [0, 1]; returned as a float."""
    value = check_nonnegative(name, value)
    if value > 1:
        raise ValueError(f"{name} is a probability and must lie in [0, 1]; got {value!r}.")
    return value


def refuses_a_wrong_posterior(loss: Callable) -> Callable:
    """The door check that chapter 3's KL and loss leave out of their lesson: mu and logvar of q(z|x) must be two
    tensors of the same shape (B, latent_dim), and beta, where the loss takes one, a weight >= 0."""
    signature = inspect.signature(loss)

    @functools.wraps(loss)
    def checked(*args: Any, **kwargs: Any) -> Any:
        given = signature.bind(*args, **kwargs).arguments
        mu, logvar = given["mu"], given["logvar"]
        if not (isinstance(mu, torch.Tensor) and isinstance(logvar, torch.Tensor)):
            raise TypeError(
                f"mu and logvar must be torch.Tensors; got {type(mu).__name__} and {type(logvar).__name__}."
            )
        if mu.shape != logvar.shape or mu.dim() != 2:
            raise ValueError(
                f"mu {tuple(mu.shape)} and logvar {tuple(logvar.shape)} must both be (B, latent_dim): the encoder's "
                "two outputs for one batch."
            )
        check_nonnegative("beta", given.get("beta", 0.0))
        return loss(*args, **kwargs)

    return checked
