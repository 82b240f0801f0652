"""The article's networks: the autoencoder (ch. 1), the denoising autoencoder (ch. 2), the MLP VAE (ch. 3)
and the convolutional VAE of the torchbearer section (ch. 5).

Every model takes images as (B, 1, 28, 28) or flattened (B, 784) and returns them in the shape it was given.
Inputs of the wrong shape or range are refused with a message that says what was expected.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

NUM_PIXELS = 28 * 28


def check_images(x: torch.Tensor, *, unit_range: bool = True, who: str = "the model") -> None:
    """Refuse anything but a float batch of 28x28 images, (B, 784) or (B, 1, 28, 28), in [0, 1] if asked."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{who} expects a torch.Tensor of images, got {type(x).__name__}.")
    if not x.is_floating_point():
        raise TypeError(
            f"{who} expects float images in [0, 1], got dtype {x.dtype}. Divide uint8 images by 255 "
            "(load_fashion_mnist already does)."
        )
    if tuple(x.shape[1:]) not in ((NUM_PIXELS,), (1, 28, 28)) or x.dim() < 2:
        raise ValueError(
            f"{who} expects a batch of shape (B, 784) or (B, 1, 28, 28); got {tuple(x.shape)}. "
            "Add the batch dimension with x.unsqueeze(0) for a single image."
        )
    if unit_range and x.numel() > 0:
        low, high = torch.aminmax(x.detach())
        if not (0.0 <= float(low) and float(high) <= 1.0):
            raise ValueError(
                f"{who} expects pixel values in [0, 1]; got values in [{float(low):.3g}, {float(high):.3g}]. "
                "Scale the images to [0, 1] (and clip noisy inputs, see add_gaussian_noise)."
            )
    elif not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{who} got NaN or infinite pixel values; check the input pipeline.")


def _flatten(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], NUM_PIXELS)  # (B, 1, 28, 28) or (B, 784) -> (B, 784)


