"""The GAN of chapter 4 (Goodfellow et al. 2014): its two networks, its adversarial training loop, and the
sampling helpers that the chapter applies to the GAN and the VAE alike.

STYLE.md places models in models.py. The GAN is kept whole here instead, networks and loop together, because
its training is not one loss minimised by `aecourse.train.fit`: two networks take turns with two optimisers.
The generator has exactly the shape of the chapter 3 VAE's decoder (latent_dim -> hidden_dim -> 784, sigmoid),
so that the comparison changes the objective and nothing else.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.models import NUM_PIXELS, check_images
from aecourse.train import History


class Generator(nn.Module):
    """G(z): latent_dim -> hidden_dim -> 784 with a sigmoid, the same network as the MLP VAE's decoder."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, NUM_PIXELS))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Images in [0, 1], flattened (B, 784), like VAE.decode."""
        return torch.sigmoid(self.net(z))


class Discriminator(nn.Module):
    """D(x): 784 -> hidden_dim -> 1 logit, the size of the VAE's encoder; LeakyReLU as in DCGAN (Radford et al.)."""

    def __init__(self, hidden_dim: int = 400) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(NUM_PIXELS, hidden_dim), nn.LeakyReLU(0.2), nn.Linear(hidden_dim, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The logit of D(x) = P(x is real), shape (B,)."""
        return self.net(x.reshape(x.shape[0], NUM_PIXELS)).squeeze(1)  # (B, 1, 28, 28) -> (B, 784) -> (B,)


class GAN(nn.Module):
    """A generator and a discriminator; `decode` and `sample_prior` match the VAE's, so both are sampled alike."""

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.generator = Generator(latent_dim, hidden_dim)
        self.discriminator = Discriminator(hidden_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x = G(z), flattened (B, 784) in [0, 1]."""
        return self.generator(z)

    def sample_prior(self, num_samples: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """z ~ N(0, I), the noise the generator maps to images."""
        device = device if device is not None else next(self.parameters()).device
        return torch.randn(num_samples, self.latent_dim, device=device)


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
    betas: tuple[float, float] = (0.5, 0.999),
    seed: int = 0,
    history: History | None = None,
    epoch_end: Callable[[nn.Module], dict[str, float]] | None = None,
) -> History:
    """Alternate one discriminator step and one generator step per batch (Goodfellow et al. 2014, Algorithm 1
    with k = 1); return one History row per epoch: d_loss, g_loss, the mean D(x) and D(G(z)), seconds (ch. 4).

    Adam with lr 2e-4 and beta1 = 0.5 follows Radford et al. (2016). Seeded: the shuffle and the noise z come
    from generators seeded by `seed`. A non-finite loss stops training; the row is kept so the run reads as failed.
    `epoch_end(gan)` may return extra numbers for each epoch's row, as in `aecourse.train.fit`.
    """
    check_images(x_train[:1], who="train_gan")
    if num_epochs < 0 or batch_size < 1:
        raise ValueError(f"num_epochs must be >= 0 and batch_size >= 1; got {num_epochs} and {batch_size}.")
    device = next(gan.parameters()).device
    if x_train.device != device:
        raise ValueError(f"x_train is on {x_train.device} but the GAN is on {device}; move both to the same device.")
    opt_d = torch.optim.Adam(gan.discriminator.parameters(), lr=lr, betas=betas)
    opt_g = torch.optim.Adam(gan.generator.parameters(), lr=lr, betas=betas)
    shuffle = torch.Generator().manual_seed(seed)
    noise = torch.Generator(device=device).manual_seed(seed + 1)
    history = history if history is not None else History()
    n = len(x_train)
    gan.train()
    for epoch in range(len(history) + 1, len(history) + 1 + num_epochs):
        start = time.perf_counter()
        totals = torch.zeros(4, device=device)  # d_loss, g_loss, D(x), D(G(z)), each summed over images
        order = torch.randperm(n, generator=shuffle).to(device)
        for i in range(0, n, batch_size):
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
            opt_g.step()
            with torch.no_grad():
                batch = torch.stack(
                    [d_loss, g_loss, torch.sigmoid(real_logits).mean(), torch.sigmoid(fake_logits).mean()]
                )
                totals += batch * len(x)
        values = (totals / n).tolist()
        row = {"epoch": float(epoch), "d_loss": values[0], "g_loss": values[1], "d_real": values[2]}
        row.update({"d_fake": values[3], "seconds": time.perf_counter() - start})
        finite = all(math.isfinite(v) for v in values)
        if epoch_end is not None and finite:
            row.update(epoch_end(gan))
            gan.train()
        history.rows.append(row)
        if not finite:
            break
    gan.eval()
    return history


def run_failures(
    losses: Mapping[str, Sequence[float]],
    class_fractions: torch.Tensor | None = None,
    *,
    d_loss_floor: float = 0.05,
    min_class_fraction: float = 0.01,
) -> list[str]:
    """Why a training run counts as failed (empty list: it did not), for a GAN or a VAE (ch. 4).

    Checks: a non-finite loss; a discriminator loss (`d_loss`) that ends below `d_loss_floor` nats, i.e. D
    wins outright and the generator's gradient vanishes; a class that the sample classifier finds in fewer
    than `min_class_fraction` of the samples, i.e. mode collapse.
    """
    reasons = []
    for name, values in losses.items():
        if any(not math.isfinite(v) for v in values):
            reasons.append(f"{name} became non-finite")
    d_losses = list(losses.get("d_loss", []))
    if d_losses and math.isfinite(d_losses[-1]) and d_losses[-1] < d_loss_floor:
        reasons.append(f"discriminator loss collapsed to {d_losses[-1]:.3g} nats (< {d_loss_floor})")
    if class_fractions is not None:
        for k, fraction in enumerate(class_fractions.tolist()):
            if fraction < min_class_fraction:
                reasons.append(f"class {k} has {100 * fraction:.2g}% of the samples (mode collapse)")
    return reasons


@torch.no_grad()
def generate(model: nn.Module, num_samples: int, *, seed: int | None = 0, batch_size: int = 10_000) -> torch.Tensor:
    """num_samples images x = decode(z), z ~ N(0, I), as (N, 1, 28, 28): the same call for the VAE and the GAN."""
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    noise = torch.Generator(device=device).manual_seed(seed) if seed is not None else None
    z = torch.randn(num_samples, model.latent_dim, generator=noise, device=device)  # drawn at once: batch-free
    chunks = [model.decode(z[i : i + batch_size]).reshape(-1, 1, 28, 28) for i in range(0, num_samples, batch_size)]
    model.train(was_training)
    return torch.cat(chunks)


@torch.no_grad()
def interpolate(model: nn.Module, z0: torch.Tensor, z1: torch.Tensor, steps: int = 10) -> torch.Tensor:
    """Images decoded along the straight line from z0 to z1, (steps, 1, 28, 28): the latent-smoothness probe."""
    t = torch.linspace(0, 1, steps, device=z0.device).unsqueeze(1)  # (steps, 1)
    z = (1 - t) * z0.reshape(1, -1) + t * z1.reshape(1, -1)  # (steps, latent_dim)
    was_training = model.training
    model.eval()
    x = model.decode(z).reshape(steps, 1, 28, 28)  # (steps, 784) -> (steps, 1, 28, 28)
    model.train(was_training)
    return x


def sampling_seconds(model: nn.Module, num_samples: int = 10_000, *, repeats: int = 5) -> float:
    """The fastest of `repeats` timings of `generate(model, num_samples)`, after one warm-up (GPU-synchronised)."""
    device = next(model.parameters()).device

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        generate(model, num_samples, seed=None)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    once()
    return min(once() for _ in range(repeats))


@torch.no_grad()
def interpolation_steps(
    model: nn.Module, feature_extractor: nn.Module, *, num_pairs: int = 100, steps: int = 10, seed: int = 0
) -> torch.Tensor:
    """Feature distances between consecutive frames of `num_pairs` latent interpolations, (num_pairs, steps - 1):
    the latent-smoothness number of chapter 4. The pairs z0, z1 ~ N(0, I) are drawn from `seed`."""
    from aecourse.metrics import consecutive_feature_distances

    device = next(model.parameters()).device
    noise = torch.Generator(device=device).manual_seed(seed)
    ends = torch.randn(num_pairs, 2, model.latent_dim, generator=noise, device=device)
    return torch.stack(
        [consecutive_feature_distances(feature_extractor, interpolate(model, z0, z1, steps)) for z0, z1 in ends]
    )
