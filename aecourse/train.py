"""The plain-PyTorch training loop of chapters 1-4: in-memory tensors, shuffled index batches, a per-epoch
history, and guards that stop training before a non-finite loss or gradient reaches the weights.

No DataLoader: Fashion-MNIST is 220 MB as float32, so it sits on the device whole and a batch is one
indexing operation. That is what makes an epoch of the article's MLPs take seconds on two CPU cores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch
from torch import nn

from aecourse.losses import LossFn
from aecourse.runtime import check_bfloat16, evaluating, progress


class TrainingDivergedError(FloatingPointError):
    """A loss or a gradient became NaN or infinite; the message names the epoch, the step and what to try."""


@dataclass
class History:
    """One row per epoch: train and test losses, any extra terms, and seconds spent training."""

    rows: list[dict[str, float]] = field(default_factory=list)

    def __getitem__(self, key: str) -> list[float]:
        return [row[key] for row in self.rows if key in row]

    def __len__(self) -> int:
        return len(self.rows)

    @property
    def last(self) -> dict[str, float]:
        return self.rows[-1] if self.rows else {}

    @property
    def seconds(self) -> float:
        """Seconds spent training, all epochs together (evaluation excluded)."""
        return sum(self["seconds"])


def _unpack(result: torch.Tensor | tuple[torch.Tensor, dict]) -> tuple[torch.Tensor, dict]:
    return (result[0], result[1]) if isinstance(result, tuple) else (result, {})


def _batches(n: int, batch_size: int, *, generator: torch.Generator | None, device: torch.device) -> Iterator:
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    order = order.to(device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _diverged(what: str, epoch: int, step: int, lr: float, weights: str) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"{what} at epoch {epoch}, step {step}; training stopped and {weights}. Try a lower learning rate "
        f"(lr={lr:g} now), check that the inputs are finite and in range, or clip the gradients."
    )


def _gradients_finite(model: nn.Module) -> bool:
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    return not grads or bool(torch.isfinite(torch.stack([g.detach().abs().amax() for g in grads])).all())


def evaluate(
    model: nn.Module,
    loss_fn: LossFn,
    x: torch.Tensor,
    y: torch.Tensor | None = None,
    *,
    batch_size: int = 1000,
    seed: int | None = 0,
) -> dict[str, float]:
    """The mean loss (and extra terms) over a whole split, in eval mode, weighting batches by size.

    `seed` fixes the random draws (a VAE's z, a DAE's noise) so that two evaluations agree. A non-finite value
    is an error, not a number to average.
    """
    totals: dict[str, float] = {}
    with evaluating(model, seed=seed):
        for idx in _batches(len(x), batch_size, generator=None, device=x.device):
            loss, extra = _unpack(loss_fn(model, x[idx], None if y is None else y[idx]))
            for name, value in {"loss": loss, **extra}.items():
                value = float(value)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"evaluate: {name} is {value} on the batch of images {int(idx[0])}..{int(idx[-1])}; "
                        "check the model's weights and the inputs."
                    )
                totals[name] = totals.get(name, 0.0) + value * len(idx)
    return {name: value / len(x) for name, value in totals.items()}


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    x_train: torch.Tensor,
    y_train: torch.Tensor | None = None,
    *,
    x_test: torch.Tensor | None = None,
    y_test: torch.Tensor | None = None,
    num_epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    optimizer: torch.optim.Optimizer | None = None,
    seed: int = 0,
    channels_last: bool = False,
    mixed_precision: bool = False,
    history: History | None = None,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Train `model` on tensors already on its device; return the per-epoch history (chapters 1-4).

    A non-finite loss or gradient stops training before the optimizer step, so the weights hold the last finite
    update. `channels_last` speeds up conv models on the CPU; `mixed_precision` runs the forward pass under
    bfloat16 autocast (weights, gradients and Adam stay float32) where the hardware has bfloat16 (see
    `native_bfloat16`; the book's appendix measures both). Pass the `history` of an earlier call to continue it.
    `epoch_end(model)` may return extra numbers for each epoch's row (chapter 4 records the Fréchet distance).
    """
    if num_epochs < 0 or batch_size < 1:
        raise ValueError(f"num_epochs must be >= 0 and batch_size >= 1; got {num_epochs} and {batch_size}.")
    if len(x_train) == 0:
        raise ValueError("x_train is empty: there is nothing to train on.")
    device = next(model.parameters()).device
    if x_train.device != device:
        raise ValueError(
            f"x_train is on {x_train.device} but the model is on {device}; move both to the same device "
            "(load_fashion_mnist(device=...) and model.to(device))."
        )
    if mixed_precision:
        check_bfloat16(device, who="mixed_precision=True")
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    lr_now = optimizer.param_groups[0]["lr"]
    generator = torch.Generator().manual_seed(seed)
    history = history if history is not None else History()
    first = len(history) + 1
    steps = math.ceil(len(x_train) / batch_size)
    for epoch in progress(range(first, first + num_epochs), total=num_epochs, desc="epochs", leave=True):
        model.train()
        start = time.perf_counter()
        totals: dict[str, torch.Tensor] = {}
        batches = _batches(len(x_train), batch_size, generator=generator, device=device)
        for step, idx in enumerate(progress(batches, total=steps, desc=f"epoch {epoch}")):
            x = x_train[idx]
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision):
                loss, extra = _unpack(loss_fn(model, x, None if y_train is None else y_train[idx]))
            if not bool(torch.isfinite(loss)):
                raise _diverged(
                    f"the loss became {float(loss.detach())}",
                    epoch,
                    step,
                    lr_now,
                    "the weights hold their last finite update",
                )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if not _gradients_finite(model):
                raise _diverged(
                    "a gradient became NaN or infinite (the loss was finite)",
                    epoch,
                    step,
                    lr_now,
                    "the optimizer step was skipped: the weights hold their last finite update",
                )
            optimizer.step()
            for name, value in {"loss": loss, **extra}.items():
                totals[name] = totals.get(name, 0.0) + torch.as_tensor(value).detach() * len(idx)
        row = {"epoch": float(epoch)}
        row.update({f"train_{name}": float(value) / len(x_train) for name, value in totals.items()})
        row["seconds"] = time.perf_counter() - start
        if x_test is not None:
            row.update({f"test_{name}": value for name, value in evaluate(model, loss_fn, x_test, y_test).items()})
        if epoch_end is not None:
            row.update(epoch_end(model))
        history.rows.append(row)
    return history


def gradient_norm(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, part: nn.Module | None = None, *, seed: int = 0
) -> float:
    """The norm of the gradient of `loss_fn` at the current weights with respect to the parameters of `part` (the
    whole model by default), in training mode with seeded draws; nothing is updated (ch. 4: how much gradient
    reaches the decoder early in training)."""
    parameters = list((part or model).parameters())
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        loss, _ = _unpack(loss_fn(model, x, None))
    gradients = torch.autograd.grad(loss, parameters)
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))
