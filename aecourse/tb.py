"""torchbearer glue for chapter 5, and only that: the state keys for mu and logvar, a model wrapper that fills
them, the beta-KL callback, per-image metrics, a quiet Trial, in-memory loaders and a per-epoch progress plot.
"""

from __future__ import annotations

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


class StateVAE(nn.Module):
    """Wrap a VAE (encode, then decode) for torchbearer: forward(x, state) returns x_hat only
    and stores mu and logvar in torchbearer's state, where the beta-KL callback and the metrics read them (ch. 5).

    As in the article, z is sampled while training and z = mu in eval mode, so evaluation and the pictures
    are deterministic; `sample_in_eval=True` samples there too (an unbiased one-sample ELBO instead).
    `mixed_precision=True` runs the network under bfloat16 autocast, as `aecourse.train.fit` does: the weights, the
    gradients and Adam stay float32, and x_hat, mu and logvar come out float32, so the loss is summed in float32.
    """

    def __init__(self, vae: nn.Module, *, sample_in_eval: bool = False, mixed_precision: bool = False) -> None:
        super().__init__()
        self.vae = vae
        self.sample_in_eval = sample_in_eval
        self.mixed_precision = mixed_precision

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        if self.mixed_precision:
            check_bfloat16(x.device, who="StateVAE(mixed_precision=True)")
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=self.mixed_precision):
            mu, logvar = self.vae.encode(x)  # (B, 1, 28, 28) -> 2 x (B, latent_dim)
            z = reparameterize(mu, logvar) if (self.training or self.sample_in_eval) else mu
            x_hat = self.vae.decode(z).reshape(x.shape)  # (B, latent_dim) -> (B, 1, 28, 28)
        mu, logvar, x_hat = mu.float(), logvar.float(), x_hat.float()
        if state is not None:
            state[MU] = mu
            state[LOGVAR] = logvar
        return x_hat


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The criterion: ||x - x_hat||^2 summed over pixels, averaged over images (the article's MSE sum, per image).

    Per image rather than per batch so that numbers do not depend on the batch size; Adam is almost
    invariant to that constant factor, so training follows the article's `MSELoss(reduction='sum')` (ch. 5).
    """
    return mse(x_hat, x, per_image=True).mean()


def beta_kl(beta: float, mu_key=MU, logvar_key=LOGVAR) -> callbacks.Callback:
    """An add_to_loss callback: beta * KL(q(z|x) || N(0, I)) per image, the beta-VAE penalty (Higgins et al. 2017).

    It runs on the training and the validation/test criterion alike, so evaluated losses include it (ch. 5).
    """
    beta = check_nonnegative("beta", beta)

    @callbacks.add_to_loss
    def add_beta_kl(state):
        return beta * gaussian_kl(state[mu_key], state[logvar_key]).sum(1).mean()

    return add_beta_kl


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
    """Once per training epoch, reconstruct a fixed batch and draw it with the originals (ch. 5).

    In a notebook the figure is shown once and then updated in place through one display handle, so
    the stored output holds a single image however many epochs run; elsewhere (tests, scripts) nothing
    is shown and the figures are kept in `self.figures`. Unlike the article's plot_progress, it does not
    depend on a validation generator (without one, on_step_validation never fires during run()).
    """

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
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"
