"""Chapter 1's evidence module (aecourse.evidence.ch1), called directly on small synthetic inputs: what each
measurement computes, against a hand or library reference, and that each claim stops the book when the comparison
behind its sentence no longer holds (at the full budget, the default here)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score
from torch import nn

from aecourse.checkpoints import Trained, read_manifest
from aecourse.evidence import ch1
from aecourse.evidence.metrics import linear_probe_accuracy
from aecourse.evidence.report import ClaimError
from aecourse.inference import reconstruct
from aecourse.losses import bce, mse
from aecourse.models import PCABaseline
from aecourse.train import History

pytestmark = pytest.mark.usefixtures("full_budget")  # tests/conftest.py


class Blend(nn.Module):
    """A stand-in autoencoder: x_hat = x + a (target(x) - x), so its squared error is a**2 times target's (where
    nothing is clamped); its code is the image itself."""

    def __init__(self, a: float, target: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.a = a
        self.target = target or (lambda z: torch.full_like(z, 0.5))
        self.anchor = nn.Parameter(torch.zeros(1))  # a device to run on

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 784)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.a * (self.target(z) - z)


def _trained(model: nn.Module, seed: int = 0, test_loss: float = 1.0) -> Trained:
    rows = [{"train_loss": 2.0, "test_loss": test_loss}]
    return Trained(model, History(rows), {"name": "01_autoencoder/x", "seed": seed, "epochs": 1})


def _images(n: int = 60, seed: int = 0, black: bool = True) -> torch.Tensor:
    """n images in [0, 1], a third of their pixels exactly black unless `black=False`."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.8 + 0.1
    if black:
        x[torch.rand(x.shape, generator=g) < 1 / 3] = 0.0
    return x


@pytest.fixture
def glued(glue_recorder) -> dict[str, str]:
    """What the module glues, name -> the text the page would show."""
    return glue_recorder(ch1)


# --- Budgets ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Config:
    num_epochs: int = 30
    train_size: int | None = None
    latent_dims: tuple[int, ...] = (2, 8, 16, 32, 64)
    seeds: tuple[int, ...] = (0, 1, 2)


@pytest.mark.parametrize(("budget", "changes"), [("full", {}), ("short", ch1.SHORT), ("smoke", ch1.SMOKE)])
def test_at_budget_replaces_the_budgets_fields(monkeypatch, budget, changes):
    monkeypatch.setenv("AECOURSE_BUDGET", budget)
    assert ch1.at_budget(Config()) == dataclasses.replace(Config(), **changes)
    if budget == "smoke":  # the smoke run keeps the sizes the chapter's cells name: the article's and the anomaly's
        assert {16, 64} <= set(ch1.at_budget(Config()).latent_dims)


def test_settings_show_what_a_budget_changes_and_nothing_at_the_full_budget():
    assert ch1.settings(Config()) is None
    short = ch1.settings(dataclasses.replace(Config(), num_epochs=8, seeds=(0,)))
    assert [row["field"] for row in short.rows] == ["num_epochs", "seeds"]
    assert short.rows[0] == {"field": "num_epochs", "this run": "8", "full budget": "30"}


# --- Training ---------------------------------------------------------------------------------------------------


def test_late_slopes_fit_a_line_through_the_last_epochs():
    losses = [5.0, 4.0] + [1.0 - 0.01 * t for t in range(10)]  # the first two epochs are left out
    [slope] = ch1.late_slopes([losses], 10)
    assert slope == pytest.approx(-0.01)
    assert ch1.late_slopes([[1.0, 1.0, 1.0]], 3) == [pytest.approx(0.0, abs=1e-12)]


def _run(seed: int, test_losses: list[float]) -> Trained:
    rows = [{"train_loss": t * 1.5 if i == 0 else t * 0.98, "test_loss": t} for i, t in enumerate(test_losses)]
    manifest = {"name": "01_autoencoder/ae_mse_d64", "seed": seed, "epochs": len(rows), "device": "cpu"}
    return Trained(nn.Linear(1, 1), History(rows), manifest)


