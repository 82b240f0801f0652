"""Measurements, and nothing else: PSNR (ch. 2), anomaly ROC AUC (ch. 1, 3), a linear probe (ch. 1), active units
and the importance-weighted curve (ch. 3, 5), and for generated images (ch. 3, 4) the Fréchet distance in a
classifier's feature space, class histograms, edge energy, interpolation steps, sampling time and failed runs.

Where a well-tested library has the algorithm (scikit-learn's ROC AUC and logistic regression, torchmetrics'
Fréchet distance), it is called rather than rewritten. A measurement refuses what it cannot score (empty sets, NaN,
images on another scale) instead of returning a number computed from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from aecourse.checks import (
    NOISY_RANGE,
    check_images,
    check_int,
    check_nonnegative,
    check_positive,
    check_probability,
    check_same_images,
    check_tensor,
)
from aecourse.inference import batched, generate, interpolate, predict, prior_codes
from aecourse.losses import iwae_bound
from aecourse.runtime import evaluating


def psnr(x_hat: torch.Tensor, x: torch.Tensor, *, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over a whole set: 10 log10(max^2 / MSE), MSE per pixel (ch. 2).

    The MSE is pooled over all images before the logarithm, so one perfect image cannot give infinity. `x` holds
    images in [0, max_value]; `x_hat` may leave that range (unclipped noisy images do), but not by the factor
    of images on another scale (0..255 against 0..1).
    """
    max_value = check_positive("psnr: max_value", max_value)
    check_same_images(x_hat, x, who="psnr")
    check_images(x, who="psnr: x", high=max_value, nonempty=True)
    low, high = (bound * max_value for bound in NOISY_RANGE)
    check_images(x_hat, who="psnr: x_hat", low=low, high=high, nonempty=True)
    error = (x_hat.reshape(x.shape).double() - x.double()).pow(2).mean()
    return float(10 * torch.log10(max_value**2 / error.clamp_min(1e-12)))


def anomaly_auc(scores: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    """ROC AUC (scikit-learn) of telling anomalies (True) from normal data by a score where higher = stranger."""
    from sklearn.metrics import roc_auc_score

    check_tensor(scores, "anomaly_auc: scores", dims=1)
    if not isinstance(is_anomaly, torch.Tensor):
        raise TypeError(f"anomaly_auc: is_anomaly must be a torch.Tensor of booleans; got {type(is_anomaly).__name__}.")
    labels = is_anomaly.detach().cpu().numpy().astype(bool)
    if labels.shape != tuple(scores.shape):
        raise ValueError(f"scores {tuple(scores.shape)} and is_anomaly {labels.shape} need one entry per image.")
    if labels.all() or not labels.any():
        raise ValueError("anomaly_auc needs both anomalies and normal examples in is_anomaly.")
    return float(roc_auc_score(labels, scores.detach().cpu().double().numpy()))


def _rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().reshape(x.shape[0], -1).cpu().double().numpy()  # (B, ...) -> (B, D)


def linear_probe_accuracy(
    features_train: torch.Tensor, y_train: torch.Tensor, features_test: torch.Tensor, y_test: torch.Tensor
) -> float:
    """Test accuracy of a linear classifier on standardised fixed features (ch. 1): scikit-learn's RidgeClassifier,
    a least-squares fit to the one-hot labels. It is solved exactly, so every feature set gets a converged probe;
    a logistic regression on the 784 raw pixels needs minutes of iterations on two cores to converge.
    """
    from sklearn.linear_model import RidgeClassifier
    from sklearn.preprocessing import StandardScaler

    for name, features in (("features_train", features_train), ("features_test", features_test)):
        check_tensor(features, f"linear_probe_accuracy: {name}")
    if len(features_train) != len(y_train) or len(features_test) != len(y_test):
        raise ValueError("linear_probe_accuracy needs one label per feature row, in training and in test.")
    scaler = StandardScaler().fit(_rows(features_train))
    classifier = RidgeClassifier(alpha=1.0).fit(scaler.transform(_rows(features_train)), y_train.cpu().numpy())
    predicted = classifier.predict(scaler.transform(_rows(features_test)))
    return float((predicted == y_test.cpu().numpy()).mean())


ACTIVE_UNIT_THRESHOLD = 1e-2  # Burda et al.'s bar on Var_x(E_q[z_u]) for a unit to count as used


def active_units(mu: torch.Tensor, threshold: float = ACTIVE_UNIT_THRESHOLD) -> torch.Tensor:
    """Which latent dimensions the encoder uses: Var_x(E_q[z_u]) > threshold (Burda et al. 2016, Sec. 5.2).

    `mu` holds the encoder means of a data set, (N, latent_dim); returns a boolean mask (latent_dim,) (ch. 3, 5).
    """
    check_nonnegative("active_units: threshold", threshold)
    check_tensor(mu, "active_units: the means mu")
    if mu.dim() != 2 or len(mu) < 2:
        raise ValueError(
            f"active_units needs the means of several images, shape (N, latent_dim); got {tuple(mu.shape)}."
        )
    return mu.detach().double().var(0) > threshold


def importance_weighted_curve(
    model: nn.Module, x: torch.Tensor, ks: Sequence[int], *, batch_size: int = 100, seed: int = 0
) -> dict[int, float]:
    """The mean importance-weighted bound (nats per image) for each number of samples k (ch. 3).

    k = 1 is the ELBO; the values rise towards log p(x) as k grows (Burda et al. 2016). Seeded, so repeatable.
    """
    for k in ks:
        check_int("importance_weighted_curve: k is a number of importance samples and", k, minimum=1)
    with evaluating(model, seed=seed):
        return {k: float(batched(lambda batch, k=k: iwae_bound(model, batch, k), x, batch_size).mean()) for k in ks}


class ClassifierFeatures(nn.Module):
    """The penultimate-layer features of a classifier as a module, the feature extractor torchmetrics' FID takes."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(classifier, "features", None)) or not isinstance(
            getattr(classifier, "num_features", None), int
        ):
            raise TypeError(
                f"ClassifierFeatures needs a classifier with a features(x) method and an int num_features (as "
                f"aecourse.classifier.FashionClassifier has); got {type(classifier).__name__}."
            )
        self.classifier = classifier
        self.num_features = int(classifier.num_features)  # spares torchmetrics a probe with a 299x299 image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


@torch.no_grad()
def frechet_distance(
    x_real: torch.Tensor, x_fake: torch.Tensor, feature_extractor: nn.Module, *, batch_size: int = 1000
) -> float:
    """The squared Fréchet distance between Gaussians fitted to the features of two image sets (Heusel et al.
    2017; ch. 3, 4): ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)).

    Computed by torchmetrics' FrechetInceptionDistance with `feature_extractor` in place of Inception: a classifier
    with a `features` method (aecourse.classifier) or any module mapping a batch to (B, D). 0 for identical
    feature statistics; lower is closer.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

    for name, x in (("x_real", x_real), ("x_fake", x_fake)):
        check_tensor(x, f"frechet_distance: {name}")
        if len(x) < 2:
            raise ValueError(
                f"frechet_distance: {name} has {len(x)} image(s); a covariance needs at least 2 (use thousands)."
            )
    check_int("frechet_distance: batch_size", batch_size, minimum=1)
    extractor = ClassifierFeatures(feature_extractor) if hasattr(feature_extractor, "features") else feature_extractor
    if not hasattr(extractor, "num_features"):
        extractor.num_features = int(extractor(x_real[:2]).shape[-1])
    metric = FrechetInceptionDistance(feature=extractor, reset_real_features=True).to(x_real.device)
    for start in range(0, len(x_real), batch_size):
        metric.update(x_real[start : start + batch_size], real=True)
    for start in range(0, len(x_fake), batch_size):
        metric.update(x_fake[start : start + batch_size].to(x_real.device), real=False)
    return float(metric.compute())


