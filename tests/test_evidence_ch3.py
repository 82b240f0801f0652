"""Chapter 3's evidence module (aecourse.evidence.ch3), called directly on small synthetic inputs: what each function
measures, checked against a hand or library reference, and the claims that stop the book when a comparison stops
holding."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
from pathlib import Path
from typing import ClassVar

import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from sklearn.metrics import roc_auc_score
from torch import nn

from aecourse.checkpoints import Trained
from aecourse.evidence import ch3
from aecourse.evidence.report import ClaimError
from aecourse.losses import bce, gaussian_kl, vae_loss
from aecourse.models import VAE, Autoencoder
from aecourse.runtime import BUDGET_ENV
from aecourse.train import History

NOTEBOOK = Path(__file__).resolve().parents[1] / "book" / "03_vae.ipynb"


pytestmark = pytest.mark.usefixtures("full_budget")  # tests/conftest.py


@pytest.fixture
def glued(glue_recorder) -> dict[str, str]:
    """What the module glues, name -> the text the page would show."""
    return glue_recorder(ch3)


def _chapter_config():
    """The chapter's Config class, run from the notebook's cell (its defaults are the full budget)."""
    cells = json.loads(NOTEBOOK.read_text())["cells"]
    for cell in cells:
        source = "".join(cell["source"])
        if cell["cell_type"] == "code" and "class Config" in source:
            tree = ast.parse(source)
            node = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
            namespace = {"dataclass": dataclasses.dataclass, "ClassVar": ClassVar}
            exec(compile(ast.Module([node], type_ignores=[]), str(NOTEBOOK), "exec", dont_inherit=True), namespace)
            return namespace["Config"]
    raise LookupError("no Config cell")


def _trained(model: nn.Module | None = None, rows: list[dict[str, float]] | None = None, seed: int = 0) -> Trained:
    rows = rows or [{"epoch": 1.0, "test_loss": 1.0, "seconds": 1.0}]
    manifest = {"name": "03_vae/test", "seed": seed, "epochs": len(rows), "device": "cpu", "training_seconds": 1.0}
    return Trained(model or nn.Identity(), History(rows), manifest)


# --- budgets ---------------------------------------------------------------------------------------------------------


def test_the_budgets_change_only_fields_of_the_chapter_config(monkeypatch):
    config = _chapter_config()()
    assert ch3.at_budget(config) == config  # the full budget: the defaults, as the stored models were trained
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    smoke = ch3.at_budget(config)
    assert smoke.seeds == (0,) and smoke.train_size == 2_000 and smoke.num_epochs == 1
    assert smoke.latent_dim == config.latent_dim  # the network itself never changes
    monkeypatch.setenv(BUDGET_ENV, "short")
    assert ch3.at_budget(config).num_epochs == 15
    fields = {f.name for f in dataclasses.fields(config)}
    assert set(ch3.SHORT) <= fields and set(ch3.SMOKE) <= fields
    assert set(type(config).compared) <= fields and "compared" not in fields  # a class attribute, not a field


def test_the_config_is_the_one_the_checkpoints_were_trained_with():
    from aecourse.checkpoints import training_config

    stored = json.loads((Path(ch3.__file__).parents[1] / "weights" / "03_vae" / "vae-seed0.json").read_text())
    assert training_config(_chapter_config()()) == stored["config"]


# --- the training run ------------------------------------------------------------------------------------------------


class Classifier(nn.Module):
    """A stand-in for the course's classifier: eight features (the mean brightness of eight strips of the image) and
    ten logits made from the first."""

    num_features = 8

    def features(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.reshape(len(x), -1)
        return torch.stack([rows[:, 98 * i : 98 * (i + 1)].mean(1) for i in range(8)], dim=1)  # eight strips

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[:, :1] * torch.arange(10.0)


def test_the_sample_tracker_scores_samples_and_leaves_the_training_stream_alone(monkeypatch):
    loads = []
    monkeypatch.setattr(ch3, "judge", lambda data: loads.append(data) or Classifier())
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    data = type("Data", (), {"x_test": x})()
    track = ch3.sample_tracker(data, 20)
    assert loads == []  # nothing is loaded before the first epoch ends
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dim=8)
    state = torch.get_rng_state()
    first, second = track(model), track(model)
    assert torch.equal(state, torch.get_rng_state())  # the VAE's draws of z during training are not shifted
    assert len(loads) == 1 and set(first) == {"fid"} and first == second  # loaded once; seeded samples
    with pytest.raises(ValueError, match="num_samples"):
        ch3.sample_tracker(data, 1)


def test_the_vae_runs_hand_every_seed_one_sample_tracker(monkeypatch):
    made, calls = [], []
    monkeypatch.setattr(ch3, "sample_tracker", lambda data, n: made.append((data, n)) or "tracker")
    config = type("Config", (), {"seeds": (0, 1, 2), "track_samples": 7})()
    runs = ch3.vae_runs(lambda seed, **options: calls.append((seed, options)) or seed, "data", config)
    assert runs == [0, 1, 2] and made == [("data", 7)]  # one tracker (one classifier) for every run
    assert calls == [(seed, {"epoch_end": "tracker"}) for seed in (0, 1, 2)]


def test_the_first_step_claim_holds_only_for_a_fresh_vae():
    model = VAE(latent_dim=2, hidden_dim=8)
    model.mu_head.weight.grad = torch.ones_like(model.mu_head.weight)
    fresh = {"reconstruction": torch.tensor(784 * math.log(2) + 1.0), "kl": torch.tensor(0.2)}
    ch3.first_step(fresh, model)
    with pytest.raises(ClaimError, match="784 log 2"):
        ch3.first_step({"reconstruction": torch.tensor(300.0), "kl": torch.tensor(0.2)}, model)


def _run(test_losses: list[float], kl: list[float], reconstruction: list[float]) -> Trained:
    rows = [
        {"epoch": float(i + 1), "test_loss": t, "train_kl": k, "train_reconstruction": r, "test_kl": k, "seconds": 1.0}
        for i, (t, k, r) in enumerate(zip(test_losses, kl, reconstruction, strict=True))
    ]
    return _trained(rows=rows)


def test_training_results_glue_the_course_of_the_two_terms(glued):
    kl = [14.0, 16.0, 15.5, 15.6, 15.7, 15.8]
    reconstruction = [270.0, 240.0, 230.0, 226.0, 224.0, 222.0]
    runs = [_run([241.0] * 5 + [240.0 + i / 10], kl, reconstruction) for i in range(3)]
    shown = ch3.training_results(runs)
    assert glued["test_neg_elbo"] == "240.1" and glued["test_neg_elbo_seeds"] == "240.10 ± 0.10"
    assert (glued["kl_first"], glued["kl_peak"], glued["kl_peak_epoch"], glued["kl_last"]) == (
        "14.0",
        "16.0",
        "2",
        "15.8",
    )
    assert glued["test_kl"] == f"{sum(kl[-5:]) / 5:.1f}"  # the last five epochs, averaged over the runs
    assert glued["test_neg_elbo_seed0"] == "240.0"
    assert len(shown.rows) == 3 and list(shown.rows[0]) == ["seed", "epochs", "test -ELBO [nats]"]  # no bookkeeping
    flat = [14.0, 14.5, 15.0, 15.5, 16.0, 16.5]  # no peak to fall back from
    with pytest.raises(ClaimError, match="rises to a peak"):
        ch3.training_results([_run([240.0] * 6, flat, reconstruction)])
    with pytest.raises(ClaimError, match="at most 241.3"):
        ch3.training_results([_run([245.0] * 6, kl, reconstruction)])


def test_latent_dimensions_count_the_units_whose_mean_varies(glued):
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(500, 4, generator=generator) * torch.tensor([1.0, 0.5, 0.01, 0.0])  # two used, two not
    logvar = torch.stack([torch.full((500,), -2.0), torch.full((500,), -1.0), torch.zeros(500), torch.zeros(500)], 1)

    class Posterior(nn.Module):
        def __init__(self, mu: torch.Tensor, logvar: torch.Tensor) -> None:
            super().__init__()
            self.mu, self.logvar = mu, logvar

        def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            return self.mu[: len(x)], self.logvar[: len(x)]

    runs = [_trained(Posterior(mu, logvar)) for _ in range(2)]
    x = torch.rand(500, 784)
    shown = ch3.latent_dimensions(runs, x, mu, logvar)
    kl = gaussian_kl(mu, logvar).mean(0)
    assert glued["active_units"] == "2" and glued["active_units_seeds"] == "2, 2"
    assert isinstance(shown, Figure) and len(shown.axes) == 2  # the KL and the variance of each dimension
    order = [int(line.split("|")[1]) for line in glued["ch3_dimensions_table"].splitlines()[2:]]
    assert order == kl.argsort(descending=True).tolist()  # the folded table: most informative first
    assert glued["inactive_kl"] == f"{math.ceil(float(kl[2:].max()) * 1000) / 1000:.3f}"  # rounded up: "at most"
    assert glued["active_min_kl"] == f"{float(kl[:2].min()):.2f}"  # as the table shows it
    assert glued["active_max_kl"] == f"{float(kl[:2].max()):.2f}"
    every, zeros = torch.randn(500, 4, generator=generator), torch.zeros(500, 4)
    with pytest.raises(ClaimError, match="leaves the rest"):
        ch3.latent_dimensions([_trained(Posterior(every, zeros))], x, every, zeros)


# --- the AE-vs-VAE table ---------------------------------------------------------------------------------------------


class Offset(nn.Module):
    """A 'model' whose code is the image and whose decoder adds a constant: its PSNR is known in closed form."""

    latent_dim = 784

    def __init__(self, offset: float) -> None:
        super().__init__()
        self.offset = offset
        self.dummy = nn.Parameter(torch.zeros(1))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 784)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z + self.offset


def test_the_psnr_comparison_says_which_model_reconstructs_better(glued):
    x = 0.2 + 0.6 * torch.rand(8, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    aes = [_trained(Offset(0.01 + i * 1e-4)) for i in range(3)]
    vaes = [_trained(Offset(0.1 + i * 1e-3)) for i in range(3)]
    shown = ch3.reconstruction_comparison(aes, vaes, x)
    expected = [10 * math.log10(1 / (0.01 + i * 1e-4) ** 2) for i in range(3)]
    assert glued["ae_psnr"] == f"{sum(expected) / 3:.2f}"
    assert [row["model"] for row in shown.rows] == ["AE", "VAE"]
    assert "decided: higher" in glued["ch3_psnr_evidence"]
    with pytest.raises(ClaimError, match="the AE reconstructs better"):
        ch3.reconstruction_comparison(vaes, aes, x)


def test_top_class_confidence_is_the_largest_softmax_probability():
    x = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    classifier = Classifier()
    reference = torch.softmax(classifier(x), 1).max(1).values
    torch.testing.assert_close(ch3.top_class_confidence(x, classifier), reference)


def test_the_extrapolation_table_walks_every_seed_along_the_same_lines(monkeypatch, glued):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # untrained models: the claims only print
    torch.manual_seed(0)
    models = [_trained(VAE(latent_dim=2, hidden_dim=8)) for _ in range(2)]
    x = torch.rand(1000, 1, 28, 28, generator=torch.Generator().manual_seed(2))
    shown = ch3.extrapolation(models, models, x, Classifier())
    assert [row["t"] for row in shown.rows] == ["−1", "−0.5", "0", "0.5", "1", "1.5", "2"]  # minus signs
    assert shown.rows[0]["AE"] == shown.rows[0]["VAE"]  # the same models along the same lines: the same numbers
    assert 0 < float(glued["confidence_vae_2"]) <= 1
    means = {row["t"]: row["VAE"] for row in shown.rows}
    change = max(abs(means["−1"] - means["0"]), abs(means["2"] - means["1"]))
    assert glued["extrapolation_change"] == f"{change:.3f}"  # from the values the table shows
    assert "± " in glued["ch3_extrapolation_spread"] and "t = -1 minus at t = 0" in glued["ch3_extrapolation_evidence"]


def test_the_image_figures_show_every_image_at_a_legible_size():
    torch.manual_seed(0)
    ae, vae = Autoencoder(20, 16, sigmoid_output=True), VAE(latent_dim=20, hidden_dim=16)
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(11))
    y = torch.arange(40) % 10
    shown = ch3.reconstruction_figure(ae, vae, x)
    assert len(shown.axes) == 1 and shown.get_figwidth() == 8.0
    assert [label.get_text() for label in shown.axes[0].get_yticklabels()] == ["test", "AE", "VAE"]
    pairs = ch3.interpolation_figure(ae, vae, x, y)
    assert [ax.get_title() for ax in pairs.axes] == ["T-shirt → Trouser", "Sneaker → Ankle boot", "Pullover → Bag"]
    generated = {way: torch.rand(20, 1, 28, 28) for way in ch3.WAYS}
    ways = ch3.generation_figure(generated)
    canvas = ways.axes[0].get_images()[0].get_array()
    assert len(ways.axes) == 3 and canvas.shape == (2 * 28 + ch3.GAP, 8 * 28 + 7 * ch3.GAP)  # two rows of eight
    torch.testing.assert_close(torch.as_tensor(canvas[:28, 30:58]), generated[ch3.WAYS[0]][1, 0])


# --- generating with an autoencoder ------------------------------------------------------------------------------


def test_generated_images_repeat_for_a_seed_and_leave_the_callers_stream_alone():
    torch.manual_seed(0)
    ae, vae = Offset(0.0), VAE(latent_dim=3, hidden_dim=8)
    ae.encode = lambda x: x.reshape(len(x), -1)[:, :3]  # three code dimensions, from the image
    ae.latent_dim = 3
    ae.decode = lambda z: z.repeat(1, 262)[:, :784].clamp(0, 1)
    x = torch.rand(50, 1, 28, 28, generator=torch.Generator().manual_seed(3))
    state = torch.get_rng_state()
    first = ch3.generated_images(ae, vae, x, seed=1, num_generated=6)
    again = ch3.generated_images(ae, vae, x, seed=1, num_generated=6)
    assert torch.equal(state, torch.get_rng_state())
    assert list(first) == list(ch3.WAYS) and all(images.shape == (6, 1, 28, 28) for images in first.values())
    assert all(torch.equal(first[way], again[way]) for way in ch3.WAYS)


# --- the 2-D VAE -------------------------------------------------------------------------------------------------


def test_the_latent_grid_holds_equal_prior_mass_per_cell_and_runs_as_the_axes_say():
    grid, values = ch3.latent_grid(5)
    normal = torch.distributions.Normal(0.0, 1.0)
    torch.testing.assert_close(normal.cdf(torch.tensor(values)), torch.linspace(0.05, 0.95, 5))
    assert grid.shape == (25, 2)
    assert torch.equal(grid[:5, 0], torch.tensor(values))  # z_1 grows along a row
    assert torch.equal(grid[::5, 1], torch.tensor(values[::-1]))  # z_2 falls down the rows: the top row is largest


def test_the_2d_claim_fails_when_the_2d_vae_is_not_worse(glued):
    vae_20d = _trained(rows=[{"epoch": float(i + 1), "test_loss": 250.0 - i} for i in range(4)])
    vae_2d = _trained(rows=[{"epoch": 1.0, "test_loss": 260.0}, {"epoch": 2.0, "test_loss": 255.0}])
    ch3.vae_2d_results(vae_2d, vae_20d, 2)
    assert glued["elbo_2d_gap"] == "6.0" and glued["neg_elbo_20d_at"] == "249.0"
    with pytest.raises(ClaimError, match="above the 20-D"):
        ch3.vae_2d_results(vae_20d, vae_2d, 2)


def test_the_manifold_counts_dark_and_confident_cells(glued):
    class Plane(nn.Module):
        """Decodes a code to a flat image whose brightness is its first coordinate's quantile."""

        latent_dim = 2

        def __init__(self) -> None:
            super().__init__()
            self.dummy = nn.Parameter(torch.zeros(1))

        def decode(self, z: torch.Tensor) -> torch.Tensor:
            return torch.distributions.Normal(0.0, 1.0).cdf(z[:, :1]).expand(-1, 784) - 0.04

    ch3.manifold_counts(Plane(), Classifier())
    # the first column (quantile 0.05) is nearly black after the 0.04 shift: 15 of the 225 cells
    assert glued["map_dark"] == "15" and glued["map_cells"] == "225"


