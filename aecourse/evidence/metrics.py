"""Measurements that several chapters share: PSNR, anomaly ROC AUC, a linear probe, active units and the Fréchet
distance in a classifier's feature space (a chapter keeps its own in its notebook). Library algorithms (scikit-learn,
torchmetrics) are called, not rewritten; what cannot be scored (empty, NaN, another scale) is refused.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from aecourse.checks import (
    NOISY_RANGE,
    check_images,
    check_int,
    check_nonnegative,
    check_positive,
    check_same_images,
    check_tensor,
)


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
    """Test accuracy of a linear classifier on standardised fixed features, chapter 1's probe: scikit-learn's
    RidgeClassifier, a least-squares fit to the one-hot labels. It is solved exactly, so every feature set gets a
    converged probe; a logistic regression on the 784 raw pixels needs minutes of iterations on two cores to converge.
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


class ClassifierFeatures(nn.Module):
    """The penultimate-layer features of a classifier as a module, the feature extractor torchmetrics' FID takes."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        if not callable(getattr(classifier, "features", None)) or not isinstance(
            getattr(classifier, "num_features", None), int
        ):
            raise TypeError(
                f"ClassifierFeatures needs a classifier with a features(x) method and an int num_features (as "
                f"aecourse.evidence.classifier.FashionClassifier has); got {type(classifier).__name__}."
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
    with a `features` method (aecourse.evidence.classifier) or any module mapping a batch to (B, D). 0 for identical
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
