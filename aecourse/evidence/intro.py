"""The evidence of the book's introduction (book/intro.ipynb): the time table as the page shows it, and what its prose
says about it (how long retraining takes, and how the checkpoints' manifests sum against it), read from the same
files as the table."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from matplotlib.figure import Figure

from aecourse.evidence.report import Table, claim, glue, table

CHAPTER_5 = "05_beta_vae_torchbearer"
TITLES = {  # the chapters as the intro's list names them
    "01_autoencoder": "1. Autoencoder",
    "02_denoising_autoencoder": "2. Denoising autoencoder",
    "03_vae": "3. Variational autoencoder",
    "04_vae_vs_gan": "4. VAE vs GAN",
    CHAPTER_5: "5. β-VAE with torchbearer",
}
AUTOENCODER, VAE_NAME = "01_autoencoder/ae_mse_d64", "03_vae/vae"  # the stored models the first figure shows
READ, FROM_NOTHING = "read-execute", "make checkpoints from nothing"  # how tools/time_book.py's columns begin


def time_table(full: Table) -> Table:
    """The time table as the intro shows it, narrow enough for a phone: tools/time_book.py's `timing_table` with
    each chapter named by its title, and only the read-execute time and the wall time of retraining from nothing,
    each time kept on one line. The manifests' sums are left out: they time no chapter (the folded note says why)."""

    def shown(row: Mapping[str, Any]) -> dict[str, Any]:
        kept = {"chapter": TITLES.get(row["chapter"], row["chapter"])}
        for column, value in row.items():
            time = str(value).replace(" ", "\N{NO-BREAK SPACE}")  # "17 min 18 s" on one line, even on a phone
            if column.startswith(READ):
                kept[column] = time
            elif column.startswith(FROM_NOTHING):
                kept[column.replace("make checkpoints ", "retrain ")] = time
        return kept

    return table([shown(row) for row in full.rows])


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


def first_examples(images: torch.Tensor, labels: torch.Tensor, count: int = 8) -> torch.Tensor:
    """The first image of each of the first `count` classes present, in class order: a varied row for a figure."""
    classes = labels.unique()[:count].tolist()
    return torch.stack([images[(labels == c).nonzero()[0, 0]] for c in classes])


def teaser(x_test: torch.Tensor, y_test: torch.Tensor, *, seed: int = 0) -> Figure:
    """The intro's first figure, what the course builds, from the stored models of `seed`: a test image of each of
    eight classes, chapter 1's autoencoder rebuilding each from its 64-number code, and chapter 3's VAE drawing new
    images from random codes."""
    from aecourse.checkpoints import load, read_manifest
    from aecourse.inference import generate, reconstruct
    from aecourse.models import VAE, Autoencoder
    from aecourse.plot import image_rows

    ae_config, vae_config = (read_manifest(name, seed)["config"] for name in (AUTOENCODER, VAE_NAME))
    autoencoder = Autoencoder(64, ae_config["hidden_dim"])
    vae = VAE(vae_config["latent_dim"], vae_config["hidden_dim"])
    load(autoencoder, AUTOENCODER, seed)
    load(vae, VAE_NAME, seed)
    x = first_examples(x_test.cpu(), y_test.cpu())
    with torch.no_grad():
        rows = {
            "test images": x,
            "rebuilt (ch. 1)": reconstruct(autoencoder.eval(), x),
            "drawn (ch. 3)": generate(vae.eval(), len(x), seed=seed),
        }
    return image_rows(rows, num_images=len(x))