# --- the importance-weighted bound ---------------------------------------------------------------------------------


def _shown(name: str) -> tuple[str, list[str]]:
    """A definition as the chapter's code cell shows it (from `def`), and its decorators."""
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        source = "".join(line for line in cell["source"] if not line.lstrip().startswith(("%", "!")))  # magics out
        if cell["cell_type"] == "code":
            for node in ast.parse(source).body:
                if isinstance(node, ast.FunctionDef) and node.name == name:
                    return ast.get_source_segment(source, node), [ast.unparse(d) for d in node.decorator_list]
    raise LookupError(name)


def test_the_chapter_shows_the_iwae_bound_that_the_measurement_runs():
    """One source: the chapter's cell and the module's copy are the same text (the module's adds a door check)."""
    shown, decorators = _shown("iwae_bound")
    text = Path(ch3.__file__).read_text()
    node = next(n for n in ast.parse(text).body if isinstance(n, ast.FunctionDef) and n.name == "iwae_bound")
    assert shown == ast.get_source_segment(text, node)
    assert [ast.unparse(d) for d in node.decorator_list] == ["_counted", *decorators] == ["_counted", "torch.no_grad()"]
    with pytest.raises(ValueError, match="k is a number of importance samples"):
        ch3.iwae_bound(VAE(latent_dim=2, hidden_dim=8), torch.rand(2, 784), 0)
    with pytest.raises(ValueError, match="chunk must be an int >= 1"):
        ch3.iwae_bound(VAE(latent_dim=2, hidden_dim=8), torch.rand(2, 784), 2, chunk=0)


