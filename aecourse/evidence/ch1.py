"""Chapter 1's evidence: the short and smoke budgets of its config, the measurements behind its sentences (the
training run, MSE against BCE, the autoencoder against PCA, anomaly detection, linear probes), the claims that hold
those sentences to the stored numbers, the tables and folded evidence blocks it shows, and its figures. The
notebook's hidden cells are calls into this module; what the chapter teaches (the autoencoder, its loss, the epoch
loop) is in the core (aecourse.models, aecourse.losses, aecourse.train) and shown in the page.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.figure import Figure
from torch import nn

from aecourse import runtime
from aecourse.checkpoints import Trained, read_manifest
from aecourse.evidence.figures import latent_scatter, plot_curves, plot_xy
from aecourse.evidence.metrics import anomaly_auc, linear_probe_accuracy
from aecourse.evidence.report import (
    Comparison,
    Spread,
    Table,
    claim,
    compare,
    comparison_rows,
    glue,
    glue_markdown,
    mean_sd,
    table,
)
from aecourse.inference import decode, encode, reconstruct
from aecourse.losses import bce, mse
from aecourse.models import PCABaseline
from aecourse.plot import STYLE, finish, image_grid

T = TypeVar("T")

# The chapter's Config defaults are the full budget (the stored models). A short run fits a CPU's few minutes; the
# smoke run only shows that every cell runs (two latent sizes: the article's 64 and the anomaly experiment's 16).
SHORT = {"num_epochs": 8, "seeds": (0,)}
SMOKE = {"latent_dims": (16, 64), "seeds": (0,), "num_epochs": 1, "train_size": 2_000}

STORED_D64 = "01_autoencoder/ae_mse_d64"  # the article's autoencoder, whose first two epochs the page retrains
# How far the two epochs trained by hand may lie from the stored run's, relative, per epoch: another CPU rounds
# differently (on an AVX-512 machine, against the stored run: 0.01% after epoch 1, 0.17% after epoch 2), and the
# difference grows with every step; a changed loop moves epoch 1 further (another initial seed: 0.48%, another
# batch order: 1.9%).
BY_HAND_TOLERANCE = (1e-3, 5e-3)
SLOPE_EPOCHS = 10  # the last epochs a straight line is fitted to, for the slope of the test loss at the end
# Regression bars, set from the stored full-budget run (three seeds): the AUC of the autoencoder trained without
# bags may not fall below its mean - 3 sd (0.9506), rounded down; the probe on the codes may not fall further below
# the pixels' than the mean gap + 3 sd (0.0291), rounded up.
AUC_BAR = 0.95
PROBE_GAP_BAR = 0.030
# BCE is infinite where x_hat is exactly 0 or 1 and the pixel is not (the MSE model's clamped outputs do that; torch
# caps each log at -100 there, an artefact): the chapter scores the BCE on x_hat clamped to [BCE_EPS, 1 - BCE_EPS],
# and shows how little the MSE model's BCE moves between the EPS_RANGE ends.
BCE_EPS = 1e-4
EPS_RANGE = (1e-3, 1e-6)
# The BCE model's sigmoid puts about a third of its outputs below BCE_EPS (the black background), but none at exactly
# 0 or 1 where the pixel is not (float32 rounds it to exactly 1 only above a logit of about 17), so the clamp moves
# its BCE by little (at most 6e-6 on the stored seeds): the page says by less than this.
CLAMP_EFFECT = 1e-5


def at_budget(config: T) -> T:
    """Chapter 1's config at the budget AECOURSE_BUDGET asks for (ch. 1): `config` itself at the full budget, else
    with the SHORT or SMOKE fields."""
    return runtime.at_budget(config, short=SHORT, smoke=SMOKE)


def settings(config: Any) -> Table | None:
    """The fields a short or smoke budget changes, against the full budget's (the Config's defaults), one a row
    (ch. 1); None at the full budget, where nothing changes."""
    full = type(config)()
    rows = [
        {"field": f.name, "this run": repr(getattr(config, f.name)), "full budget": repr(getattr(full, f.name))}
        for f in dataclasses.fields(config)
        if getattr(config, f.name) != getattr(full, f.name)
    ]
    return table(rows) if rows else None


def _listing(items: Sequence[Any]) -> str:
    """'a, b and c'."""
    words = [str(i) for i in items]
    return ", ".join(words[:-1]) + " and " * (len(words) > 1) + words[-1]


def _evidence(name: str, *tables: Table) -> None:
    """Glue a section's evidence tables as Markdown, for its folded "How we know" block (an empty one left out), or
    for a numbered table of the page (a {glue:md} inside a {table} directive)."""
    glue_markdown(name, "\n\n".join(t.markdown() for t in tables if t.rows))


def _spread(values: Sequence[float], decimals: int) -> str:
    """'mean ± sd' to `decimals` places, unbroken (no-break spaces): a table cell on a phone keeps it on one line."""
    return str(Spread(*mean_sd(values), decimals=decimals)).replace(" ", "\u00a0")


def _image_strips(rows: Mapping[str, torch.Tensor], titles: Sequence[str] | None = None, per_row: int = 5) -> Figure:
    """Images in blocks of `per_row` columns, one block under the other, each block with every entry of `rows` (an
    image over its reconstructions) and the titles over its first row (ch. 1): ten images in one row would be too
    small to read on a phone."""
    count = max(len(images) for images in rows.values())
    blocks, depth = -(-count // per_row), len(rows)
    widest = max(len(re.sub(r"\$.*?\$", "x", label)) for label in rows)  # a math label ($\\hat{x}$) as one letter
    label_in, side = 0.12 * widest + 0.4, 0.8  # room for the row labels; an image's side, in inches
    title_in = 0.0 if titles is None else 0.22 * max(str(t).count("\n") + 1 for t in titles)
    with plt.rc_context(STYLE):
        fig = plt.figure(figsize=(label_in + side * per_row, blocks * (title_in + side * depth)), layout="constrained")
        for b, block in enumerate(fig.subfigures(blocks, 1, squeeze=False)[:, 0]):
            axes = block.subplots(depth, per_row, squeeze=False)
            for r, (label, images) in enumerate(rows.items()):
                images = images.detach().float().cpu().reshape(-1, 28, 28)
                for c, ax in enumerate(axes[r]):
                    i = b * per_row + c
                    ax.set_xticks([])
                    ax.set_yticks([])
                    ax.set_frame_on(False)
                    if i < len(images):
                        ax.imshow(images[i].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                    if c == 0:
                        ax.set_ylabel(label, rotation=0, ha="right", va="center")
                    if r == 0 and titles is not None and i < len(titles):
                        ax.set_title(titles[i])
        return finish(fig, layout=False)


# Chapter 1's charts at a phone's width: the shared charts are 7-7.6 in wide at 12 pt, which a phone shrinks to
# about 340 px (text near 6 px); at 5 in and 14 pt it keeps the text near 13 px, and a desktop page shows it whole.
CHART_WIDTH_IN = 5.0
CHART_FONT_PT = 14


def _for_a_phone(fig: Figure, height: float, legend_cols: int = 2, markerscale: float = 1.0) -> Figure:
    """One of aecourse.evidence.figures' one-axes charts redrawn for chapter 1's page (ch. 1): CHART_WIDTH_IN wide
    and `height` tall, its axis labels, ticks and legend at CHART_FONT_PT, the legend under the axes in
    `legend_cols` columns (the layout engine keeps it clear of the axis label)."""
    ax = fig.axes[0]
    handles, labels = ax.get_legend_handles_labels()
    ax.get_legend().remove()
    ax.tick_params(labelsize=CHART_FONT_PT)
    ax.xaxis.label.set_fontsize(CHART_FONT_PT)
    ax.yaxis.label.set_fontsize(CHART_FONT_PT)
    fig.set_size_inches(CHART_WIDTH_IN, height)
    fig.set_layout_engine("constrained")
    legend = dict(loc="outside lower center", ncols=legend_cols, frameon=False, markerscale=markerscale)
    fig.legend(handles, labels, fontsize=CHART_FONT_PT, **legend)
    return finish(fig, layout=False)


# --- Training ---------------------------------------------------------------------------------------------------


def late_slopes(test_losses: Sequence[Sequence[float]], epochs: int = SLOPE_EPOCHS) -> list[float]:
    """Per run, the slope of a straight line through the test loss of its last `epochs` epochs, in loss per epoch:
    below zero while the loss still falls."""
    return [float(np.polyfit(range(epochs), list(losses)[-epochs:], 1)[0]) for losses in test_losses]


def training_evidence(by_hand: Sequence[float], models: Sequence[Trained]) -> None:
    """The training section's numbers (ch. 1): the two epochs trained by hand against the stored run's first two,
    the test and training losses after the first and the last epoch, and the slope of the test loss at the end, over
    the seeds of the 64-dimensional autoencoder (`models`), each seed's in the section's folded evidence block."""
    manifest = read_manifest(STORED_D64, 0)
    first_two = [row["train_loss"] for row in manifest["history"][:2]]
    glue("stored_epoch_1", first_two[0], ".6f")
    glue("stored_epoch_2", first_two[1], ".6f")
    glue("stored_two_epochs_seconds", sum(row["seconds"] for row in manifest["history"][:2]), ".0f")
    if runtime.budget() == "full":
        claim(
            all(abs(a - b) <= tol * b for a, b, tol in zip(by_hand, first_two, BY_HAND_TOLERANCE, strict=True)),
            "the loop above gives the stored model's first two epochs",
        )
    histories = [m.history for m in models]
    glue("n_seeds", len(models))
    first = [(h["test_loss"][0], h["train_loss"][0]) for h in histories]
    glue("epoch_1_test", first[0][0], ".4f")
    glue("epoch_1_train", first[0][1], ".4f")
    claim(all(test < train for test, train in first), "after the first epoch the test loss is below the training loss")
    last_gap = [100 * (h["test_loss"][-1] / h["train_loss"][-1] - 1) for h in histories]
    glue("last_epoch_gap", mean_sd(last_gap)[0], ".1f")
    claim(all(gap > 0 for gap in last_gap), "after the last epoch the test loss is above the training loss")
    rows = [
        {"seed": m.manifest["seed"], "epoch 1: test": test, "epoch 1: training": train}
        | {"last epoch: test": m.history["test_loss"][-1], "last epoch: test above training [%]": gap}
        for m, (test, train), gap in zip(models, first, last_gap, strict=True)
    ]
    comparisons = {}
    k = min(SLOPE_EPOCHS, len(histories[0]))
    glue("slope_epochs", k)
    if k >= 3:  # a straight line through fewer points says nothing
        slopes = late_slopes([h["test_loss"] for h in histories], k)
        comparisons[f"slope of the test loss over the last {k} epochs, against zero"] = falling = compare(slopes, [0.0])
        late = [-100 * s / h["test_loss"][-1] for s, h in zip(slopes, histories, strict=True)]
        glue("late_slope", mean_sd(late)[0], ".1f")
        claim(falling.verdict == "lower", "the test loss is still falling over the last epochs")
        for row, fall in zip(rows, late, strict=True):
            row["test loss's fall per epoch at the end [%]"] = fall
    else:
        glue("late_slope", "–")  # too few epochs to fit a slope to (the smoke budget)
    formats = {"last epoch: test above training [%]": ".1f", "test loss's fall per epoch at the end [%]": ".2f"}
    formats["last epoch: test"] = ".5f"
    _evidence("ch1_training_evidence", table(rows, formats, ".4f"), table(comparison_rows(comparisons)))


def loss_figure(model: Trained, seed: int) -> Figure:
    """The training and test loss of one run, epoch by epoch, as its manifest records them (ch. 1)."""
    history = model.history
    curves = {"training": history["train_loss"], "test": history["test_loss"]}
    return _for_a_phone(plot_curves(curves, ylabel="MSE per pixel"), height=3.8)


def _two_lines(name: str) -> str:
    """A class name on two lines where it is long ("Ankle\nboot"), so that titles over images do not overlap."""
    return name.replace(" ", "\n").replace("/", "/\n")


def reconstruction_figure(
    models: Mapping[str, nn.Module],
    x: torch.Tensor,
    labels: torch.Tensor | None = None,
    class_names: Sequence[str] = (),
) -> Figure:
    """The images `x` over their reconstructions by each model (row label: its name), in blocks of five, titled by
    class if `labels` are given (ch. 1)."""
    rows = {"$x$": x} | {name: reconstruct(model, x) for name, model in models.items()}
    titles = None if labels is None else [_two_lines(class_names[int(c)]) for c in labels]
    return _image_strips(rows, titles)


# --- MSE or BCE -------------------------------------------------------------------------------------------------


def clamped_bce(x_hat: torch.Tensor, x: torch.Tensor, eps: float = BCE_EPS) -> float:
    """The BCE per pixel of x_hat clamped to [eps, 1 - eps], where it is finite: at x_hat = 0 or 1 and a grey pixel
    it is infinite, and torch would count each such pixel as about 100 x nats instead."""
    return float(bce(x_hat.clamp(eps, 1 - eps), x))


def loss_scores(model: nn.Module, x: torch.Tensor) -> dict[str, float]:
    """A model's test scores per pixel, for loss_comparison: the MSE of its reconstructions clamped to [0, 1] and
    the part of it that comes from the pixels that are exactly black (their squared error over every pixel of the
    set); the BCE on them clamped to [BCE_EPS, 1 - BCE_EPS] (`bce`), at the EPS_RANGE ends, and as torch scores
    [0, 1] (`bce_capped`); the share of the pixels where x_hat is 0 or 1 but x is not (`infinite`), where the BCE
    is infinite, and the share where the clamp to [BCE_EPS, 1 - BCE_EPS] changes x_hat (`clamped`)."""
    x_hat = reconstruct(model, x)
    black = x == 0
    background = (x_hat - x)[black].pow(2).sum() / x.numel()
    infinite = ((x_hat == 0) & (x > 0)) | ((x_hat == 1) & (x < 1))
    return {
        "mse": float(mse(x_hat, x)),
        "background": float(background),
        "bce": clamped_bce(x_hat, x),
        **{f"bce_eps_{i}": clamped_bce(x_hat, x, eps) for i, eps in enumerate(EPS_RANGE)},
        "bce_capped": float(bce(x_hat, x)),
        "infinite": float(infinite.float().mean()),
        "clamped": float(((x_hat < BCE_EPS) | (x_hat > 1 - BCE_EPS)).float().mean()),
    }


def _power_of_ten(value: float) -> str:
    """1e-4 as '10⁻⁴', for the prose."""
    exponent = round(math.log10(value))
    return "10" + str(exponent).translate(str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹"))


def loss_comparison(mse_models: Sequence[Trained], bce_models: Sequence[Trained], x_test: torch.Tensor) -> None:
    """The autoencoders trained with the MSE and with the BCE, seed by seed, scored by both measures on the test set
    (ch. 1); glues the section's numbers, its table (`ch1_loss_table`) and its evidence block."""
    scores = {
        trained_with: [loss_scores(m.model, x_test) for m in models]
        for trained_with, models in (("MSE", mse_models), ("BCE", bce_models))
    }
    mse_side, bce_side = ({key: [s[key] for s in seeds] for key in seeds[0]} for seeds in scores.values())
    in_mse = compare(bce_side["mse"], mse_side["mse"])
    in_bce = compare(bce_side["bce"], mse_side["bce"])
    on_black = compare(bce_side["background"], mse_side["background"])
    bce_floor = float(bce(x_test, x_test))
    mean = {
        side: {key: mean_sd(values)[0] for key, values in d.items()}
        for side, d in (("MSE", mse_side), ("BCE", bce_side))
    }
    glue("bce_mse_gain", -100 * in_mse.mean / mean["MSE"]["mse"], ".0f")
    glue("bce_floor", bce_floor, ".4f")
    glue("black_share", 100 * float((x_test == 0).float().mean()), ".0f")
    glue("background_mse", mean["MSE"]["background"], ".5f")
    glue("background_bce", mean["BCE"]["background"], ".5f")
    glue("background_ratio", mean["BCE"]["background"] / mean["MSE"]["background"], ".2f")
    unclamped = [m.history["test_loss"][-1] for m in mse_models]
    glue("mse_unclamped", mean_sd(unclamped)[0], ".5f")
    glue("mse_clamped", mean["MSE"]["mse"], ".5f")
    claim(
        all(c <= u for c, u in zip(mse_side["mse"], unclamped, strict=True)),
        "clamping to [0, 1] lowers no model's test error, since every pixel lies in [0, 1]",
    )
    # the BCE: its clamp, what it leaves out, and the part of each model's BCE above the floor (the entropy of x)
    glue("bce_eps", _power_of_ten(BCE_EPS))
    glue("bce_infinite_share", 100 * mean["MSE"]["infinite"], ".1f")
    glue("bce_capped", mean["MSE"]["bce_capped"], ".3f")
    ends = [mean["MSE"][f"bce_eps_{i}"] for i in range(len(EPS_RANGE))]
    glue("bce_eps_range", f"{min(ends):.4f} and {max(ends):.4f}")
    glue("bce_eps_ends", f"{_power_of_ten(EPS_RANGE[0])} and {_power_of_ten(EPS_RANGE[1])}")
    glue("bce_clamp_effect", _power_of_ten(CLAMP_EFFECT))
    claim(
        max(abs(c - b) for c, b in zip(bce_side["bce"], bce_side["bce_capped"], strict=True)) < CLAMP_EFFECT,
        "the clamp barely moves the BCE model's BCE",
    )
    glue("bce_model_clamped_share", 100 * mean["BCE"]["clamped"], ".0f")
    claim(max(bce_side["infinite"]) == 0, "the BCE model's output is never exactly 0 or 1 where the pixel is not")
    shown = {side: round(mean[side]["bce"], 4) for side in mean}  # the table's figures: the excesses add up
    excess = {side: value - round(bce_floor, 4) for side, value in shown.items()}
    glue("bce_excess_mse", excess["MSE"], ".4f")
    glue("bce_excess_bce", excess["BCE"], ".4f")
    glue("bce_excess_cut", 100 * (1 - excess["BCE"] / excess["MSE"]), ".0f")
    share_of_gap = [  # per seed: the MSE gap on black pixels / the gap on all pixels
        (m_black - b_black) / (m_all - b_all)
        for m_black, b_black, m_all, b_all in zip(
            mse_side["background"], bce_side["background"], mse_side["mse"], bce_side["mse"], strict=True
        )
    ]
    glue("black_share_of_gap", 100 * mean_sd(share_of_gap)[0], ".0f")
    claim(min(share_of_gap) > 0.5, "most of the BCE model's lead in test MSE lies on the black pixels")
    claim(on_black.verdict == "lower", "the BCE model gets the black background closer to black")
    claim(in_bce.verdict == "lower", "the BCE model has the lower BCE")
    claim(in_mse.verdict == "lower", "the BCE model also has the lower MSE")
    versus = {
        "test BCE: BCE model - MSE model": in_bce,
        "test MSE: BCE model - MSE model": in_mse,
        "MSE on black pixels: BCE model - MSE model": on_black,
    }
    shares = [
        {"seed": m.manifest["seed"], "share of the MSE gap on black pixels [%]": 100 * share}
        for m, share in zip(mse_models, share_of_gap, strict=True)
    ]
    _evidence("ch1_loss_evidence", table(comparison_rows(versus)), table(shares, default=".0f"))
    rows = [
        {
            "trained with": name,
            "MSE [10⁻³]": _spread([1e3 * v for v in side["mse"]], 2),
            "BCE": _spread(side["bce"], 4),
        }
        for name, side in (("MSE", mse_side), ("BCE", bce_side))
    ]
    rows.append({"trained with": "x̂ = x (floor)", "MSE [10⁻³]": "0", "BCE": f"{bce_floor:.4f}"})
    _evidence("ch1_loss_table", table(rows))


