"""What the book shows of its measurements: small tables, mean ± sd over seeds, comparisons that say "not decided"
when the seeds disagree, and claims that stop the book when its numbers no longer support a sentence.
"""

from __future__ import annotations

import functools
import html
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from typing import Any

from aecourse.runtime import budget, retrain_mode


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
    return table([{"field": f.name, "value": repr(getattr(config, f.name))} for f in fields(config)])


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


ALPHA = 0.05  # how often the rule may call a difference with no effect behind it "decided"


@functools.cache
def t_critical(n: int) -> float:
    """The two-sided Student-t bound at ALPHA for the mean of n paired differences (n - 1 degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(1 - ALPHA / 2, n - 1))


@dataclass(frozen=True)
class Comparison:
    """a - b over paired seeds: mean ± sd of the differences, and whether the sign is decided."""

    mean: float
    sd: float
    n: int
    agree: bool  # every seed's difference has the sign of the mean

    @property
    def decided(self) -> bool:
        """Every seed on one side and a paired t-test that rejects "no difference" at ALPHA: with no effect and
        normal seed noise, 5% of comparisons are decided, 2.5% each way (tests/test_report.py measures it)."""
        if self.n < 2 or not self.agree:
            return False
        return self.sd == 0 or abs(self.mean) / (self.sd / math.sqrt(self.n)) > t_critical(self.n)

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
    if budget() == "full" and retrain_mode() != "missing":
        raise ClaimError(f"the book says {sentence!r}, and the numbers of this run do not support it.")
    print(f"note: at the {budget()} budget this run does not support {sentence!r}")
