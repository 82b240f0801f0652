"""The networks of the course: the article's autoencoder (ch. 1), denoising autoencoders (ch. 2), the
reparameterization and the MLP VAE (ch. 3), the convolutional VAE (ch. 5) and the PCA baseline (ch. 1, 2); the
GAN's networks live with its game in `aecourse.gan`. Images come as (B, 1, 28, 28) or (B, 784), checked at `encode`.
"""

from __future__ import annotations

import copy
import functools
import inspect

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from aecourse.checks import IMAGE_SIDE, check_images, check_int, check_tensor

# The classes and functions between `fmt: off` and `fmt: on` are shown in the chapters that teach them, at the
# book's 75 columns: the chapter's cell and the definition here are one source (tests/test_taught_code.py).


def count_parameters(*modules: nn.Module) -> int:
    """The number of trainable numbers in the given modules together (ch. 2, 4)."""
    return sum(p.numel() for module in modules for p in module.parameters())


def refuses_an_empty_code(cls: type) -> type:
    """The door check that a class taught in chapters 1-3 leaves out of its lesson: its code size and layer widths
    (latent_dim, hidden_dim, channels) must be ints >= 1, refused when the model is built. torch would build empty
    layers (with a warning) and train a model whose code carries nothing."""
    init, signature = cls.__init__, inspect.signature(cls.__init__)

    @functools.wraps(init)
    def checked_init(self, *args, **kwargs) -> None:
        given = signature.bind(self, *args, **kwargs).arguments  # the defaults are valid sizes
        for name in ("latent_dim", "hidden_dim", "channels"):
            if name in given:
                check_int(f"{cls.__name__}: {name}", given[name], minimum=1)
        init(self, *args, **kwargs)

    cls.__init__ = checked_init
    return cls


def refuses_what_is_not_images(cls: type) -> type:
    """The door check that a model taught in chapters 2-3 leaves out of its lesson: `encode` refuses what is not a
    batch of images (check_images), with an error that says what to do, not one from deep inside a matmul. A DAE's
    input (`x_noisy`) may leave [0, 1] a little, as the article's unclipped noise does, but not lie on 0..255."""
    encode = cls.encode
    noisy = "x_noisy" in inspect.signature(encode).parameters

    @functools.wraps(encode)
    def checked_encode(self, x: torch.Tensor):
        check_images(x, self, noisy=noisy)
        return encode(self, x)

    cls.encode = checked_encode
    return cls


# fmt: off
@refuses_an_empty_code  # a code of size 0 fails here, not in training
class Autoencoder(nn.Module):
    """The article's autoencoder, 784-256-d-256-784 (ch. 1). A sigmoid
    output keeps x_hat in [0, 1], as the BCE loss needs."""

    def __init__(
        self,
        latent_dim: int,
        hidden_dim: int = 256,
        sigmoid_output: bool = False,
    ) -> None:
        super().__init__()
        self.latent_dim = latent_dim
        self.sigmoid_output = sigmoid_output
        self.encoder = nn.Sequential(  # f: 784 -> hidden -> latent
            nn.Linear(784, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, latent_dim),
        )
        self.decoder = nn.Sequential(  # g: latent -> hidden -> 784
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 784),
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_images(x, self)  # a clear error for a wrong batch
        return self.encoder(x.reshape(len(x), 784))  # z: (B, latent_dim)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        logits = self.decoder(z)  # (B, 784): x_hat before any sigmoid
        return torch.sigmoid(logits) if self.sigmoid_output else logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x)).reshape(x.shape)
# fmt: on


# fmt: off
@refuses_an_empty_code  # a code of size 0 fails here, not in training
@refuses_what_is_not_images  # and 0..255 images at encode
class DenoisingAutoencoder(nn.Module):
    """The article's DAE, 784-256-784 (ch. 2). Its code, the hidden
    layer, is wider than chapter 1's: its target is the clean image,
    so copying its input falls short, and it need not compress as hard."""

    def __init__(self, hidden_dim: int = 256) -> None:
        super().__init__()
        self.hidden_dim = hidden_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU())
        self.decoder = nn.Sequential(
            nn.Linear(hidden_dim, 784), nn.Sigmoid()
        )

    def encode(self, x_noisy: torch.Tensor) -> torch.Tensor:
        # (B, 1, 28, 28) -> (B, 784) -> z: (B, hidden_dim)
        return self.encoder(x_noisy.reshape(len(x_noisy), 784))

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # the clean image it guesses, (B, 784)

    def forward(self, x_noisy: torch.Tensor) -> torch.Tensor:
        x_hat = self.decode(self.encode(x_noisy))  # (B, 784)
        return x_hat.reshape(x_noisy.shape)  # back to (B, 1, 28, 28)
