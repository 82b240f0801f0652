"""What the book shows of its measurements: small tables, mean ± sd over seeds, comparisons that say "not decided"
when the seeds disagree, glued values stored as the text the page shows, and claims that stop the book when its
numbers no longer support a sentence."""

from __future__ import annotations

import dataclasses
import functools
import html
import math
import numbers
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from aecourse.runtime import budget, retrain_mode


def _decimals(value: float, spec: str) -> int | None:
    """The decimals `spec` gives `value` ("g": its significant digits, at most 6); None for other specs (",")."""
    match = re.fullmatch(r"\.(\d+)([fg]?)", spec)
    if match is None or match[2] == "f" or not value or not math.isfinite(value):
        return match and (int(match[1]) if match[2] == "f" else 0)
    return min(6, max(0, int(match[1]) - 1 - math.floor(math.log10(abs(value)))))


class Spread(str):
    """'mean ± sd': the sd to two significant digits when it begins with 1 or 2, else one, the mean to the same
    place; `spec` gives the decimals where there is no spread (one seed, no sd; seeds that agree exactly, '± 0',
    exact, never rounded)."""

    def __new__(cls, mean: float, sd: float, spec: str = ".2f", decimals: int | None = None) -> Spread:
        if decimals is None:  # 10**first: the place of the sd's first significant digit (NaN > 0 is False)
            first = math.floor(math.log10(sd)) if sd > 0 else 0
            decimals = max(0, (sd / 10**first < 3) - first) if sd > 0 else _decimals(mean, spec) or 0
        sd_text = "" if math.isnan(sd) else f" ± {sd:.{decimals}f}" if sd else " ± 0"
        text = super().__new__(cls, f"{mean:.{decimals}f}{sd_text}")
        text.mean, text.sd, text.decimals = mean, sd, decimals
        return text


def _column(cells: list[Any], spec: str) -> list[str]:
    """A column's cells: its plain numbers to one number of decimals, the most any of them needs; a mean ± sd keeps
    the decimals its spread supports (335 ± 15 beside 68.6 ± 2.1, not 334.85 ± 15.37)."""
    most = max((n for v in cells if isinstance(v, float) and (n := _decimals(v, spec)) is not None), default=None)
    spec = spec if most is None or _decimals(0.0, spec) is None else f".{most}f"
    return [("–" if math.isnan(v) else format(v, spec)) if isinstance(v, float) else str(v) for v in cells]


@dataclasses.dataclass
class Table:
    """Rows (column name -> value) as an HTML table in a notebook, aligned text elsewhere; floats by `formats`; a
    `caption` says what the table shows, above it (the HTML's <caption>)."""

    rows: Sequence[Mapping[str, Any]]
    formats: Mapping[str, str] = dataclasses.field(default_factory=dict)
    default: str = ".3g"
    caption: str = ""

    def _cells(self) -> tuple[list[str], list[list[str]]]:
        keys = dict.fromkeys(key for row in self.rows for key in row)  # a column with no value (NaN != NaN) is left out
        columns = [c for c in keys if any(row.get(c) not in ("", None) and row[c] == row[c] for row in self.rows)]
        by_column = [_column([row.get(c, "") for row in self.rows], self.formats.get(c, self.default)) for c in columns]
        return columns, [list(cells) for cells in zip(*by_column, strict=True)]

    def _repr_html_(self) -> str:
        columns, cells = self._cells()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in cells)
        caption = f"<caption>{html.escape(self.caption)}</caption>" if self.caption else ""
        return f"<table>{caption}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"

    def markdown(self) -> str:
        """The table in Markdown, for a folded evidence block ({glue:md}): the HTML book and Colab both render it."""
        columns, cells = self._cells()

        def row(values: Sequence[str]) -> str:
            return "| " + " | ".join(v.replace("|", "\\|") for v in values) + " |"

        return "\n".join([row(columns), row(["---"] * len(columns)), *(row(r) for r in cells)])

    def __repr__(self) -> str:
        columns, cells = self._cells()
        widths = [max(map(len, column)) for column in zip(columns, *cells, strict=True)]
        lines = ["  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)) for row in [columns, *cells]]
        return "\n".join([self.caption] * bool(self.caption) + lines)


table = Table  # table(rows, formats={...}): what the chapters call


GLUE_PREFIX = "application/papermill.record/"  # myst-nb's: a record the book's pages paste, not show


def glued_text(value: Any, fmt: str | None = None) -> str:
    """The text a glued value shows: `value` formatted by `fmt`; a float must say how it is shown (".3f"), so that
    the tests compare the digits a reader reads, not the 17th, which differs from one CPU to another."""
    if isinstance(value, bool):
        raise TypeError("glue: a bool is not a number of the prose; glue the word the page should show.")
    if fmt is not None:
        return format(value, fmt)
    floating = isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral)  # NumPy's floats too
    if floating or (callable(getattr(value, "is_floating_point", None)) and value.is_floating_point()):
        raise TypeError(
            f"glue: the float {float(value)!r} needs the format the page shows it in, e.g. glue(name, value, '.3f'): "
            "what is stored is what a reader reads."
        )
    return str(value)


