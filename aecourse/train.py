"""The plain-PyTorch training loop of chapters 1-4: in-memory tensors (Fashion-MNIST fits on the device whole, so a
batch is one indexing operation and an MLP epoch takes seconds on two cores), a per-epoch history, and guards: a
non-finite loss or gradient stops training before it reaches the weights, and non-finite weights are never kept.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import torch
from torch import nn

from aecourse.checks import check_images, check_int, check_positive
from aecourse.runtime import evaluating, progress


class TrainingDivergedError(FloatingPointError):
    """A loss, a gradient or a weight became NaN or infinite; the message says when, in what state the weights are
    left, and what to try. `history` holds the rows of the epochs completed before (from `fit`)."""

    what: str = ""  # the cause alone: "the loss became nan"
    history: History | None = None


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


def all_finite(tensors: Iterable[torch.Tensor]) -> bool:
    """Whether every value of every floating tensor is finite: one reduction per tensor, one sync in all."""
    peaks = [t.detach().abs().amax().float() for t in tensors if t.is_floating_point() and t.numel()]
    return not peaks or bool(torch.isfinite(torch.stack(peaks)).all())


def state_tensors(*optimizers: torch.optim.Optimizer) -> list[torch.Tensor]:
    """The tensors of the optimizers' states (Adam's moment estimates): a NaN there reaches the weights next."""
    return [v for opt in optimizers for state in opt.state.values() for v in state.values() if torch.is_tensor(v)]


Snapshot = tuple[dict[str, torch.Tensor], list[dict]]


def snapshot(model: nn.Module, *optimizers: torch.optim.Optimizer) -> Snapshot:
    """The weights (and buffers) and the optimizers' states, copied: what an epoch starts from (fit, train_gan)."""
    weights = {key: value.detach().clone() for key, value in model.state_dict().items()}
    return weights, [copy.deepcopy(opt.state_dict()) for opt in optimizers]


def restore(model: nn.Module, optimizers: Iterable[torch.optim.Optimizer], saved: Snapshot) -> None:
    """Put the weights and the optimizers' states back as `snapshot` copied them."""
    weights, states = saved
    with torch.no_grad():
        model.load_state_dict(weights)
    for opt, state in zip(optimizers, states, strict=True):
        opt.load_state_dict(state)


def _advice(optimizer: torch.optim.Optimizer | None) -> str:
    now = f" (lr={optimizer.param_groups[0]['lr']:g} now)" if optimizer is not None else ""
    return f"Try a lower learning rate{now}, check that the inputs are finite and in range, or clip the gradients."


