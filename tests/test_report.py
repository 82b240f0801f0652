"""aecourse.report: tables, mean ± sd over seeds, the 'not decided' rule, claims that guard sentences, and the
chapter 4 verdicts computed from measurements."""

from __future__ import annotations

import json
import math

import pytest

from aecourse.report import ClaimError, VaeGanMeasurements, claim, compare, mean_sd, pm, table, vae_gan_verdicts
from aecourse.runtime import BUDGET_ENV


def test_table_renders_html_and_aligned_text():
    t = table([{"name": "a<b", "value": 1.23456}, {"name": "c", "value": float("nan")}], formats={"value": ".2f"})
    assert "<td>a&lt;b</td>" in t._repr_html_() and "<td>1.23</td>" in t._repr_html_()
    lines = repr(t).splitlines()
    assert lines[0].split() == ["name", "value"] and lines[2].split() == ["c", "–"]
    assert len({len(line) for line in lines}) == 1  # aligned


def test_mean_sd_and_pm():
    assert mean_sd([1.0, 2.0, 3.0]) == (2.0, 1.0)
    mean, sd = mean_sd([5.0])
    assert mean == 5.0 and math.isnan(sd)
    assert pm([1.0, 2.0, 3.0]) == "2.00 ± 1.00" and pm([5.0], ".1f") == "5.0"
    with pytest.raises(ValueError):
        mean_sd([])


@pytest.mark.parametrize(
    ("a", "b", "verdict"),
    [
        ([2.0, 2.1, 1.9], [1.0, 1.1, 1.0], "higher"),  # every seed higher, well outside the spread
        ([1.0, 1.1, 1.0], [2.0], "lower"),  # against a fixed reference
        ([2.0, 2.0, 0.9], [1.0, 1.0, 1.0], "not decided"),  # one seed disagrees
        ([1.5, 1.0, 1.02], [1.0, 1.01, 1.0], "not decided"),  # all higher, but mean ± sd crosses zero
        ([2.0], [1.0], "not decided"),  # one seed decides nothing
    ],
)
def test_compare_decides_only_outside_the_seed_noise(a, b, verdict):
    assert compare(a, b).verdict == verdict


def test_compare_refuses_unpaired_values():
    with pytest.raises(ValueError, match="paired"):
        compare([1.0, 2.0], [1.0, 2.0, 3.0])


def test_claim_stops_the_full_budget_and_only_reports_otherwise(monkeypatch, capsys):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.delenv("AECOURSE_CHECKPOINTS", raising=False)
    claim(True, "fine")
    with pytest.raises(ClaimError, match="the AE beats PCA"):
        claim(False, "the AE beats PCA")
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    claim(False, "the AE beats PCA")
    assert "does not support 'the AE beats PCA'" in capsys.readouterr().out


def _measurements(**changes) -> VaeGanMeasurements:
    three = [1.0, 1.0, 1.0]
    base = dict(
        fid={"VAE": [60.0, 61.0, 59.0], "GAN": [35.0, 36.0, 34.0]},
        fid_recent={"VAE": [59.0, 60.0, 58.0], "GAN": [33.0, 34.0, 32.0]},
        fid_real=0.5,
        edges={"VAE": [0.01, 0.011, 0.012], "GAN": [0.04, 0.041, 0.039]},
        edges_real=0.033,
        diverged={"VAE": [[], [], []], "GAN": [[], [], []]},
        oscillation={"VAE": [0.01, 0.012, 0.011], "GAN": [0.08, 0.09, 0.07]},
        gradient_drop={"VAE": three, "GAN minimax": [1e-3, 2e-3, 1e-3], "GAN": [0.9, 1.1, 1.0]},
        tv={"VAE": [0.10, 0.11, 0.12], "GAN": [0.10, 0.12, 0.11]},
        tv_real=0.01,
        missing={"VAE": [[], [], []], "GAN": [[], [1], []]},
        jump={"VAE": [1.4, 1.45, 1.5], "GAN": [1.6, 1.65, 1.7], "AE": [1.8, 1.9, 1.85]},
        loss_rho={"VAE": [0.95, 0.97, 0.9], "GAN": [0.2, -0.3, 0.6]},
        sampling_ms={"VAE": [40.0, 41.0, 39.0], "GAN": [40.5, 40.0, 39.5]},
    )
    return VaeGanMeasurements(**(base | changes))


def _verdict(t, claim_start: str) -> str:
    return next(r["verdict"] for r in t.rows if r["claim (article)"].startswith(claim_start))


def test_vae_gan_verdicts_follow_the_measurements():
    t = vae_gan_verdicts(_measurements())
    assert len(t.rows) == 14
    assert _verdict(t, "Image quality") == "GAN closer to the data: holds; VAE blurrier than real images: holds"
    assert _verdict(t, "Training stability") == "holds"  # no run broke down; the GAN's quality swings more
    assert _verdict(t, "Vanishing gradients").startswith("against the minimax loss: holds")
    assert _verdict(t, "Latent smoothness").startswith("holds")
    assert _verdict(t, "Loss meaning") == "holds"
    assert _verdict(t, "Sampling speed") == "does not hold"
    assert _verdict(t, "Mode coverage") == "not decided"
    assert _verdict(t, "Theory").startswith("not measured")


def test_vae_gan_verdicts_turn_with_the_numbers():
    worse_gan = _measurements(fid={"VAE": [35.0, 36.0, 34.0], "GAN": [60.0, 61.0, 59.0]})
    assert _verdict(vae_gan_verdicts(worse_gan), "Image quality").startswith("GAN closer to the data: does not hold")
    broken_vae = _measurements(diverged={"VAE": [["loss became non-finite"], [], []], "GAN": [[], [], []]})
    assert _verdict(vae_gan_verdicts(broken_vae), "Training stability") == "does not hold"
    healthy = {"VAE": [0.95, 0.97, 0.9], "GAN": [0.96, 0.97, 0.98]}
    assert _verdict(vae_gan_verdicts(_measurements(loss_rho=healthy)), "Loss meaning") == "does not hold"
    ablation = _measurements(loss_rho=healthy | {"GAN without dropout": [0.94, 0.97, -0.28]})
    assert _verdict(vae_gan_verdicts(ablation), "Loss meaning") == (
        "does not hold; counting the runs without dropout: holds"
    )
    slow_gan = _measurements(sampling_ms={"VAE": [40.0, 41.0, 39.0], "GAN": [90.0, 91.0, 89.0]})
    assert _verdict(vae_gan_verdicts(slow_gan), "Sampling speed") == "holds"


def test_timing_table_reads_the_measured_times_and_names_the_command_when_they_are_missing(tmp_path):
    from aecourse.report import timing_table

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
    from aecourse import report
    from aecourse.report import timing_table

    glued = {}
    monkeypatch.setattr(report, "glue_markdown", lambda name, value: glued.__setitem__(name, value))
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
    from aecourse.report import _minutes

    assert _minutes(30179.7) == "503 min 00 s" and _minutes(59.4) == "0 min 59 s" and _minutes(math.nan) == "–"
