"""The GAN of chapter 4 (Goodfellow et al. 2014): two networks, two losses and the adversarial loop. Two networks
take turns with two optimisers, so the step and the loop live here, not in `aecourse.train.fit`. The generator is
the chapter 3 VAE's decoder network (then a sigmoid): the comparison changes the objective and nothing else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.checks import check_images, check_int, check_positive
from aecourse.runtime import progress
from aecourse.train import History, all_finite, restore, snapshot, state_tensors

# The definitions between `fmt: off` and `fmt: on` are shown in chapter 4, at the book's 75 columns: the chapter's
# cell and the definition here are one source (tests/test_taught_code.py).


# fmt: off
class Generator(nn.Module):
    """G(z): latent_dim -> hidden_dim -> 784 with a sigmoid (ch. 4): the
    same network as the decoder of chapter 3's VAE."""

    def __init__(self, latent_dim=20, hidden_dim=400):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 784),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(z))  # images in [0, 1], (B, 784)
# fmt: on


# fmt: off
class Discriminator(nn.Module):
    """D(x): 784 -> hidden_dim -> 1 logit of "x is real" (ch. 4): as large
    as the VAE's encoder, with LeakyReLU as in DCGAN and dropout on its
    hidden layer, as Goodfellow et al. (2014) trained theirs."""

    def __init__(self, hidden_dim=400, dropout=0.0):
        super().__init__()
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}.")
        self.net = nn.Sequential(
            nn.Linear(784, hidden_dim),
            nn.LeakyReLU(0.2),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), 784)  # (B, 1, 28, 28) -> (B, 784)
        logits = self.net(x)  # (B, 784) -> (B, 1)
        return logits.squeeze(1)  # the logit of D(x), (B,)
# fmt: on


# fmt: off
class GAN(nn.Module):
    """A generator and a discriminator (ch. 4); `latent_dim` and `decode`
    are the VAE's, so that both are sampled alike."""

    def __init__(self, latent_dim=20, hidden_dim=400, *, dropout=0.0):
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(latent_dim, hidden_dim)
        self.discriminator = Discriminator(hidden_dim, dropout)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.generator(z)  # x = G(z), (B, 784) in [0, 1]
# fmt: on


# fmt: off
def discriminator_loss(
    real_logits: torch.Tensor, fake_logits: torch.Tensor
) -> torch.Tensor:
    """-[log D(x) + log(1 - D(G(z)))], averaged over the batch: D's side
    of the minimax game (Goodfellow et al. 2014, eq. 1), from logits."""
    cross_entropy = F.binary_cross_entropy_with_logits
    real = cross_entropy(real_logits, torch.ones_like(real_logits))
    fake = cross_entropy(fake_logits, torch.zeros_like(fake_logits))
    return real + fake  # label 1 for the real images, 0 for G's


def generator_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """-log D(G(z)): the non-saturating loss Goodfellow et al. (2014) use
    instead of log(1 - D(G(z))), whose gradient vanishes when D wins."""
    cross_entropy = F.binary_cross_entropy_with_logits
    return cross_entropy(fake_logits, torch.ones_like(fake_logits))
# fmt: on


# fmt: off
def gan_step(
    gan: GAN,
    x: torch.Tensor,
    z: torch.Tensor,
    opt_d: torch.optim.Optimizer,
    opt_g: torch.optim.Optimizer,
) -> dict[str, torch.Tensor]:
    """One round of the game (ch. 4): a discriminator update, then a
    generator update against the discriminator just updated."""
    x_fake = gan.generator(z)
    # 1. D learns to tell x from G(z); detach: this update leaves G alone
    real_logits = gan.discriminator(x)
    fake_logits = gan.discriminator(x_fake.detach())
    d_loss = discriminator_loss(real_logits, fake_logits)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    # 2. G learns to make D call its images real
    fake_logits = gan.discriminator(x_fake)
    g_loss = generator_loss(fake_logits)
    opt_g.zero_grad(set_to_none=True)
    g_loss.backward()
    opt_g.step()
    return {
        "d_loss": d_loss.detach(),
        "g_loss": g_loss.detach(),
        "d_real": torch.sigmoid(real_logits).mean().detach(),  # D(x)
        "d_fake": torch.sigmoid(fake_logits).mean().detach(),  # D(G(z))
    }
# fmt: on


# fmt: off
def gan_optimizers(gan: GAN, lr: float):
    """One Adam per player (ch. 4), with beta1 = 0.5 instead of PyTorch's
    0.9, as in DCGAN (Radford et al. 2016): less momentum, for a target
    that moves every time the other player learns."""
    betas = (0.5, 0.999)
    opt_d = torch.optim.Adam(
        gan.discriminator.parameters(), lr, betas=betas
    )
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr, betas=betas)
    return opt_d, opt_g