def _like_input(flat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return flat.reshape(x.shape)  # (B, 784) -> the caller's shape


class Autoencoder(nn.Module):
    """The article's autoencoder: 784-256-latent_dim-256-784, z = f(x), x_hat = g(z).

    The article ends the decoder in a plain linear layer, which suits the MSE loss; `sigmoid_output=True`
    keeps x_hat in [0, 1], which the BCE loss needs.
    """

    def __init__(self, latent_dim: int = 64, hidden_dim: int = 256, *, sigmoid_output: bool = False) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.sigmoid_output = sigmoid_output
        self.encoder = nn.Sequential(nn.Linear(NUM_PIXELS, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, NUM_PIXELS))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """z = f(x), shape (B, latent_dim)."""
        check_images(x, who=type(self).__name__)
        return self.encoder(_flatten(x))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """x_hat = g(z), flattened (B, 784)."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.sigmoid_output else out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _like_input(self.decode(self.encode(x)), x)


class DenoisingAutoencoder(nn.Module):
    """The article's denoising autoencoder: one hidden layer 784-256-784 with a sigmoid output.

    Its input is noisy, so values outside [0, 1] are accepted (the article does not clip); NaN is not.
    """

    def __init__(self, hidden_dim: int = 256) -> None:
        super().__init__()
        self.latent_dim = hidden_dim
        self.encoder = nn.Sequential(nn.Linear(NUM_PIXELS, hidden_dim), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(hidden_dim, NUM_PIXELS), nn.Sigmoid())

    def encode(self, x_noisy: torch.Tensor) -> torch.Tensor:
        check_images(x_noisy, unit_range=False, who=type(self).__name__)
        return self.encoder(_flatten(x_noisy))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def forward(self, x_noisy: torch.Tensor) -> torch.Tensor:
        return _like_input(self.decode(self.encode(x_noisy)), x_noisy)


class ConvDenoisingAutoencoder(nn.Module):
    """A small convolutional DAE (ch. 2): two strided convs down to 7x7, two transposed convs back, sigmoid out.

    Convolutions share weights across positions, so local noise is removed by local filters; this beats the
    article's one-layer MLP DAE in PSNR within the same few CPU minutes.
    """

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels
        self.encoder = nn.Sequential(
            nn.Conv2d(1, c, 3, 2, 1),  # (B, 1, 28, 28) -> (B, c, 14, 14)
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, 2, 1),  # (B, c, 14, 14) -> (B, 2c, 7, 7)
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),  # (B, 2c, 7, 7) -> (B, c, 14, 14)
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, 2, 1),  # (B, c, 14, 14) -> (B, 1, 28, 28)
            nn.Sigmoid(),
        )

    def encode(self, x_noisy: torch.Tensor) -> torch.Tensor:
        """z: a (B, 2c, 7, 7) feature map; noisy inputs outside [0, 1] are accepted, NaN is not."""
        check_images(x_noisy, unit_range=False, who=type(self).__name__)
        return self.encoder(x_noisy.reshape(x_noisy.shape[0], 1, 28, 28))  # (B, 784) -> (B, 1, 28, 28)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, 2c, 7, 7) -> (B, 1, 28, 28)

    def forward(self, x_noisy: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x_noisy)).reshape(x_noisy.shape)


class GaussianEncoderMixin:
    """What every VAE here shares: the reparameterization trick and the prior sampler."""

    latent_dim: int

    @staticmethod
    def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
        """z = mu + sigma * eps with eps ~ N(0, I): a sample that gradients flow through (Kingma & Welling 2014)."""
        std = torch.exp(0.5 * logvar)
        eps = torch.randn_like(std)
        return mu + eps * std

    def sample_prior(self, num_samples: int, *, device: torch.device | str | None = None) -> torch.Tensor:
        """z ~ N(0, I), the prior p(z) that new images are generated from."""
        if device is None:
            device = next(self.parameters()).device  # type: ignore[attr-defined]
        return torch.randn(num_samples, self.latent_dim, device=device)


class VAE(GaussianEncoderMixin, nn.Module):
    """The article's MLP VAE (784-400-latent_dim, as in pytorch/examples) with a Bernoulli decoder.

    forward() returns (x_hat, mu, logvar) with a sampled z, the quantities the ELBO needs.
    """

    def __init__(self, latent_dim: int = 20, hidden_dim: int = 400) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.fc1 = nn.Linear(NUM_PIXELS, hidden_dim)
        self.fc21 = nn.Linear(hidden_dim, latent_dim)  # mu
        self.fc22 = nn.Linear(hidden_dim, latent_dim)  # log-variance
        self.fc3 = nn.Linear(latent_dim, hidden_dim)
        self.fc4 = nn.Linear(hidden_dim, NUM_PIXELS)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """q(z|x) = N(mu, diag(exp(logvar))): returns mu, logvar, each (B, latent_dim)."""
        check_images(x, who=type(self).__name__)
        h1 = F.relu(self.fc1(_flatten(x)))
        return self.fc21(h1), self.fc22(h1)

    def decode_logits(self, z: torch.Tensor) -> torch.Tensor:
        """The Bernoulli logits of p(x|z), flattened (..., 784); the losses use them for stable log-probabilities."""
        return self.fc4(F.relu(self.fc3(z)))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The Bernoulli means of p(x|z), flattened (..., 784), in [0, 1]."""
        return torch.sigmoid(self.decode_logits(z))

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log p(x|z) summed over pixels; z may carry leading sample dimensions, (K, B, latent_dim) -> (K, B)."""
        logits = self.decode_logits(z).to(x.dtype)  # float32 log-probabilities under bfloat16 autocast
        target = _flatten(x).expand_as(logits)
        return -F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return _like_input(self.decode(z), x), mu, logvar


class CroppedConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` that applies `padding` and `output_padding` as a crop of the unpadded result.

    Same parameters and the same output (up to float rounding). PyTorch does not send a transposed convolution with
    `output_padding` to oneDNN; the profiler shows the stock module on a slower generic path. The crop keeps the
    layer on oneDNN: one training step of the chapter 5 VAE (batch 128, channels_last, 2-core CPU) took 84 ms
    against 114 ms in float32, and 48 ms against 91 ms under bfloat16 autocast (benchmarks/train_step.py).
    """

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        pads, extras = self.padding, self.output_padding
        if output_size is not None or isinstance(pads, str) or any(e > p for e, p in zip(extras, pads, strict=True)):
            return super().forward(x, output_size)  # a crop cannot add rows: keep the stock path
        full = F.conv_transpose2d(x, self.weight, self.bias, self.stride, 0, 0, self.groups, self.dilation)
        (ph, pw), (eh, ew) = pads, extras
        cropped = F.pad(full, (-pw, ew - pw, -ph, eh - ph))  # negative padding crops; its backward is one pad
        # dense, in the layout of the convolution's output: the next layers (and their backward passes) would
        # otherwise meet a strided view and take slow, layout-mixing kernels
        channels_last = full.dim() == 4 and full.is_contiguous(memory_format=torch.channels_last)
        return cropped.contiguous(memory_format=torch.channels_last if channels_last else torch.contiguous_format)


class ConvVAE(GaussianEncoderMixin, nn.Module):
    """The conv VAE of the article's torchbearer section, with shape comments that hold.

    The article comments `B, 32, 28, 28` after the first conv (it is 29x29: kernel 4, padding 2) and
    `B, 64, 14, 14` after the first transposed conv (it has 32 channels). The decoder ends without a
    sigmoid, as in the article, and is trained with a summed MSE. Its 14 -> 29 layer is a `CroppedConvTranspose2d`:
    the article's layer, computed on a fast path.
    """

    def __init__(self, latent_dim: int = 10) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(
            nn.Conv2d(1, 32, 4, 1, 2),  # (B, 1, 28, 28) -> (B, 32, 29, 29)
            nn.ReLU(True),
            nn.Conv2d(32, 32, 4, 2, 1),  # (B, 32, 29, 29) -> (B, 32, 14, 14)
            nn.ReLU(True),
            nn.Conv2d(32, 64, 4, 2, 1),  # (B, 32, 14, 14) -> (B, 64, 7, 7)
        )
        self.mu = nn.Linear(64 * 7 * 7, latent_dim)
        self.logvar = nn.Linear(64 * 7 * 7, latent_dim)
        self.upsample = nn.Linear(latent_dim, 64 * 7 * 7)
        self.decoder = nn.Sequential(
            nn.ConvTranspose2d(64, 32, 4, 2, 1),  # (B, 64, 7, 7) -> (B, 32, 14, 14)
            nn.ReLU(True),
            CroppedConvTranspose2d(32, 32, 4, 2, 1, 1),  # (B, 32, 14, 14) -> (B, 32, 29, 29)
            nn.ReLU(True),
            nn.ConvTranspose2d(32, 1, 4, 1, 2),  # (B, 32, 29, 29) -> (B, 1, 28, 28)
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(x, who=type(self).__name__)
        h = self.encoder(x.reshape(x.shape[0], 1, 28, 28)).relu()  # (B, 1, 28, 28) -> (B, 64, 7, 7)
        h = h.flatten(1)  # (B, 64, 7, 7) -> (B, 3136)
        return self.mu(h), self.logvar(h)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        h = self.upsample(z).relu().view(-1, 64, 7, 7)  # (B, latent_dim) -> (B, 64, 7, 7)
        return self.decoder(h)  # (B, 64, 7, 7) -> (B, 1, 28, 28)

    def log_px_given_z(self, x: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """log N(x; x_hat, 1/2): the summed MSE of the article is -log p(x|z) up to a constant."""
        lead = z.shape[:-1]
        x_hat = self.decode(z.reshape(-1, self.latent_dim)).reshape(*lead, NUM_PIXELS).to(x.dtype)
        squared = (x_hat - _flatten(x)).pow(2).sum(-1)
        return -squared - 0.5 * NUM_PIXELS * math.log(math.pi)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        mu, logvar = self.encode(x)
        z = self.reparameterize(mu, logvar)
        return self.decode(z).reshape(x.shape), mu, logvar
