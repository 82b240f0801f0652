"""A small Fashion-MNIST classifier whose features judge generated images (ch. 3, 4). Inception-v3 suits 224x224
colour photographs, not 28x28 greyscale clothes, and would have to be downloaded: this CNN is trained once for the
course and shipped with the checkpoints, so every machine measures with the same instrument.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from aecourse.checkpoints import CheckpointError, load, retrain_command, training_config
from aecourse.checks import check_device, check_images, check_int, check_probability, model_dtype
from aecourse.data import FashionMNIST
from aecourse.inference import predict

CHECKPOINT = "classifier/fashion_cnn"
MIN_ACCURACY = 0.88  # below this, the classifier cannot tell the classes apart well enough to judge samples


@dataclass(frozen=True)
class ClassifierSettings:
    """How the classifier is built and trained; its checkpoint's manifest records them."""

    channels: tuple[int, int] = (32, 64)  # two strided convs: about as cheap on the CPU as the MLP VAE
    hidden_dim: int = 128  # the feature space of the Fréchet distance
    num_epochs: int = 5
    batch_size: int = 128
    lr: float = 2e-3  # halved after every epoch: a coarse decay that gains about a point of accuracy
    seed: int = 0


class FashionClassifier(nn.Module):
    """Two strided convolutions and an MLP head; `features` is the penultimate layer (hidden_dim values)."""

    def __init__(self, channels: tuple[int, int] = (32, 64), hidden_dim: int = 128) -> None:
        super().__init__()
        if len(channels) != 2:
            raise ValueError(f"FashionClassifier: channels are the two convolutions' widths; got {channels!r}.")
        c1, c2 = (check_int("FashionClassifier: channels", c, minimum=1) for c in channels)
        check_int("FashionClassifier: hidden_dim", hidden_dim, minimum=1)
        self.num_features = hidden_dim  # torchmetrics' FID reads this instead of probing with a 299x299 image
        self.conv1 = nn.Conv2d(1, c1, 5, stride=2, padding=2)  # (B, 1, 28, 28) -> (B, c1, 14, 14)
        self.conv2 = nn.Conv2d(c1, c2, 3, stride=2, padding=1)  # (B, c1, 14, 14) -> (B, c2, 7, 7)
        self.fc = nn.Linear(c2 * 7 * 7, hidden_dim)
        self.head = nn.Linear(hidden_dim, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The penultimate layer, (B, hidden_dim): the space in which samples are compared (ch. 3, 4)."""
        check_images(x, who=type(self).__name__, dtype=model_dtype(self))
        h = F.relu(self.conv1(x.reshape(-1, 1, 28, 28)))  # (B, 784) or (B, 1, 28, 28) -> (B, c1, 14, 14)
        h = F.relu(self.conv2(h))  # (B, c1, 14, 14) -> (B, c2, 7, 7)
        return F.relu(self.fc(h.flatten(1)))  # (B, c2, 7, 7) -> (B, c2 * 49) -> (B, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Class logits, (B, 10)."""
        return self.head(self.features(x))


def initial_classifier(settings: ClassifierSettings, device: torch.device | str) -> FashionClassifier:
    """The network of `settings` with the initial weights of its seed; the caller's random stream is kept."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(settings.seed)
        return FashionClassifier(settings.channels, settings.hidden_dim).to(device)


def accuracy(classifier: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of images whose predicted class is the label."""
    if not isinstance(y, torch.Tensor) or y.shape != (len(x),):
        shape = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise ValueError(f"accuracy needs one label per image, shape ({len(x)},); got {shape}.")
    return float((predict(classifier, x) == y).float().mean())


def pretrained_classifier(
    data: FashionMNIST,
    device: torch.device | str,
    *,
    settings: ClassifierSettings | None = None,
    root: Path | None = None,
    min_accuracy: float = MIN_ACCURACY,
) -> FashionClassifier:
    """The course's classifier in eval mode with frozen weights (ch. 3, 4), loaded from its checkpoint and checked:
    its test accuracy must reach `min_accuracy`. Only `make checkpoints NB=classifier` trains it
    (tools/train_checkpoints.py). `settings`, `root` and `min_accuracy` exist for the tests."""
    settings = settings or ClassifierSettings()
    device = check_device(device, who="pretrained_classifier")
    check_probability("pretrained_classifier: min_accuracy", min_accuracy)
    model = initial_classifier(settings, device)
    load(model, CHECKPOINT, settings.seed, expect=training_config(settings), root=root)
    model.eval().requires_grad_(False)
    test_accuracy = accuracy(model, data.x_test.to(device), data.y_test.to(device))
    if test_accuracy < min_accuracy:
        raise CheckpointError(
            f"the classifier's test accuracy is {test_accuracy:.3f}, below {min_accuracy}: it cannot judge samples. "
            f"Retrain it with `{retrain_command(CHECKPOINT)}`."
        )
    return model
