"""Measure how long each notebook takes to read-execute (the full budget, loading the stored models, as the tests
do), several times, and write the medians' raw material to book/timings.json; `timing_table` is the intro's table
of those times beside the training times of the checkpoints' manifests and of `make checkpoints FROM_NOTHING=1`.

Usage: python tools/time_book.py [--runs 3] [book/01_autoencoder.ipynb ...]
Run it on a quiet machine: a second job on the same cores slows every notebook it overlaps.
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aecourse.evidence.report import Table, claim, glue_markdown, table  # noqa: E402


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = f" ({names[0]})" if names else ""
    return f"{os.cpu_count()} CPU cores, {platform.machine()}{model}, no GPU in use"


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
    from aecourse.checkpoints import SHARED_MODELS
    from tools.stored_checkpoints import manifests

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


def _runs_argument(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"--runs is how many times each notebook runs: an int >= 1, not {text!r}")
    return int(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=_runs_argument, default=3, help="runs of each notebook (the median is kept)")
    parser.add_argument("notebooks", nargs="*", help="chapter notebooks (default: all of book/<NN>_*.ipynb)")
    args = parser.parse_args(argv)
    chapters = sorted((ROOT / "book").glob("[0-9]*.ipynb"))
    notebooks = [(Path.cwd() / n).resolve() for n in args.notebooks] or chapters
    refused = [n for n, path in zip(args.notebooks, notebooks, strict=False) if path not in chapters]
    if refused:
        names = ", ".join(str(c.relative_to(ROOT)) for c in chapters)
        parser.error(f"not a chapter notebook: {', '.join(refused)}; the chapters are {names}.")
    seconds: dict[str, list[float]] = {nb.stem: [] for nb in notebooks}
    for run in range(args.runs):
        for notebook in notebooks:
            from tools.execute_notebooks import execute  # the book's tools: not needed to draw the table

            taken = execute(notebook, env={"AECOURSE_BUDGET": "full", "AECOURSE_DEVICE": "cpu"}, save=False)
            seconds[notebook.stem].append(round(taken, 1))
            print(f"run {run + 1}: {taken:7.1f} s  {notebook}", flush=True)
    record = {
        "command": f"python tools/time_book.py --runs {args.runs}",
        "machine": machine(),
        "date": datetime.date.today().isoformat(),
        "seconds": seconds,
    }
    (ROOT / "book" / "timings.json").write_text(json.dumps(record, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main())