def glue(name: str, value: Any, fmt: str | None = None, *, markdown: bool = False) -> None:
    """Bind a number, word or sentence of a chapter to `name` for its prose ({glue:text}`name`, or {glue:md}`name`
    with `markdown=True`), stored as the text the page shows (`glued_text`). The book's pages paste it; in Jupyter
    and on Colab the cell's output shows `name: text` (Markdown rendered), so a reader who reruns a cell sees the
    number the prose quotes."""
    text = glued_text(value, fmt)
    shown = f"{name}: {text}"
    try:
        from IPython.core.interactiveshell import InteractiveShell
        from IPython.display import display
    except ImportError:
        print(shown)
        return
    if not InteractiveShell.initialized():  # a script, not a kernel: no page to paste into
        print(shown)
        return
    data = {GLUE_PREFIX + "text/plain": repr(text)}
    if markdown:
        data[GLUE_PREFIX + "text/markdown"] = text
    # not records: what a notebook shows, a table rendered (myst-nb leaves the whole output off the page)
    data["text/plain"] = shown
    if markdown:
        data["text/markdown"] = text
    display(data, raw=True, metadata={"scrapbook": {"name": name, "mime_prefix": GLUE_PREFIX}})


# for {glue:md}`name`: a sentence with commands in backticks, or a folded block's table (Table.markdown())
glue_markdown = functools.partial(glue, markdown=True)


def config_table(config: Any) -> Table:
    """A chapter's config dataclass as a two-column table, one field a row (a one-line repr runs off the page)."""
    return table([{"field": f.name, "value": repr(getattr(config, f.name))} for f in dataclasses.fields(config)])


def training_table(models: Iterable[Any]) -> Table:
    """One row per trained model (aecourse.checkpoints.Trained): its name, seed, epochs, where and how long it
    trained, and its final test loss, as the manifest of its checkpoint records them."""
    rows = [
        {"model": e.manifest["name"].split("/")[-1], "seed": e.manifest["seed"], "epochs": e.manifest["epochs"]}
        | {"device": e.manifest.get("device", ""), "training [s]": e.manifest.get("training_seconds", math.nan)}
        | {"test loss": e.history.last.get("test_loss", math.nan)}
        for e in models
    ]
    return table(rows, formats={"training [s]": ".0f", "test loss": ".4g"})


def round_outward(value: float, places: int, *, up: bool) -> float:
    """value to `places` decimals, rounded away from the bound a sentence states (up for "at most", down for "at
    least"), so that the printed figure stays true; NaN passes through (a smoke run may measure nothing)."""
    if not math.isfinite(value):
        return value
    scale = 10**places
    return (math.ceil if up else math.floor)(value * scale) / scale