class BernoulliOnALine(nn.Module):
    """p(z) = N(0, 1), six Bernoulli pixels with logits w z + b, and a deliberately imperfect q(z|x) = N(a . x + c,
    1): log p(x) is a one-dimensional integral, exact to many digits on a fine grid."""

    latent_dim = 1

    def __init__(self) -> None:
        super().__init__()
        generator = torch.Generator().manual_seed(0)
        self.decoder = nn.Linear(1, 6)
        with torch.no_grad():
            self.decoder.weight.copy_(2 * torch.randn(6, 1, generator=generator))
            self.decoder.bias.copy_(torch.randn(6, generator=generator))
        self.a = 0.3 * torch.randn(6, generator=generator)

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = (x @ self.a - self.a.sum() / 2).unsqueeze(1)
        return mu, torch.zeros_like(mu)  # sd 1: wider than the posterior

    def exact_log_px(self, x: torch.Tensor) -> torch.Tensor:
        z = torch.linspace(-10.0, 10.0, 20_001, dtype=torch.float64)
        w, b = self.decoder.weight.detach().double(), self.decoder.bias.detach().double()
        logits = z[:, None] * w.T + b  # (G, 6): the pixels' logits at every z of the grid
        targets = x.double()[:, None, :].expand(-1, len(z), -1)  # (B, G, 6)
        log_px_z = -F.binary_cross_entropy_with_logits(logits.expand_as(targets), targets, reduction="none").sum(-1)
        log_joint = log_px_z + torch.distributions.Normal(0.0, 1.0).log_prob(z)
        return torch.logsumexp(log_joint, dim=1) + math.log(float(z[1] - z[0]))


