"""Chapter 2's evidence (the denoising autoencoder): its short and smoke budgets, chapter 1's autoencoder as a
baseline, the fixed noise draws every method is scored on, the PSNR of every method at every noise level, and the
claims, glued numbers, tables and figures of each section. The notebook's hidden cells are calls into this module;
the code the chapter teaches (the noise, the DAEs, their loss and training) is in the chapter itself.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure

from aecourse import runtime
from aecourse.checkpoints import Trained, load_or_train, reused
from aecourse.data import add_gaussian_noise, add_masking_noise
from aecourse.evidence.figures import _legend_below, _series_styles
from aecourse.evidence.metrics import psnr
from aecourse.evidence.report import (
    Comparison,
    Table,
    claim,
    compare,
    comparison_rows,
    glue,
    glue_markdown,
    mean_sd,
    pm,
    round_outward,
    table,
)
from aecourse.inference import reconstruct
from aecourse.losses import reconstruction_loss
from aecourse.models import Autoencoder, PCABaseline, count_parameters
from aecourse.plot import MAX_WIDTH_IN, STYLE, finish, image_rows
from aecourse.runtime import seeded
from aecourse.train import History, fit

# The budgets below the full one (the chapter's Config defaults): a few CPU minutes, and seconds for CI.
SHORT = {"mlp_epochs": 10, "conv_epochs": 5, "seeds": (0,)}
SMOKE = {"mlp_epochs": 1, "conv_epochs": 1, "seeds": (0,), "train_size": 2_000}

# The names of the methods, as the chapter's code, tables and figures print them.
NOISY = "noisy input"
PLAIN = "plain AE"
GAUSS = "DAE"
UNCLIPPED = "DAE (unclipped)"
MASKING = "masking DAE"
CONV = "conv DAE"
GAUSSIAN_DAES = (GAUSS, UNCLIPPED, CONV)
# ... and as its sentences name them
LABEL = {
    NOISY: "the noisy input",
    PLAIN: "the plain AE",
    GAUSS: "the article's DAE",
    UNCLIPPED: "the DAE trained on unclipped noise",
    MASKING: "the masking DAE",
    CONV: "the conv DAE",
}
# ... and the order that fixes each one's colour, marker and line style, the same in every figure ("PCA" for PCA (k))
STYLE_ORDER = (NOISY, "PCA", PLAIN, GAUSS, UNCLIPPED, MASKING, CONV)
SYMBOL = {"gaussian": "σ", "masking": "p"}
NOISE_NAME = {"gaussian": "Gaussian", "masking": "masking"}
BRIGHTNESS_FIT = 0.02  # how close the masking DAE's brightness comes to the (1 - p) / (1 - p_train) rule


def at_budget(config: Any) -> Any:
    """Chapter 2's config at the budget AECOURSE_BUDGET asks for: the full one (its defaults) or SHORT or SMOKE."""
    return runtime.at_budget(config, short=SHORT, smoke=SMOKE)


def _train_plain(model: Autoencoder, seed: int, *, config: Any, x_train: torch.Tensor, x_test: torch.Tensor) -> History:
    """Chapter 1's recipe for its autoencoder: the MSE, Adam, the chapter's epochs and batches, the test loss."""
    return fit(
        model,
        reconstruction_loss,
        x_train,
        x_test=x_test,
        num_epochs=config.mlp_epochs,
        batch_size=config.batch_size,
        lr=config.lr,
        seed=seed,
    )


def plain_autoencoders(config: Any, x_train: torch.Tensor, x_test: torch.Tensor) -> list[Trained]:
    """Chapter 1's plain autoencoder, 784-256-64-256-784, one per seed of `config` (ch. 2's baseline): at the full
    budget chapter 1's checkpoints, whose manifests must record chapter 2's recipe; otherwise trained here with it."""
    device = x_train.device
    recipe = {
        "hidden_dim": config.hidden_dim,
        "num_epochs": config.mlp_epochs,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "train_size": config.train_size,
    }
    models = []
    for seed in config.seeds:
        with seeded(seed):  # the initial weights this seed draws
            model = Autoencoder(64, config.hidden_dim).to(device)
        if runtime.budget() == "full" and not runtime.retrain():
            models.append(reused(model, "01_autoencoder/ae_mse_d64", seed=seed, expect=recipe))
            continue
        train = functools.partial(_train_plain, config=config, x_train=x_train, x_test=x_test)
        models.append(load_or_train(model, "02_denoising_autoencoder/ae_mse_d64", config, seed=seed, train=train))
    return models


