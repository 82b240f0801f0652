"""What the book shows of its measurements: small tables, mean ± sd over seeds, comparisons that say "not decided"
when the seeds disagree, and claims that stop the book when its numbers no longer support a sentence.
"""

from __future__ import annotations

import html
import math
import os
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aecourse.runtime import budget


def _cell(value: Any, spec: str) -> str:
    if isinstance(value, float):
        return "–" if math.isnan(value) else format(value, spec)
    return str(value)


@dataclass
class Table:
    """Rows of named cells, shown as an HTML table in a notebook and as aligned text elsewhere."""

    rows: list[dict[str, Any]]
    formats: dict[str, str]
    default: str = ".3g"

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        columns = list(dict.fromkeys(key for row in self.rows for key in row))
        cells = [[_cell(row.get(c, ""), self.formats.get(c, self.default)) for c in columns] for row in self.rows]
        return columns, cells

    def _repr_html_(self) -> str:
        columns, cells = self._cells()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in cells)
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def __repr__(self) -> str:
        columns, cells = self._cells()
        widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
        lines = ["  ".join(c.rjust(w) for c, w in zip(columns, widths, strict=True))]
        lines += ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in cells]
        return "\n".join(lines)


def table(
    rows: Sequence[Mapping[str, Any]], *, formats: Mapping[str, str] | None = None, default: str = ".3g"
) -> Table:
    """A table of `rows` (one mapping per row, column name -> value); floats formatted by `formats[column]`."""
    return Table([dict(row) for row in rows], dict(formats or {}), default)


def glue(name: str, value: Any) -> None:
    """Bind a number (or a word) of a chapter to `name` for its prose ({glue:text}`name`), through myst-nb's glue
    when the book's tools are installed; on Colab, without them, there is no prose to fill and nothing happens."""
    try:
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, value, display=False)


def glue_markdown(name: str, text: str) -> None:
    """Bind a sentence that holds Markdown (commands in backticks) to `name`, for prose that pastes it with
    {glue:md}`name`: pasted as plain text, a command's `--` would become a dash and its backticks would show."""
    try:
        from IPython.display import Markdown
        from myst_nb import glue as myst_glue
    except ImportError:
        return
    myst_glue(name, Markdown(text), display=False)


def config_table(config: Any) -> Table:
    """A chapter's config dataclass as a two-column table, one field a row (a one-line repr runs off the page)."""
    import dataclasses

    return table([{"field": f.name, "value": repr(getattr(config, f.name))} for f in dataclasses.fields(config)])


