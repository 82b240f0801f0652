"""torchbearer glue for chapter 5: the state keys for mu and logvar, a model wrapper that fills them, the
beta-KL callback, per-image metrics, a quiet Trial, in-memory loaders and a once-per-epoch progress plot.

torchbearer (0.5.5) passes `state=` to the model's forward and adds callback terms to the loss; what it
needs from us is small, and every piece here is tested in tests/test_torchbearer_glue.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torchbearer
from matplotlib.figure import Figure
from torch import nn
from torch.utils.data import BatchSampler, DataLoader, RandomSampler, SequentialSampler, TensorDataset
from torchbearer import Trial, callbacks, metrics, state_key

from aecourse.losses import gaussian_kl, mse
from aecourse.plot import image_rows

MU = state_key("mu")  # mean of q(z|x), (B, latent_dim), written by StateVAE.forward
LOGVAR = state_key("logvar")  # log-variance of q(z|x), (B, latent_dim)


class StateVAE(nn.Module):
    """Wrap a VAE (encode / reparameterize / decode) for torchbearer: forward(x, state) returns x_hat only
    and stores mu and logvar in torchbearer's state, where the beta-KL callback and the metrics read them (ch. 5).

    As in the article, z is sampled while training and z = mu in eval mode, so evaluation and the pictures
    are deterministic; `sample_in_eval=True` samples there too (an unbiased one-sample ELBO instead).
    """

    def __init__(self, vae: nn.Module, *, sample_in_eval: bool = False) -> None:
        super().__init__()
        self.vae = vae
        self.sample_in_eval = sample_in_eval

    def forward(self, x: torch.Tensor, state: dict | None = None) -> torch.Tensor:
        mu, logvar = self.vae.encode(x)  # (B, 1, 28, 28) -> 2 x (B, latent_dim)
        z = self.vae.reparameterize(mu, logvar) if (self.training or self.sample_in_eval) else mu
        x_hat = self.vae.decode(z).reshape(x.shape)  # (B, latent_dim) -> (B, 1, 28, 28)
        if state is not None:
            state[MU] = mu
            state[LOGVAR] = logvar
        return x_hat


def squared_error(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The criterion: ||x - x_hat||^2 summed over pixels, averaged over images (the article's MSE sum, per image).

    Per image rather than per batch so that numbers do not depend on the batch size; Adam is almost
    invariant to that constant factor, so training follows the article's `MSELoss(reduction='sum')` (ch. 5).
    """
    return mse(x_hat, x, reduction="per_image")


def beta_kl(beta: float, mu_key=MU, logvar_key=LOGVAR) -> callbacks.Callback:
    """An add_to_loss callback: beta * KL(q(z|x) || N(0, I)) per image, the beta-VAE penalty (Higgins et al. 2017).

    It runs on the training and the validation/test criterion alike, so evaluated losses include it (ch. 5).
    """
    if beta < 0:
        raise ValueError(f"beta weighs the KL term and must be >= 0; got {beta}.")

    @callbacks.add_to_loss
    def add_beta_kl(state):
        return beta * gaussian_kl(state[mu_key], state[logvar_key], reduction="per_image")

    return add_beta_kl


@metrics.mean
class KLMetric(metrics.Metric):
    """The rate: KL(q(z|x) || p(z)) in nats, averaged over the images of an epoch (ch. 5)."""

    def __init__(self) -> None:
        super().__init__("kl")

    def process(self, *args):
        state = args[0]
        return gaussian_kl(state[MU], state[LOGVAR], reduction="none").detach()  # (B,)


@metrics.mean
class DistortionMetric(metrics.Metric):
    """The distortion: ||x - x_hat||^2 per image, averaged over the images of an epoch (ch. 5)."""

    def __init__(self) -> None:
        super().__init__("distortion")

    def process(self, *args):
        state = args[0]
        return mse(state[torchbearer.Y_PRED], state[torchbearer.Y_TRUE], reduction="none").detach()  # (B,)


def tensor_loader(
    x: torch.Tensor, y: torch.Tensor | None = None, *, batch_size: int = 128, shuffle: bool = False, seed: int = 0
) -> DataLoader:
    """Batches of (x, y) (y = x for an autoencoder) cut from in-memory tensors, in the main process (ch. 5).

    Each batch is one indexing operation (a BatchSampler feeding the dataset whole index lists), not
    batch_size calls to __getitem__ and a collate; no worker processes, which a 2-core machine cannot feed.
    """
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

    @torch.no_grad()
    def on_end_epoch(self, state) -> None:
        model = state[torchbearer.MODEL]
        was_training = model.training
        model.eval()
        x = self.x.to(state[torchbearer.DEVICE])
        x_hat = model(x)
        model.train(was_training)
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


@torch.no_grad()
def posterior_stats(vae: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> tuple[torch.Tensor, torch.Tensor]:
    """mu and logvar of q(z|x) for every image of a split, each (N, latent_dim), in eval mode (ch. 5)."""
    was_training = vae.training
    vae.eval()
    try:
        pairs = [vae.encode(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    finally:
        vae.train(was_training)
    return torch.cat([mu for mu, _ in pairs]), torch.cat([logvar for _, logvar in pairs])


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(q(z_i|x) || N(0, 1)) per dimension, averaged over images, (latent_dim,); sums to the rate (ch. 5)."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).mean(0)
