"""Chapter 4's verdict table, `vae_gan_verdicts`, lives in the chapter (hidden in the book: it is the book's
bookkeeping, not the lesson). Its rule is tested here, on the cell's own source, with made-up measurements."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.notebook_cells import definitions

CHAPTER = Path(__file__).resolve().parents[1] / "book" / "04_vae_vs_gan.ipynb"


@pytest.fixture(scope="module")
def cell():
    """The namespace of the chapter's code cell that defines `vae_gan_verdicts`, executed alone."""
    return definitions(CHAPTER, "vae_gan_verdicts")


def _measurements(cell, **changes):
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
    return cell["VaeGanMeasurements"](**(base | changes))


def _verdict(t, claim_start: str) -> str:
    return next(r["verdict"] for r in t.rows if r["claim (article)"].startswith(claim_start))


def test_vae_gan_verdicts_follow_the_measurements(cell):
    vae_gan_verdicts = cell["vae_gan_verdicts"]
    t = vae_gan_verdicts(_measurements(cell))
    assert len(t.rows) == 14
    assert _verdict(t, "Image quality") == "GAN closer to the data: holds; VAE blurrier than real images: holds"
    assert _verdict(t, "Training stability") == "holds"  # no run broke down; the GAN's quality swings more
    assert _verdict(t, "Vanishing gradients").startswith("against the minimax loss: holds")
    assert _verdict(t, "Latent smoothness").startswith("holds")
    assert _verdict(t, "Loss meaning") == "holds"
    assert _verdict(t, "Sampling speed") == "does not hold"
    assert _verdict(t, "Mode coverage") == "not decided"
    assert _verdict(t, "Theory").startswith("not measured")


def test_vae_gan_verdicts_turn_with_the_numbers(cell):
    vae_gan_verdicts = cell["vae_gan_verdicts"]
    worse_gan = _measurements(cell, fid={"VAE": [35.0, 36.0, 34.0], "GAN": [60.0, 61.0, 59.0]})
    assert _verdict(vae_gan_verdicts(worse_gan), "Image quality").startswith("GAN closer to the data: does not hold")
    broken_vae = _measurements(cell, diverged={"VAE": [["loss became non-finite"], [], []], "GAN": [[], [], []]})
    assert _verdict(vae_gan_verdicts(broken_vae), "Training stability") == "does not hold"
    healthy = {"VAE": [0.95, 0.97, 0.9], "GAN": [0.96, 0.97, 0.98]}
    assert _verdict(vae_gan_verdicts(_measurements(cell, loss_rho=healthy)), "Loss meaning") == "does not hold"
    ablation = _measurements(cell, loss_rho=healthy | {"GAN without dropout": [0.94, 0.97, -0.28]})
    assert _verdict(vae_gan_verdicts(ablation), "Loss meaning") == (
        "does not hold; counting the runs without dropout: holds"
    )
    slow_gan = _measurements(cell, sampling_ms={"VAE": [40.0, 41.0, 39.0], "GAN": [90.0, 91.0, 89.0]})
    assert _verdict(vae_gan_verdicts(slow_gan), "Sampling speed") == "holds"