# --- A nonlinear PCA --------------------------------------------------------------------------------------------


def split_by_seed(x_test: torch.Tensor, seeds: Sequence[int]) -> dict[int, torch.Tensor]:
    """Seed s's share of the test set: every len(seeds)-th image from the s-th on. PCA has no seed, so
    seed s's autoencoder and PCA are both scored on it: each comparison is paired, and PCA's error varies with the
    images scored as the autoencoder's does."""
    return {s: x_test[i :: len(seeds)] for i, s in enumerate(seeds)}


@dataclasses.dataclass
class PCAComparison:
    """Test MSE per pixel of PCA and of the autoencoder, per latent size and seed (each seed's on its third of the
    test set)."""

    pca_mse: dict[int, list[float]]
    ae_mse: dict[int, list[float]]


def pca_comparison(
    pca: PCABaseline,
    autoencoders: Mapping[tuple[int, int], Trained],
    x_test: torch.Tensor,
    latent_dims: Sequence[int],
    seeds: Sequence[int],
) -> PCAComparison:
    """The autoencoder of each size against PCA truncated to that size, each seed on its third of the test set
    (ch. 1); glues the section's numbers, its table (`ch1_pca_table`) and its evidence block."""
    part = split_by_seed(x_test, seeds)
    pca_mse = {d: [float(mse(pca.truncated(d).reconstruct(part[s]), part[s])) for s in seeds] for d in latent_dims}
    ae_mse = {
        d: [float(mse(reconstruct(autoencoders[d, s].model, part[s]), part[s])) for s in seeds] for d in latent_dims
    }
    versus_pca = {d: compare(ae_mse[d], pca_mse[d]) for d in latent_dims}
    ratio = {d: mean_sd(ae_mse[d])[0] / mean_sd(pca_mse[d])[0] for d in latent_dims}
    ratios = {d: [e / p for e, p in zip(ae_mse[d], pca_mse[d], strict=True)] for d in latent_dims}
    short = [d for d in latent_dims if d <= 16]
    longer = [d for d in latent_dims if d > 16]
    short_vs_long = {(d, e): compare(ratios[d], ratios[e]) for d in short for e in longer}
    variance = float(pca.pca.explained_variance_ratio_.sum())
    glue("ratio_short_low", min(ratio[d] for d in short), ".2f")
    glue("ratio_short_high", max(ratio[d] for d in short), ".2f")
    glue("ratios_long", _listing([f"{ratio[d]:.2f} at d = {d}" for d in longer]))
    glue("pca_variance", 100 * variance, ".0f")
    claim(all(c.verdict == "lower" for c in versus_pca.values()), "the AE beats PCA at every latent size")
    claim(
        all(c.verdict == "lower" for c in short_vs_long.values()),
        "the AE's error relative to PCA's is lower at every d <= 16 than at every d > 16",
    )
    claim(variance > 0.5, "with 64 components PCA captures most of the variance")
    _evidence(
        "ch1_pca_evidence",
        table(comparison_rows({f"d = {d}: AE - PCA": c for d, c in versus_pca.items()})),
        table(comparison_rows({f"AE / PCA: d = {d} - d = {e}": c for (d, e), c in short_vs_long.items()})),
    )
    rows = [
        {
            "d": d,
            "PCA [10⁻³]": _spread([1e3 * v for v in pca_mse[d]], 1),  # 3 figures fit a phone
            "AE [10⁻³]": _spread([1e3 * v for v in ae_mse[d]], 1),
            "AE / PCA": ratio[d],
        }
        for d in latent_dims
    ]
    _evidence("ch1_pca_table", table(rows, formats={"AE / PCA": ".2f"}))
    return PCAComparison(pca_mse, ae_mse)