# fmt: on


# fmt: off
@refuses_an_empty_code  # a layer of 0 channels fails here
@refuses_what_is_not_images  # and 0..255 images at encode
class ConvDenoisingAutoencoder(nn.Module):
    """A small convolutional DAE (ch. 2): two strided convolutions down
    to a 7x7 map, two transposed ones back up, a sigmoid out. The same
    small filters run at every position of the image."""

    def __init__(self, channels: int = 32) -> None:
        super().__init__()
        c = channels  # the first convolution's filters
        # nn.Conv2d(in_channels, out_channels, kernel, stride, padding)
        self.encoder = nn.Sequential(  # x_noisy: (B, 1, 28, 28)
            nn.Conv2d(1, c, 3, 2, 1),  # -> (B, c, 14, 14)
            nn.ReLU(),
            nn.Conv2d(c, 2 * c, 3, 2, 1),  # -> (B, 2c, 7, 7)
            nn.ReLU(),
        )
        self.decoder = nn.Sequential(  # z: (B, 2c, 7, 7)
            nn.ConvTranspose2d(2 * c, c, 4, 2, 1),  # -> (B, c, 14, 14)
            nn.ReLU(),
            nn.ConvTranspose2d(c, 1, 4, 2, 1),  # -> (B, 1, 28, 28)
            nn.Sigmoid(),
        )

    def encode(self, x_noisy: torch.Tensor) -> torch.Tensor:
        h = x_noisy.reshape(len(x_noisy), 1, 28, 28)  # (B, 1, 28, 28)
        return self.encoder(h)  # z: a (B, 2c, 7, 7) map of features

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)  # (B, 2c, 7, 7) -> (B, 1, 28, 28)

    def forward(self, x_noisy: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x_noisy)).reshape(x_noisy.shape)
# fmt: on


# fmt: off
def reparameterize(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """z = mu + sigma * eps with eps ~ N(0, I): a sample of q(z|x) that
    gradients flow through to mu and logvar (Kingma & Welling 2014)."""
    eps = torch.randn_like(mu)  # the randomness, outside the network
    return mu + eps * torch.exp(0.5 * logvar)  # sigma = exp(logvar / 2)
# fmt: on


# fmt: off
@refuses_an_empty_code  # a code of size 0 fails here, not in training
@refuses_what_is_not_images  # and a wrong batch at encode
class VAE(nn.Module):
    """The article's MLP VAE, 784-400-20 as in pytorch/examples (ch. 3):
    the encoder gives mu and logvar of q(z|x), the decoder the logits of
    p(x|z) (the article's fc1; fc21, fc22; fc3 and fc4)."""

    def __init__(self, latent_dim=20, hidden_dim=400):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Linear(784, hidden_dim), nn.ReLU())
        self.mu_head = nn.Linear(hidden_dim, latent_dim)
        self.logvar_head = nn.Linear(hidden_dim, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, 784),
        )

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x.reshape(len(x), 784))  # (B, hidden_dim)
        return self.mu_head(h), self.logvar_head(h)  # (B, latent_dim) each

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.decoder(z))  # the means of p(x|z)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)  # (B, latent_dim)
        return self.decoder(z), mu, logvar  # x_logits (B, 784), mu, logvar
# fmt: on


