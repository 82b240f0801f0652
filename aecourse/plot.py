"""Figures that several chapters draw: image grids, training curves, scatter and bar plots. Each is drawn for the
page: at most MAX_WIDTH_IN wide at DPI and no text under MIN_FONT_PT (checked by `finish`), curves told apart by
marker and line style as well as colour, legends beside the axes, and the figure closed so a notebook stores it once.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import NullFormatter

DPI = 100  # the resolution of the stored images (matplotlib's and the notebook's default)
MIN_FONT_PT = 12  # at DPI, 16.7 px of an image's own pixels: ~14 px on a desktop page, ~6 px on a phone
MAX_WIDTH_IN = 8.4  # 840 px, and a little more where a tight bounding box takes in labels: a desktop page shows up to
# about 745 px of it, a phone about 343
STYLE = {
    "font.size": MIN_FONT_PT,
    "axes.titlesize": MIN_FONT_PT,
    "axes.labelsize": MIN_FONT_PT,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
}
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
LINESTYLES = ("-", "--", "-.", ":")


def _series_styles() -> cycle:
    """Colour, marker and line style together, so that curves differ in more than colour."""
    colours = plt.get_cmap("tab10").colors
    return cycle(
        {"color": colours[i % 10], "marker": MARKERS[i % len(MARKERS)], "linestyle": LINESTYLES[i % len(LINESTYLES)]}
        for i in range(40)
    )


def _legend_beside(ax) -> None:
    """The legend to the right of the axes, outside the data."""
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False, borderaxespad=0.0)


def _legend_below(ax) -> None:
    """The legend under the axes and their label, outside the data, two entries to a row."""
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncols=2, frameon=False, borderaxespad=0.0)


def finish(fig: Figure, *, pad: float | None = None, layout: bool = True) -> Figure:
    """Lay the figure out (unless `layout=False`: it is already) and hold it to the book's floors: no wider than
    MAX_WIDTH_IN, no visible text below MIN_FONT_PT. Then close it (the notebook keeps the returned Figure's image)."""
    if layout:
        fig.tight_layout(**({} if pad is None else {"pad": pad}))
    width = fig.get_figwidth()
    small = sorted(
        {
            f"{t.get_text()!r} at {t.get_fontsize():g} pt"
            for t in fig.findobj(Text)
            if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT - 1e-6
        }
    )
    plt.close(fig)
    if width > MAX_WIDTH_IN + 1e-6:
        raise ValueError(f"a figure {width:.2f} in wide is wider than the page's {MAX_WIDTH_IN} in; draw it narrower.")
    if small:
        raise ValueError(f"figure text below the {MIN_FONT_PT} pt floor: {', '.join(small[:5])}")
    return fig


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
    label_in = 0.14 * max(len(label) for label in rows) + 0.3  # room for the row labels, at the text's size
    cell = min(0.72 * scale, (MAX_WIDTH_IN - label_in) / num_images)
    title_in = 0.0 if titles is None else 0.25 * max(str(t).count("\n") + 1 for t in titles)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(rows), num_images, figsize=(label_in + cell * num_images, title_in + cell * len(rows)), squeeze=False
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
                    ax.set_ylabel(label, rotation=0, ha="right", va="center")
                if r == 0 and titles is not None and c < len(titles):
                    ax.set_title(titles[c])
        return finish(fig, pad=0.2)


def image_grid(
    images: torch.Tensor,
    *,
    nrow: int = 10,
    title: str | None = None,
    size: float = 5.0,
    axes: tuple[str, Sequence[float], str, Sequence[float]] | None = None,
) -> Figure:
    """A square-ish grid of images with no gaps, e.g. samples from the prior or a latent manifold. `axes` =
    (xlabel, x values of the columns, ylabel, y values of the rows, top row first) labels a grid laid over a plane
    of codes (ch. 3's 2-D VAE)."""
    images = _as_images(images)
    ncol = nrow
    nrows = -(-len(images) // ncol)
    canvas = torch.ones(nrows * 28, ncol * 28)
    for i, image in enumerate(images):
        r, c = divmod(i, ncol)
        canvas[r * 28 : (r + 1) * 28, c * 28 : (c + 1) * 28] = image.clamp(0, 1)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(size, size * nrows / ncol))
        ax.imshow(canvas.numpy(), cmap="gray", vmin=0, vmax=1)
        if axes is None:
            ax.axis("off")
        else:
            xlabel, xs, ylabel, ys = axes
            every = max(1, len(xs) // 5)  # about five labelled ticks per axis
            columns, rows = range(0, len(xs), every), range(0, len(ys), every)
            ax.set_xticks([28 * c + 13.5 for c in columns], [f"{xs[c]:.2g}" for c in columns])  # cell centres
            ax.set_yticks([28 * r + 13.5 for r in rows], [f"{ys[r]:.2g}" for r in rows])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        return finish(fig, pad=0.2)


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
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        ax.plot(rate, distortion, marker="o", linestyle=":")
        for r, d, label in zip(rate, distortion, labels, strict=True):
            ax.annotate(label, (r, d), textcoords="offset points", xytext=(6, 6))
        ax.set_xlabel("rate: KL(q(z|x) || p(z)) [nats]")
        ax.set_ylabel("distortion: ||x - x_hat||^2")
        if title:
            ax.set_title(title)
        ax.grid(alpha=0.3)
        return finish(fig)


def latent_scatter(
    z: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """The first two latent coordinates of each image, coloured by class: the 2-D latent space of ch. 3."""
    points = z.detach().float().cpu()
    labels = labels.detach().cpu()
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.6, 5.0))
        styles = _series_styles()
        for c, name in enumerate(class_names):
            keep = labels == c
            style = next(styles)
            ax.scatter(
                points[keep, 0],
                points[keep, 1],
                s=4,
                alpha=0.5,
                color=style["color"],
                marker=style["marker"],
                label=name,
                rasterized=True,
            )
        ax.set_xlabel("$z_1$")
        ax.set_ylabel("$z_2$")
        if title:
            ax.set_title(title)
        ax.legend(markerscale=3, loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
        return finish(fig)


def plot_xy(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    logx: bool = False,
    title: str | None = None,
) -> Figure:
    """Named (x, y) curves on one axis, e.g. an importance-weighted bound against the number of samples k (ch. 3)."""
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(7.0, 4.0 + 0.35 * ((len(curves) + 1) // 2)))  # room for the legend below
        styles = _series_styles()
        for name, (xs, ys) in curves.items():
            ax.plot(xs, ys, markersize=5, label=name, **next(styles))
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
        _legend_below(ax)
        return finish(fig)


def plot_panels(
    panels: Mapping[str, Mapping[str, Sequence[float]]],
    *,
    xlabel: str = "epoch",
    ylabels: Sequence[str] | None = None,
    size: float = 4.0,
) -> Figure:
    """Panels of named curves against epoch 1..n, two to a row, one legend for all: e.g. the losses of every seed of
    each model side by side (ch. 4)."""
    ncols = min(2, len(panels))
    nrows = -(-len(panels) // ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows, ncols, figsize=(min(MAX_WIDTH_IN, size * ncols), size * 0.8 * nrows + 0.6), squeeze=False
        )
        for i, (ax, (title, curves)) in enumerate(zip(axes.flat, panels.items(), strict=False)):
            styles = _series_styles()
            for name, values in curves.items():
                ax.plot(range(1, len(values) + 1), values, markersize=4, label=name, **next(styles))
            ax.set_title(title)
            ax.set_xlabel(xlabel)
            if ylabels is not None:
                ax.set_ylabel(ylabels[i])
            ax.grid(alpha=0.3)
        for ax in list(axes.flat)[len(panels) :]:
            ax.set_visible(False)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncols=min(4, len(labels)), frameon=False)
        fig.tight_layout(rect=(0, 0.6 / fig.get_figheight() + 0.02, 1, 1))  # room for the shared legend below
        return finish(fig, layout=False)


def class_bars(
    fractions: Mapping[str, torch.Tensor], class_names: Sequence[str], *, title: str | None = None
) -> Figure:
    """Grouped bars of the class fractions of several image sets, with the uniform level 1/K dashed (ch. 4). Bars
    differ by hatching as well as by colour."""
    hatches = ("", "//", "..", "xx", "\\\\")
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(8.2, 4.2))
        width = 0.8 / len(fractions)
        for i, (name, values) in enumerate(fractions.items()):
            positions = [k + (i - (len(fractions) - 1) / 2) * width for k in range(len(class_names))]
            ax.bar(
                positions,
                values.detach().cpu().float().tolist(),
                width=width,
                label=name,
                hatch=hatches[i % len(hatches)],
                edgecolor="white",
            )
        ax.axhline(1 / len(class_names), color="black", linestyle="--", linewidth=1.0, label="uniform")
        ax.set_xticks(range(len(class_names)))
        ax.set_xticklabels(class_names, rotation=35, ha="right")
        ax.set_ylabel("fraction of samples")
        if title:
            ax.set_title(title)
        _legend_beside(ax)
        return finish(fig)