def pca_figure(result: PCAComparison) -> Figure:
    """Test error against latent size for PCA and the autoencoder, means over the seeds (ch. 1)."""
    dims = list(result.pca_mse)
    curves = {
        "PCA": (dims, [mean_sd(result.pca_mse[d])[0] for d in dims]),
        "autoencoder": (dims, [mean_sd(result.ae_mse[d])[0] for d in dims]),
    }
    chart = plot_xy(curves, xlabel="latent size $d$ (log scale)", ylabel="test MSE per pixel", logx=True)
    return _for_a_phone(chart, height=3.8)


# --- The latent space -------------------------------------------------------------------------------------------


def latent_figure(model: nn.Module, x: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> Figure:
    """The codes of the images `x` in the plane of their first two coordinates, coloured by class (ch. 1)."""
    z = encode(model, x)  # (N, 1, 28, 28) -> (N, latent_dim)
    return _for_a_phone(latent_scatter(z, labels, class_names), height=6.0, legend_cols=3, markerscale=3.0)


def latent_grid_figure(model: nn.Module, x: torch.Tensor, steps: int = 11) -> Figure:
    """What the decoder draws at each point of a steps x steps grid laid evenly over the rectangle that the codes of
    `x` span in the plane of their first two coordinates, the scatter plot's (ch. 1): points in the gaps between the
    classes' regions are decoded too. A longer code (the smoke budget's) keeps its other coordinates at their mean."""
    z = encode(model, x)  # (N, latent_dim)
    low, high = z[:, :2].min(0).values.tolist(), z[:, :2].max(0).values.tolist()
    z1 = torch.linspace(low[0], high[0], steps)
    z2 = torch.linspace(high[1], low[1], steps)  # the top row first, as in the scatter plot
    grid = z.mean(0).repeat(steps * steps, 1)  # (steps * steps, latent_dim), row by row
    grid[:, 0], grid[:, 1] = z1.repeat(steps).to(z.device), z2.repeat_interleave(steps).to(z.device)
    images = decode(model, grid)  # (steps * steps, 1, 28, 28), clamped to [0, 1]
    return image_grid(images, nrow=steps, size=5.0, axes=("$z_1$", z1.tolist(), "$z_2$", z2.tolist()))


# --- Anomaly detection ------------------------------------------------------------------------------------------


def normal_in_top(scores: torch.Tensor, is_anomaly: torch.Tensor, k: int = 10) -> int:
    """How many of the k highest scores belong to normal images: the false alarms at the top."""
    top = scores.argsort(descending=True)[:k]
    return int((~is_anomaly[top]).sum())


def anomaly_evidence(
    scores_without: Sequence[torch.Tensor],
    scores_every: Sequence[torch.Tensor],
    is_anomaly: torch.Tensor,
) -> None:
    """The anomaly section's numbers (ch. 1): the ROC AUC of each seed's scores, under the autoencoder trained
    without the anomaly's class and under the one trained on every class, against each other and against chance,
    and the normal images among each seed's ten highest scores; glues them, the table of AUCs (`ch1_anomaly_table`)
    and the evidence block."""
    auc = {
        "trained without the class": [anomaly_auc(s, is_anomaly) for s in scores_without],
        "trained on every class": [anomaly_auc(s, is_anomaly) for s in scores_every],
    }
    without, every = auc.values()
    leaving_out = compare(without, every)
    above_chance = {name: compare(values, [0.5]) for name, values in auc.items()}
    false_alarms = [normal_in_top(s, is_anomaly) for s in scores_without]
    glue("auc_without", mean_sd(without)[0], ".3f")
    glue("auc_all", mean_sd(every)[0], ".3f")
    glue("normal_in_top_10", false_alarms[0])
    low, high = min(false_alarms), max(false_alarms)
    glue("normal_in_top_10_range", f"{low}" if low == high else f"{low} to {high}")
    claim(leaving_out.verdict == "higher", "leaving the class out of training raises the AUC")
    claim(
        above_chance["trained without the class"].verdict == "higher",
        "the bags score higher than normal images under the AE trained without them",
    )
    claim(
        above_chance["trained on every class"].verdict == "higher",
        "bags are harder to reconstruct even for the AE that saw them",
    )
    claim(min(without) >= AUC_BAR, "the AUC without the class clears its regression bar")
    claim(min(false_alarms) > 0, "the ten highest errors include normal images for every seed")
    versus = {
        "AUC: without the class - every class": leaving_out,
        "AUC without the class - 0.5 (chance)": above_chance["trained without the class"],
        "AUC on every class - 0.5 (chance)": above_chance["trained on every class"],
    }
    _evidence("ch1_anomaly_evidence", table(comparison_rows(versus)))
    rows = [{"autoencoder (d = 16)": name, "ROC AUC": _spread(values, 3)} for name, values in auc.items()]
    _evidence("ch1_anomaly_table", table(rows))


def anomaly_figure(
    model: nn.Module, scores: torch.Tensor, x: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]
) -> Figure:
    """The ten images with the highest scores over their reconstructions, titled with class and error per pixel
    (ch. 1)."""
    top = scores.argsort(descending=True)[:10]
    titles = [f"{_two_lines(class_names[int(labels[i])])}\n{scores[i] / 784:.3f}" for i in top]
    return _image_strips({"$x$": x[top], "$\\hat{x}$": reconstruct(model, x[top])}, titles)


