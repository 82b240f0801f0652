"""Chapter 5's evidence module (aecourse.evidence.ch5), called directly on small synthetic inputs: what each function
measures, checked against a hand or library reference, and the claims that stop the book when a comparison stops
holding."""

from __future__ import annotations

import ast
import dataclasses
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest
import torch
from matplotlib.figure import Figure
from torch import nn
from torch.distributions import Normal, kl_divergence

pytest.importorskip("torchbearer")

from aecourse.checkpoints import Trained, training_config  # noqa: E402
from aecourse.evidence import ch5  # noqa: E402
from aecourse.evidence.report import ClaimError  # noqa: E402
from aecourse.models import ConvVAE  # noqa: E402
from aecourse.runtime import BUDGET_ENV  # noqa: E402
from aecourse.train import History  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "book" / "05_beta_vae_torchbearer.ipynb"


pytestmark = pytest.mark.usefixtures("full_budget")  # tests/conftest.py


@pytest.fixture
def glued(glue_recorder) -> dict[str, str]:
    """What the module glues, name -> the text the page would show."""
    return glue_recorder(ch5)


def _chapter_config() -> type:
    """The chapter's Config class, run from the notebook's cell (its defaults are the full budget)."""
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "class Config" in source:
            node = next(n for n in ast.parse(source).body if isinstance(n, ast.ClassDef) and n.name == "Config")
            namespace = {"dataclass": dataclasses.dataclass, "ClassVar": ClassVar}
            exec(compile(ast.Module([node], type_ignores=[]), str(NOTEBOOK), "exec", dont_inherit=True), namespace)
            return namespace["Config"]
    raise AssertionError("the chapter defines no Config")


def test_the_budgets_change_only_what_they_name_and_the_full_one_is_the_stored_models(monkeypatch):
    config_class = _chapter_config()
    full = ch5.at_budget(config_class())
    stored = json.loads((ROOT / "aecourse/weights/05_beta_vae_torchbearer/beta_5-seed0.json").read_text())["config"]
    assert training_config(full) == stored, "the Config's defaults must be what the stored models were trained with"
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    smoke = ch5.at_budget(config_class())
    assert (smoke.num_epochs, smoke.betas, smoke.seeds, smoke.train_size) == (1, (1.0, 5.0), (0,), 1_000)
    assert smoke.lr == full.lr and smoke.latent_dim == full.latent_dim
    monkeypatch.setenv(BUDGET_ENV, "short")
    assert ch5.at_budget(config_class()).num_epochs == 2


def test_the_shape_table_finds_the_articles_three_wrong_comments(monkeypatch):
    vae = ConvVAE(10)
    assert ch5.traced_shapes(vae) == [(32, 29, 29), (32, 14, 14), (64, 7, 7), (32, 14, 14), (32, 29, 29), (1, 28, 28)]
    shown = ch5.shape_comments(vae)
    rows = shown.rows
    assert [row["the trace"][-1] for row in rows] == ["✗", "✓", "✓", "✗", "✗", "✓"]
    assert rows[3]["the article"] == "64×14×14" and rows[3]["the trace"] == "32×14×14 ✗"
    assert [row["layer"] for row in rows][2:5] == ["encoder 3", "decoder 1", "decoder 2"]
    assert "<caption>" in shown._repr_html_()
    fixed = tuple(
        (part, layer, shape) for (part, layer, _), shape in zip(ch5.ARTICLE_SHAPES, ch5.traced_shapes(vae), strict=True)
    )
    monkeypatch.setattr(ch5, "ARTICLE_SHAPES", fixed)  # comments that all hold: the sentence no longer does
    with pytest.raises(ClaimError, match="shape comments"):
        ch5.shape_comments(vae)


class FixedPosterior(nn.Module):
    """A stand-in VAE whose q(z|x) is given: image i gets mu[i] and logvar[i] (its first pixel holds i / 1000)."""

    def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
        super().__init__()
        self.mu, self.logvar = mu, logvar
        self.weight = nn.Parameter(torch.zeros(1))
        self.latent_dim = mu.shape[1]

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        index = (x.reshape(len(x), -1)[:, 0] * 1000).round().long()
        return self.mu[index], self.logvar[index]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return torch.zeros(len(z), 784)


