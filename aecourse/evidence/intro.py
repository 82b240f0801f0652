"""The evidence of the book's introduction (book/intro.ipynb): what its prose says about the time table (how long
retraining takes, and how the checkpoints' manifests sum against it), read from the same files as the table."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

from aecourse.evidence.report import claim, glue

CHAPTER_5 = "05_beta_vae_torchbearer"


def _group(manifest: Mapping[str, Any]) -> str:
    """The chapter (or shared model) a manifest belongs to: "03_vae" for "03_vae/vae_d20"."""
    return manifest["name"].split("/")[0]


def retraining_times(manifests: Sequence[Mapping[str, Any]], retrained: Mapping[str, Mapping[str, Any]]) -> None:
    """Glue the intro's retraining times: the whole book from nothing (`retrained`: book/retrain_timings.json's
    chapters) and chapter 5's part of it; and, for its folded note, each chapter's sum of manifest seconds over its
    wall time from nothing. Claims what the prose says of both."""
    summed: dict[str, float] = {}
    for manifest in manifests:
        summed[_group(manifest)] = summed.get(_group(manifest), 0.0) + manifest["training_seconds"]
    ratio = {group: summed[group] / run["seconds"] for group, run in retrained.items()}
    early = [group for group in ratio if group[0].isdigit() and group != CHAPTER_5]  # chapters 1-4
    total = sum(run["seconds"] for run in retrained.values())
    ch5 = retrained[CHAPTER_5]["seconds"]
    glue("retrain_total_minutes", total / 60, ".0f")
    glue("retrain_ch5_minutes", ch5 / 60, ".0f")
    glue("retrain_ch5_share", ch5 / total, ".0%")
    glue("sum_ratio_low", min(ratio[group] for group in early), ".1f")
    glue("sum_ratio_high", max(ratio[group] for group in early), ".1f")
    glue("sum_ratio_ch5", ratio[CHAPTER_5], ".2f")
    glue("sum_ratio_classifier", ratio["classifier"], ".0f")
    claim(ch5 > total / 2, "chapter 5 takes more than half of the time of retraining the book from nothing")
    claim(
        len(early) == 4 and all(ratio[group] > 3 for group in early),
        "for each of chapters 1 to 4 the manifests' sum is more than three times the wall time of retraining",
    )


def read_time(seconds: Mapping[str, Sequence[float]]) -> None:
    """Glue the time to read-execute the whole book on its stored models: the sum of each chapter's median run
    (book/timings.json's seconds, as the table adds them up)."""
    glue("read_total_minutes", sum(statistics.median(runs) for runs in seconds.values()) / 60, ".0f")


def bfloat16_models(manifests: Sequence[Mapping[str, Any]]) -> None:
    """Glue how many of chapter 5's stored models record that their CPU computes in bfloat16."""
    ch5 = [manifest for manifest in manifests if _group(manifest) == CHAPTER_5]
    glue("ch5_models", len(ch5))
    glue("bf16_models", sum(bool(manifest.get("native_bfloat16")) for manifest in ch5))
