"""Measurements that several chapters share: PSNR (ch. 2), the PCA baseline (ch. 1-2), anomaly ROC AUC
(ch. 1, 3) and a linear probe on features (ch. 1); the Fréchet distance in a classifier's feature space, class
histograms and edge energy of generated images (ch. 3, 4).

Where a well-tested library has the algorithm (scikit-learn's PCA, ROC AUC and logistic regression, torchmetrics'
Fréchet distance), it is called rather than rewritten.
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

    def truncated(self, n_components: int) -> PCABaseline:
        """The same fit keeping only the first `n_components` axes (ch. 1-2): one fit serves every latent size.

        Exact for PCA, whose top-k subspace is nested in the top-(k+1) one; no refit is needed.
        """
        import copy

        fitted = self.pca.n_components_
        if not 1 <= n_components <= fitted:
            raise ValueError(f"n_components must lie in [1, {fitted}] (the size of the fit); got {n_components}.")
        smaller = copy.copy(self)
        smaller.pca = copy.deepcopy(self.pca)
        for name in ("components_", "explained_variance_", "explained_variance_ratio_", "singular_values_"):
            setattr(smaller.pca, name, getattr(self.pca, name)[:n_components])
        smaller.pca.n_components_ = smaller.pca.n_components = n_components
        return smaller


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
    """Test accuracy of a logistic-regression classifier (scikit-learn) on fixed features (ch. 1).

    The solver is capped at 300 iterations so that every feature set gets the same, short budget; on raw
    pixels it has not fully converged by then, and the warning saying so is silenced rather than stored.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(_numpy_rows(features_train))
    classifier = LogisticRegression(max_iter=300)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        classifier.fit(scaler.transform(_numpy_rows(features_train)), y_train.cpu().numpy())
    predicted = classifier.predict(scaler.transform(_numpy_rows(features_test)))
    return float((predicted == y_test.cpu().numpy()).mean())


def importance_weighted_curve(
    model: nn.Module, x: torch.Tensor, ks: list[int], *, batch_size: int = 100, seed: int = 0
) -> dict[int, float]:
    """The mean importance-weighted bound (nats per image) for each number of samples k, in eval mode (ch. 3).

    k = 1 is the ELBO; the values rise towards log p(x) as k grows (Burda et al. 2016). Seeded, so repeatable.
    """
    from aecourse.losses import iwae_bound
    from aecourse.runtime import seeded_eval

    with seeded_eval(model, x.device, seed):
        return {k: float(batched(lambda batch, k=k: iwae_bound(model, batch, k), x, batch_size).mean()) for k in ks}


class ClassifierFeatures(nn.Module):
    """The penultimate-layer features of a classifier as a module, the feature extractor torchmetrics' FID takes."""

    def __init__(self, classifier: nn.Module) -> None:
        super().__init__()
        self.classifier = classifier
        self.num_features = int(classifier.num_features)  # spares torchmetrics a probe with a 299x299 image

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier.features(x)


@torch.no_grad()
def frechet_distance(
    x_real: torch.Tensor, x_fake: torch.Tensor, feature_extractor: nn.Module, *, batch_size: int = 1000
) -> float:
    """Fréchet distance between Gaussians fitted to the features of two image sets (Heusel et al. 2017; ch. 3, 4).

    ||mu_r - mu_f||^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)), computed by torchmetrics' FrechetInceptionDistance
    with `feature_extractor` in place of Inception: a classifier with a `features` method (aecourse.classifier)
    or any module mapping a batch to (B, D). Lower is closer; 0 for identical feature statistics.
    """
    from torchmetrics.image.fid import FrechetInceptionDistance

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
    """The closed form ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) by scipy's sqrtm: the reference the tests
    hold `frechet_distance` to (Dowson & Landau 1982; Heusel et al. 2017)."""
    from scipy.linalg import sqrtm

    covmean = sqrtm(np.asarray(sigma1, dtype=np.float64) @ np.asarray(sigma2, dtype=np.float64))
    covmean = np.real(covmean)  # sqrtm returns tiny imaginary parts from rounding
    diff = np.asarray(mu1, dtype=np.float64) - np.asarray(mu2, dtype=np.float64)
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


@torch.no_grad()
def class_histogram(classifier: nn.Module, x: torch.Tensor, *, num_classes: int = 10) -> torch.Tensor:
    """Fraction of the images the classifier assigns to each class, (num_classes,), summing to 1 (ch. 4).

    For samples of a generative model, a flat histogram says every mode (class) is produced as often as in
    Fashion-MNIST, whose classes are balanced; a missing bar is mode collapse.
    """
    labels = torch.cat([classifier(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return torch.bincount(labels.cpu(), minlength=num_classes).double() / max(len(labels), 1)


def distance_from_uniform(fractions: torch.Tensor) -> float:
    """Total variation distance 1/2 sum_k |p_k - 1/K| between a class histogram and the uniform one (ch. 4).

    0 for a perfectly balanced set; 1 - 1/K when every sample falls in one class.
    """
    p = fractions.double() / fractions.sum()
    return float(0.5 * (p - 1.0 / len(p)).abs().sum())


@torch.no_grad()
def consecutive_feature_distances(feature_extractor: nn.Module, frames: torch.Tensor) -> torch.Tensor:
    """Euclidean feature distance between each frame of an interpolation and the next, (T - 1,) (ch. 4).

    A smooth path moves in even steps; one large step among small ones is a jump in what the image shows.
    """
    extract = feature_extractor.features if hasattr(feature_extractor, "features") else feature_extractor
    h = extract(frames)  # (T, D)
    return (h[1:] - h[:-1]).norm(dim=1)


def edge_energy(x: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels, horizontally and vertically, over a set (ch. 4).

    A blur lowers it and pixel noise raises it; the value of real images is the mark a generator should hit.
    """
    images = x.detach().float().reshape(-1, 28, 28)  # (B, 784) or (B, 1, 28, 28) -> (B, 28, 28)
    dx = (images[:, :, 1:] - images[:, :, :-1]).pow(2).mean()
    dy = (images[:, 1:, :] - images[:, :-1, :]).pow(2).mean()
    return float((dx + dy) / 2)
