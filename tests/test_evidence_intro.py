"""aecourse.evidence.intro: the retraining times the intro quotes, computed from manifests and retrain timings that
the test writes itself, and the claims that stop the page when its sentences stop holding."""

from __future__ import annotations

import pytest

from aecourse.evidence import intro
from aecourse.evidence.report import ClaimError

CH5 = intro.CHAPTER_5


def _manifests(seconds: dict[str, list[float]]) -> list[dict]:
    return [
        {"name": f"{group}/model", "training_seconds": s, "native_bfloat16": group == CH5 and i == 0}
        for group, runs in seconds.items()
        for i, s in enumerate(runs)
    ]


def _glued(capsys) -> dict[str, str]:
    return dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())


EARLY = ["01_a", "02_b", "03_c", "04_d"]


def test_retraining_times_glue_the_totals_and_the_ratios(capsys):
    manifests = _manifests({**{g: [200.0, 200.0] for g in EARLY}, CH5: [500.0, 600.0], "classifier": [150.0]})
    retrained = {g: {"seconds": 100.0} for g in EARLY} | {CH5: {"seconds": 1000.0}, "classifier": {"seconds": 10.0}}
    intro.retraining_times(manifests, retrained)
    glued = _glued(capsys)
    assert glued["retrain_total_minutes"] == "24"  # 1410 s
    assert glued["retrain_ch5_minutes"] == "17" and glued["retrain_ch5_share"] == "71%"
    assert glued["sum_ratio_low"] == glued["sum_ratio_high"] == "4.0"
    assert glued["sum_ratio_ch5"] == "1.10" and glued["sum_ratio_classifier"] == "15"


def test_retraining_times_refuse_what_the_page_would_misstate(monkeypatch):
    monkeypatch.setenv("AECOURSE_BUDGET", "full")
    manifests = _manifests({**{g: [200.0] for g in EARLY}, CH5: [100.0], "classifier": [1.0]})
    retrained = {g: {"seconds": 100.0} for g in EARLY} | {CH5: {"seconds": 100.0}, "classifier": {"seconds": 1.0}}
    with pytest.raises(ClaimError, match="more than half"):  # chapter 5 is 100 s of 501
        intro.retraining_times(manifests, retrained)
    retrained[CH5]["seconds"] = 10_000.0
    with pytest.raises(ClaimError, match="more than three times"):  # each early sum is only twice its wall time
        intro.retraining_times(manifests, retrained)


def test_read_time_and_bfloat16_models(capsys):
    intro.read_time({"01_a": [60.0, 180.0, 120.0], "02_b": [300.0]})  # medians 120 + 300 s
    intro.bfloat16_models(_manifests({CH5: [1.0, 1.0, 1.0], "03_c": [1.0]}))
    glued = _glued(capsys)
    assert glued["read_total_minutes"] == "7"
    assert glued["ch5_models"] == "3" and glued["bf16_models"] == "1"


def test_time_table_names_the_chapters_and_leaves_the_manifests_sums_out():
    from aecourse.evidence.report import table

    full = table(
        [
            {
                "chapter": "01_autoencoder",
                "read-execute (stored models)": "0 min 24 s",
                "training, sum of manifests (cpu)": "79 min 52 s",
                "make checkpoints from nothing (cpu)": "17 min 18 s",
            },
            {
                "chapter": "whole book",
                "read-execute (stored models)": "6 min 48 s",
                "training, sum of manifests (cpu)": "x",
            },
        ]
    )
    shown = intro.time_table(full)
    assert [row["chapter"] for row in shown.rows] == ["1. Autoencoder", "whole book"]
    assert list(shown.rows[0]) == ["chapter", "read-execute (stored models)", "retrain from nothing (cpu)"]
    assert shown.rows[0]["retrain from nothing (cpu)"] == "17\u00a0min\u00a018\u00a0s"  # no line break inside
    assert "manifests" not in repr(shown)


def test_first_examples_take_the_first_image_of_each_class_in_class_order():
    import torch

    images = torch.arange(6.0).reshape(6, 1, 1, 1)
    labels = torch.tensor([2, 0, 2, 1, 0, 3])
    assert intro.first_examples(images, labels, count=3).flatten().tolist() == [1.0, 3.0, 0.0]


def test_teaser_draws_three_rows_from_the_stored_models():
    import torch

    x = torch.rand(40, 1, 28, 28)
    figure = intro.teaser(x, torch.arange(40) % 10)
    assert len(figure.axes) == 3 * 8
    labels = [ax.get_ylabel() for ax in figure.axes if ax.get_ylabel()]
    assert labels == ["test images", "rebuilt (ch. 1)", "drawn (ch. 3)"]
