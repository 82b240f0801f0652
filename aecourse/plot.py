"""Figures that several chapters draw: image grids with row labels and training curves.

Figures are sized for a book page and closed after drawing, so a notebook stores one image per figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure


def _as_images(x: torch.Tensor) -> torch.Tensor:
    return x.detach().float().cpu().reshape(-1, 28, 28)  # (B, 784) or (B, 1, 28, 28) -> (B, 28, 28)


def image_rows(
    rows: Mapping[str, torch.Tensor],
    *,
    num_images: int = 10,
    titles: Sequence[str] | None = None,
    scale: float = 1.0,
) -> Figure:
    """One labelled row of images per entry, e.g. {"clean": x, "noisy": x_noisy, "denoised": x_hat}."""
    fig, axes = plt.subplots(
        len(rows), num_images, figsize=(scale * num_images * 0.9, scale * len(rows) * 1.0), squeeze=False
    )
    for r, (label, images) in enumerate(rows.items()):
        images = _as_images(images)
        for c in range(num_images):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(images):
                ax.imshow(images[c].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
            if c == 0:
                ax.set_ylabel(label, rotation=0, ha="right", va="center", fontsize=9)
            if r == 0 and titles is not None and c < len(titles):
                ax.set_title(titles[c], fontsize=8)
    fig.tight_layout(pad=0.2)
    plt.close(fig)
    return fig


def image_grid(images: torch.Tensor, *, nrow: int = 10, title: str | None = None, size: float = 5.0) -> Figure:
    """A square-ish grid of images with no gaps, e.g. samples from the prior or a latent manifold."""
    images = _as_images(images)
    ncol = nrow
    nrows = -(-len(images) // ncol)
    canvas = torch.ones(nrows * 28, ncol * 28)
    for i, image in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = image.clamp(0, 1)
    fig, ax = plt.subplots(figsize=(size, size * nrows / ncol))
    ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1)
    ax.axis("off")
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout(pad=0.2)
    plt.close(fig)
    return fig


def plot_curves(
    curves: Mapping[str, Sequence[float]], *, xlabel: str = "epoch", ylabel: str = "loss", title: str | None = None
) -> Figure:
    """Line plot of named curves against epoch 1..n (train/test losses, KL, ...)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, values in curves.items():
        ax.plot(range(1, len(values) + 1), values, marker="o", markersize=3, label=name)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig
