"""The charts of the book's evidence: training curves, (x, y) curves, scatter, panels and bars (chapter 5 draws its
rate-distortion plot itself). Curves differ by marker and line style as well as colour, legends sit outside the
data, and every figure keeps the page's floors (aecourse.plot.finish).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import cycle

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from aecourse.plot import MAX_WIDTH_IN, STYLE, finish

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


def plot_curves(
    curves: Mapping[str, Sequence[float]], *, xlabel: str = "epoch", ylabel: str = "loss", title: str | None = None
) -> Figure:
    """Line plot of named curves against epoch 1..n (train/test losses, KL, ...)."""
    xy = {name: (list(range(1, len(values) + 1)), values) for name, values in curves.items()}
    return plot_xy(xy, xlabel=xlabel, ylabel=ylabel, title=title)


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