def _minutes(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "–"
    whole = round(seconds)  # rounded first: 59.7 s is "1 min 00 s", not "0 min 60 s"
    return f"{whole // 60} min {whole % 60:02d} s"


def _runs(count: int) -> str:
    return "one run" if count == 1 else f"the median of {count} runs"


def timing_table(timings: str = "timings.json", retrain_timings: str = "retrain_timings.json") -> Table:
    """The intro's table: per chapter, the measured time to read-execute it (`tools/time_book.py` writes
    `timings`, the median over its runs), the training time of its models (their manifests) on each device seen,
    and, where one was measured, the wall time of retraining the chapter from nothing (`make checkpoints
    FROM_NOTHING=1` writes `retrain_timings`); glues `timing_source`, the sentence saying where the numbers come
    from."""
    import json
    import statistics
    from pathlib import Path

    from aecourse.checkpoints import SHARED_MODELS, manifests

    path = Path(timings)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path.resolve()} is missing: it holds the measured read-execute time of each chapter. Write it with "
            "`python tools/time_book.py` (on a quiet machine), then re-execute this notebook."
        )
    measured = json.loads(path.read_text())
    retrain_path = Path(retrain_timings)
    from_nothing = json.loads(retrain_path.read_text())["chapters"] if retrain_path.is_file() else {}
    training: dict[tuple[str, str], float] = {}
    for manifest in manifests():
        key = (manifest["name"].split("/")[0], manifest["device"].split(":")[0])
        training[key] = training.get(key, 0.0) + manifest["training_seconds"]
    devices = sorted({device for _, device in training})
    retrain_devices = sorted({run["device"] for run in from_nothing.values()})
    read_execute, nan = "read-execute (stored models)", math.nan

    def training_row(group: str) -> dict[str, float]:
        row = {}
        for device in devices:
            row[f"training, sum of manifests ({device})"] = training.get((group, device), math.nan)
        for device in retrain_devices:
            run = from_nothing.get(group, {})
            row[f"make checkpoints from nothing ({device})"] = run["seconds"] if run.get("device") == device else nan
        return row

    chapters = {
        nb: {read_execute: statistics.median(runs)} | training_row(nb) for nb, runs in measured["seconds"].items()
    }
    # Models no chapter owns (the classifier): trained once for the book, loaded within the chapters' read-execute.
    shared_groups = sorted({group for group, _ in training} & set(SHARED_MODELS))
    shared = {group: {read_execute: nan} | training_row(group) for group in shared_groups}
    columns = list(next(iter(chapters.values())))
    for device in set(devices) & set(retrain_devices):
        both = [
            (row[f"training, sum of manifests ({device})"], row[f"make checkpoints from nothing ({device})"])
            for row in (chapters | shared).values()
        ]
        claim(  # the intro says so
            all(summed > alone for summed, alone in both if math.isfinite(alone)),
            "the manifests' sum is longer than the same models take alone",
        )
    # The total of a column; NaN (a dash) where some chapter or shared model has no time in it.
    total = {c: sum(row[c] for row in chapters.values()) for c in columns}
    for column in columns[1:]:
        total[column] += sum(row[column] for row in shared.values())
    rows = [{"chapter": nb} | {c: _minutes(row[c]) for c in columns} for nb, row in chapters.items()]
    rows += [
        {"chapter": f"{group} (shared)"} | {c: _minutes(row[c]) if c != read_execute else "" for c in columns}
        for group, row in shared.items()
    ]
    rows.append({"chapter": "whole book"} | {c: _minutes(total[c]) for c in columns})
    gpu = (
        ""
        if "cuda" in devices + retrain_devices
        else " No GPU training time has been measured: no GPU was at hand where these checkpoints were trained, so "
        "the CPU runs are the source."
    )
    if from_nothing:
        first = from_nothing[min(from_nothing)]  # the machine and torch of the first chapter measured
        dates = ", ".join(sorted({run["date"] for run in from_nothing.values()}))
        rest = [group for group in [*chapters, *shared] if group not in from_nothing]
        retrained = (
            f" From nothing: the wall time of the training pass of `make checkpoints NB=book/<chapter>.ipynb "
            f"FROM_NOTHING=1` (for a shared model, `NB=<model>`), which sets the stored checkpoints aside and trains "
            f"every model again with nothing else running, on {first['machine']}, torch {first['torch']}, {dates}"
            + (f"; not measured yet for {', '.join(rest)}." if rest else ".")
        )
    else:
        retrained = ""
    glue_markdown(
        "timing_source",
        f"Read-execute: {_runs(len(next(iter(measured['seconds'].values()))))} of "
        f"`{measured['command']}` on {measured['machine']}, {measured['date']}. Sum of manifests: the training "
        f"seconds recorded in each checkpoint's manifest by `make checkpoints`, where models often trained two or "
        f"three at a time on shared cores.{_shared_sentence(shared)}{retrained}{gpu}",
    )
    return table(rows)


def _shared_sentence(shared: dict[str, dict[str, float]]) -> str:
    """What the rows of shared models mean: no chapter owns them, and their load time is in the chapters' rows."""
    if not shared:
        return ""
    names = ", ".join(f"`{group}`" for group in shared)
    alone = ", ".join(f"`make checkpoints NB={group}`" for group in shared)
    return (
        f" Shared: {names}, trained once for the whole book, first by `make checkpoints` (or alone by {alone}); "
        "the chapters that use it load it within their own read-execute time."
    )