def test_the_iwae_bound_closes_on_the_exact_log_likelihood():
    torch.manual_seed(0)
    model = BernoulliOnALine()
    with torch.no_grad():
        x = torch.bernoulli(torch.sigmoid(model.decoder(torch.randn(64, 1))))  # images the model could draw
    exact = float(model.exact_log_px(x).mean())
    bounds = {k: float(ch3.iwae_bound(model, x, k, chunk=500).mean()) for k in (10, 100, 5000)}
    bounds[1] = float(torch.stack([ch3.iwae_bound(model, x, 1).mean() for _ in range(400)]).mean())  # the ELBO
    gaps = [exact - bounds[k] for k in (1, 10, 100, 5000)]
    assert gaps[0] > 0.2 and gaps[1] < gaps[0] / 3 and gaps[2] < gaps[1] / 3  # the gap closes as k grows
    assert abs(gaps[3]) < 0.01  # and at k = 5000 the bound is the log-likelihood, within Monte Carlo error


def test_the_bound_at_k_1_is_the_elbo_of_the_same_draw():
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=8)
    x = torch.bernoulli(torch.rand(6, 784, generator=torch.Generator().manual_seed(5)))
    torch.manual_seed(7)
    bound = ch3.iwae_bound(model, x, 1)
    torch.manual_seed(7)  # the same eps: z = mu + sigma * eps, as the bound draws it
    with torch.no_grad():
        mu, logvar = model.encode(x)
        eps = torch.randn(1, *mu.shape)
        z = (mu + torch.exp(0.5 * logvar) * eps)[0]
        # one-sample ELBO with the KL estimated at z: log p(x|z) + log p(z) - log q(z|x)
        log_px = -bce(model.decoder(z), x, per_image=True, logits=True)
        log_ratio = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(1) - torch.distributions.Normal(
            mu, torch.exp(0.5 * logvar)
        ).log_prob(z).sum(1)
    torch.testing.assert_close(bound, log_px + log_ratio)
    curve = ch3.importance_weighted_curve(model, x, [1, 10])
    assert curve == ch3.importance_weighted_curve(model, x, [1, 10])  # seeded: it repeats


