"""A small Fashion-MNIST classifier whose features judge generated images (chapters 3 and 4).

Inception-v3 features, the usual ground for the Fréchet distance (Heusel et al. 2017), suit 224x224 colour
photographs, not 28x28 greyscale clothes, and their weights would have to be downloaded. This CNN is trained
here instead, once per machine: `pretrained_classifier` trains it on the first call (seeded, about two dozen
seconds on two CPU cores), saves the weights under the cache folder, and loads them afterwards.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.data import FashionMNIST, default_cache_dir
from aecourse.models import check_images
from aecourse.train import fit, load_checkpoint, save_checkpoint

# Bump when the network or the training loop changes in a way the settings below do not show.
_VERSION = 1


@dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is built and trained; a hash of these names its checkpoint file."""

    channels: tuple[int, int] = (32, 64)  # two strided convs: about as cheap on the CPU as the MLP VAE
    hidden_dim: int = 128  # the feature space of the Fréchet distance
    num_epochs: int = 5  # measured: 90.4% test accuracy (4 epochs: 90.0%)
    batch_size: int = 128
    lr: float = 2e-3  # halved after every epoch: a coarse decay that gains about a point of accuracy
    seed: int = 0

    def digest(self) -> str:
        text = json.dumps({"version": _VERSION, **asdict(self)}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]


class FashionClassifier(nn.Module):
    """Two strided convolutions and an MLP head; `features` is the penultimate layer (hidden_dim values)."""

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden_dim: int = 128) -> None:
        super().__init__()
        c1, c2 = channels
        self.num_features = hidden_dim  # torchmetrics' FID reads this instead of probing with a 299x299 image
        self.conv1 = nn.Conv2d(1, c1, 5, stride=2, padding=2)  # (B, 1, 28, 28) -> (B, c1, 14, 14)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # (B, c1, 14, 14) -> (B, c2, 7, 7)
        self.fc = nn.Linear(c2 * 7 * 7, hidden_dim)
        self.head = nn.Linear(hidden_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, (B, hidden_dim): the space in which samples are compared (ch. 3, 4)."""
        check_images(x, unit_range=False, who=type(self).__name__)
        h = F.relu(self.conv1(x.reshape(-1, 1, 28, 28)))  # (B, 784) or (B, 1, 28, 28) -> (B, c1, 14, 14)
        h = F.relu(self.conv2(h))  # (B, c1, 14, 14) -> (B, c2, 7, 7)
        return F.relu(self.fc(h.flatten(1)))  # (B, c2, 7, 7) -> (B, c2 * 49) -> (B, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (B, 10)."""
        return self.head(self.features(x))


def _cross_entropy(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(model(x), y)


def train_classifier(
    data: FashionMNIST, device: torch.device | str, settings: ClassifierSettings | None = None
) -> FashionClassifier:
    """Train the classifier from scratch, seeded, without printing; the global RNG state is left untouched."""
    settings = settings or ClassifierSettings()
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(settings.seed)
        model = FashionClassifier(settings.channels, settings.hidden_dim).to(device)
        optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
        x_train, y_train = data.x_train.to(device), data.y_train.to(device)
        for epoch in range(settings.num_epochs):
            for group in optimizer.param_groups:
                group["lr"] = settings.lr * 0.5**epoch
            fit(
                model,
                _cross_entropy,
                x_train,
                y_train,
                num_epochs=1,
                batch_size=settings.batch_size,
                optimizer=optimizer,
                seed=settings.seed + epoch,  # a new shuffle each epoch
                progress=False,
            )
    return model.eval()


def checkpoint_path(settings: ClassifierSettings | None = None, cache_dir: str | Path | None = None) -> Path:
    """Where the trained weights live: named by a hash of the settings, so a change retrains."""
    settings = settings or ClassifierSettings()
    root = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return root / "classifier" / f"fashion_cnn_{settings.digest()}.pt"


def pretrained_classifier(
    data: FashionMNIST,
    device: torch.device | str,
    *,
    cache_dir: str | Path | None = None,
    settings: ClassifierSettings | None = None,
) -> FashionClassifier:
    """The classifier in eval mode with frozen weights: loaded from the cache, or trained and cached (ch. 3, 4)."""
    settings = settings or ClassifierSettings()
    path = checkpoint_path(settings, cache_dir)
    with torch.random.fork_rng(devices=[]):  # building the network draws initial weights: keep the caller's stream
        model = FashionClassifier(settings.channels, settings.hidden_dim)
    if path.is_file():
        try:
            load_checkpoint(model, path, map_location="cpu")
        except ValueError:  # a damaged or foreign file: train again and overwrite it
            model = train_classifier(data, device, settings).cpu()
            save_checkpoint(model, path)
    else:
        model = train_classifier(data, device, settings).cpu()
        save_checkpoint(model, path)
    model = model.to(device).eval()
    model.requires_grad_(False)
    return model


@torch.no_grad()
def predict(classifier: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Predicted class of every image, (N,) int64, computed in batches."""
    return torch.cat([classifier(x[i : i + batch_size]).argmax(1) for i in range(0, len(x), batch_size)])


def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose predicted class is the label."""
    return float((predict(classifier, x) == y).float().mean())