def gaussian_frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """The closed form ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)): the reference the tests hold
    `frechet_distance` to (Dowson & Landau 1982; Heusel et al. 2017). Tr (S1 S2)^(1/2) is computed as the sum of
    the square roots of the eigenvalues of the symmetric S1^(1/2) S2 S1^(1/2), which stays finite for singular
    covariances (dead ReLU features), where a general matrix square root can fail."""
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    shapes = [np.shape(mu1), sigma1.shape, np.shape(mu2), sigma2.shape]
    d = shapes[0][0] if len(shapes[0]) == 1 else None
    if d is None or any(shape != want for shape, want in zip(shapes, [(d,), (d, d), (d,), (d, d)], strict=True)):
        raise ValueError(
            f"gaussian_frechet_distance: the shapes of mu1, sigma1, mu2, sigma2 must be (D,), (D, D), (D,), (D, D); "
            f"got {shapes}."
        )
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(values.clip(min=0))) @ vectors.T
    middle = np.linalg.eigvalsh(root1 @ sigma2 @ root1)
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.sqrt(middle.clip(min=0)).sum())


def class_histogram(classifier: nn.Module, x: torch.Tensor, *, num_classes: int = 10) -> torch.Tensor:
    """Fraction of the images the classifier assigns to each class, (num_classes,), summing to 1 (ch. 4).

    For samples of a generative model, a flat histogram says every mode (class) is produced as often as in
    Fashion-MNIST, whose classes are balanced; a missing bar is mode collapse.
    """
    check_int("class_histogram: num_classes", num_classes, minimum=1)
    if len(x) == 0:
        raise ValueError("class_histogram needs at least one image.")
    return torch.bincount(predict(classifier, x).cpu(), minlength=num_classes).double() / len(x)