# --- Feature extraction -----------------------------------------------------------------------------------------


def probe_scores(
    features: Callable[[torch.Tensor, int], torch.Tensor],
    blocks: Mapping[int, tuple[torch.Tensor, torch.Tensor]],
    x_test: torch.Tensor,
    y_test: torch.Tensor,
) -> list[float]:
    """One linear probe per seed, trained on that seed's block of labelled images; `features(x, seed)` maps
    images to the features the probe sees."""
    return [linear_probe_accuracy(features(x, s), y, features(x_test, s), y_test) for s, (x, y) in blocks.items()]


def probe_comparison(
    encoders: Mapping[int, nn.Module],
    pca: PCABaseline,
    x_train: torch.Tensor,
    y_train: torch.Tensor,
    x_test: torch.Tensor,
    y_test: torch.Tensor,
    n: int,
) -> None:
    """Linear probes on the raw pixels, on PCA's components and on each seed's codes (`encoders`, seed -> model),
    each seed's three probes trained on its own block of `n` labelled images (ch. 1); glues the section's numbers,
    its table of accuracies (`ch1_probe_table`) and its evidence block."""
    glue("probe_train_size", f"{n:,}")
    # the pixels and PCA have no seed: seed s's three probes all learn from the s-th block of n labelled images, so
    # every side varies with the labels drawn and each comparison is paired
    blocks = {s: (x_train[i * n : (i + 1) * n], y_train[i * n : (i + 1) * n]) for i, s in enumerate(encoders)}
    probe = {
        "raw pixels (784)": probe_scores(lambda x, s: x.flatten(1), blocks, x_test, y_test),
        "PCA (64)": probe_scores(lambda x, s: pca.encode(x), blocks, x_test, y_test),
        "AE code z (64)": probe_scores(lambda x, s: encode(encoders[s], x), blocks, x_test, y_test),
    }
    raw, by_pca, by_codes = probe.values()
    versus_raw: Comparison = compare(by_codes, raw)
    versus_pca: Comparison = compare(by_codes, by_pca)
    gaps = [r - a for r, a in zip(raw, by_codes, strict=True)]
    glue("probe_gap", 100 * mean_sd(gaps)[0], ".1f")
    for key, values in (("raw", raw), ("pca", by_pca), ("ae", by_codes)):
        glue(f"probe_{key}", mean_sd(values)[0], ".3f")
    claim(max(gaps) <= PROBE_GAP_BAR, "the codes' probe stays within its regression bar of the pixels'")
    claim(versus_raw.verdict == "lower", "the probe on the codes scores lower than on the pixels")
    claim(
        versus_pca.verdict == "not decided",
        "the probe on the codes is not told apart from that on PCA's components",
    )
    versus = {"accuracy: AE codes - raw pixels": versus_raw, "accuracy: AE codes - PCA": versus_pca}
    _evidence("ch1_probe_evidence", table(comparison_rows(versus)))
    rows = [{"features": name, "test accuracy": _spread(values, 3)} for name, values in probe.items()]
    _evidence("ch1_probe_table", table(rows))