def gan_steps(
    gan: GAN,
    x_train: torch.Tensor,
    opt_d: torch.optim.Optimizer,
    opt_g: torch.optim.Optimizer,
    num_epochs: int,
    batch_size: int,
    seed: int,
) -> Iterator[dict[str, torch.Tensor]]:
    """Algorithm 1 of Goodfellow et al. (2014) with k = 1 (ch. 4): gan_step
    on shuffled batches, epoch after epoch, yielding each step's numbers
    to the caller (who keeps the history)."""
    device = x_train.device
    shuffle = torch.Generator().manual_seed(seed)  # the order of images
    noise = torch.Generator(device=device).manual_seed(seed + 1)  # the z's
    for _ in range(num_epochs):
        gan.train()  # D's dropout on
        order = torch.randperm(len(x_train), generator=shuffle).to(device)
        for i in range(0, len(x_train), batch_size):
            x = x_train[order[i : i + batch_size]]  # (B, 1, 28, 28)
            z = torch.randn(
                len(x), gan.latent_dim, generator=noise, device=device
            )  # (B, latent_dim), a fresh draw for every batch
            yield gan_step(gan, x, z, opt_d, opt_g)
# fmt: on


def _gradient_norm(module: nn.Module) -> torch.Tensor:
    """The norm of the gradients a module's parameters hold now (an optimizer step leaves them as they were)."""
    return torch.linalg.vector_norm(torch.stack([p.grad.norm() for p in module.parameters()]))


def train_gan(
    gan: GAN,
    x_train: torch.Tensor,
    *,
    num_epochs: int = 10,
    batch_size: int = 128,
    lr: float = 2e-4,
    seed: int = 0,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Chapter 4's loop (`gan_optimizers`, `gan_steps`, seeded by `seed`) and the book's bookkeeping: one History row
    per epoch (d_loss, g_loss, mean D(x) and D(G(z)), the generator's mean gradient norm, seconds, and what
    `epoch_end(gan)` returns). A GAN whose weights start non-finite is refused; an epoch that leaves a weight or an
    Adam state non-finite is undone (its row says `weights_finite` = 0), and a non-finite epoch ends the run."""
    check_images(x_train, gan, who="train_gan: x_train", nonempty=True)  # every image, once: see fit
    check_positive("train_gan: lr", lr)
    check_int("train_gan: num_epochs", num_epochs, minimum=0)
    check_int("train_gan: batch_size", batch_size, minimum=1)
    check_int("train_gan: seed", seed)
    for part in ("discriminator", "generator"):  # NaN weights: every loss NaN, and no finite state to go back to
        if not all_finite(getattr(gan, part).parameters()):
            raise ValueError(
                f"train_gan: the GAN's {part} starts with non-finite weights (NaN or inf); build a new one."
            )
    device = next(gan.parameters()).device
    if x_train.device != device:
        raise ValueError(f"x_train is on {x_train.device} but the GAN is on {device}; move both to the same device.")
    opt_d, opt_g = gan_optimizers(gan, lr)
    steps = gan_steps(gan, x_train, opt_d, opt_g, num_epochs, batch_size, seed)
    history = History()
    n = len(x_train)
    for epoch in progress(range(1, num_epochs + 1), total=num_epochs, desc="GAN epochs", leave=True):
        saved = snapshot(gan, opt_d, opt_g)
        start = time.perf_counter()
        totals = torch.zeros(5, device=device)  # d_loss, g_loss, D(x), D(G(z)), |grad G|, summed over images
        for first, values in zip(range(0, n, batch_size), steps, strict=False):  # this epoch's steps: range ends first
            batch = torch.stack([*values.values(), _gradient_norm(gan.generator)])
            totals += batch * min(batch_size, n - first)
        values = (totals / n).tolist()
        row = {"epoch": float(epoch), "d_loss": values[0], "g_loss": values[1], "d_real": values[2]}
        row.update({"d_fake": values[3], "g_grad_norm": values[4], "seconds": time.perf_counter() - start})
        finite = all(math.isfinite(v) for v in values)
        if not all_finite([*gan.parameters(), *state_tensors(opt_d, opt_g)]):
            restore(gan, [opt_d, opt_g], saved)  # the last finite weights: those this epoch started from
            row["weights_finite"] = 0.0
            finite = False
        if epoch_end is not None and finite:
            row.update(epoch_end(gan))
        history.rows.append(row)
        if not finite:
            break
    gan.eval()
    return history
