"""Measure how long each notebook takes to read-execute (the full budget, loading the stored models, as the tests
do), several times, and write the medians' raw material to book/timings.json, which the intro's table reads.

Usage: python tools/time_book.py [--runs 3] [book/01_autoencoder.ipynb ...]
Run it on a quiet machine: a second job on the same cores slows every notebook it overlaps.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.execute_notebooks import execute  # noqa: E402


def machine() -> str:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        model = f" ({names[0]})" if names else ""
    return f"{os.cpu_count()} CPU cores, {platform.machine()}{model}, no GPU in use"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args()
    notebooks = [Path(n) for n in args.notebooks] or sorted((ROOT / "book").glob("[0-9]*.ipynb"))
    seconds: dict[str, list[float]] = {nb.stem: [] for nb in notebooks}
    for run in range(args.runs):
        for notebook in notebooks:
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
