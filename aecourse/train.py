"""The plain-PyTorch training loop of chapters 1-4: in-memory tensors, shuffled index batches, a per-epoch
history, a NaN guard, and state_dict checkpoints.

No DataLoader: Fashion-MNIST is 220 MB as float32, so it sits on the device whole and a batch is one
indexing operation. That is what makes an epoch of the article's MLPs take seconds on two CPU cores.
"""

from __future__ import annotations

import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from aecourse.runtime import native_bfloat16

# loss_fn(model, x, y) -> loss, or (loss, {name: value}) with extra terms to record in the history
LossFn = Callable[[nn.Module, torch.Tensor, torch.Tensor | None], "torch.Tensor | tuple[torch.Tensor, dict]"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite; the message names the epoch, the step and what to try."""


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
    def seconds_per_epoch(self) -> float:
        return sum(self["seconds"]) / max(len(self), 1)

    def table(self, digits: int = 4) -> str:
        """A plain-text table of the history, for a notebook cell."""
        if not self.rows:
            return "(no epochs)"
        keys = list(self.rows[0])
        lines = ["  ".join(f"{k:>12}" for k in keys)]
        for row in self.rows:
            lines.append("  ".join(f"{row.get(k, float('nan')):>12.{digits}g}" for k in keys))
        return "\n".join(lines)


def _unpack(result: torch.Tensor | tuple[torch.Tensor, dict]) -> tuple[torch.Tensor, dict]:
    if isinstance(result, tuple):
        return result[0], result[1]
    return result, {}


def _check_finite(loss: torch.Tensor, epoch: int, step: int, lr: float) -> None:
    if not bool(torch.isfinite(loss)):
        raise TrainingDivergedError(
            f"the loss became {float(loss.detach())} at epoch {epoch}, step {step}; training stopped and the weights "
            "hold their last finite update. Try a lower learning rate "
            f"(lr={lr:g} now), check that the inputs are finite and in range, or clip the gradients."
        )


def _batches(n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None, device: torch.device):
    order = torch.randperm(n, generator=generator, device="cpu") if shuffle else torch.arange(n)
    order = order.to(device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _progress(iterable, *, total: int, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=False)


@torch.no_grad()
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

    `seed` fixes the random draws (a VAE's z, a DAE's noise) so that two evaluations agree.
    """
    was_training = model.training
    model.eval()
    fork = torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else [])
    totals: dict[str, float] = {}
    with fork:
        if seed is not None:
            torch.manual_seed(seed)
        for idx in _batches(len(x), batch_size, shuffle=False, generator=None, device=x.device):
            loss, extra = _unpack(loss_fn(model, x[idx], None if y is None else y[idx]))
            weight = len(idx)
            totals["loss"] = totals.get("loss", 0.0) + float(loss) * weight
            for name, value in extra.items():
                totals[name] = totals.get(name, 0.0) + float(value) * weight
    model.train(was_training)
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
    progress: bool | None = None,
    history: History | None = None,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Train `model` on tensors already on its device; return the per-epoch history (chapters 1-4).

    `progress=None` shows a tqdm bar only in a terminal, so stored notebook outputs stay clean.
    `channels_last` speeds up conv models on the CPU (chapter 5 VAE: 36 s against 42 s an epoch, benchmarks/).
    `mixed_precision` runs the forward pass and the loss under bfloat16 autocast; weights, gradients and the
    optimizer stay float32. It needs hardware bfloat16 (see `native_bfloat16`); benchmarks/ measures the gain.
    Pass the `history` of an earlier call to continue it. `epoch_end(model)` may return extra numbers to record
    in each epoch's row (chapter 4 records the Fréchet distance of samples as training goes).
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
    if mixed_precision and not native_bfloat16(device):
        raise ValueError(
            f"mixed_precision=True asks for bfloat16 autocast, but {device} has no hardware bfloat16 (it needs an "
            "AVX512-BF16/AMX CPU or an Ampere-or-newer GPU), where it would be slower than float32. "
            "Pass mixed_precision=native_bfloat16(device) to use it only where it pays."
        )
    if channels_last:
        model.to(memory_format=torch.channels_last)
    optimizer = optimizer or torch.optim.Adam(model.parameters(), lr=lr)
    lr_now = optimizer.param_groups[0]["lr"]
    show = sys.stderr.isatty() if progress is None else progress
    generator = torch.Generator().manual_seed(seed)
    history = history if history is not None else History()
    first_epoch = len(history) + 1
    steps_per_epoch = math.ceil(len(x_train) / batch_size)
    for epoch in range(first_epoch, first_epoch + num_epochs):
        model.train()
        start = time.perf_counter()
        total = torch.zeros((), device=device)
        extra_totals: dict[str, torch.Tensor] = {}
        batches = _batches(len(x_train), batch_size, shuffle=True, generator=generator, device=device)
        for step, idx in enumerate(_progress(batches, total=steps_per_epoch, enabled=show, desc=f"epoch {epoch}")):
            x = x_train[idx]
            if channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=mixed_precision):
                loss, extra = _unpack(loss_fn(model, x, None if y_train is None else y_train[idx]))
            _check_finite(loss, epoch, step, lr_now)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
            for name, value in extra.items():
                extra_totals[name] = extra_totals.get(name, 0.0) + torch.as_tensor(value).detach() * len(idx)
        row: dict[str, float] = {"epoch": float(epoch), "train_loss": float(total) / len(x_train)}
        row.update({f"train_{name}": float(value) / len(x_train) for name, value in extra_totals.items()})
        row["seconds"] = time.perf_counter() - start
        if x_test is not None:
            scores = evaluate(model, loss_fn, x_test, y_test)
            row["test_loss"] = scores.pop("loss")
            row.update({f"test_{name}": value for name, value in scores.items()})
        if epoch_end is not None:
            row.update(epoch_end(model))
            model.train()
        history.rows.append(row)
    return history


def save_checkpoint(model: nn.Module, path: str | Path) -> Path:
    """Write the model's state_dict atomically (a temporary file, then a rename): a crash leaves no half file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        torch.save(model.state_dict(), tmp_name)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def load_checkpoint(model: nn.Module, path: str | Path, *, map_location: str | torch.device = "cpu") -> nn.Module:
    """Load a state_dict with weights_only=True: tensors only, no code from the file is run."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}; train the model first or check the path.")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:
        raise ValueError(
            f"{path} is not a state_dict checkpoint that loads with weights_only=True ({exc}). "
            "Save checkpoints with aecourse.train.save_checkpoint."
        ) from exc
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise ValueError(
            f"{path} does not fit {type(model).__name__}: {exc}. Build the model with the same arguments "
            "(e.g. latent_dim) as the one that was saved."
        ) from exc
    return model