def training_table(models: Iterable[Any]) -> Table:
    """One row per trained model (aecourse.checkpoints.Trained): its name, seed, epochs, where and how long it
    trained, and its final test loss, as the manifest of its checkpoint records them."""
    rows = []
    for entry in models:
        manifest = entry.manifest
        row = {"model": manifest["name"].split("/")[-1], "seed": manifest["seed"], "epochs": manifest["epochs"]}
        row["device"] = manifest.get("device", "")
        row["training [s]"] = manifest.get("training_seconds", math.nan)
        row["test loss"] = entry.history.last.get("test_loss", math.nan)
        rows.append(row)
    return table(rows, formats={"training [s]": ".0f", "test loss": ".4g"})


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds; the sd is NaN for a single seed (no spread is known)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_sd needs at least one value.")
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def pm(values: Sequence[float], spec: str = ".2f") -> str:
    """'mean ± sd' over seeds, or the single value when there is one seed."""
    mean, sd = mean_sd(values)
    return format(mean, spec) if math.isnan(sd) else f"{mean:{spec}} ± {sd:{spec}}"


@dataclass(frozen=True)
class Comparison:
    """a - b over paired seeds: mean ± sd of the differences, and whether the sign is decided."""

    mean: float
    sd: float
    n: int
    agree: bool  # every seed's difference has the sign of the mean

    @property
    def decided(self) -> bool:
        """Two seeds or more, every seed on one side, and mean ± sd not crossing zero."""
        return self.n >= 2 and self.agree and abs(self.mean) > self.sd

    @property
    def verdict(self) -> str:
        """'higher' or 'lower' (a against b) when decided, else 'not decided'."""
        if not self.decided:
            return "not decided"
        return "higher" if self.mean > 0 else "lower"

    def __str__(self) -> str:
        spread = "" if math.isnan(self.sd) else f" ± {self.sd:.3g}"
        return f"{self.mean:+.3g}{spread} over {self.n} seed{'s' * (self.n != 1)}: {self.verdict}"


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Compare two measurements seed by seed (a[i] and b[i] from the same seed, or b of length 1 for a fixed
    reference such as PCA or the noisy input)."""
    if len(b) == 1:
        b = list(b) * len(a)
    if len(a) != len(b) or not a:
        raise ValueError(f"compare needs paired values, one per seed; got {len(a)} and {len(b)}.")
    differences = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    mean, sd = mean_sd(differences)
    agree = all(d > 0 for d in differences) or all(d < 0 for d in differences)
    return Comparison(mean, sd, len(differences), agree)


class ClaimError(AssertionError):
    """A sentence of the book that its own numbers no longer support."""


def claim(holds: bool, sentence: str) -> None:
    """Guard a sentence of the book: at the full budget, whose numbers the book prints, a claim that does not hold
    stops the notebook; at the short and smoke budgets it is only reported, since few epochs decide little, and so
    it is while `make checkpoints` trains (its second pass, on the load path, checks every claim)."""
    if holds:
        return
    if budget() == "full" and os.environ.get("AECOURSE_CHECKPOINTS", "").strip().lower() != "update":
        raise ClaimError(f"the book says {sentence!r}, and the numbers of this run do not support it.")
    print(f"note: at the {budget()} budget this run does not support {sentence!r}")


def _holds(comparison: Comparison, expected: str) -> str:
    """'holds' when the comparison is decided in the expected direction, 'does not hold' when decided the other
    way, 'not decided' otherwise."""
    if not comparison.decided:
        return "not decided"
    return "holds" if comparison.verdict == expected else "does not hold"


@dataclass(frozen=True)
class VaeGanMeasurements:
    """What chapter 4 measures of the VAE and the GAN: one value per seed, runs of the same index sharing a seed
    (model keys "VAE", "GAN", and "AE" where the autoencoder joins)."""

    fid: Mapping[str, Sequence[float]]  # 10,000 samples of the final weights against the test set
    fid_recent: Mapping[str, Sequence[float]]  # best tracked distance over the last epochs
    fid_real: float  # real training images against the test set: what a perfect generator would score
    edges: Mapping[str, Sequence[float]]
    edges_real: float
    diverged: Mapping[str, Sequence[Sequence[str]]]  # why each run broke down, if it did
    oscillation: Mapping[str, Sequence[float]]  # mean epoch-to-epoch change of the tracked distance, relative
    gradient_drop: Mapping[str, Sequence[float]]  # late over early gradient norm: "VAE", "GAN minimax", "GAN"
    tv: Mapping[str, Sequence[float]]  # class histogram's distance from uniform
    tv_real: float
    missing: Mapping[str, Sequence[Sequence[int]]]  # classes a run's samples leave (nearly) empty
    jump: Mapping[str, Sequence[float]]  # mean jump ratio of straight latent paths
    # rank correlation of a loss with the tracked distance over epochs: "VAE", "GAN" (generator), "GAN
    # discriminator", and optionally "GAN without dropout" (chapter 4's ablation, generator loss)
    loss_rho: Mapping[str, Sequence[float]]
    sampling_ms: Mapping[str, Sequence[float]]  # repeated timings of 10,000 samples


def vae_gan_verdicts(m: VaeGanMeasurements) -> Table:
    """The article's VAE-vs-GAN claims, each with what chapter 4 measured and a verdict computed from it: 'holds',
    'does not hold' or 'not decided' by the seed rule of `compare`, or 'not measured' with the reason."""
    rows = []

    def row(claim_text: str, measured: str, verdict: str) -> None:
        rows.append({"claim (article)": claim_text, "what we measured": measured, "verdict": verdict})

    not_measured = "not measured: "
    row(
        "Purpose: the VAE learns a probabilistic latent space and generates; the GAN generates realistic data",
        "a statement of aims",
        not_measured + "nothing to measure",
    )
    sharper = _holds(compare(m.fid["GAN"], m.fid["VAE"]), "lower")
    blurry = _holds(compare(m.edges["VAE"], [m.edges_real]), "lower")
    row(
        "Image quality: VAE medium and blurry; GAN very high, sharp and realistic",
        f"Fréchet distance of 10,000 samples VAE {pm(m.fid['VAE'], '.1f')}, GAN {pm(m.fid['GAN'], '.1f')} (real "
        f"images {m.fid_real:.2f}; best of the last epochs VAE {pm(m.fid_recent['VAE'], '.1f')}, GAN "
        f"{pm(m.fid_recent['GAN'], '.1f')}); edge energy VAE {pm(m.edges['VAE'], '.4f')}, GAN "
        f"{pm(m.edges['GAN'], '.4f')}, real {m.edges_real:.4f}",
        f"GAN closer to the data: {sharper}; VAE blurrier than real images: {blurry}",
    )
    broke = {name: sum(bool(r) for r in runs) for name, runs in m.diverged.items()}
    calmer = _holds(compare(m.oscillation["GAN"], m.oscillation["VAE"]), "higher")
    stable = "does not hold" if broke["VAE"] > broke["GAN"] else ("holds" if broke["GAN"] > broke["VAE"] else calmer)
    row(
        "Training stability: the VAE trains stably; the GAN is hard to balance and may not converge",
        f"runs that diverged: VAE {broke['VAE']} of {len(m.diverged['VAE'])}, GAN {broke['GAN']} of "
        f"{len(m.diverged['GAN'])}; epoch-to-epoch change of the Fréchet distance near the end VAE "
        f"{pm(m.oscillation['VAE'], '.3f')}, GAN {pm(m.oscillation['GAN'], '.3f')}",
        stable,
    )
    minimax = _holds(compare(m.gradient_drop["GAN minimax"], m.gradient_drop["VAE"]), "lower")
    non_saturating = _holds(compare(m.gradient_drop["GAN"], m.gradient_drop["VAE"]), "lower")
    row(
        "Vanishing gradients: fewer for the VAE",
        f"gradient norm reaching the decoder / generator after early training, relative to its start: VAE "
        f"{pm(m.gradient_drop['VAE'], '.3f')}, GAN with the minimax loss {pm(m.gradient_drop['GAN minimax'], '.3g')}, "
        f"with the non-saturating loss used here {pm(m.gradient_drop['GAN'], '.3f')}",
        f"against the minimax loss: {minimax}; against the non-saturating loss: {non_saturating}",
    )
    smoother = _holds(compare(m.jump["GAN"], m.jump["VAE"]), "higher")
    row(
        "Latent smoothness: the VAE's latent space is very smooth; the GAN's not necessarily",
        f"jump ratio of 100 straight paths (1 = even steps) VAE {pm(m.jump['VAE'], '.2f')}, GAN "
        f"{pm(m.jump['GAN'], '.2f')}, AE {pm(m.jump['AE'], '.2f')}",
        f"{smoother}; the AE against the VAE: {compare(m.jump['AE'], m.jump['VAE']).verdict}",
    )
    row(
        "Theory: the VAE's is clear (variational inference); the GAN's framework depends on the implementation",
        "a statement about the literature",
        not_measured + "a claim about theory, not about a run",
    )

    def interpretable(generator_runs: Sequence[float]) -> str:
        """The loss 'follows' the samples on a run when its rank correlation with the distance exceeds 0.5."""
        vae_follows, gan_follows = min(m.loss_rho["VAE"]) > 0.5, min(generator_runs) > 0.5
        return "holds" if vae_follows and not gan_follows else ("does not hold" if gan_follows else "not decided")

    ablation = m.loss_rho.get("GAN without dropout")  # chapter 4's same GAN trained without dropout in D
    row(
        "Loss meaning: the VAE's loss is interpretable; the GAN's adversarial loss is ambiguous",
        f"rank correlation of the loss with the Fréchet distance over epochs: VAE -ELBO {pm(m.loss_rho['VAE'])}, "
        f"GAN generator loss {pm(m.loss_rho['GAN'])}"
        + ("" if ablation is None else f" (runs without dropout: {', '.join(f'{r:.2f}' for r in ablation)})"),
        interpretable(m.loss_rho["GAN"])
        + (
            ""
            if ablation is None
            else f"; counting the runs without dropout: {interpretable([*m.loss_rho['GAN'], *ablation])}"
        ),
    )
    ratio = mean_sd(m.sampling_ms["GAN"])[0] / mean_sd(m.sampling_ms["VAE"])[0]
    speed = "holds" if ratio > 1.5 else ("does not hold" if ratio > 2 / 3 else "not decided")
    row(
        "Sampling speed: the VAE is fast; the GAN needs a generator pass per sample",
        f"10,000 samples: VAE {pm(m.sampling_ms['VAE'], '.0f')} ms, GAN {pm(m.sampling_ms['GAN'], '.0f')} ms "
        f"(ratio {ratio:.2f}); both are one pass of the same network",
        speed,
    )
    covers = _holds(compare(m.tv["GAN"], m.tv["VAE"]), "higher")
    dropped = {name: sum(len(r) for r in runs) for name, runs in m.missing.items()}
    row(
        "Mode coverage: the VAE is diverse but less refined; the GAN risks mode collapse",
        f"class histogram's distance from uniform VAE {pm(m.tv['VAE'], '.3f')}, GAN {pm(m.tv['GAN'], '.3f')}, "
        f"real {m.tv_real:.3f}; classes left below 1% of the samples, all runs: VAE {dropped['VAE']}, GAN "
        f"{dropped['GAN']}",
        covers,
    )
    for claim_text, reason in (
        (
            "Applications: the VAE for features, anomaly detection, interpolation; the GAN mainly for image generation",
            "a survey of uses (chapters 1 and 3 measure the VAE's)",
        ),
        ("Use with supervised learning: the VAE yes (semi-supervised VAE); the GAN limited", "no labels are used here"),
        (
            "When to choose: the VAE for features and latent exploration; the GAN for high-quality synthesis",
            "advice that follows from the rows above",
        ),
        (
            "Requirements: the VAE when stability and guarantees matter; the GAN when visual quality does",
            "advice that follows from the rows above",
        ),
        (
            "Implementation difficulty: the VAE fairly easy; the GAN hard (needs tuning)",
            "tuning effort was not measured",
        ),
    ):
        row(claim_text, "–", not_measured + reason)
    return table(rows)