def test_draw(x_test: torch.Tensor, kind: str, level: float, seed: int, *, clip: bool = True) -> torch.Tensor:
    """The test set corrupted for the models of one seed: a generator seeded seed + 1 (seed 0's draw is the one the
    chapter shows), so that each seed's models meet a draw of their own. The noisy input and PCA, which have no
    seed, are scored on every seed's draw: every comparison pairs two methods on the same noisy images."""
    generator = torch.Generator(device=x_test.device).manual_seed(seed + 1)
    if kind == "masking":
        return add_masking_noise(x_test, level, generator=generator)
    return add_gaussian_noise(x_test, level, clip=clip, generator=generator)


test_draw.__test__ = False  # a function of the chapter, not a test for pytest to collect


Denoiser = Callable[[torch.Tensor], torch.Tensor]


def methods(pca: PCABaseline, plain: Sequence[Trained], daes: Mapping[str, Sequence[Trained]]) -> dict[str, list]:
    """Every method of the chapter as one denoiser per seed: the noisy input itself and PCA (the same on every
    seed), chapter 1's plain AE and the DAEs (each seed's model)."""
    seeds = len(plain)

    def model_of(entry: Trained) -> Denoiser:
        return functools.partial(reconstruct, entry.model)

    found: dict[str, list[Denoiser]] = {NOISY: [torch.clone] * seeds, pca_name(pca): [pca.reconstruct] * seeds}
    found[PLAIN] = [model_of(e) for e in plain]
    return found | {name: [model_of(e) for e in entries] for name, entries in daes.items()}


def pca_name(pca: PCABaseline) -> str:
    return f"PCA ({pca.pca.n_components})"


@dataclasses.dataclass
class Bench:
    """The methods of the chapter scored on the test set (ch. 2): the PSNR of each method at each noise level, one
    per seed, each seed's models on that seed's draw of the noise; computed once per level."""

    x_test: torch.Tensor
    methods: dict[str, list[Denoiser]]
    seeds: tuple[int, ...]
    levels: dict[str, tuple[float, ...]]
    _scores: dict[tuple[str, float], dict[str, list[float]]] = dataclasses.field(default_factory=dict, repr=False)

    @property
    def pca(self) -> str:
        return next(name for name in self.methods if name.startswith("PCA"))

    def scores(self, kind: str, level: float) -> dict[str, list[float]]:
        """Every method's test PSNR at one level of one kind of noise, one value per seed."""
        if (kind, level) not in self._scores:
            draws = [test_draw(self.x_test, kind, level, seed) for seed in self.seeds]
            self._scores[kind, level] = {
                name: [psnr(run(x), self.x_test) for run, x in zip(runs, draws, strict=True)]
                for name, runs in self.methods.items()
            }
        return self._scores[kind, level]

    def clean(self) -> dict[str, list[float]]:
        """Every model's PSNR on the clean test images: its own error, with no noise at all."""
        if ("clean", 0.0) not in self._scores:
            self._scores["clean", 0.0] = {
                name: [psnr(run(self.x_test), self.x_test) for run in runs]
                for name, runs in self.methods.items()
                if name != NOISY
            }
        return self._scores["clean", 0.0]

    def compare(self, kind: str, level: float, a: str, b: str) -> Comparison:
        """Method a against method b at one level, paired seed by seed."""
        at = self.scores(kind, level)
        return compare(at[a], at[b])

    def by_level(self, kind: str, a: str, b: str) -> dict[str, list[float]]:
        """The levels of a sweep at which a is decided above b ("higher"), below it ("lower"), or neither."""
        found: dict[str, list[float]] = {"higher": [], "lower": [], "not decided": []}
        for level in self.levels[kind]:
            found[self.compare(kind, level, a, b).verdict].append(level)
        return found

    def above_all(self, kind: str, a: str, rivals: Sequence[str]) -> list[float]:
        """The levels at which a is decided above every one of the rivals."""
        return [
            level
            for level in self.levels[kind]
            if all(self.compare(kind, level, a, b).verdict == "higher" for b in rivals)
        ]


def _mean(values: Sequence[float]) -> float:
    return mean_sd(values)[0]


def shown_gap(a: Sequence[float], b: Sequence[float]) -> float:
    """mean(a) - mean(b) as a reader computes it from the page: from the two means rounded to one decimal, so that
    the numbers a sentence quotes add up (20.5 - 15.9 = 4.6, where the unrounded gap, 4.55, would print 4.5)."""
    return round(_mean(a), 1) - round(_mean(b), 1)


def _evidence(name: str, comparisons: Mapping[str, Comparison]) -> None:
    """Verdicts as a Markdown table, glued for a folded "How we know" block: what is compared, the difference (mean
    ± sd over the seeds) and the verdict; every row pairs the three seeds, which the block says once."""
    rows = [{k: v for k, v in row.items() if k != "pairs"} for row in comparison_rows(comparisons)]
    for row, c in zip(rows, comparisons.values(), strict=True):  # to 0.01 dB, as a reader needs them
        row["difference (mean ± sd)"] = f"{c.mean:+.2f} ± {c.sd:.2f}"
    glue_markdown(name, table(rows).markdown())