def _images(n: int) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, 0, 0, 0] = torch.arange(n) / 1000
    return x


def _posterior(n: int, spreads: list[float], seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    mu = torch.randn(n, len(spreads), generator=generator) * torch.tensor(spreads)
    logvar = -0.5 * torch.rand(n, len(spreads), generator=generator) * (torch.tensor(spreads) > 0.5)
    return mu, logvar


def _trained(model: nn.Module, rows: list[dict] | None = None, **manifest: Any) -> Trained:
    return Trained(model, History(rows or [{"epoch": 1.0}]), {"name": "05_beta_vae_torchbearer/x", **manifest})


def test_unit_stats_are_active_units_and_the_closed_form_kl_of_each_dimension():
    x = _images(200)
    mu, logvar = _posterior(200, [1.0, 0.2, 0.001], seed=0)
    stats = ch5.unit_stats({(1.0, 0): _trained(FixedPosterior(mu, logvar))}, x)
    active, kl = stats[1.0, 0]
    assert active.tolist() == (mu.var(0) > 0.01).tolist() == [True, True, False]
    reference = kl_divergence(Normal(mu, (0.5 * logvar).exp()), Normal(0.0, 1.0)).mean(0)
    torch.testing.assert_close(kl, reference)


def _units_sweep(active_at_5: int) -> dict:
    """Three seeds at beta = 1 (three of four dimensions used) and beta = 5 (`active_at_5` of them used)."""
    x = _images(300)
    sweep = {}
    for seed in (0, 1, 2):
        for beta, used in ((1.0, 3), (5.0, active_at_5)):
            spreads = [1.5] * used + [0.001] * (4 - used)
            sweep[beta, seed] = _trained(FixedPosterior(*_posterior(300, spreads, seed)))
    return ch5.unit_stats(sweep, x)


def test_the_units_table_counts_and_compares_the_used_dimensions(glued):
    stats = _units_sweep(active_at_5=1)
    rows = ch5.units_table(stats, (1.0, 5.0), (0, 1, 2), 5.0).rows
    assert [row["active units"] for row in rows] == [3, 1]
    assert [row["KL ≥ ½ nat, per seed"] for row in rows] == ["3, 3, 3", "1, 1, 1"]
    assert glued["active_beta_1"] == "3" and glued["active_beta_5"] == "1"
    assert glued["active_counts_beta_1"] == "3, 3, 3" and glued["active_counts_beta_5"] == "1, 1, 1"
    assert glued["informative_counts_beta_5"] == "1, 1, 1"
    assert glued["active_threshold"] == "0.01" and glued["active_min_kl"] == "0.005"
    assert float(glued["kl_inactive_max"]) < float(glued["kl_active_min"])
    row = next(line for line in glued["ch5_units_evidence"].splitlines() if "| active units, β = 5 - β = 1 |" in line)
    assert "| 3 seeds | decided: lower |" in row


def test_the_units_claim_fails_when_beta_5_keeps_as_many_units(glued):
    with pytest.raises(ClaimError, match="fewer active units"):
        ch5.units_table(_units_sweep(active_at_5=3), (1.0, 5.0), (0, 1, 2), 5.0)


def _scores(rates: dict, distortions: dict, betas, seeds) -> dict:
    return {
        (b, s): {"test_loss": distortions[b][i] + b * rates[b][i], "test_kl": rates[b][i]}
        | {"test_distortion": distortions[b][i]}
        for b in betas
        for i, s in enumerate(seeds)
    }


def test_the_sweep_table_gives_means_spreads_and_the_price_of_a_nat(glued):
    betas, seeds = (1.0, 2.0, 5.0), (0, 1, 2)
    rates = {1.0: [9.0, 8.0, 10.0], 2.0: [5.0, 4.0, 6.1], 5.0: [3.0, 2.0, 4.2]}
    distortions = {1.0: [12.0, 13.0, 11.0], 2.0: [15.0, 16.0, 14.1], 5.0: [21.0, 22.0, 20.2]}
    stats = {(b, s): (torch.tensor([True, b < 5]), torch.ones(2)) for b in betas for s in seeds}
    rows = ch5.sweep_table(_scores(rates, distortions, betas, seeds), stats, betas, seeds).rows
    assert rows[0]["rate [nats]"] == "9.00" and rows[2]["distortion"] == "21.07"
    assert "| 1 | 9.0 ± 1.0 | 12.0 ± 1.0 | 2.0 ± 0 |" in glued["ch5_sweep_full"]
    assert "| 5 | 3.1 ± 1.1 | 21.1 ± 0.9 | 1.0 ± 0 | 3.07 |" in glued["ch5_sweep_full"]
    mean = {b: (sum(rates[b]) / 3, sum(distortions[b]) / 3) for b in betas}
    slopes = [(mean[b2][1] - mean[b1][1]) / (mean[b1][0] - mean[b2][0]) for b1, b2 in ((1.0, 2.0), (2.0, 5.0))]
    assert [row["price per nat"] for row in rows] == ["", f"{slopes[0]:.2f}", f"{slopes[1]:.2f}"]
    # an optimum of distortion + beta * rate pays between beta1 and beta2 per nat: 0.76 is below 1, 3.08 in [2, 5]
    assert glued["rd_within"] == "1" and glued["rd_steps"] == "2" and glued["rd_outside"] == "from β = 1 to 2"
    assert glued["rate_beta_1"] == "9.00" and glued["distortion_beta_5"] == "21.07"
    assert "decided: lower" in glued["ch5_sweep_evidence"]


def test_the_sweep_claims_fail_when_the_rate_stops_falling(glued):
    betas, seeds = (1.0, 2.0), (0, 1, 2)
    rates = {1.0: [5.0, 6.0, 4.0], 2.0: [5.5, 6.5, 4.5]}  # higher at the larger beta
    distortions = {1.0: [12.0, 13.0, 11.0], 2.0: [15.0, 16.0, 14.0]}
    stats = {(b, s): (torch.tensor([True]), torch.ones(1)) for b in betas for s in seeds}
    with pytest.raises(ClaimError, match="rate falls"):
        ch5.sweep_table(_scores(rates, distortions, betas, seeds), stats, betas, seeds)


def _history(kl: list[float], distortion: list[float]) -> list[dict]:
    return [
        {"epoch": float(i + 1), "train_loss": d + 5 * k, "train_kl": k, "train_distortion": d, "seconds": 1.0}
        for i, (k, d) in enumerate(zip(kl, distortion, strict=True))
    ]


def test_the_article_runs_history_is_its_epochs_and_the_verdicts_of_training(glued):
    sweep = {
        (5.0, s): _trained(nn.Linear(1, 1), _history([1.0 + s / 10, 2.0, 2.5 + s / 10], [50.0 - s, 30.0, 28.0 - s]))
        for s in (0, 1, 2)
    }
    rows = ch5.article_run_history(sweep, 5.0, (0, 1, 2)).rows
    assert [row["epoch"] for row in rows] == [1, 2, 3] and rows[-1]["distortion"] == 28.0 and "seconds" not in rows[0]
    assert glued["rate_first_epoch"] == "1.00" and glued["distortion_last_epoch"] == "28.00"
    assert (glued["epoch_before"], glued["epoch_last"]) == ("1", "3")
    assert glued["loss_epoch_before"] == "55.00" and glued["loss_last_epoch"] == "40.50"
    assert "| seconds |" in glued["ch5_history_full"].splitlines()[0]
    falling = {(5.0, s): _trained(nn.Linear(1, 1), _history([3.0, 2.0, 1.0 + s / 10], [50, 40, 30])) for s in (0, 1, 2)}
    with pytest.raises(ClaimError, match="the rate rises"):
        ch5.article_run_history(falling, 5.0, (0, 1, 2))


def test_the_history_shows_a_few_epochs_and_claims_the_loss_still_fell(glued):
    kl = [1.0 + e / 100 for e in range(20)]
    sweep = {(5.0, s): _trained(nn.Linear(1, 1), _history(kl, [60.0 - e - s for e in range(20)])) for s in (0, 1, 2)}
    rows = ch5.article_run_history(sweep, 5.0, (0, 1, 2)).rows
    assert [row["epoch"] for row in rows] == [1, 2, 5, 10, 15, 20]
    flat = {(5.0, s): _trained(nn.Linear(1, 1), _history(kl, [40.0 - s] * 20)) for s in (0, 1, 2)}
    for seed in (0, 1, 2):  # the distortion fell from the first epoch, but the loss rose over the last five
        flat[5.0, seed].history.rows[0]["train_distortion"] = 50.0
    with pytest.raises(ClaimError, match="still fell"):
        ch5.article_run_history(flat, 5.0, (0, 1, 2))


def test_the_mean_code_against_a_sampled_z(glued):
    seeds = (0, 1, 2)
    at_mean = {(5.0, s): {"test_loss": 20.0 + s + 5 * 3.0, "test_kl": 3.0, "test_distortion": 20.0 + s} for s in seeds}
    sampled = [{"test_loss": 26.0 + s + 5 * 3.0, "test_kl": 3.0, "test_distortion": 26.0 + s} for s in seeds]
    sweep = {(5.0, s): _trained(nn.Linear(1, 1), _history([3.0], [25.0 + s])) for s in seeds}
    rows = ch5.mean_code_vs_sample(at_mean, sampled, sweep, 5.0, seeds).rows
    assert rows[0]["loss"] == 35.0 and rows[1]["distortion"] == 26.0 and rows[0]["rate (KL)"] == 3.0
    assert glued["loss_sampled"] == "41.00" and glued["train_distortion_last"] == "25.00"
    assert "decided: higher" in glued["ch5_evaluation_evidence"]
    nearer_mean = {(5.0, s): _trained(nn.Linear(1, 1), _history([3.0], [21.0 + s])) for s in seeds}
    with pytest.raises(ClaimError, match="nearer the test distortion at a sampled z"):
        ch5.mean_code_vs_sample(at_mean, sampled, nearer_mean, 5.0, seeds)


def test_the_training_record_reads_the_manifests(glued):
    sweep = {
        (b, 0): _trained(nn.Linear(1, 1), [{"test_loss": 1.0}], seed=0, epochs=20, training_seconds=t)
        for b, t in ((1.0, 600.5), (5.0, 1_224.9))
    }
    sweep[1.0, 0].manifest["native_bfloat16"] = True
    with pytest.raises(ClaimError, match="16-bit format"):  # one of the two records no 16-bit training
        ch5.training_record(sweep)
    sweep[5.0, 0].manifest["native_bfloat16"] = True
    assert ch5.training_record(sweep) is None
    assert len(glued["ch5_training_record"].splitlines()) == 2 + 2  # a header, its rule and a row per model
    assert (glued["training_seconds_min"], glued["training_seconds_max"]) == ("600", "1,225")
    assert glued["stored_models"] == "2"


def test_the_stored_layer_and_the_articles_give_the_same_reconstructions(glued):
    torch.manual_seed(0)
    model = ConvVAE(10).eval()
    x = torch.rand(16, 1, 28, 28)
    difference = ch5.same_layer(model, x)
    assert 0 <= difference < 1e-5 and float(glued["layer_difference"]) == pytest.approx(difference, rel=0.5, abs=1e-12)
    assert type(model.decoder[2]) is nn.ConvTranspose2d, "the model itself keeps the article's layer"


def test_the_data_size_is_the_float32_megabytes(glued):
    data = type("Data", (), {"x_train": torch.zeros(600, 784), "x_test": torch.zeros(100, 784)})()
    assert ch5.data_size(data) == pytest.approx(700 * 784 * 4 / 1e6)
    assert glued["data_megabytes"] == "2"


def test_the_articles_plot_progress_draws_only_at_evaluate():
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    found = ch5.plot_progress_calls(x, "cpu")
    assert (found["run"], found["evaluate"]) == (0, 1)
    assert str(found["range"]).startswith("TypeError: make_grid() got an unexpected keyword")
    assert found["grid"] == "62 × 302"  # 16 images, nrow=10: two rows of 30 pixels and two of padding


def test_the_today_table_has_a_row_per_call_and_the_acc_metric_becomes_mse(glued):
    x = torch.rand(8, 1, 28, 28)
    trial = ch5.article_trial(x, "cpu")
    data = type("Data", (), {"x_train": x, "x_test": x})()
    shown = ch5.on_today(data, x, "cpu", trial)
    today = {row["the article's code"]: row["today"] for row in shown.rows}
    assert today["metrics=['acc', 'loss']"].startswith("records loss, mse")
    assert today["plot_progress, during run(2)"] == "draws 0 grids"
    assert today["%matplotlib inline # comment"] == "(outside IPython there is no magic to try)"
    assert shown.caption.startswith("The article's calls on torchbearer ") and glued["data_megabytes"] == "0"


@pytest.mark.skipif(
    torch.torch_version.TorchVersion(torch.__version__) < "2.6",
    reason="weights_only=True became torch.load's default in torch 2.6; the chapter runs on a later one",
)
def test_a_torchbearer_checkpoint_is_refused_by_todays_default_torch_load(capsys):
    trial = ch5.article_trial(torch.rand(8, 1, 28, 28), "cpu")
    ch5.trial_state_refused(trial)
    out = capsys.readouterr().out
    assert "-> UnpicklingError: weights_only=True is the default" in out
    assert "-> a dict: callback_list, history, model" in out


def test_the_beta_zero_solution_is_bound_to_its_numbers(glued):
    x = _images(400)
    initial = FixedPosterior(*_posterior(400, [0.05] * 4, seed=0))
    mu, logvar = _posterior(400, [1.0] * 4, seed=1)
    beta_0 = FixedPosterior(mu + 3.0, torch.zeros_like(logvar))  # spread and offset means, sigma = 1
    ch5.beta_zero_evidence(initial, beta_0, {0.0: 20.0, 5.0: 0.5}, 0.2, x)
    means = (mu + 3).mean(0)
    assert int(glued["rate_offset_0"]) == round(0.5 * float(means.pow(2).sum()))
    assert int(glued["rate_spread_0"]) == round(0.5 * float((mu + 3).var(0, correction=0).sum()))
    parts = (glued["rate_offset_0"], glued["rate_spread_0"], glued["rate_sigma_0"])
    assert sum(map(int, parts)) == int(glued["rate_beta_0"]) == 20, "the shown parts add up to the shown rate"
    assert glued["sigma_beta_0"] == "1.00"
    with pytest.raises(ClaimError, match="stays below one nat"):
        ch5.beta_zero_evidence(initial, beta_0, {0.0: 20.0, 5.0: 1.5}, 0.2, x)
    assert ch5.spread_and_sigma(beta_0, x) == pytest.approx((float(mu.var(0).mean()), 1.0))


def test_the_figures_draw(glued):
    vae = ConvVAE(3).eval()
    x = torch.rand(10, 1, 28, 28)
    stats = (torch.tensor([True, False, True]), torch.tensor([0.5, 0.0, 1.0]))
    betas, seeds = (1.0, 5.0), (0,)
    scores = _scores({1.0: [8.0], 5.0: [3.0]}, {1.0: [12.0], 5.0: [20.0]}, betas, seeds)
    for figure in (
        ch5.reconstructions(vae, x),
        ch5.samples(vae),
        ch5.traversal(vae, x, stats),
        ch5.rate_distortion_figure(scores, betas, seeds),
    ):
        assert isinstance(figure, Figure)