def check_step(loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
    """Stop training before a non-finite loss or gradient reaches the weights: the optimizer step is not taken.
    Called between `backward()` and `step()`. The message says in what state the weights are: their last finite
    update, or (when an earlier step already made them non-finite, which no loss check can prevent) not finite."""
    what = None
    if not bool(torch.isfinite(loss.detach())):
        what = f"the loss became {float(loss.detach())}"
    else:
        grads = [p.grad for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        if grads and not bool(torch.isfinite(torch.stack([g.detach().abs().amax() for g in grads])).all()):
            what = "a gradient became NaN or infinite (the loss was finite)"
    if what is not None:
        weights = [p for group in optimizer.param_groups for p in group["params"]]
        if all_finite(weights):
            state = "training stopped before the optimizer step, so the weights hold their last finite update"
        else:
            state = (
                "training stopped, but the weights are already NaN or infinite: an earlier step made them so "
                "(an update too large for float32), and they are unusable as they are"
            )
        error = TrainingDivergedError(f"{what}; {state}. {_advice(optimizer)}")
        error.what = what
        raise error


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
    Returns the epoch's mean loss as a row of the run's history."""
    model.train()
    order = torch.randperm(len(x_train), generator=generator)
    order = order.to(x_train.device)
    total = 0.0
    for start in range(0, len(x_train), batch_size):
        x = x_train[order[start : start + batch_size]]  # (B, 1, 28, 28)
        loss = loss_fn(model, x)  # the forward pass and the loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()  # the gradient of the loss for every weight
        check_step(loss, optimizer)  # stop before a NaN reaches a weight
        optimizer.step()  # one Adam update of every weight
        total += loss.detach() * len(x)  # the last batch may be short
    return {"loss": float(total) / len(x_train)}
# fmt: on


def _logging(loss_fn: LossFn, totals: dict[str, Any]) -> LossFn:
    """loss_fn for train_epoch, which takes the loss alone: the terms that a loss logs beside it (ch. 3's VAE returns
    `loss, {"kl": ...}`) are summed into `totals`, each weighted by its batch's size."""

    def loss_alone(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
        loss, logged = out if isinstance(out := loss_fn(model, x), tuple) else (out, {})
        totals.update({name: totals.get(name, 0.0) + value.detach() * len(x) for name, value in logged.items()})
        return loss

    return loss_alone


def _described(x: object) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__


def _in_channels_last(loss_fn: LossFn) -> LossFn:
    """loss_fn on batches of images in the channels_last layout (the appendix times it against NCHW)."""

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
    if not isinstance(x, torch.Tensor) or len(x) == 0:
        raise ValueError(f"evaluate: x must be a non-empty tensor of images; got {_described(x)}.")
    check_int("evaluate: batch_size", batch_size, minimum=1)
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


def _check_fit_arguments(
    model: Any,
    loss_fn: Any,
    x_train: Any,
    x_test: Any,
    lr: Any,
    num_epochs: Any,
    batch_size: Any,
    seed: Any,
    epoch_end: Any,
) -> None:
    if not isinstance(model, nn.Module) or not any(True for _ in model.parameters()):
        raise TypeError(f"fit trains an nn.Module with parameters; got {type(model).__name__} with no parameters.")
    if not callable(loss_fn):
        raise TypeError(f"fit: loss_fn must be a function loss_fn(model, x); got {type(loss_fn).__name__}.")
    check_positive("fit: lr", lr)
    check_int("fit: num_epochs", num_epochs, minimum=0)
    check_int("fit: batch_size", batch_size, minimum=1)
    check_int("fit: seed", seed)
    if epoch_end is not None and not callable(epoch_end):
        raise TypeError(f"fit: epoch_end must be a function of the model; got {type(epoch_end).__name__}.")
    device = next(model.parameters()).device
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x is None and name == "x_test":
            continue
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"fit: {name} must be a torch.Tensor of images; got {type(x).__name__}.")
        if len(x) == 0:
            raise ValueError(f"fit: {name} is empty: there is nothing to train on or to score.")
        if x.device != device:
            raise ValueError(
                f"fit: {name} is on {x.device} but the model is on {device}; move both to the same device "
                "(load_fashion_mnist(device=...) and model.to(device))."
            )
        # every image, once: a bad one would surface as a NaN epochs later, and 0..255 images would be clipped to
        # [0, 1] by a DAE's noise and train without a word
        check_images(x, model, who=f"fit: {name}", nonempty=True)


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
    training before it reaches the weights; after every epoch the weights and Adam's state are checked, and a step
    that made them non-finite (an update too large for float32) is undone: they are put back as they were at the
    start of that epoch. Either way a TrainingDivergedError says in what state they are. `channels_last` speeds up
    conv models on the CPU.
    """
    _check_fit_arguments(model, loss_fn, x_train, x_test, lr, num_epochs, batch_size, seed, epoch_end)
    train_loss_fn = loss_fn
    if channels_last:
        model.to(memory_format=torch.channels_last)
        train_loss_fn = _in_channels_last(loss_fn)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    generator = torch.Generator().manual_seed(seed)
    history = History()
    for epoch in progress(range(1, num_epochs + 1), total=num_epochs, desc="epochs", leave=True):
        start, logged = time.perf_counter(), {}
        train = guarded_epoch(
            epoch,
            model,
            [optimizer],
            lambda logged=logged: train_epoch(
                model, optimizer, _logging(train_loss_fn, logged), x_train, batch_size=batch_size, generator=generator
            ),
            history,
        )
        train |= {name: float(t) / len(x_train) for name, t in logged.items()}  # the logged terms' epoch means
        row = {"epoch": float(epoch)} | {f"train_{name}": value for name, value in train.items()}
        row["seconds"] = time.perf_counter() - start
        if x_test is not None:
            row.update({f"test_{name}": value for name, value in evaluate(model, loss_fn, x_test).items()})
        if epoch_end is not None:
            row.update(epoch_end(model))
        history.rows.append(row)
    return history


T = TypeVar("T")


def guarded_epoch(
    epoch: int,
    model: nn.Module,
    optimizers: list[torch.optim.Optimizer],
    run: Callable[[], T],
    history: History,
    *,
    problem: Callable[[T], str | None] = lambda result: None,
) -> T:
    """`run()` one epoch of training, and refuse to leave broken weights behind: a TrainingDivergedError from
    `check_step`, weights or optimizer states that the epoch left NaN or infinite (a step that overflowed although
    every loss and gradient was finite), or a `problem(result)` (torchbearer's epoch metrics) stops training with a
    TrainingDivergedError that says in what state the weights are; non-finite ones are first put back as they were
    at the start of the epoch. Used by fit, the classifier's training and chapter 5's run_epochs."""
    saved = snapshot(model, *optimizers)
    try:
        result = run()
    except TrainingDivergedError as exc:
        raise _diverged(epoch, exc.what or str(exc), model, optimizers, saved, history, before_step=True) from None
    if not all_finite([*model.parameters(), *state_tensors(*optimizers)]):
        what = "a step made the weights or the optimizer's state NaN or infinite (the losses checked were finite)"
        raise _diverged(epoch, what, model, optimizers, saved, history)
    what = problem(result)
    if what is not None:
        raise _diverged(epoch, what, model, optimizers, saved, history)
    return result


def _diverged(
    epoch: int,
    what: str,
    model: nn.Module,
    optimizers: list[torch.optim.Optimizer],
    saved: Snapshot,
    history: History,
    *,
    before_step: bool = False,
) -> TrainingDivergedError:
    """The error of an epoch that broke down, after putting the weights in a state it can name truthfully."""
    if all_finite([*model.parameters(), *state_tensors(*optimizers)]) and before_step:
        state = "training stopped before the optimizer step, so the weights hold their last finite update"
    elif all_finite([*model.parameters(), *state_tensors(*optimizers)]):
        state = "training stopped there; the weights are finite: those after the epoch's last step"
    else:
        restore(model, optimizers, saved)
        start = "the initial weights" if epoch == 1 else f"the weights at the end of epoch {epoch - 1}"
        state = (
            "the weights had become NaN or infinite, so they and the optimizer's state were restored to those of the "
            f"start of epoch {epoch} ({start})"
        )
    error = TrainingDivergedError(f"epoch {epoch}: {what}; {state}. {_advice(optimizers[0] if optimizers else None)}")
    error.history = history
    return error
