"""The plain-PyTorch training loop of chapters 1-4: in-memory tensors, shuffled index batches, a per-epoch
history, and guards that stop training before a non-finite loss or gradient reaches the weights.

No DataLoader: Fashion-MNIST is 220 MB as float32, so it sits on the device whole and a batch is one
indexing operation. That is what makes an epoch of the article's MLPs take seconds on two CPU cores.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from aecourse.runtime import evaluating, progress


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


def check_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Stop training before a non-finite loss or gradient reaches the weights: the optimizer step is not taken, so
    the weights keep their last finite update. Called between `backward()` and `step()`."""
    what = None
    if not bool(torch.isfinite(loss.detach())):
        what = f"the loss became {float(loss.detach())}"
    else:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack([g.detach().abs().amax() for g in grads])).all()):
            what = "a gradient became NaN or infinite (the loss was finite)"
    if what is not None:
        raise TrainingDivergedError(
            f"{what}; training stopped before the optimizer step, so the weights hold their last finite update. Try "
            f"a lower learning rate (lr={optimizer.param_groups[0]['lr']:g} now), check that the inputs are finite "
            "and in range, or clip the gradients."
        )


LossFn = Callable[..., "torch.Tensor | tuple[torch.Tensor, dict[str, torch.Tensor]]"]


# The definition between `fmt: off` and `fmt: on` is shown in chapter 1, at the book's 75 columns: the chapter's
# cell and this definition are one source (tests/test_taught_code.py).
# fmt: off
def train_epoch(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    loss_fn: LossFn,
    x_train: torch.Tensor,
    *,
    batch_size: int,
    generator: torch.Generator,
) -> dict[str, float]:
    """One pass over the training images in a random order (ch. 1): per
    batch, the forward pass and the loss, the gradients, one step.
    Returns the epoch's mean loss and the mean of each logged term."""
    model.train()
    order = torch.randperm(len(x_train), generator=generator)
    order = order.to(x_train.device)
    totals = {}
    for start in range(0, len(x_train), batch_size):
        x = x_train[order[start : start + batch_size]]  # (B, 1, 28, 28)
        out = loss_fn(model, x)  # the forward pass and the loss
        loss, logged = out if isinstance(out, tuple) else (out, {})
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # the gradient of the loss for every weight
        check_step(loss, optimizer)  # stop before a NaN reaches a weight
        optimizer.step()  # one Adam update of every weight
        for name, value in {"loss": loss, **logged}.items():
            totals[name] = totals.get(name, 0.0) + value.detach() * len(x)
    return {name: float(t) / len(x_train) for name, t in totals.items()}
# fmt: on


def _in_channels_last(loss_fn: LossFn) -> LossFn:
    """loss_fn on batches of images in the channels_last layout, the one a CPU's convolutions run fastest in."""

    def loss_in_channels_last(model: nn.Module, x: torch.Tensor):
        return loss_fn(model, x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)

    return loss_in_channels_last


def evaluate(
    model: nn.Module, loss_fn: LossFn, x: torch.Tensor, *, batch_size: int = 1000, seed: int | None = 0
) -> dict[str, float]:
    """The mean loss (and logged terms) over a whole split, in eval mode, weighting batches by size.

    `seed` fixes the random draws (a VAE's z, a DAE's noise) so that two evaluations agree. A non-finite value
    is an error, not a number to average.
    """
    totals: dict[str, float] = {}
    with evaluating(model, seed=seed):
        for start in range(0, len(x), batch_size):
            batch = x[start : start + batch_size]
            out = loss_fn(model, batch)
            loss, logged = out if isinstance(out, tuple) else (out, {})
            for name, value in {"loss": loss, **logged}.items():
                value = float(value)
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"evaluate: {name} is {value} on the batch of images {start}..{start + len(batch) - 1}; "
                        "check the model's weights and the inputs."
                    )
                totals[name] = totals.get(name, 0.0) + value * len(batch)
    return {name: value / len(x) for name, value in totals.items()}


def fit(
    model: nn.Module,
    loss_fn: LossFn,
    x_train: torch.Tensor,
    *,
    x_test: torch.Tensor | None = None,
    num_epochs: int = 10,
    batch_size: int = 128,
    lr: float = 1e-3,
    seed: int = 0,
    channels_last: bool = False,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Train `model` with Adam on images already on its device, `train_epoch` after `train_epoch`, and return the
    per-epoch history (chapters 1-4): the training loss and logged terms, seconds, the test loss when `x_test` is
    given, and whatever `epoch_end(model)` returns (chapter 4 records the Fréchet distance of samples).

    Seeded: the batches' order comes from a generator seeded by `seed`. A non-finite loss or gradient stops
    training before it reaches the weights. `channels_last` speeds up conv models on the CPU.
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
    train_loss_fn = loss_fn
    if channels_last:
        model.to(memory_format=torch.channels_last)
        train_loss_fn = _in_channels_last(loss_fn)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in progress(range(1, num_epochs + 1), total=num_epochs, desc="epochs", leave=True):
        start = time.perf_counter()
        try:
            train = train_epoch(model, optimizer, train_loss_fn, x_train, batch_size=batch_size, generator=generator)
        except TrainingDivergedError as exc:
            raise TrainingDivergedError(f"epoch {epoch}: {exc}") from None
        row = {"epoch": float(epoch)} | {f"train_{name}": value for name, value in train.items()}
        row["seconds"] = time.perf_counter() - start
        if x_test is not None:
            row.update({f"test_{name}": value for name, value in evaluate(model, loss_fn, x_test).items()})
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
        out = loss_fn(model, x)
        loss = out[0] if isinstance(out, tuple) else out
    gradients = torch.autograd.grad(loss, parameters)
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))