def test_training_evidence_glues_the_run_and_checks_the_loop_by_hand(glued):
    stored = [row["train_loss"] for row in read_manifest(ch1.STORED_D64, 0)["history"][:2]]
    runs = [_run(s, [0.02 - 0.0005 * t - 0.0001 * s for t in range(12)]) for s in range(3)]
    assert ch1.training_evidence(stored, runs) is None  # its table is in the folded block
    assert glued["stored_epoch_1"] == f"{stored[0]:.6f}" and glued["n_seeds"] == "3"
    seconds = sum(row["seconds"] for row in read_manifest(ch1.STORED_D64, 0)["history"][:2])
    assert glued["stored_two_epochs_seconds"] == f"{seconds:.0f}"
    assert glued["slope_epochs"] == "10"
    late = np.mean([100 * 0.0005 / r.history["test_loss"][-1] for r in runs])
    assert glued["late_slope"] == f"{late:.1f}"
    assert glued["last_epoch_gap"] == f"{100 * (1 / 0.98 - 1):.1f}"
    seed_rows = [line for line in glued["ch1_training_evidence"].splitlines() if line[:4] in ("| 0 ", "| 1 ", "| 2 ")]
    assert len(seed_rows) == 3 and f"{runs[0].history['test_loss'][-1]:.5f}" in seed_rows[0]
    assert "device" not in glued["ch1_training_evidence"]  # no run-log columns
    with pytest.raises(ClaimError, match="first two epochs"):  # another initial seed moves epoch 1 by 0.5%
        ch1.training_evidence([stored[0] * 1.005, stored[1]], runs)


def test_training_evidence_fails_when_the_test_loss_has_stopped_falling():
    stored = [row["train_loss"] for row in read_manifest(ch1.STORED_D64, 0)["history"][:2]]
    rising = [_run(s, [0.02 + 0.0001 * t + 0.00001 * s * t for t in range(12)]) for s in range(3)]
    with pytest.raises(ClaimError, match="still falling"):
        ch1.training_evidence(stored, rising)


# --- MSE or BCE -------------------------------------------------------------------------------------------------


def test_loss_scores_against_a_hand_computation():
    x = _images()
    model = Blend(0.3)
    scores = ch1.loss_scores(model, x)
    x_hat = (x + 0.3 * (0.5 - x)).clamp(0, 1)
    assert scores["mse"] == pytest.approx(float(((x_hat - x) ** 2).mean()), rel=1e-5)
    assert scores["bce"] == pytest.approx(float(bce(x_hat, x)), rel=1e-5)  # nowhere near 0 or 1: no clamp needed
    assert scores["bce_capped"] == scores["bce"] and scores["infinite"] == 0.0
    black = x == 0
    assert scores["background"] == pytest.approx(float(((x_hat - x) ** 2)[black].sum() / x.numel()), rel=1e-5)
    assert 0 < scores["background"] < scores["mse"]
    assert ch1.loss_scores(model, _images(black=False))["background"] == 0.0


def test_the_bce_is_scored_where_it_is_finite():
    """A reconstruction that is exactly black where the image is grey has an infinite BCE there: clamped to
    [eps, 1 - eps], each such pixel costs -x log(eps) - (1 - x) log(1 - eps), not torch's capped 100 x."""
    x = _images()
    scores = ch1.loss_scores(Blend(1.0, torch.zeros_like), x)  # x_hat = 0 everywhere
    grey = x > 0
    assert scores["infinite"] == pytest.approx(float(grey.float().mean()))
    eps = ch1.BCE_EPS
    by_hand = -(x * math.log(eps) + (1 - x) * math.log(1 - eps))
    assert scores["bce"] == pytest.approx(float(by_hand.mean()), rel=1e-4)
    assert scores["bce_capped"] == pytest.approx(float((100 * x).mean()), rel=1e-4)
    assert scores["bce_eps_0"] < scores["bce"] < scores["bce_eps_1"]  # EPS_RANGE: 1e-3, then 1e-6


def test_loss_comparison_scores_both_losses_and_fails_when_the_bce_model_loses(glued, monkeypatch):
    x = _images()
    better = [_trained(Blend(0.05 + 0.01 * s), s) for s in range(3)]
    worse = [_trained(Blend(0.3 + 0.01 * s), s) for s in range(3)]
    assert ch1.loss_comparison(worse, better, x) is None  # its table is glued for the page's numbered table
    assert glued["bce_floor"] == f"{float(bce(x, x)):.4f}"
    assert glued["black_share"] == f"{100 * float((x == 0).float().mean()):.0f}"
    gain = 1 - np.mean([float(mse(reconstruct(m.model, x), x)) for m in better]) / np.mean(
        [float(mse(reconstruct(m.model, x), x)) for m in worse]
    )
    assert glued["bce_mse_gain"] == f"{100 * gain:.0f}"
    assert "| decided: lower |" in glued["ch1_loss_evidence"]
    rows = glued["ch1_loss_table"].splitlines()[2:]
    assert [row.split(" | ")[0] for row in rows] == ["| MSE", "| BCE", "| x̂ = x (floor)"]
    assert glued["bce_eps"] == "10⁻⁴" and glued["bce_infinite_share"] == "0.0"
    assert glued["bce_model_clamped_share"] == "0"  # x_hat >= 0.025 everywhere: nothing to clamp
    excess = {k: float(glued[f"bce_excess_{k}"]) for k in ("mse", "bce")}
    assert glued["bce_excess_cut"] == f"{100 * (1 - excess['bce'] / excess['mse']):.0f}"
    with pytest.raises(ClaimError, match="black background closer"):
        ch1.loss_comparison(better, worse, x)
    stuck = [_trained(Blend(1.0, torch.zeros_like), s) for s in range(3)]  # x_hat = 0 on grey pixels: BCE infinite
    with pytest.raises(ClaimError, match="barely moves"):
        ch1.loss_comparison(worse, stuck, x)
    monkeypatch.setattr(ch1, "CLAMP_EFFECT", 1e3)  # a clamp allowed to move the BCE: the exact zeros still fail
    with pytest.raises(ClaimError, match="never exactly 0 or 1"):
        ch1.loss_comparison(worse, stuck, x)