def test_the_iwae_measurement_glues_the_gap_and_the_kl_it_is_set_against(monkeypatch, glued):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # an untrained VAE and few images: the claims only print
    torch.manual_seed(0)
    model = VAE(latent_dim=3, hidden_dim=8)
    x = torch.rand(30, 1, 28, 28, generator=torch.Generator().manual_seed(6))
    x_binary = torch.bernoulli(x, generator=torch.Generator().manual_seed(0))
    curves, shown = ch3.iwae_measurement(model, model, x, x_binary, (1, 10, 100), 20)
    binarized = curves["binarized"]
    assert glued["iwae_gap"] == f"{binarized[100] - binarized[1]:.1f}" and glued["iwae_k"] == "100"
    assert [row["binarized"] for row in shown.rows] == [-binarized[k] for k in (1, 10, 100)]
    assert float(glued["kl_subset"]) > 0


# --- anomaly detection -------------------------------------------------------------------------------------------


def test_anomaly_scores_are_scored_by_their_roc_auc(monkeypatch, glued):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # untrained models: the claims only print
    torch.manual_seed(0)
    aes = [_trained(Offset(0.05)) for _ in range(2)]
    vaes = [_trained(VAE(latent_dim=2, hidden_dim=8)) for _ in range(2)]
    x = torch.rand(40, 1, 28, 28, generator=torch.Generator().manual_seed(8)) * 0.5
    is_anomaly = torch.arange(40) % 4 == 0
    x[is_anomaly] += 0.5  # brighter images: what the VAE's reconstruction term and error notice
    shown = ch3.anomaly_detection(aes, vaes, x, is_anomaly)
    expected = [roc_auc_score(is_anomaly.numpy(), sum(ch3.elbo_per_image(v.model, x)).numpy()) for v in vaes]
    assert glued["auc_elbo"] == f"{sum(expected) / 2:.3f}"  # the mean over the seeds
    assert [row["score"] for row in shown.rows] == list(ch3.AUC_BARS)
    assert "minus chance (0.5)" in glued["ch3_anomaly_evidence"]


