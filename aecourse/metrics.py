"""Measurements that several chapters share: PSNR (ch. 2), the PCA baseline (ch. 1-2), anomaly ROC AUC
(ch. 1, 3) and a linear probe on features (ch. 1).

Where a well-tested library has the algorithm (scikit-learn's PCA, ROC AUC and logistic regression), it is
called rather than rewritten.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def psnr(x_hat: torch.Tensor, x: torch.Tensor, *, max_value: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over a whole set: 10 log10(max^2 / MSE), MSE per pixel (ch. 2).

    The MSE is pooled over all images before the logarithm, so one perfect image cannot give infinity.
    """
    if x_hat.numel() != x.numel():
        raise ValueError(f"x_hat {tuple(x_hat.shape)} and x {tuple(x.shape)} must hold the same images.")
    error = (x_hat.reshape(x.shape).float() - x.float()).pow(2).mean()
    return float(10 * torch.log10(max_value**2 / error.clamp_min(1e-12)))


def _numpy_rows(x: torch.Tensor) -> np.ndarray:
    return x.detach().reshape(x.shape[0], -1).cpu().double().numpy()  # (B, ...) -> (B, D)


class PCABaseline:
    """Linear autoencoder by PCA (scikit-learn): the baseline that an autoencoder must beat (ch. 1, 2)."""

    def __init__(self, n_components: int) -> None:
        from sklearn.decomposition import PCA

        self.pca = PCA(n_components=n_components, svd_solver="randomized", random_state=0)

    def fit(self, x: torch.Tensor) -> PCABaseline:
        self.pca.fit(_numpy_rows(x))
        return self

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self.pca.transform(_numpy_rows(x))).float()

    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """Project onto the principal subspace and back, in the shape of `x` (on the CPU)."""
        rows = self.pca.inverse_transform(self.pca.transform(_numpy_rows(x)))
        return torch.from_numpy(rows).float().reshape(x.shape)


@torch.no_grad()
def batched(fn, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """Apply `fn` to `x` in batches and concatenate: keeps memory flat on large test sets."""
    return torch.cat([fn(x[i : i + batch_size]) for i in range(0, len(x), batch_size)])


@torch.no_grad()
def reconstruct(model: nn.Module, x: torch.Tensor, batch_size: int = 1000) -> torch.Tensor:
    """The model's reconstruction of every image, in eval mode; for a VAE, the first output."""
    was_training = model.training
    model.eval()

    def run(batch: torch.Tensor) -> torch.Tensor:
        out = model(batch)
        return (out[0] if isinstance(out, tuple) else out).reshape(batch.shape)

    try:
        return batched(run, x, batch_size)
    finally:
        model.train(was_training)


def per_image_mse(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Mean squared error of each image, (B,): the anomaly score of an autoencoder (ch. 1)."""
    return (x_hat.reshape(x.shape) - x).pow(2).reshape(len(x), -1).mean(1)


def anomaly_auc(scores: torch.Tensor, is_anomaly: torch.Tensor) -> float:
    """ROC AUC (scikit-learn) of telling anomalies (True) from normal data by a score where higher = stranger."""
    from sklearn.metrics import roc_auc_score

    labels = is_anomaly.detach().cpu().numpy().astype(bool)
    if labels.all() or not labels.any():
        raise ValueError("anomaly_auc needs both anomalies and normal examples in is_anomaly.")
    return float(roc_auc_score(labels, scores.detach().cpu().double().numpy()))


def linear_probe_accuracy(
    features_train: torch.Tensor, y_train: torch.Tensor, features_test: torch.Tensor, y_test: torch.Tensor
) -> float:
    """Test accuracy of a logistic-regression classifier (scikit-learn) on fixed features (ch. 1)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(_numpy_rows(features_train))
    classifier = LogisticRegression(max_iter=300)
    classifier.fit(scaler.transform(_numpy_rows(features_train)), y_train.cpu().numpy())
    predicted = classifier.predict(scaler.transform(_numpy_rows(features_test)))
    return float((predicted == y_test.cpu().numpy()).mean())