def distance_from_uniform(fractions: torch.Tensor) -> float:
    """Total variation distance 1/2 sum_k |p_k - 1/K| between a class histogram and the uniform one (ch. 4).

    0 for a perfectly balanced set; 1 - 1/K when every sample falls in one class.
    """
    total = float(fractions.sum())
    if fractions.dim() != 1 or bool((fractions < 0).any()) or not math.isfinite(total) or total <= 0:
        raise ValueError(
            f"fractions must be a 1-D histogram of non-negative counts with a positive sum; got {fractions}."
        )
    p = fractions.double() / total
    return float(0.5 * (p - 1.0 / len(p)).abs().sum())


def edge_energy(x: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels, horizontally and vertically, over a set (ch. 4).

    A blur lowers it and pixel noise raises it; the value of real images is the mark a generator should hit.
    """
    check_images(x, who="edge_energy", nonempty=True)  # on 0..255 images it would be 65,025 times too large
    images = x.detach().double().reshape(-1, 28, 28)  # (B, 784) or (B, 1, 28, 28) -> (B, 28, 28)
    dx = (images[:, :, 1:] - images[:, :, :-1]).pow(2).mean()
    dy = (images[:, 1:, :] - images[:, :-1, :]).pow(2).mean()
    return float((dx + dy) / 2)


def interpolation_steps(
    model: nn.Module, feature_extractor: nn.Module, *, num_pairs: int = 100, num_steps: int = 10, seed: int = 0
) -> torch.Tensor:
    """Feature distances between consecutive frames of `num_pairs` straight latent paths, (num_pairs, num_steps - 1)
    (ch. 4). A smooth path moves in even steps; one large step among small ones is a jump in what the image shows.
    The endpoints z0, z1 ~ N(0, I) are drawn from `seed`."""
    check_int("interpolation_steps: num_pairs", num_pairs, minimum=1)
    check_int("interpolation_steps: num_steps", num_steps, minimum=2)
    ends = prior_codes(model, 2 * num_pairs, seed=seed)
    frames = interpolate(model, ends[:num_pairs], ends[num_pairs:], num_steps)  # (P, T, 1, 28, 28)
    extract = feature_extractor.features if hasattr(feature_extractor, "features") else feature_extractor
    with evaluating(feature_extractor):
        h = batched(extract, frames.reshape(-1, 1, 28, 28))  # (P * T, D)
    h = h.reshape(num_pairs, num_steps, -1)
    return (h[:, 1:] - h[:, :-1]).norm(dim=-1)


def jump_ratio(steps: torch.Tensor) -> torch.Tensor:
    """Largest step of each path over its mean step, (num_pairs,): 1 for even steps, T - 1 when all the change
    happens between two frames (ch. 4)."""
    check_tensor(steps, "jump_ratio: steps")
    if steps.dim() != 2:
        raise ValueError(
            f"jump_ratio: steps must be (num_pairs, num_steps - 1), as interpolation_steps returns; got "
            f"{tuple(steps.shape)}."
        )
    return steps.max(1).values / steps.mean(1).clamp_min(1e-12)


def sampling_seconds(model: nn.Module, num_samples: int = 10_000, *, repeats: int = 5) -> float:
    """The fastest of `repeats` timings of generating `num_samples` images, after one warm-up (ch. 4)."""
    check_int("sampling_seconds: num_samples", num_samples, minimum=1)
    check_int("sampling_seconds: repeats", repeats, minimum=1)
    device = next(model.parameters()).device

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        generate(model, num_samples, seed=0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    once()
    return min(once() for _ in range(repeats))


def divergence(history: Mapping[str, Sequence[float]], *, d_loss_floor: float = 0.05) -> list[str]:
    """How a training run broke down, if it did (empty list: it did not) (ch. 4): a loss that became non-finite,
    weights that did (`weights_finite` = 0 in a row of `train_gan`, whose weights were then put back), or a
    discriminator loss (`d_loss`) that ends below `d_loss_floor` nats, i.e. the discriminator wins outright and the
    generator's gradient vanishes. Mode coverage is a separate question: see `missing_classes`."""
    reasons = [
        f"{name} became non-finite"
        for name, values in history.items()
        if name != "weights_finite" and not all(map(math.isfinite, values))
    ]
    if any(value == 0 for value in history.get("weights_finite", [])):
        reasons.append("the weights became non-finite (put back to the last finite ones)")
    d_losses = list(history.get("d_loss", []))
    if d_losses and math.isfinite(d_losses[-1]) and d_losses[-1] < d_loss_floor:
        reasons.append(f"discriminator loss collapsed to {d_losses[-1]:.3g} nats (< {d_loss_floor})")
    return reasons


def missing_classes(fractions: torch.Tensor, *, min_fraction: float = 0.01) -> list[int]:
    """The classes that fewer than `min_fraction` of the samples fall into: the modes a generator dropped (ch. 4)."""
    check_probability("missing_classes: min_fraction", min_fraction)
    check_tensor(fractions, "missing_classes: fractions", dims=1)
    return [k for k, fraction in enumerate(fractions.tolist()) if fraction < min_fraction]