def test_elbo_per_image_is_the_vae_loss_of_each_image():
    torch.manual_seed(0)
    model = VAE(latent_dim=2, hidden_dim=8)
    x = torch.rand(5, 784, generator=torch.Generator().manual_seed(9))
    reconstruction, kl = ch3.elbo_per_image(model, x, seed=3)
    torch.manual_seed(3)  # the draw of z that elbo_per_image's seed makes
    with torch.no_grad():
        x_logits, mu, logvar = model(x)
        _, expected_reconstruction, expected_kl = vae_loss(x_logits, x, mu, logvar)
    torch.testing.assert_close(kl, expected_kl)
    torch.testing.assert_close(reconstruction, expected_reconstruction)
    with pytest.raises(ValueError, match="empty"):
        ch3.elbo_per_image(model, x[:0])


def test_generation_scores_measure_each_way_against_the_test_images(monkeypatch, glued):
    from aecourse.evidence.metrics import frechet_distance

    g = torch.Generator().manual_seed(10)
    x_test = torch.rand(80, 1, 28, 28, generator=g)

    def images(scale: float, offset: float) -> torch.Tensor:
        return (torch.rand(60, 1, 28, 28, generator=g) * scale + offset).clamp(0, 1)

    generated = {
        s: dict(zip(ch3.WAYS, (images(0.2, 0.0), images(0.9, 0.05), images(1.0, 0.0)), strict=True)) for s in (0, 1)
    }
    classifier = Classifier()
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # synthetic images: the claims only print
    shown = ch3.generation_scores(generated, x_test, x_test[:60], classifier)
    expected = sum(frechet_distance(x_test, generated[s][ch3.WAYS[0]], classifier) for s in (0, 1)) / 2
    assert glued["fd_ae_prior"] == f"{expected:.0f}"
    contrast = sum(float(generated[s][ch3.WAYS[2]].flatten(1).std(1).mean()) for s in (0, 1)) / 2
    assert glued["contrast_vae"] == f"{contrast:.3f}"
    assert [row["images"] for row in shown.rows] == ["real training images", *ch3.WAYS]
    monkeypatch.delenv(BUDGET_ENV)
    same = {s: {way: generated[s][ch3.WAYS[2]] for way in ch3.WAYS} for s in (0, 1)}  # the AE no worse than the VAE
    with pytest.raises(ClaimError, match="far from the data"):
        ch3.generation_scores(same, x_test, x_test[:60], classifier)


def test_the_binarized_result_is_glued_as_the_page_shows_it(glued):
    ch3.binarized_result(238.17348)
    assert glued["binary_neg_elbo"] == "238.2"
