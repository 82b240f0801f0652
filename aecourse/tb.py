"""torchbearer glue for chapter 5, and only that: the state keys for mu and logvar, a model wrapper that fills
them, the beta-KL callback, per-image metrics, a quiet Trial, in-memory loaders and a per-epoch progress plot.
"""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Sequence

import torch
import torchbearer
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from torchbearer import Trial, callbacks, metrics, state_key

from aecourse.checks import check_int, check_nonnegative
from aecourse.losses import gaussian_kl, mse
from aecourse.models import reparameterize
from aecourse.plot import image_rows
from aecourse.runtime import check_bfloat16, evaluating, progress
from aecourse.train import History, guarded_epoch

MU = state_key("mu")  # mean of q(z|x), (B, latent_dim), written by StateVAE.forward
LOGVAR = state_key("logvar")  # log-variance of q(z|x), (B, latent_dim)


# The definitions between `fmt: off` and `fmt: on` are shown in chapter 5, at the book's 75 columns: the chapter's
# cell and the definition here are one source (tests/test_taught_code.py).


# fmt: off
class StateVAE(nn.Module):
    """A VAE as torchbearer calls it (ch. 5): forward(x, state) returns
    x_hat and puts mu and logvar into the state for the beta-KL callback;
    z is sampled in training and z = mu in eval mode, as in the article."""

    def __init__(self, vae, *, sample_in_eval=False):
        super().__init__()
        self.vae = vae  # anything with encode -> (mu, logvar) and decode
        self.sample_in_eval = sample_in_eval  # z ~ q(z|x) in eval mode too

    def forward(self, x, state=None):  # the article's had no default
        mu, logvar = self.vae.encode(x)  # (B, latent_dim) each
        sampled = self.training or self.sample_in_eval
        z = reparameterize(mu, logvar) if sampled else mu
        x_hat = self.vae.decode(z).reshape(x.shape)
        if state is not None:  # what the article's forward writes
            state[MU], state[LOGVAR] = mu, logvar
        return x_hat
# fmt: on


class MixedPrecisionStateVAE(StateVAE):
    """StateVAE with its forward pass in bfloat16 autocast, as the stored models of ch. 5 trained where the hardware
    computes in it: the weights and Adam stay float32, and mu, logvar and x_hat come out float32 for the loss."""

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        check_bfloat16(x.device, who="MixedPrecisionStateVAE")
        with torch.autocast(x.device.type, torch.bfloat16):
            x_hat = super().forward(x, state)
        if state is not None:
            state[MU], state[LOGVAR] = state[MU].float(), state[LOGVAR].float()
        return x_hat.float()


# fmt: off
def squared_error(x_hat, x):
    """The article's criterion, MSELoss(reduction='sum'), per image (ch.
    5): ||x - x_hat||^2 summed over the pixels, averaged over the batch."""
    return nn.functional.mse_loss(x_hat, x, reduction="sum") / len(x)
# fmt: on


def refuses_a_negative_beta(make_callback):
    """The door check that chapter 5's beta_kl leaves out of its lesson: beta is a weight, never negative."""

    @functools.wraps(make_callback)
    def checked(beta, *args, **kwargs) -> callbacks.Callback:
        return make_callback(check_nonnegative("beta", beta), *args, **kwargs)

    return checked


# fmt: off
@refuses_a_negative_beta  # a clear error at the door, not in training
def beta_kl(beta, mu_key=MU, logvar_key=LOGVAR) -> callbacks.Callback:
    """The article's beta-KL callback (ch. 5): adds beta * KL(q(z|x) ||
    N(0, I)) per image to the loss, in training and evaluation alike
    (the beta-VAE of Higgins et al. 2017)."""

    @callbacks.add_to_loss
    def add_beta_kl(state):
        kl = gaussian_kl(state[mu_key], state[logvar_key])
        return beta * kl.sum(1).mean()  # (B, latent_dim) -> (B,) -> mean

    return add_beta_kl
# fmt: on


def _per_image_metric(name: str, compute) -> type[metrics.Metric]:
    """A torchbearer metric averaging compute(state) -> (B,) over the images of an epoch, named `name`."""

    class PerImage(metrics.Metric):
        def __init__(self) -> None:
            super().__init__(name)

        def process(self, *args):
            return compute(args[0]).detach()

    return metrics.mean(PerImage)


KLMetric = _per_image_metric("kl", lambda state: gaussian_kl(state[MU], state[LOGVAR]).sum(1))
KLMetric.__doc__ = "The rate: KL(q(z|x) || p(z)) in nats per image, averaged over an epoch (ch. 5)."
DistortionMetric = _per_image_metric(
    "distortion", lambda state: mse(state[torchbearer.Y_PRED], state[torchbearer.Y_TRUE], per_image=True)
)
DistortionMetric.__doc__ = "The distortion: ||x - x_hat||^2 per image, averaged over an epoch (ch. 5)."


