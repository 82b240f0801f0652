"""The GAN of chapter 4 (Goodfellow et al. 2014): its two networks, its two losses and its adversarial loop.

Its training is not one loss minimised by `aecourse.train.fit`: two networks take turns with two optimisers, so the
loop lives here with the networks. The generator is the same network as the chapter 3 VAE's decoder
(`aecourse.models.mlp_decoder`, then a sigmoid), so that the comparison changes the objective and nothing else.
Sampling, interpolation and the measurements treat the GAN and the VAE alike (`aecourse.inference`, `metrics`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.checks import NUM_PIXELS, check_images, check_nonnegative
from aecourse.models import StandardNormalPrior, mlp_decoder
from aecourse.runtime import evaluating, progress
from aecourse.train import History


class Generator(nn.Module):
    """G(z): latent_dim -> hidden_dim -> 784 with a sigmoid, the same network as the MLP VAE's decoder."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400) -> None:
        super().__init__()
        self.net = mlp_decoder(latent_dim, hidden_dim)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], flattened (B, 784), like VAE.decode."""
        return torch.sigmoid(self.net(z))


class Discriminator(nn.Module):
    """D(x): 784 -> hidden_dim -> 1 logit, the size of the VAE's encoder; LeakyReLU as in DCGAN (Radford et al.).

    `dropout` on the hidden layer while training, as Goodfellow et al. (2014, sec. 5) trained their discriminators:
    a discriminator that cannot memorise the training images keeps giving the generator a useful gradient (ch. 4
    measures what it does to the spread between seeds).
    """

    def __init__(self, hidden_dim: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout is the probability of zeroing a unit, in [0, 1); got {dropout}.")
        self.net = nn.Sequential(
            nn.Linear(NUM_PIXELS, hidden_dim), nn.LeakyReLU(0.2), nn.Dropout(dropout), nn.Linear(hidden_dim, 1)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit of D(x) = P(x is real), shape (B,)."""
        return self.net(x.reshape(x.shape[0], NUM_PIXELS)).squeeze(1)  # (B, 1, 28, 28) -> (B, 784) -> (B,)


class GAN(StandardNormalPrior, nn.Module):
    """A generator and a discriminator; `decode` and `sample_prior` match the VAE's, so both are sampled alike."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400, *, dropout: float = 0.0) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(latent_dim, hidden_dim)
        self.discriminator = Discriminator(hidden_dim, dropout)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = G(z), flattened (B, 784) in [0, 1]."""
        return self.generator(z)


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], batch mean: the discriminator's side of the minimax game (Goodfellow et al.
    2014, eq. 1), computed from logits for numerical stability."""
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)), the non-saturating generator loss that Goodfellow et al. (2014, sec. 3) recommend over
    minimising log(1 - D(G(z))), whose gradient vanishes when D rejects the samples confidently."""
    return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


def train_gan(
    gan: GAN,
    x_train: torch.Tensor,
    *,
    num_epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-4,
    adam_betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    history: History | None = None,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Alternate one discriminator step and one generator step per batch (Goodfellow et al. 2014, Algorithm 1
    with k = 1); return one History row per epoch: d_loss, g_loss, the mean D(x) and D(G(z)), the generator's mean
    gradient norm, seconds (ch. 4).

    Adam with lr 2e-4 and beta1 = 0.5 follows Radford et al. (2016). Seeded: the shuffle and the noise z come
    from generators seeded by `seed`. A non-finite loss stops training; the row is kept so the run reads as failed.
    `epoch_end(gan)` may return extra numbers for each epoch's row, as in `aecourse.train.fit`.
    """
    check_images(x_train, who="train_gan")  # every image, once: a bad one would surface as a NaN epochs later
    check_nonnegative("lr", lr)
    if num_epochs < 0 or batch_size < 1:
        raise ValueError(f"num_epochs must be >= 0 and batch_size >= 1; got {num_epochs} and {batch_size}.")
    device = next(gan.parameters()).device
    if x_train.device != device:
        raise ValueError(f"x_train is on {x_train.device} but the GAN is on {device}; move both to the same device.")
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=adam_betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=adam_betas)
    shuffle = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    history = history if history is not None else History()
    n = len(x_train)
    steps = math.ceil(n / batch_size)
    gan.train()
    first = len(history) + 1
    for epoch in progress(range(first, first + num_epochs), total=num_epochs, desc="GAN epochs", leave=True):
        start = time.perf_counter()
        totals = torch.zeros(5, device=device)  # d_loss, g_loss, D(x), D(G(z)), |grad G|, summed over images
        order = torch.randperm(n, generator=shuffle).to(device)
        for i in progress(range(0, n, batch_size), total=steps, desc=f"epoch {epoch}"):
            x = x_train[order[i : i + batch_size]]
            z = torch.randn(len(x), gan.latent_dim, generator=noise, device=device)
            x_fake = gan.generator(z)
            # Discriminator step: G's output is detached so only D moves.
            real_logits = gan.discriminator(x)
            fake_logits = gan.discriminator(x_fake.detach())
            d_loss = discriminator_loss(real_logits, fake_logits)
            opt_d.zero_grad(set_to_none=True)
            d_loss.backward()
            opt_d.step()
            # Generator step, against the discriminator just updated.
            fake_logits = gan.discriminator(x_fake)
            g_loss = generator_loss(fake_logits)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            g_grad = torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in gan.generator.parameters()]))
            opt_g.step()
            with torch.no_grad():
                batch = torch.stack(
                    [d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean(), g_grad]
                )
                totals += batch * len(x)
        values = (totals / n).tolist()
        row = {"epoch": float(epoch), "d_loss": values[0], "g_loss": values[1], "d_real": values[2]}
        row.update({"d_fake": values[3], "g_grad_norm": values[4], "seconds": time.perf_counter() - start})
        finite = all(math.isfinite(v) for v in values)
        if epoch_end is not None and finite:
            row.update(epoch_end(gan))
            gan.train()
        history.rows.append(row)
        if not finite:
            break
    gan.eval()
    return history


def generator_gradient_norms(gan: GAN, z: torch.Tensor) -> dict[str, float]:
    """The norm of the generator's gradient at the current weights under the two generator losses of Goodfellow et
    al. (2014): the minimax log(1 - D(G(z))), whose gradient vanishes when D rejects the samples confidently, and the
    non-saturating -log D(G(z)) that train_gan minimises (ch. 4). Nothing is updated; the discriminator is read in
    eval mode (no dropout), so the measurement does not depend on a random mask."""
    parameters = list(gan.generator.parameters())
    with evaluating(gan.discriminator, gradients=True):  # the graph outlives the block; D's mode does not
        fake_logits = gan.discriminator(gan.generator(z))
    minimax = -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))  # mean log(1 - D)
    norms = {}
    for name, loss in (("minimax", minimax), ("non_saturating", generator_loss(fake_logits))):
        gradients = torch.autograd.grad(loss, parameters, retain_graph=True)
        norms[name] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))
    return norms
