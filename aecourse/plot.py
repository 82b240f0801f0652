"""Figures that several chapters draw: image grids with row labels and training curves.

Figures are sized for a book page and closed after drawing, so a notebook stores one image per figure.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter


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
    xy = {name: (list(range(1, len(values) + 1)), values) for name, values in curves.items()}
    return plot_xy(xy, xlabel=xlabel, ylabel=ylabel, title=title)


def rate_distortion(
    rate: Sequence[float], distortion: Sequence[float], labels: Sequence[str], *, title: str | None = None
) -> Figure:
    """Rate (KL, nats) against distortion (squared error per image), one labelled point per model (ch. 5)."""
    fig, ax = plt.subplots(figsize=(4.5, 3.2))
    ax.plot(rate, distortion, marker="o", linestyle=":")
    for r, d, label in zip(rate, distortion, labels, strict=True):
        ax.annotate(label, (r, d), textcoords="offset points", xytext=(5, 5), fontsize=9)
    ax.set_xlabel("rate: KL(q(z|x) || p(z)) [nats]")
    ax.set_ylabel("distortion: ||x - x_hat||^2")
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    plt.close(fig)
    return fig


def latent_scatter(
    z: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """The first two latent coordinates of each image, coloured by class: the 2-D latent space of ch. 3."""
    points = z.detach().float().cpu()
    labels = labels.detach().cpu()
    fig, ax = plt.subplots(figsize=(5.8, 4.2))
    cmap = plt.get_cmap("tab10")
    for c, name in enumerate(class_names):
        keep = labels == c
        ax.scatter(points[keep, 0], points[keep, 1], s=2, alpha=0.5, color=cmap(c % 10), label=name, rasterized=True)
    ax.set_xlabel("$z_1$")
    ax.set_ylabel("$z_2$")
    if title:
        ax.set_title(title)
    ax.legend(markerscale=5, fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_xy(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    title: str | None = None,
) -> Figure:
    """Named (x, y) curves on one axis, e.g. an importance-weighted bound against the number of samples k (ch. 3)."""
    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    for name, (xs, ys) in curves.items():
        ax.plot(xs, ys, marker="o", markersize=3, label=name)
    if logx:
        ax.set_xscale("log")
        ax.xaxis.set_minor_formatter(NullFormatter())  # labels at 2-9 x 10^n overlap one another
        xs = sorted({float(x) for x_values, _ in curves.values() for x in x_values})
        if len(xs) <= 12:  # few measured points (latent sizes 2..64): label exactly those
            ax.set_xticks(xs, [f"{x:g}" for x in xs])
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    plt.close(fig)
    return fig


def plot_panels(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    xlabel: str = "epoch",
    ylabels: Sequence[str] | None = None,
    size: float = 3.0,
) -> Figure:
    """A row of panels, one per entry, each with named curves against epoch 1..n: e.g. the losses of every
    seed of each model side by side (ch. 4)."""
    fig, axes = plt.subplots(1, len(panels), figsize=(size * len(panels), size * 0.85), squeeze=False)
    for i, (ax, (title, curves)) in enumerate(zip(axes[0], panels.items(), strict=True)):
        for name, values in curves.items():
            ax.plot(range(1, len(values) + 1), values, marker="o", markersize=2.5, label=name)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xlabel, fontsize=8)
        if ylabels is not None:
            ax.set_ylabel(ylabels[i], fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    plt.close(fig)
    return fig


def class_bars(
    fractions: Mapping[str, torch.Tensor], class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """Grouped bars of the class fractions of several image sets, with the uniform level 1/K dashed (ch. 4)."""
    fig, ax = plt.subplots(figsize=(7.0, 2.8))
    width = 0.8 / len(fractions)
    for i, (name, values) in enumerate(fractions.items()):
        positions = [k + (i - (len(fractions) - 1) / 2) * width for k in range(len(class_names))]
        ax.bar(positions, values.detach().cpu().float().tolist(), width=width, label=name)
    ax.axhline(1 / len(class_names), color="black", linestyle="--", linewidth=0.8, label="uniform")
    ax.set_xticks(range(len(class_names)))
    ax.set_xticklabels(class_names, rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("fraction of samples", fontsize=8)
    if title:
        ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    plt.close(fig)
    return fig