def tensor_loader(
    x: torch.Tensor, y: torch.Tensor | None = None, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Batches of (x, y) (y = x for an autoencoder) cut from in-memory tensors, in the main process (ch. 5).

    Each batch is one indexing operation (a BatchSampler feeding the dataset whole index lists), not
    batch_size calls to __getitem__ and a collate; no worker processes, which a 2-core machine cannot feed.
    """
    check_int("tensor_loader: batch_size", batch_size, minimum=1)
    check_int("tensor_loader: seed", seed)
    if y is not None and len(y) != len(x):
        raise ValueError(f"tensor_loader: x and y must have the same length (one target each); got {len(x)}, {len(y)}.")
    dataset = TensorDataset(x, x if y is None else y)
    if shuffle:
        order = RandomSampler(dataset, generator=torch.Generator().manual_seed(seed))
    else:
        order = SequentialSampler(dataset)
    return DataLoader(dataset, sampler=BatchSampler(order, batch_size, drop_last=False), batch_size=None)


def quiet_trial(
    model: nn.Module,
    optimizer: torch.optim.Optimizer | None = None,
    criterion=squared_error,
    *,
    metrics: Sequence = ("loss",),
    callbacks: Sequence = (),
    device: torch.device | str = "cpu",
) -> Trial:
    """A Trial with its progress bar off (verbose=0): the default tqdm needs ipywidgets in a notebook and
    writes hundreds of lines into stored outputs (ch. 5). Use print_epochs() for one line per epoch.
    """
    return Trial(model, optimizer, criterion, metrics=list(metrics), callbacks=list(callbacks), verbose=0).to(device)


def _non_finite_metric(metrics: dict) -> str | None:
    bad = {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float, torch.Tensor)) and not _finite(v)}
    return f"the epoch's {', '.join(f'{k} was {v}' for k, v in bad.items())}" if bad else None


def _finite(value: float | torch.Tensor) -> bool:
    return bool(torch.isfinite(torch.as_tensor(value, dtype=torch.float64)).all())


def run_epochs(trial: Trial, num_epochs: int) -> History:
    """trial.run, one epoch at a time, timed: the per-epoch rows (train_loss, train_kl, ...) and seconds that a
    checkpoint's manifest stores, and a progress bar over the epochs under `make checkpoints` (ch. 5). Guarded as
    `fit` is: an epoch whose metrics or weights are not finite stops training with a TrainingDivergedError, and
    non-finite weights are put back as they were at its start (aecourse.train.guarded_epoch)."""
    check_int("run_epochs: num_epochs", num_epochs, minimum=0)
    history = History()
    done = len(trial.state[torchbearer.HISTORY])
    model, optimizer = trial.state[torchbearer.MODEL], trial.state[torchbearer.OPTIMIZER]
    optimizers = [optimizer] if isinstance(optimizer, torch.optim.Optimizer) else []
    for epoch in progress(range(done + 1, num_epochs + 1), total=num_epochs - done, desc="epochs", leave=True):
        start = time.perf_counter()
        metrics = guarded_epoch(
            epoch, model, optimizers, lambda epoch=epoch: trial.run(epoch)[-1], history, problem=_non_finite_metric
        )
        row = {"epoch": float(epoch)}
        row.update({f"train_{k}": float(v) for k, v in metrics.items() if k in ("loss", "kl", "distortion")})
        row["seconds"] = time.perf_counter() - start
        history.rows.append(row)
    return history


def print_epochs(keys: Sequence[str] = ("loss", "kl", "distortion"), digits: int = 1) -> callbacks.Callback:
    """One printed line per epoch with the chosen metrics: the quiet replacement of ConsolePrinter, whose
    per-step carriage returns pile up in a stored notebook output (ch. 5).
    """

    @callbacks.on_end_epoch
    def print_line(state):
        values = state[torchbearer.METRICS]
        shown = [f"{k} {values[k]:.{digits}f}" for k in values if any(k == w or k == f"val_{w}" for w in keys)]
        if shown:  # evaluate() also ends an epoch, with test_ metrics only: stay silent there
            print(f"epoch {state[torchbearer.EPOCH] + 1}: " + ", ".join(shown), flush=True)

    return print_line


class ReconstructionProgress(callbacks.Callback):
    """Once per training epoch, reconstruct a fixed batch and draw it with the originals (ch. 5). In a notebook one
    figure is shown and updated in place, so the stored output holds one image however many epochs run; elsewhere
    the figures are kept in `self.figures`. Unlike the article's plot_progress, it needs no validation generator."""

    def __init__(self, x: torch.Tensor, *, show: bool | None = None, num_images: int = 10) -> None:
        super().__init__()
        self.x = x[:num_images]
        self.num_images = num_images
        self.show = _in_notebook() if show is None else show
        self.figures: list[Figure] = []
        self._handle = None

    def on_end_epoch(self, state) -> None:
        model = state[torchbearer.MODEL]
        x = self.x.to(state[torchbearer.DEVICE])
        with evaluating(model):
            x_hat = model(x)
        epoch = state[torchbearer.EPOCH] + 1
        fig = image_rows({"x": x, f"x_hat, epoch {epoch}": x_hat}, num_images=self.num_images)
        self.figures.append(fig)
        if self.show:
            from IPython.display import display

            if self._handle is None:
                self._handle = display(fig, display_id=True)
            else:
                self._handle.update(fig)


def _in_notebook() -> bool:
    shell = getattr(sys.modules.get("IPython"), "get_ipython", lambda: None)()  # a kernel has imported IPython
    return type(shell).__name__ == "ZMQInteractiveShell"