def mean_sd(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation over seeds; the sd is NaN for a single seed (no spread is known)."""
    values = [float(v) for v in values]  # none: fmean raises statistics.StatisticsError, a ValueError
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else math.nan


def pm(values: Sequence[float], spec: str = ".2f") -> Spread:
    """'mean ± sd' over seeds, its decimals set by the sd (see Spread); `spec` formats a single seed's value."""
    return Spread(*mean_sd(values), spec)


ALPHA = 0.05  # how often the rule may call a difference with no effect behind it "decided"


@functools.cache
def t_critical(n: int) -> float:
    """The two-sided Student-t bound at ALPHA for the mean of n paired differences (n - 1 degrees of freedom)."""
    from scipy.stats import t

    return float(t.ppf(1 - ALPHA / 2, n - 1))


@dataclasses.dataclass(frozen=True)
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
    def verdict(self) -> str:  # a against b
        return "not decided" if not self.decided else "higher" if self.mean > 0 else "lower"

    def __str__(self) -> str:  # the sd to two significant digits: enough to redo the t-test from the text
        places = max(0, 1 - math.floor(math.log10(self.sd))) if self.sd > 0 else None
        text = Spread(self.mean, self.sd, ".3g", places)
        return f"{'+' * (self.mean > 0)}{text} over {self.n} seed{'s' * (self.n != 1)}: {self.verdict}"


def says(
    comparison: Comparison,
    subject: str,
    other: str,
    *,
    higher: str = "higher",
    lower: str = "lower",
    unit: str = "seed",
) -> str:
    """A verdict as a plain sentence for the prose ("A is lower than B."), glued, never typed: the comparison picks
    the words. Its statistics (mean ± sd, the pairs, the verdict) belong in the evidence table beside it
    (`comparison_rows`). `unit` names what the pairs are, where they are not seeds (a benchmark's rounds)."""
    side = higher if comparison.mean > 0 else lower
    if comparison.decided:
        return f"{subject} is {side} than {other}."
    if comparison.agree and comparison.n > 1:  # a reader of the table sees the signs: say so
        return f"{subject} is {side} than {other} on every {unit}, but not clearly enough to tell them apart."
    return f"{subject} and {other} are not told apart."


def comparison_rows(comparisons: Mapping[str, Comparison], *, unit: str = "seed") -> list[dict[str, str]]:
    """One evidence row per comparison (what, a - b as mean ± sd, over how many pairs, the verdict), for a section's
    folded "How we know" block: `glue_markdown(name, table(comparison_rows({...})).markdown())`."""
    rows = []
    for what, c in comparisons.items():
        places = max(0, 1 - math.floor(math.log10(c.sd))) if c.sd > 0 else None
        spread = f"{'+' * (c.mean > 0)}{Spread(c.mean, c.sd, '.3g', places)}"
        pairs = f"{c.n} {unit}{'s' * (c.n != 1)}"
        verdict = f"decided: {c.verdict}" if c.decided else "not decided"
        rows.append({"comparison": what, "difference (mean ± sd)": spread, "pairs": pairs, "verdict": verdict})
    return rows


def compare(a: Sequence[float], b: Sequence[float]) -> Comparison:
    """Compare two measurements seed by seed (a[i] and b[i] from one seed; b of length 1: a fixed reference)."""
    b = list(b) * len(a) if len(b) == 1 else b
    if len(a) != len(b) or not a:
        raise ValueError(f"compare needs paired values, one per seed; got {len(a)} and {len(b)}.")
    differences = [float(x) - float(y) for x, y in zip(a, b, strict=True)]
    agree = all(d > 0 for d in differences) or all(d < 0 for d in differences)
    return Comparison(*mean_sd(differences), len(differences), agree)


class ClaimError(AssertionError):
    """A sentence of the book that its own numbers no longer support."""


def claim(holds: bool, sentence: str) -> None:
    """Guard a sentence of the book: at the full budget, whose numbers the book prints, a claim that does not hold
    stops the notebook; it is only reported at the short and smoke budgets, where few epochs decide little, and
    while `make checkpoints` trains (its second pass, on the load path, checks every claim)."""
    if holds:
        return
    if budget() == "full" and retrain_mode() != "missing":
        raise ClaimError(f"the book says {sentence!r}, and the numbers of this run do not support it.")
    print(f"note: at the {budget()} budget this run does not support {sentence!r}")