def test_loss_scores_count_the_outputs_the_clamp_changes():
    x = _images()
    assert ch1.loss_scores(Blend(0.05), x)["clamped"] == 0.0  # x_hat >= 0.025: inside (eps, 1 - eps) everywhere
    low = Blend(1.0, lambda z: torch.where(z == 0, torch.full_like(z, 1e-6), z))  # the black pixels at 1e-6
    assert ch1.loss_scores(low, x)["clamped"] == pytest.approx(float((x == 0).float().mean()))


# --- A nonlinear PCA --------------------------------------------------------------------------------------------


def test_split_by_seed_deals_the_test_set_into_disjoint_shares():
    x = torch.arange(10.0)
    parts = ch1.split_by_seed(x, (0, 1, 2))
    assert [p.tolist() for p in parts.values()] == [[0, 3, 6, 9], [1, 4, 7], [2, 5, 8]]


def _low_rank_images(n: int = 300) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    codes, patterns = torch.randn(n, 6, generator=g), torch.randn(6, 784, generator=g)
    x = 0.5 + 0.04 * codes @ patterns + 0.01 * torch.randn(n, 784, generator=g)
    return x.clamp(0, 1).reshape(n, 1, 28, 28)


def _versus_pca(pca: PCABaseline, ratio: dict[int, float]) -> dict[tuple[int, int], Trained]:
    """Stand-in autoencoders whose error is ratio[d] (a little more per seed) times PCA's at size d."""
    return {
        (d, s): _trained(Blend(math.sqrt(r + 0.01 * s), pca.truncated(d).reconstruct), s)
        for d, r in ratio.items()
        for s in range(3)
    }


def test_pca_comparison_measures_the_ratio_to_pca_and_fails_when_short_codes_gain_least(glued):
    x = _low_rank_images()
    pca = PCABaseline(32).fit(x)
    result = ch1.pca_comparison(pca, _versus_pca(pca, {2: 0.5, 32: 0.8}), x, (2, 32), (0, 1, 2))
    for d, r in {2: 0.5, 32: 0.8}.items():
        expected = [(r + 0.01 * s) * p for s, p in enumerate(result.pca_mse[d])]
        np.testing.assert_allclose(result.ae_mse[d], expected, rtol=1e-4)
    assert glued["ratio_short_low"] == "0.51" and glued["ratios_long"] == "0.81 at d = 32"
    rows = glued["ch1_pca_table"].splitlines()
    assert rows[0] == "| d | PCA [10⁻³] | AE [10⁻³] | AE / PCA |" and len(rows) == 4
    assert isinstance(ch1.pca_figure(result), Figure)
    with pytest.raises(ClaimError, match="lower at every d <= 16"):
        ch1.pca_comparison(pca, _versus_pca(pca, {2: 0.9, 32: 0.8}), x, (2, 32), (0, 1, 2))


# --- Anomaly detection ------------------------------------------------------------------------------------------


