"""Session-wide pytest setup: report the time each notebook took, so CI logs show where the minutes go.

With --write-timings=book/timings.json, a run over the chapters also writes those times in the form the intro's
table reads (tools/time_book.py writes the same file from several runs).
"""

from __future__ import annotations

import datetime
import json
import sys
from collections import defaultdict
from pathlib import Path

_notebook_seconds: dict[str, float] = defaultdict(float)


def pytest_addoption(parser) -> None:
    parser.addoption(
        "--write-timings",
        metavar="PATH",
        help="write each chapter notebook's time to PATH, in the form of book/timings.json (the intro's table)",
    )


def pytest_runtest_logreport(report) -> None:
    path = report.nodeid.split("::", 1)[0]
    if path.endswith(".ipynb"):
        _notebook_seconds[path] += report.duration


def pytest_terminal_summary(terminalreporter) -> None:
    if not _notebook_seconds:
        return
    terminalreporter.section("notebook times")
    for path, seconds in sorted(_notebook_seconds.items()):
        terminalreporter.write_line(f"{seconds:8.1f} s  {path}")
    terminalreporter.write_line(f"{sum(_notebook_seconds.values()):8.1f} s  all notebooks")
    target = terminalreporter.config.getoption("--write-timings")
    if target and terminalreporter.stats.get("failed"):
        terminalreporter.write_line(f"{target} not written: a notebook failed, so its time means nothing.")
    elif target:
        sys.path.insert(0, str(Path(__file__).parent))
        from tools.time_book import machine

        seconds = sorted(_notebook_seconds.items())
        chapters = {Path(p).stem: [round(s, 1)] for p, s in seconds if Path(p).stem[0].isdigit()}
        record = {
            "command": "AECOURSE_DEVICE=cpu pytest --nbval --nbval-current-env book",
            "machine": machine(),
            "date": datetime.date.today().isoformat(),
            "seconds": chapters,
        }
        Path(target).write_text(json.dumps(record, indent=1) + "\n")
        terminalreporter.write_line(f"wrote {target}")