def _figure_of_curves(
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    mark: float | None = None,
) -> Figure:
    """Named (x, y) curves, narrow enough for their text to stay legible on a phone, with a dotted line at the
    training level `mark` (ch. 2's training curves and sweeps); each method keeps one style in every figure."""
    styles = list(itertools.islice(_series_styles(), len(STYLE_ORDER) + len(curves)))
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 4.2 + 0.3 * ((len(curves) + 2) // 2)))
        for i, (name, (xs, ys)) in enumerate(curves.items()):
            key = "PCA" if name.startswith("PCA") else name
            style = styles[STYLE_ORDER.index(key) if key in STYLE_ORDER else len(STYLE_ORDER) + i]
            ax.plot(xs, ys, markersize=5, label=name, **style)
        if mark is not None:
            ax.axvline(mark, color="grey", linestyle=":", linewidth=1.5, label="training level")
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        _legend_below(ax)
        return finish(fig)


# --- the corruptions and the models -----------------------------------------------------------------------------------


def noise_figure(x: torch.Tensor, x_noisy: torch.Tensor, x_masked: torch.Tensor) -> Figure:
    """Eight clean test images, with Gaussian noise and with masking noise (ch. 2's first figure)."""
    return image_rows({"clean": x, "Gaussian": x_noisy, "masked": x_masked}, num_images=8, scale=1.2)


def model_sizes(daes: Mapping[str, Sequence[Trained]], x: torch.Tensor) -> None:
    """The two architectures' sizes (ch. 2): the conv DAE has several times fewer parameters than the article's DAE,
    although its code, a map of features, holds more numbers than the image has pixels."""
    mlp, conv = daes[GAUSS][0].model, daes[CONV][0].model
    n_mlp, n_conv = count_parameters(mlp), count_parameters(conv)
    with torch.no_grad():
        code = conv.encode(x[:1]).numel()
    glue("mlp_params", n_mlp, ",d")
    glue("conv_params", n_conv, ",d")
    glue("param_ratio", n_mlp / n_conv, ".1f")
    glue("conv_code", code, ",d")
    glue("code_ratio", code / x[0].numel(), ".0f")
    claim(n_mlp > 4 * n_conv, "the conv DAE has several times fewer parameters than the article's DAE")
    claim(code > x[0].numel(), "the conv DAE's code holds more numbers than the image")


def training_curves(daes: Mapping[str, Sequence[Trained]], config: Any, train_size: int) -> Figure:
    """Each DAE's training loss per epoch, mean of its seeds, from the histories its checkpoints store (ch. 2):
    most of the fall comes in the first epochs, and the conv DAE ends lowest on the clipped Gaussian noise, after
    about as many Adam steps as the article's DAE (half as many epochs of batches half as large)."""
    recipe = {"conv": (config.conv_epochs, config.conv_batch_size), "mlp": (config.mlp_epochs, config.batch_size)}
    steps = {kind: epochs * math.ceil(train_size / batch) for kind, (epochs, batch) in recipe.items()}
    for kind, (epochs, batch) in recipe.items():  # the epochs, the batch size and the Adam steps of each
        glue(f"{kind}_epochs", epochs)
        glue(f"{kind}_batch", batch)
        glue(f"{kind}_steps", steps[kind], ",d")
    claim(abs(steps["conv"] - steps["mlp"]) < 0.01 * steps["mlp"], "the conv DAE takes about as many Adam steps")
    # "train_loss" as the package's fit records it (the stored models), "loss" as the chapter's train_dae does
    losses = {name: [e.history["train_loss"] or e.history["loss"] for e in entries] for name, entries in daes.items()}
    mean = {name: [sum(epoch) / len(epoch) for epoch in zip(*runs, strict=True)] for name, runs in losses.items()}
    early = [(run[0] - run[min(2, len(run) - 1)]) / (run[0] - run[-1] or 1) for runs in losses.values() for run in runs]
    last = {name: [run[-1] for run in runs] for name, runs in losses.items()}
    glue("dae_train_loss", _mean(last[GAUSS]), ".4f")
    glue("conv_train_loss", _mean(last[CONV]), ".4f")
    claim(min(early) > 0.75, "more than three quarters of each DAE's fall in training loss comes by the third epoch")
    claim(compare(last[CONV], last[GAUSS]).verdict == "lower", "the conv DAE ends with a lower training loss")
    curves = {name: (list(range(1, len(ys) + 1)), ys) for name, ys in mean.items()}
    return _figure_of_curves(curves, xlabel="epoch", ylabel="training loss (MSE), mean of seeds")


# --- every method at the training levels ------------------------------------------------------------------------------


def training_level_table(bench: Bench, sigma: float, p: float) -> Table:
    """Every method's test PSNR at the two levels the DAEs were trained at (ch. 2), mean of the seeds."""
    at = {f"σ = {sigma:g}": bench.scores("gaussian", sigma), f"p = {p:g}": bench.scores("masking", p)}
    rows = [{"PSNR [dB]": name} | {k: _mean(v[name]) for k, v in at.items()} for name in bench.methods]
    return table(rows, default=".1f")


def denoised_figure(bench: Bench, x: torch.Tensor, x_noisy: torch.Tensor, count: int = 5) -> Figure:
    """`count` corrupted test images (one per row) as each method returns them (one per column, seed 0's model of
    each), the clean image first (ch. 2's grids): columns, not rows, per method, so the tiles stay large."""
    columns = {"clean": x[:count]} | {name: runs[0](x_noisy[:count]) for name, runs in bench.methods.items()}
    side = MAX_WIDTH_IN / len(columns)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(count, len(columns), figsize=(MAX_WIDTH_IN, side * count + 0.5), squeeze=False)
        for c, (name, images) in enumerate(columns.items()):
            images = images.detach().float().cpu().reshape(-1, 28, 28)
            axes[0, c].set_title(name.replace(" ", "\n", 1))
            for r in range(count):
                axes[r, c].imshow(images[r].clamp(0, 1).numpy(), cmap="gray", vmin=0, vmax=1)
                axes[r, c].axis("off")
        fig.subplots_adjust(left=0, right=1, bottom=0, top=1 - 0.5 / fig.get_figheight(), wspace=0.04, hspace=0.04)
        return finish(fig, layout=False)


def training_level_verdicts(bench: Bench, sigma: float, p: float) -> None:
    """The verdicts at the training levels (ch. 2): which methods remove noise at σ, the DAEs against the baselines
    and each other, and each kind of DAE on the other kind of noise. Glues the numbers the prose quotes (differences
    of the rounded means, which add up on the page) and the evidence tables of its folded block."""
    pca = bench.pca
    verdicts: dict[str, dict[str, Comparison]] = {"gaussian": {}, "masking": {}}

    def versus(a: str, b: str, kind: str = "gaussian") -> Comparison:
        """a against b at the training level of `kind`, recorded for the evidence table."""
        found = bench.compare(kind, sigma if kind == "gaussian" else p, a, b)
        verdicts[kind][f"{LABEL.get(a, a)} minus {LABEL.get(b, b)}"] = found
        return found

    vs_noisy = {name: versus(name, NOISY) for name in bench.methods if name != NOISY}
    plain_vs_pca, dae_vs_plain = versus(PLAIN, pca), versus(GAUSS, PLAIN)
    conv_vs_dae, conv_vs_unclipped = versus(CONV, GAUSS), versus(CONV, UNCLIPPED)
    vs_baselines = [versus(name, base) for name in GAUSSIAN_DAES for base in (pca, PLAIN)]
    on_gaussian = [versus(name, MASKING) for name in GAUSSIAN_DAES]
    masking_vs_pca = versus(MASKING, pca)
    masking_vs_baselines = [versus(MASKING, base, "masking") for base in (pca, PLAIN)]
    on_masking = [versus(MASKING, name, "masking") for name in GAUSSIAN_DAES]
    other_kind_vs_pca = {name: versus(name, pca, "masking") for name in GAUSSIAN_DAES}
    gauss, masked = bench.scores("gaussian", sigma), bench.scores("masking", p)
    best_gaussian = max(GAUSSIAN_DAES, key=lambda name: _mean(masked[name]))
    weakest_gaussian = min(GAUSSIAN_DAES, key=lambda name: _mean(gauss[name]))
    for key, value in {
        "psnr_noisy": _mean(gauss[NOISY]),
        "dae_psnr": _mean(gauss[GAUSS]),
        "conv_psnr": _mean(gauss[CONV]),
        "dae_gain": shown_gap(gauss[GAUSS], gauss[NOISY]),
        "conv_gain": shown_gap(gauss[CONV], gauss[NOISY]),
        "pca_gain": shown_gap(gauss[pca], gauss[NOISY]),
        "plain_gain": shown_gap(gauss[PLAIN], gauss[NOISY]),
        "dae_vs_plain": shown_gap(gauss[GAUSS], gauss[PLAIN]),
        "conv_vs_dae": shown_gap(gauss[CONV], gauss[GAUSS]),
        "masking_cross": shown_gap(masked[MASKING], masked[best_gaussian]),
        "gauss_cross": shown_gap(gauss[weakest_gaussian], gauss[MASKING]),
        "level_sd_max": round_outward(max(mean_sd(v)[1] for at in (gauss, masked) for v in at.values()), 1, up=True),
        "dae_masked": _mean(masked[GAUSS]),
        "unclipped_masked": _mean(masked[UNCLIPPED]),
        "pca_masked": _mean(masked[pca]),
        "conv_below_pca": shown_gap(masked[pca], masked[CONV]),
    }.items():
        glue(key, value, ".1f")
    _evidence("ch2_level_evidence_gaussian", verdicts["gaussian"])
    _evidence("ch2_level_evidence_masking", verdicts["masking"])
    claim(all(c.verdict == "higher" for c in vs_baselines), "every Gaussian DAE scores above both baselines at σ = 0.2")
    claim(
        all(c.verdict == "higher" for c in vs_baselines + masking_vs_baselines),
        "on the noise it was trained for, each DAE scores above both baselines",
    )
    claim(vs_noisy[GAUSS].verdict == "higher", "the article's DAE scores above the noisy input at σ = 0.2")
    claim(
        all(c.verdict == "higher" for c in (dae_vs_plain, conv_vs_dae, conv_vs_unclipped)),
        "the Gaussian DAEs beat the plain AE, the conv DAE most",
    )
    claim(
        all(bench.compare("gaussian", sigma, CONV, name).verdict == "higher" for name in bench.methods if name != CONV),
        "at σ = 0.2 the conv DAE scores above every other method",
    )
    claim(
        vs_noisy[pca].verdict == "higher" and vs_noisy[PLAIN].verdict == "higher" and plain_vs_pca.verdict == "lower",
        "at σ = 0.2 PCA and the plain AE score above the noisy input, the plain AE below PCA",
    )
    # a regression bar from the stored full-budget run (three seeds: mean - 3 sd = 22.593 dB, rounded down)
    claim(min(gauss[CONV]) >= 22.59, "the conv DAE clears the regression bar at σ = 0.2")
    claim(
        all(c.verdict == "higher" for c in on_masking + on_gaussian),
        "at its level, each DAE beats those trained on the other kind",
    )
    claim(
        other_kind_vs_pca[GAUSS].verdict == "not decided"
        and other_kind_vs_pca[UNCLIPPED].verdict == "not decided"
        and other_kind_vs_pca[CONV].verdict == "lower"
        and masking_vs_pca.verdict == "lower",
        "at p = 0.3 neither MLP DAE trained on Gaussian noise is told apart from PCA and the conv DAE falls below it;"
        " at σ = 0.2 the masking DAE falls below PCA",
    )
    claim(vs_noisy[MASKING].verdict != "higher", "at σ = 0.2 the masking DAE does not score above the noisy input")


# --- the article's unclipped noise against the course's clipped noise -------------------------------------------------


def clipping(daes: Mapping[str, Sequence[Trained]], x_test: torch.Tensor, sigma: float, seeds: Sequence[int]) -> Table:
    """What clipping the Gaussian noise to [0, 1] changes (ch. 2): for the noisy input, and for the DAEs trained and
    tested on either kind, each seed's models on that seed's unclipped draw (clipped for the clipped column)."""
    raw = [test_draw(x_test, "gaussian", sigma, seed, clip=False) for seed in seeds]
    outside = float(((raw[0] < 0) | (raw[0] > 1)).float().mean())

    def scores(name: str | None, clip: bool) -> list[float]:
        inputs = [x.clamp(0, 1) if clip else x for x in raw]
        if name is None:  # the noisy input itself
            return [psnr(x, x_test) for x in inputs]
        return [psnr(reconstruct(e.model, x), x_test) for e, x in zip(daes[name], inputs, strict=True)]

    grid = {name: {clip: scores(name, clip) for clip in (False, True)} for name in (None, UNCLIPPED, GAUSS)}
    article, course = grid[UNCLIPPED][False], grid[GAUSS][True]
    verdicts = {
        "noisy input: clipped minus unclipped": compare(grid[None][True], grid[None][False]),
        "trained and tested on clipped noise minus on unclipped": compare(course, article),
        "tested on unclipped noise: trained on clipped minus on unclipped": compare(grid[GAUSS][False], article),
        "tested on clipped noise: trained on unclipped minus on clipped": compare(grid[UNCLIPPED][True], course),
    }
    clip_input, clip_vs_article, mismatch_on_raw, mismatch_on_clipped = verdicts.values()
    glue("outside", 100 * outside, ".0f")
    glue("outside_max", round_outward(float(torch.maximum(-raw[0], raw[0] - 1).max()), 2, up=True), ".2f")
    glue("black_share", 100 * float((x_test == 0).float().mean()), ".0f")
    glue("psnr_noisy_raw", _mean(grid[None][False]), ".1f")
    glue("clip_dae_gap", shown_gap(article, course), ".1f")
    glue("mismatch_cost", shown_gap(article, grid[GAUSS][False]), ".1f")
    _evidence("ch2_clip_evidence", verdicts)
    # the bar is the sentence's "about a third" (a third +- 10%), not a spread: one draw's share moves by ~0.0002
    claim(0.30 < outside < 0.37, "about a third of the pixels leave [0, 1]")
    claim(clip_input.verdict == "higher", "clipping alone raises the noisy input's PSNR")
    claim(clip_vs_article.verdict == "lower", "the DAE on unclipped noise scores higher than on clipped")
    claim(
        mismatch_on_raw.verdict == "lower" and mismatch_on_clipped.verdict != "lower",
        "a mismatch costs the model trained on clipped noise; the one trained on unclipped noise shows no decided cost",
    )
    names = {None: "noisy input", UNCLIPPED: "DAE trained on unclipped", GAUSS: "DAE trained on clipped"}
    return table(
        [
            {f"PSNR at σ = {sigma:g} [dB]": names[name], "unclipped test noise": _mean(row[False])}
            | {"clipped test noise": _mean(row[True])}
            for name, row in grid.items()
        ],
        default=".1f",
    )


# --- the sweeps: every method at every level --------------------------------------------------------------------------


def sweep_figure(bench: Bench, kind: str, trained_at: float) -> Figure:
    """Every method's test PSNR (mean of seeds) against the level of one kind of noise, from clean images (level 0;
    not the noisy input, which is exact there) up, with the DAEs' training level marked (ch. 2's sweep figures)."""
    clean = bench.clean()
    levels = list(bench.levels[kind])
    curves = {}
    for name in bench.methods:
        ys = [_mean(bench.scores(kind, v)[name]) for v in levels]
        curves[name] = (levels, ys) if name == NOISY else ([0.0, *levels], [_mean(clean[name]), *ys])
    xlabel = "σ, the std of the Gaussian noise" if kind == "gaussian" else "p, the share of pixels masked"
    return _figure_of_curves(curves, xlabel=xlabel, ylabel="test PSNR [dB], mean of seeds", mark=trained_at)


def sweep_table(bench: Bench) -> None:
    """Every method's test PSNR, mean of the seeds, on the clean test images and at every level of both sweeps
    (ch. 2): the numbers behind the sweep figures, glued for their folded block with the largest sd of the seeds."""
    clean = bench.clean()
    short = {NOISY: "input", PLAIN: "AE", UNCLIPPED: "DAE unclipped", MASKING: "masking DAE"}
    at_level = {"none": {NOISY: [], **clean}} | {
        f"{SYMBOL[kind]} = {level:g}": bench.scores(kind, level)
        for kind, levels in bench.levels.items()
        for level in levels
    }
    rows = [
        {"noise": noise} | {short.get(n, n): f"{_mean(v):.1f}" if v else "–" for n, v in at.items()}
        for noise, at in at_level.items()
    ]
    sds = [mean_sd(v)[1] for at in at_level.values() for v in at.values() if v]
    glue_markdown("ch2_sweep_table", table(rows).markdown())
    glue("sweep_sd_max", round_outward(max(sds), 1, up=True), ".1f")  # "at most"


def _levels(found: Sequence[float]) -> str:
    return ", ".join(f"{v:g}" for v in found)


def level_rows(bench: Bench, pairs: Sequence[tuple[str, str, str]]) -> list[dict[str, str]]:
    """For each (kind, a, b), the levels of the sweep at which a is decided above b, those at which it is decided
    below, and those at which the rule does not decide: the sweep's verdicts as one table."""
    rows = []
    for kind, a, b in pairs:
        found = bench.by_level(kind, a, b)
        rows.append(
            {"method": LABEL.get(a, a), "against": LABEL.get(b, b)}
            | {"above at": _levels(found["higher"]), "below at": _levels(found["lower"])}
            | {"not told apart at": _levels(found["not decided"])}
        )
    return rows


def sweep_verdicts(bench: Bench, sigma: float, p: float) -> None:
    """The sweeps' verdicts (ch. 2): where the noisy input is best, where the conv DAE loses its lead, where the
    plain AE and PCA trade places, where the masking DAE wins. Glues the numbers the prose quotes and the evidence
    tables of its folded block."""
    sigmas, probs, others = bench.levels["gaussian"], bench.levels["masking"], [n for n in bench.methods if n != NOISY]
    lowest, highest, pca = min(sigmas), max(sigmas), bench.pca
    clean = bench.clean()
    best = max(clean, key=lambda name: _mean(clean[name]))
    glue("clean_best", _mean(clean[best]), ".1f")
    glue("clean_best_name", LABEL.get(best, best))
    glue("noisy_lowest", _mean(bench.scores("gaussian", lowest)[NOISY]), ".1f")
    glue("plain_clean", _mean(clean[PLAIN]), ".1f")
    glue("pca_clean", _mean(clean[pca]), ".1f")

    def drop(name: str) -> list[float]:  # each seed's loss of PSNR from the training level to the top sigma
        top, own = bench.scores("gaussian", highest)[name], bench.scores("gaussian", sigma)[name]
        return [a - b for a, b in zip(own, top, strict=True)]

    glue("conv_drop", _mean(drop(CONV)), ".1f")
    glue("mlp_drop", _mean(drop(GAUSS)), ".1f")
    top = bench.scores("gaussian", highest)
    fall = {name: [a - b for a, b in zip(clean[name], top[name], strict=True)] for name in (PLAIN, pca)}
    glue("plain_fall", shown_gap(clean[PLAIN], top[PLAIN]), ".1f")
    glue("pca_fall", shown_gap(clean[pca], top[pca]), ".1f")
    claim(
        compare(fall[PLAIN], fall[pca]).verdict == "higher",
        "from clean images to the highest σ the plain AE's PSNR falls more than PCA's",
    )
    pairs = [(kind, name, NOISY) for kind in bench.levels for name in others]
    pairs += [("gaussian", CONV, GAUSS), ("gaussian", UNCLIPPED, GAUSS), ("gaussian", PLAIN, pca)]
    pairs += [(kind, CONV, base) for kind in bench.levels for base in (pca, PLAIN)]
    pairs += [("masking", MASKING, rival) for rival in others if rival != MASKING]
    pairs += [("gaussian", name, MASKING) for name in GAUSSIAN_DAES]
    for kind in bench.levels:
        found = level_rows(bench, [pair for pair in pairs if pair[0] == kind])
        glue_markdown(f"ch2_sweep_evidence_{kind}", table(found).markdown())
    conv_drop = compare(drop(CONV), drop(GAUSS))
    _evidence("ch2_drop_evidence", {f"PSNR lost from σ = {sigma:g} to {highest:g}, conv DAE minus DAE": conv_drop})
    claim(
        max(max(v) for v in clean.values()) < min(bench.scores("gaussian", lowest)[NOISY]),
        "on clean images every method scores below the noisy input at the lowest σ",
    )
    claim(
        all(lowest in bench.by_level("gaussian", name, NOISY)["lower"] for name in others),
        "at the lowest σ every method scores below the noisy input",
    )
    mlp_above, conv_above = (bench.by_level("gaussian", n, NOISY)["higher"] for n in (GAUSS, CONV))
    claim(
        mlp_above == [s for s in sigmas if s >= sigma] and conv_above == [s for s in sigmas if s > lowest],
        "the article's DAE scores above the noisy input from σ = 0.2 up, the conv DAE from σ = 0.1 up",
    )
    rivals = [n for n in others if n != CONV]
    claim(
        all(s in bench.above_all("gaussian", CONV, rivals) for s in sigmas if s <= sigma),
        "up to σ = 0.2 the conv DAE scores above every other model",
    )
    claim(
        conv_drop.verdict == "higher",
        "from σ = 0.2 to the highest σ the conv DAE loses more PSNR than the article's DAE",
    )
    claim(
        all(s in bench.by_level("gaussian", CONV, GAUSS)["lower"] for s in sorted(sigmas)[-2:])
        and all(highest in bench.by_level("gaussian", CONV, base)["lower"] for base in (pca, PLAIN)),
        "at the two highest σ the conv DAE scores below the article's DAE, at the highest below PCA and the plain AE",
    )
    claim(
        compare(clean[PLAIN], clean[pca]).verdict == "higher"
        and bench.by_level("gaussian", PLAIN, pca)["lower"] == [s for s in sigmas if s >= sigma],
        "the plain AE scores above PCA on clean images, below it from σ = 0.2 up",
    )
    claim(
        all(bench.by_level("masking", name, NOISY)["higher"] == list(probs) for name in others),
        "every method scores above the masked input at every p",
    )
    masking_best = bench.above_all("masking", MASKING, [n for n in bench.methods if n != MASKING])
    claim(
        all(q in masking_best for q in probs if q >= 0.2),
        "from p = 0.2 up the masking DAE scores above every other method",
    )
    claim(
        all(min(probs) in bench.by_level("masking", MASKING, name)["lower"] for name in [PLAIN, *GAUSSIAN_DAES]),
        "at the lowest p the masking DAE is below the plain AE and each Gaussian DAE",
    )
    gauss_kind = [s for s in sigmas if all(s in bench.above_all("gaussian", g, [MASKING]) for g in GAUSSIAN_DAES)]
    masking_kind = bench.above_all("masking", MASKING, GAUSSIAN_DAES)
    claim(
        gauss_kind == list(sigmas) and all(q in masking_kind for q in probs if q >= p),
        "on its own kind of noise, at and above its training level, each kind of DAE scores above the DAEs trained"
        " on the other kind",
    )


# --- why the masking DAE's PSNR rises with p up to its own level ------------------------------------------------------


def masking_brightness(entries: Sequence[Trained], bench: Bench, p: float) -> Table:
    """How bright the masking DAE's outputs are, against the clean test images, on clean images and at every q of
    the sweep (ch. 2), beside the rule (1 - q) / (1 - p): what a DAE returns that brightens every input by 1 / (1 - p),
    the factor that undoes masking at its own p on average. It follows the rule from p up and brightens less below,
    yet too much, so its PSNR rises with q up to its own level. Glues the numbers the prose quotes and the evidence
    table of its folded block; returns the table in view."""
    x_test = bench.x_test
    mean_clean = float(x_test.mean())
    inputs = {0.0: [x_test] * len(bench.seeds)} | {
        q: [test_draw(x_test, "masking", q, seed) for seed in bench.seeds] for q in bench.levels["masking"]
    }
    ratio = {
        q: [float(reconstruct(e.model, x).mean()) / mean_clean for e, x in zip(entries, xs, strict=True)]
        for q, xs in inputs.items()
    }
    rule = {q: (1 - q) / (1 - p) for q in ratio}
    at_clean = bench.clean()[MASKING]
    own_psnr = {q: at_clean if q == 0 else bench.scores("masking", q)[MASKING] for q in ratio}
    glue("masking_clean_psnr", _mean(at_clean), ".1f")
    glue("masking_own_psnr", _mean(own_psnr[p]), ".1f")
    glue("masking_excess", 100 * (_mean(ratio[0.0]) - 1), ".0f")
    glue("ratio_clean", _mean(ratio[0.0]), ".3f")
    glue("rule_clean", rule[0.0], ".3f")
    evidence = [
        {"p": f"{q:g}", "masking DAE's PSNR [dB]": pm(own_psnr[q])}
        | {"its output's mean grey level / the clean images'": pm(ratio[q])}
        for q in ratio
    ]
    glue_markdown("ch2_brightness_evidence", table(evidence).markdown())
    lightest = bench.scores("masking", min(bench.levels["masking"]))[MASKING]
    claim(
        compare(own_psnr[p], at_clean).verdict == "higher" and compare(own_psnr[p], lightest).verdict == "higher",
        "the masking DAE scores higher at its own p than on clean images or at the lowest p",
    )
    claim(compare(ratio[0.0], [1.0]).verdict == "higher", "on clean images the masking DAE's outputs are too bright")
    claim(
        all(abs(r - 1) < 0.03 for r in ratio[p]), "at its own p the masking DAE's outputs are as bright as the images"
    )
    means = {q: _mean(ratio[q]) for q in sorted(ratio)}
    shown_gaps = [abs(round(means[q], 3) - round(rule[q], 3)) for q in means if q >= p]  # as the table shows them
    glue("brightness_gap", max(shown_gaps), ".3f")
    claim(
        all(a > b for a, b in zip(list(means.values())[:-1], list(means.values())[1:], strict=True)),
        "the masking DAE's outputs grow darker as p grows",
    )
    claim(all(max(ratio[q]) < 1 for q in ratio if q > p), "above its own p the masking DAE's outputs are too dark")
    claim(
        all(abs(means[q] - rule[q]) < BRIGHTNESS_FIT for q in means if q >= p),
        "from its own p up the masking DAE's brightness follows the rule (1 - p) / 0.7",
    )
    claim(
        all(1 < means[q] < rule[q] for q in means if q < p),
        "below its own p the masking DAE brightens less than the rule, but still too much",
    )
    rows = [
        {"p": f"{q:g}", "PSNR [dB]": f"{_mean(own_psnr[q]):.1f}", "output / clean brightness": f"{means[q]:.3f}"}
        | {f"(1 − p) / {1 - p:g}": f"{rule[q]:.3f}"}
        for q in means
    ]
    return table(rows)


# --- the linear-probe exercise ----------------------------------------------------------------------------------------


def probe_verdict(dae_drop: Sequence[float], plain_drop: Sequence[float]) -> None:
    """The linear-probe exercise's answer (ch. 2): does masking cost the masking DAE's codes less accuracy than the
    plain AE's, seed by seed? Glues the two drops, in points of accuracy, that its solution quotes."""
    glue("probe_drop_plain", 100 * _mean(plain_drop), ".1f")
    glue("probe_drop_dae", 100 * _mean(dae_drop), ".1f")
    claim(compare(dae_drop, plain_drop).verdict == "lower", "masking costs the DAE's codes less than the plain AE's")