def _anomaly_scores(seed: int, lift: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Scores of 200 images, the first 20 anomalies lifted by `lift`; two normal images score highest of all."""
    g = torch.Generator().manual_seed(seed)
    is_anomaly = torch.arange(200) < 20
    scores = torch.rand(200, generator=g) + lift * is_anomaly
    scores[[50, 60]] = 10.0
    return scores, is_anomaly


def test_normal_in_top_counts_the_false_alarms():
    scores, is_anomaly = _anomaly_scores(0, 5.0)
    assert ch1.normal_in_top(scores, is_anomaly) == 2


def test_anomaly_evidence_scores_the_auc_and_fails_when_leaving_out_does_not_help(glued):
    without = [_anomaly_scores(s, 1.0)[0] for s in range(3)]
    every = [_anomaly_scores(10 + s, 0.3)[0] for s in range(3)]
    is_anomaly = _anomaly_scores(0, 0)[1]
    assert ch1.anomaly_evidence(without, every, is_anomaly) is None
    aucs = [roc_auc_score(is_anomaly.numpy(), s.numpy()) for s in without]
    assert glued["auc_without"] == f"{np.mean(aucs):.3f}"
    assert glued["normal_in_top_10_range"] == "2"
    assert len(glued["ch1_anomaly_table"].splitlines()) == 4
    with pytest.raises(ClaimError, match="raises the AUC"):
        ch1.anomaly_evidence(every, without, is_anomaly)


# --- Feature extraction -----------------------------------------------------------------------------------------


def test_probe_scores_train_one_probe_per_seed_on_its_block():
    x, y = _images(90), torch.arange(90) % 3
    blocks = {0: (x[:30], y[:30]), 1: (x[30:60], y[30:60])}
    got = ch1.probe_scores(lambda images, s: images.flatten(1) * (s + 1), blocks, x, y)
    expected = [
        linear_probe_accuracy(bx.flatten(1) * (s + 1), by, x.flatten(1) * (s + 1), y) for s, (bx, by) in blocks.items()
    ]
    assert got == expected


class Noise(nn.Module):
    """An encoder whose codes know nothing of the images."""

    def __init__(self) -> None:
        super().__init__()
        self.anchor = nn.Parameter(torch.zeros(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return torch.randn(len(x), 8, generator=torch.Generator().manual_seed(len(x)))


def test_probe_comparison_fails_when_the_codes_carry_nothing():
    g = torch.Generator().manual_seed(0)
    y = torch.arange(600) % 2
    x = (torch.rand(600, 1, 28, 28, generator=g) * 0.2 + 0.4 * y.view(-1, 1, 1, 1)).clamp(0, 1)
    pca = PCABaseline(8).fit(x)
    with pytest.raises(ClaimError, match="regression bar"):
        ch1.probe_comparison({s: Noise() for s in range(3)}, pca, x[:300], y[:300], x[300:], y[300:], n=100)


# --- Figures ----------------------------------------------------------------------------------------------------


class TwoNumbers(nn.Module):
    """A 2-D autoencoder: its code is the image's mean and its top row's, its decoder paints the mean back."""

    def __init__(self) -> None:
        super().__init__()
        self.latent_dim = 2
        self.anchor = nn.Parameter(torch.zeros(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(len(x), 28, 28)
        return torch.stack([x.mean((1, 2)), x[:, 0].mean(1)], dim=1)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z[:, :1].expand(len(z), 784)


def test_the_latent_grid_spans_the_codes():
    """The grid's corners are the codes' extremes: the top-left image decodes (min z1, max z2)."""
    x = _images(20)
    z = TwoNumbers().encode(x)
    figure = ch1.latent_grid_figure(TwoNumbers(), x, steps=3)
    canvas = figure.axes[0].images[0].get_array()
    assert float(canvas[0, 0]) == pytest.approx(float(z[:, 0].min()), abs=1e-6)
    assert float(canvas[-1, -1]) == pytest.approx(float(z[:, 0].max()), abs=1e-6)
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()][0] == f"{float(z[:, 1].max()):.2f}"


def test_the_figures_draw():
    x, labels = _images(12), torch.arange(12) % 10
    names = [f"class {i}" for i in range(10)]
    run = _run(0, [0.03, 0.02, 0.015])
    scores = torch.rand(12)
    for figure in (
        ch1.loss_figure(run, 0),
        ch1.reconstruction_figure({"AE": Blend(0.2)}, x[:10], labels[:10], names),
        ch1.reconstruction_figure({"MSE": Blend(0.2), "BCE": Blend(0.1)}, x[:10]),
        ch1.latent_figure(Blend(0.2), x, labels, names),
        ch1.anomaly_figure(Blend(0.2), scores, x, labels, names),
        ch1.latent_grid_figure(TwoNumbers(), x),
        ch1.latent_grid_figure(Blend(0.2), x),  # a longer code: the others at their mean
    ):
        assert isinstance(figure, Figure)


def test_the_charts_fit_a_phone():
    """Chapter 1's charts are CHART_WIDTH_IN wide with their text at CHART_FONT_PT, the legend under the axes."""
    x, labels = _images(12), torch.arange(12) % 10
    result = ch1.PCAComparison({2: [0.03] * 3, 8: [0.02] * 3}, {2: [0.02] * 3, 8: [0.015] * 3})
    charts = (
        ch1.loss_figure(_run(0, [0.03, 0.02, 0.015]), 0),
        ch1.pca_figure(result),
        ch1.latent_figure(Blend(0.2), x, labels, [f"class {i}" for i in range(10)]),
    )
    for chart in charts:
        assert chart.get_figwidth() == ch1.CHART_WIDTH_IN and len(chart.legends) == 1
        ax = chart.axes[0]
        assert ax.get_legend() is None and ax.xaxis.label.get_fontsize() == ch1.CHART_FONT_PT
        assert {t.get_fontsize() for t in chart.legends[0].get_texts()} == {ch1.CHART_FONT_PT}
    assert [t.get_text() for t in charts[1].legends[0].get_texts()] == ["PCA", "autoencoder"]