class CroppedConvTranspose2d(nn.ConvTranspose2d):
    """`nn.ConvTranspose2d` that applies `padding` and `output_padding` as a crop of the unpadded result.

    Same parameters and the same output (up to float rounding). PyTorch does not send a transposed convolution with
    `output_padding` to oneDNN; the profiler shows the stock module on a slower generic path, and the crop keeps the
    layer on oneDNN. The book's appendix measures the difference (benchmarks/train_step.py). Chapter 5's stored
    models were trained with it in place of the article's 14 -> 29 layer; they load into either.
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


def reads_image_maps(cls: type) -> type:
    """The door check and the reshape that chapter 5's conv VAE leaves out of its lesson: `encode` refuses what is not
    a batch of float images in [0, 1] (check_images) and reads (B, 784) as (B, 1, 28, 28), what convolutions take."""
    encode = cls.encode

    @functools.wraps(encode)
    def checked_encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_images(x, self)
        return encode(self, x.reshape(len(x), 1, IMAGE_SIDE, IMAGE_SIDE))

    cls.encode = checked_encode
    return cls


# fmt: off
@refuses_an_empty_code  # a code of size 0 fails here, not in training
@reads_image_maps  # a clear error for a batch it cannot read
class ConvVAE(nn.Module):  # the article's conv VAE (ch. 5)
    def __init__(self, latent_dim=10):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(  # from x: (B, 1, 28, 28)
            nn.Conv2d(1, 32, 4, 1, 2),  # (B, 32, 29, 29): not 28x28
            nn.ReLU(True),
            nn.Conv2d(32, 32, 4, 2, 1),  # (B, 32, 14, 14)
            nn.ReLU(True),
            nn.Conv2d(32, 64, 4, 2, 1),  # (B, 64, 7, 7)
        )
        self.mu_head = nn.Linear(64 * 7 * 7, latent_dim)
        self.logvar_head = nn.Linear(64 * 7 * 7, latent_dim)
        self.upsample = nn.Linear(latent_dim, 64 * 7 * 7)
        self.decoder = nn.Sequential(  # from (B, 64, 7, 7)
            nn.ConvTranspose2d(64, 32, 4, 2, 1),  # (B, 32, 14, 14)
            nn.ReLU(True),
            nn.ConvTranspose2d(32, 32, 4, 2, 1, 1),  # (B, 32, 29, 29)
            nn.ReLU(True),
            nn.ConvTranspose2d(32, 1, 4, 1, 2),  # (B, 1, 28, 28)
        )

    def encode(self, x):
        h = self.encoder(x).relu().flatten(1)  # (B, 64, 7, 7) -> (B, 3136)
        return self.mu_head(h), self.logvar_head(h)  # (B, latent_dim) each

    def decode(self, z):  # z -> (B, 3136), viewed as (B, 64, 7, 7)
        return self.decoder(self.upsample(z).relu().view(-1, 64, 7, 7))

    def forward(self, x):
        mu, logvar = self.encode(x)
        z = reparameterize(mu, logvar)  # (B, latent_dim)
        return self.decode(z).reshape(x.shape), mu, logvar
# fmt: on


def _numpy_rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().reshape(x.shape[0], -1).cpu().double().numpy()  # (B, ...) -> (B, D)


class PCABaseline:
    """The best linear autoencoder, by PCA (scikit-learn): the baseline an autoencoder must beat (ch. 1, 2). Any
    finite rows (N, ...) are fitted and projected: images in the chapters, other data in the tests."""

    def __init__(self, n_components: int) -> None:
        from sklearn.decomposition import PCA

        check_int("PCABaseline: n_components", n_components, minimum=1)
        self.pca = PCA(n_components=n_components, svd_solver="randomized", random_state=0)

    def fit(self, x: torch.Tensor) -> PCABaseline:
        check_tensor(x, "PCABaseline.fit: x")
        self.pca.fit(_numpy_rows(x))
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        check_tensor(x, "PCABaseline.encode: x")
        return torch.from_numpy(self.pca.transform(_numpy_rows(x))).float().to(x.device)

    def reconstruct(self, x: torch.Tensor, *, clamp: bool = True) -> torch.Tensor:
        """Project onto the principal subspace and back; clamped to [0, 1] like every model's reconstruction
        (`aecourse.inference.reconstruct`), unless `clamp=False` asks for the plain linear projection."""
        check_tensor(x, "PCABaseline.reconstruct: x")
        rows = torch.from_numpy(self.pca.inverse_transform(self.pca.transform(_numpy_rows(x)))).float()
        rows = rows.reshape(x.shape).to(x.device)
        return rows.clamp(0.0, 1.0) if clamp else rows

    def truncated(self, n_components: int) -> PCABaseline:
        """The same fit keeping only the first `n_components` axes: exact, since PCA's top-k subspace is nested in
        the top-(k+1) one, so one fit serves every latent size."""
        fitted = self.pca.n_components_
        check_int("n_components", n_components)
        if not 1 <= n_components <= fitted:
            raise ValueError(f"n_components must lie in [1, {fitted}] (the size of the fit); got {n_components}.")
        smaller = copy.copy(self)
        smaller.pca = copy.deepcopy(self.pca)
        for name in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_"):
            setattr(smaller.pca, name, getattr(self.pca, name)[:n_components])
        smaller.pca.n_components_ = smaller.pca.n_components = n_components
        return smaller
