"""tools/time_book.py's table for the intro: the measured read-execute times, the training times of the manifests
and of `make checkpoints FROM_NOTHING=1`, and the command to run when a measurement is missing."""

from __future__ import annotations

import json
import math

import pytest

from aecourse.evidence.report import ClaimError
from tools.time_book import _minutes, timing_table


def test_timing_table_reads_the_measured_times_and_names_the_command_when_they_are_missing(tmp_path):
    with pytest.raises(FileNotFoundError, match="tools/time_book.py"):
        timing_table(str(tmp_path / "timings.json"))
    measured = {
        "seconds": {"01_autoencoder": [30.0, 90.0, 60.0]},
        "command": "python tools/time_book.py",
        "machine": "2 CPU cores",
        "date": "2026-11-25",
    }
    path = tmp_path / "timings.json"
    path.write_text(json.dumps(measured))
    html = timing_table(str(path))._repr_html_()
    assert "<td>01_autoencoder</td>" in html and "<td>1 min 00 s</td>" in html  # the median of the runs


def test_timing_table_shows_the_from_nothing_retrain_times_that_were_measured(tmp_path, monkeypatch):
    from tools import time_book

    glued = {}
    monkeypatch.setattr(time_book, "glue_markdown", lambda name, value: glued.__setitem__(name, value))
    timings = tmp_path / "timings.json"
    timings.write_text(
        json.dumps(
            {
                "seconds": {"01_autoencoder": [30.0], "04_vae_vs_gan": [40.0]},
                "command": "python tools/time_book.py",
                "machine": "2 CPU cores",
                "date": "2026-11-25",
            }
        )
    )
    html = timing_table(str(timings), str(tmp_path / "absent.json"))._repr_html_()
    assert "from nothing" not in html and "From nothing" not in glued["timing_source"]
    retrain = tmp_path / "retrain_timings.json"
    run = {"seconds": 1805, "device": "cpu", "machine": "2 CPU cores", "torch": "2.14.1", "date": "2026-11-29"}
    retrain.write_text(json.dumps({"chapters": {"04_vae_vs_gan": run}}))
    html = timing_table(str(timings), str(retrain))._repr_html_()
    assert "make checkpoints from nothing (cpu)" in html and "<td>30 min 05 s</td>" in html
    assert "<td>–</td>" in html  # chapter 1 was not measured: a dash, not a number
    total = html[html.index("<td>whole book</td>") :]
    assert total.startswith("<td>whole book</td><td>1 min 10 s</td>")  # 30 s + 40 s; the classifier has none
    assert total.split("</tr>")[0].endswith("<td>–</td>")  # no total while a chapter is unmeasured
    assert "<td>classifier (shared)</td><td></td>" in html  # its own row: trained once, loaded by the chapters
    assert "`classifier`" in glued["timing_source"].split("Shared:")[1]
    assert "not measured yet for 01_autoencoder, classifier" in glued["timing_source"]
    both = {"04_vae_vs_gan": run, "01_autoencoder": run | {"seconds": 600}, "classifier": run | {"seconds": 95}}
    retrain.write_text(json.dumps({"chapters": both}))
    html = timing_table(str(timings), str(retrain))._repr_html_()
    assert "<td>classifier (shared)</td><td></td>" in html and "<td>1 min 35 s</td>" in html
    total = html[html.index("<td>whole book</td>") :].split("</tr>")[0]
    assert total.endswith("<td>41 min 40 s</td>")  # 1805 + 600 + 95 s: the chapters and the shared classifier
    assert "not measured yet" not in glued["timing_source"]
    assert "No GPU training time" in glued["timing_source"]
    run["seconds"] = 10**9  # alone longer than the manifests' sum: the intro's sentence no longer holds
    retrain.write_text(json.dumps({"chapters": {"04_vae_vs_gan": run}}))
    monkeypatch.setenv("AECOURSE_BUDGET", "full")
    with pytest.raises(ClaimError, match="longer than the same models take alone"):
        timing_table(str(timings), str(retrain))


def test_minutes_round_the_seconds_before_splitting_them():
    assert _minutes(30179.7) == "503 min 00 s" and _minutes(59.4) == "0 min 59 s" and _minutes(math.nan) == "–"
