"""Images on the page: rows and grids of 28 x 28 images (reconstructions, samples, chapter 5's progress plot), and
the floors every figure of the book keeps: at most MAX_WIDTH_IN wide at DPI, no text under MIN_FONT_PT (checked by
`finish`), closed so that a notebook stores it once. The evidence's charts are in aecourse.evidence.figures.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.text import Text

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
            every = next(e for e in range(len(xs) // 8 + 1, len(xs) + 1) if (len(xs) - 1) % e == 0)  # ends labelled
            columns, rows = range(0, len(xs), every), range(0, len(ys), every)
            ax.set_xticks([28 * c + 13.5 for c in columns], [f"{xs[c]:.2f}" for c in columns])  # cell centres
            ax.set_yticks([28 * r + 13.5 for r in rows], [f"{ys[r]:.2f}" for r in rows])
            ax.set_xlabel(xlabel)
            ax.set_ylabel(ylabel)
        if title:
            ax.set_title(title)
        return finish(fig, pad=0.2)
