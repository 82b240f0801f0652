"""Chapter 4's evidence module (aecourse/evidence/ch4.py), called directly on small synthetic inputs: what each
section computes, against a hand or library reference, and that its claims fail when the comparison behind a
sentence stops holding. (The measures of generated images are tested in test_gan_and_classifier.py, the verdict
rule in test_chapter_4_verdicts.py.)"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import torch
from torch import nn

from aecourse.checkpoints import Trained
from aecourse.data import FashionMNIST
from aecourse.evidence import ch4
from aecourse.evidence.metrics import active_units, frechet_distance
from aecourse.evidence.report import ClaimError
from aecourse.gan import GAN
from aecourse.inference import encode, generate
from aecourse.models import VAE, Autoencoder, count_parameters
from aecourse.runtime import BUDGET_ENV
from aecourse.train import History


@dataclass(frozen=True)
class Config:
    """The chapter's config, small: the fields the module reads."""

    latent_dim: int = 4
    hidden_dim: int = 16
    num_epochs: int = 2
    batch_size: int = 32
    vae_lr: float = 1e-3
    gan_lr: float = 5e-4
    d_dropout: float = 0.3
    train_size: int | None = None
    track_samples: int = 50
    seeds: tuple[int, ...] = (0, 1, 2)


SMALL = ch4.Measures(recent_epochs=3, num_samples=60, grid_lr_scales=(1.0, 16.0), grid_steps=4, label_counts=(20, 40))


class Pixels(nn.Module):
    """Features = a few pixel means, so the Fréchet distance can be computed cheaply and checked."""

    num_features = 4

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 4, -1).mean(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.nn.functional.one_hot((x.reshape(len(x), -1)[:, 0] * 10).long().clamp(0, 9), 10).float()


def _data(n: int = 200) -> FashionMNIST:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.rand(n, 1, 28, 28, generator=g) * 0.5
    x[:, 0, 0, 0] = (y.float() + 0.5) / 10  # the first pixel tells the class (Pixels' labels)
    return FashionMNIST(x, y, x[:100].clone(), y[:100].clone(), source=Path("."))


def _run(model: nn.Module, fid: list[float], **history: list[float]) -> Trained:
    rows = [{"epoch": float(i + 1), "fid": f} | {k: v[i] for k, v in history.items()} for i, f in enumerate(fid)]
    return Trained(model, History(rows), {"name": "04_vae_vs_gan/x", "seed": 0, "epochs": len(rows)})


@pytest.fixture
def smoke(monkeypatch):
    """Claims only report at the smoke budget: for measurements of tiny models, whose sentences need not hold."""
    monkeypatch.setenv(BUDGET_ENV, "smoke")


def test_at_budget_keeps_the_full_config_and_shrinks_the_others(monkeypatch):
    full = Config(num_epochs=50)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    assert ch4.at_budget(full) == full
    assert ch4.measures() == ch4.Measures()
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    small = ch4.at_budget(full)
    assert (small.num_epochs, small.seeds, small.train_size) == (2, (0,), 2_000)
    assert (ch4.measures().grid_steps, ch4.measures().num_samples) == (20, 2_000)
    monkeypatch.setenv(BUDGET_ENV, "short")
    assert ch4.at_budget(full) == replace(full, num_epochs=5, seeds=(0, 1))
    assert ch4.measures() == replace(ch4.Measures(), recent_epochs=3)


def test_epoch_to_epoch_change_is_in_the_distances_own_units():
    fid = [90.0, 80.0, 70.0, 72.0, 68.0, 71.0]
    assert ch4.epoch_to_epoch_change(fid, 4) == pytest.approx((2 + 4 + 3) / 3)  # the last 4 epochs: 3 changes
    # a curve at a third of the level with the same swings moves as much: no division by the level
    assert ch4.epoch_to_epoch_change([f / 3 for f in fid], 4) == pytest.approx(3 / 3 / 3 * 3)
    assert ch4.epoch_to_epoch_change([v - 40 for v in fid], 4) == pytest.approx(ch4.epoch_to_epoch_change(fid, 4))
    with pytest.raises(ValueError, match="recent_epochs"):
        ch4.epoch_to_epoch_change(fid, 1)


def test_smallest_over_early_sees_a_dip_that_recovers():
    assert ch4.smallest_over_early([2.0, 1.5, 1.0]) == pytest.approx(0.5)
    recovered = [2.0, 0.02, 2.4]
    assert recovered[-1] / recovered[0] > 1 and ch4.smallest_over_early(recovered) == pytest.approx(0.01)
    assert ch4.smallest_over_early([1.0, 3.0]) == 1.0
    with pytest.raises(ValueError, match="finite"):
        ch4.smallest_over_early([1.0, math.nan])


def _stability_runs(gan_swing: float) -> dict[str, list[Trained]]:
    """Three VAE runs whose distance swings by 1 a step around 70, three GANs swinging by `gan_swing` around 28."""
    vae = [_run(None, [70 + (-1) ** i * (0.5 + 0.1 * s) for i in range(6)], train_loss=[1.0] * 6) for s in range(3)]
    gan = [
        _run(
            None,
            [28 + (-1) ** i * gan_swing * (0.5 + 0.1 * s) for i in range(6)],
            d_loss=[1.3] * 6,
            g_loss=[0.8] * 6,
            d_real=[0.55] * 6,
            d_fake=[0.42] * 6,
        )
        for s in range(3)
    ]
    return {"VAE": vae, "GAN": gan}


def test_stability_measures_the_change_and_holds_its_sentence(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)  # the full budget: a claim that fails stops the notebook
    config, measures = Config(), replace(SMALL, recent_epochs=4)
    result = ch4.stability(_stability_runs(2.0), config, measures)
    assert result.change["VAE"] == pytest.approx([1.0, 1.2, 1.4])
    assert result.change["GAN"] == pytest.approx([2.0, 2.4, 2.8])
    assert result.diverged == {"VAE": [[], [], []], "GAN": [[], [], []]}
    assert len(result.table.rows) == 6
    with pytest.raises(ClaimError, match="kept moving more"):
        ch4.stability(_stability_runs(0.5), config, measures)  # the GAN swings less: the sentence no longer holds


def test_smoothest_orders_the_models_the_comparisons_tell_apart():
    jump = {"VAE": [1.59, 1.60, 1.58], "GAN": [1.77, 1.80, 1.74], "AE": [1.48, 1.47, 1.50]}
    assert ch4.smoothest(jump) == "the AE, then the VAE, then the GAN"
    even = jump | {"AE": [1.58, 1.62, 1.59]}  # the AE and the VAE not told apart
    assert ch4.smoothest(even) == "the VAE and the AE (not told apart), then the GAN"


def test_ranked_puts_the_highest_first_when_asked():
    accuracy = {"AE codes": [0.68, 0.71, 0.66], "pixels": [0.67, 0.69, 0.66], "VAE codes": [0.57, 0.59, 0.54]}
    assert ch4.ranked(accuracy, higher_first=True) == "AE codes and pixels (not told apart), then VAE codes"
    assert ch4.ranked(accuracy) == "VAE codes, then pixels and AE codes (not told apart)"


def test_parameter_table_counts_the_networks():
    rows = ch4.parameter_table(4, 16).rows
    vae, gan = VAE(4, 16), GAN(4, 16)
    assert rows[0]["VAE"] == rows[0]["GAN"] == count_parameters(vae.decoder) == count_parameters(gan.generator)
    assert rows[1]["GAN"] == 784 * 16 + 16 + 16 + 1
    assert rows[1]["VAE"] == count_parameters(vae.encoder, vae.mu_head, vae.logvar_head)


def test_code_lines_counts_code_only():
    def example(x):
        """A docstring

        of two paragraphs."""
        # a comment
        y = x + 1

        return y  # a comment after code counts as code

    assert ch4.code_lines(example) == 3  # def, y = ..., return

    def checked(f):
        return f

    @checked  # a decorator is the package's door check, not the lesson's code
    def decorated(x):
        return x

    assert ch4.code_lines(decorated) == 2


def test_sample_quality_scores_every_run_and_the_real_sets(smoke):
    data, classifier = _data(), Pixels()
    torch.manual_seed(0)
    runs = {
        "VAE": [_run(VAE(4, 16), [60.0, 50.0, 55.0]) for _ in range(3)],
        "GAN": [_run(GAN(4, 16), [30.0, 20.0, 25.0]) for _ in range(3)],
    }
    quality = ch4.sample_quality(runs, data, classifier, Config(), replace(SMALL, num_samples=60, recent_epochs=2))
    sample = generate(runs["GAN"][1].model, 60, seed=1)
    torch.testing.assert_close(quality.samples["GAN", 1], sample)
    assert quality.fid["GAN"][1] == pytest.approx(frechet_distance(data.x_test, sample, classifier))
    assert quality.fid_real[2] == pytest.approx(frechet_distance(data.x_test, data.x_train[120:180], classifier))
    assert quality.edges["VAE"][0] == pytest.approx(ch4.edge_energy(quality.samples["VAE", 0]))
    assert quality.fid_recent["VAE"] == [50.0, 50.0, 50.0]  # the smallest of the last two epochs
    assert [row["run"] for row in quality.table.rows][-1] == "real test images"


def test_sample_quality_claims_fail_when_the_gan_is_not_closer(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    data, classifier = _data(), Pixels()
    torch.manual_seed(0)
    same = [_run(GAN(4, 16), [30.0, 31.0]) for _ in range(3)]
    with pytest.raises(ClaimError):
        ch4.sample_quality({"VAE": same, "GAN": same}, data, classifier, Config(), replace(SMALL, recent_epochs=2))


def test_fitted_prior_samples_the_gaussian_of_the_codes():
    torch.manual_seed(0)
    ae = Autoencoder(3, 8, sigmoid_output=True)
    walker = ch4.FittedPrior(ae, torch.rand(500, 1, 28, 28))
    z = walker.sample_prior(20_000, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(z.double().mean(0), walker.fitted.mean, atol=0.01, rtol=0)
    torch.testing.assert_close(torch.cov(z.double().T), walker.fitted.covariance_matrix, atol=0.01, rtol=0.05)
    assert walker.decode(z[:5]).shape[0] == 5


def test_few_label_accuracy_on_separable_features():
    data = _data(400)

    def first_pixel(x: torch.Tensor) -> torch.Tensor:  # it tells the class: one-hot, a linear classifier finds it
        return torch.nn.functional.one_hot((x.reshape(len(x), -1)[:, 0] * 10).long(), 10).float()

    accuracy = ch4.few_label_accuracy(first_pixel, data, data.x_train, 100, seed=0)
    assert accuracy > 0.95  # chance is 0.1
    assert ch4.few_label_accuracy(first_pixel, data, data.x_train, 100, seed=0) == accuracy  # the draw is seeded


def test_training_bytes_counts_weights_gradients_and_adams_two_moments():
    torch.manual_seed(0)
    model = nn.Linear(10, 3)
    opt = torch.optim.Adam(model.parameters())
    assert ch4.training_bytes(model, [opt]) == 33 * 4  # before a step: the weights only
    model(torch.randn(2, 10)).sum().backward()
    opt.step()
    assert ch4.training_bytes(model, [opt]) == 4 * 33 * 4  # weights, gradients, exp_avg, exp_avg_sq (float32)


def test_gradients_trace_both_models_and_read_the_stored_histories(smoke):
    config = Config(seeds=(0,), latent_dim=2, hidden_dim=8)
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    stored = [_run(None, [1.0, 1.0, 1.0], g_grad_norm=[2.0, 0.5, 1.0])]
    result = ch4.gradients(x, stored, config, torch.device("cpu"))
    assert set(result.traces[0]) == {"VAE", "GAN minimax", "GAN"}
    assert all(len(trace) == 10 for trace in result.traces[0].values())  # one value per pass, ten passes
    for key, trace in result.traces[0].items():
        assert result.dip[key] == [pytest.approx(min(trace) / trace[0])]
    ratios = [n / m for n, m in zip(result.traces[0]["GAN"], result.traces[0]["GAN minimax"], strict=True)]
    assert result.saturation == [pytest.approx(sum(ratios) / len(ratios))]  # the same weights, both losses
    assert result.stored_dip == [pytest.approx(0.25)]


def test_when_to_choose_names_the_smoothest_model_and_holds_the_sentence(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)

    @dataclass
    class Stub:
        jump: dict

    three = [1.0, 1.0, 1.0]
    quality = ch4.Quality({}, {"VAE": [60.0, 61, 59], "GAN": [30.0, 31, 29]}, {}, [], {}, [], None)
    stability = ch4.Stability({}, {"VAE": [1.0, 1.1, 1.2], "GAN": [2.0, 2.2, 2.1]}, None)
    coverage = ch4.Coverage({}, {"VAE": [0.1, 0.11, 0.12], "GAN": [0.1, 0.12, 0.11]}, 0.01, {}, None)
    labels = {"VAE codes, 100": [0.5, 0.52, 0.51], "pixels, 100": [0.6, 0.61, 0.62], "AE codes, 100": [0.6, 0.63, 0.61]}
    difficulty = ch4.Difficulty({}, {}, {}, {"VAE": three, "GAN": [0.0, 0.0, 0.0]}, 200, None)
    resources = ch4.Requirements({"VAE": [10.0, 10.5, 9.8], "GAN": [17.0, 17.5, 16.9]}, {}, "cpu", None)
    smooth = Stub({"VAE": [1.59, 1.60, 1.58], "GAN": [1.77, 1.80, 1.74], "AE": [1.48, 1.47, 1.50]})
    ch4.when_to_choose(quality, stability, smooth, coverage, labels, difficulty, resources)
    rough_ae = Stub(smooth.jump | {"AE": [1.9, 1.95, 1.92]})
    with pytest.raises(ClaimError, match="most even"):
        ch4.when_to_choose(quality, stability, rough_ae, coverage, labels, difficulty, resources)


def test_change_correlation_sees_through_a_shared_trend():
    """Two curves that both fall steadily over training, with independent wiggles, correlate in their levels and
    not in their changes; a loss whose wiggles are the distance's correlates in both."""
    g = torch.Generator().manual_seed(0)
    epochs = torch.arange(50, dtype=torch.float64)
    trend = 100 - epochs
    fid = (trend + torch.randn(50, generator=g, dtype=torch.float64)).tolist()
    unrelated = (trend / 50 + 0.02 * torch.randn(50, generator=g, dtype=torch.float64)).tolist()
    assert ch4.rank_correlation(unrelated, fid) > 0.9  # the levels: both trend down
    rho, p = ch4.change_correlation(unrelated, fid)
    assert abs(rho) < 0.3 and p > 0.05
    following = [f / 50 for f in fid]
    rho, p = ch4.change_correlation(following, fid)
    assert rho == pytest.approx(1.0) and p < 1e-6
    from scipy.stats import spearmanr

    diffs = [b - a for a, b in zip(unrelated, unrelated[1:], strict=False)]
    fid_diffs = [b - a for a, b in zip(fid, fid[1:], strict=False)]
    assert ch4.change_correlation(unrelated, fid)[0] == pytest.approx(spearmanr(diffs, fid_diffs).statistic)
    assert all(map(math.isnan, ch4.change_correlation([1.0, 2.0, 3.0], [3.0, 2.0, 1.0])))  # two changes: too few
    assert ch4.follows("GAN discriminator", -0.4, 0.01) and not ch4.follows("GAN discriminator", 0.4, 0.01)
    assert ch4.follows("VAE", 0.4, 0.01) and not ch4.follows("VAE", 0.4, 0.2)


def _meaning_runs(generator_follows: bool) -> tuple[dict[str, list[Trained]], list[Trained], ch4.Dropout]:
    """Three runs of each model over 50 epochs. The distance falls fast for ten epochs, then steadily; the VAE's
    loss moves with it in those first epochs only, the discriminator's against it on two runs of three, and the
    generator's (unless asked) only trends. The third run without dropout collapses."""
    g = torch.Generator().manual_seed(1)
    epochs = torch.arange(50, dtype=torch.float64)
    steady = 80 - epochs  # changes all alike: only the wiggles rank them
    trend = steady - 4 * epochs.clamp(max=10)  # and a fast fall first

    def noise() -> torch.Tensor:
        return torch.randn(50, generator=g, dtype=torch.float64)

    vae, gan, without = [], [], []
    for seed in range(3):
        wiggle = noise()
        fid = trend + wiggle
        vae_wiggle = torch.where(epochs < ch4.EARLY, wiggle, noise())
        vae.append(_run(None, fid.tolist(), train_loss=(trend * 3 + 2 * vae_wiggle).tolist()))
        own = wiggle if generator_follows else noise()
        d_wiggle = -wiggle if seed != 1 else noise()
        d_loss = 1.4 - steady / 100 + d_wiggle / 50
        gan.append(_run(None, fid.tolist(), g_loss=(steady / 50 + own / 50).tolist(), d_loss=d_loss.tolist()))
        rise = fid.clone()
        if seed == 2:  # the collapse: the distance bottoms out at epoch 4 and climbs, the loss keeps falling
            rise = torch.cat([fid[:4], fid[3] + 3 * (epochs[4:] - 3)])
        without.append(_run(None, rise.tolist(), g_loss=(steady / 50 + noise() / 500).tolist()))
    dropout = ch4.Dropout([1.0] * 3, [[], [], [7, 8, 9]], [[], [], []], None)
    return {"VAE": vae, "GAN": gan}, without, dropout


def test_loss_meaning_correlates_the_changes_and_holds_its_sentences(monkeypatch):
    monkeypatch.delenv(BUDGET_ENV, raising=False)  # the full budget: a claim that fails stops the notebook
    runs, without, dropout = _meaning_runs(generator_follows=False)
    meaning = ch4.loss_meaning(runs, without, dropout, Config())
    assert meaning.collapsed == 2
    assert min(meaning.level["GAN"]) > 0.9  # the levels: the shared trend
    assert max(meaning.trend["GAN"]) < -0.9
    assert all(ch4.follows("VAE", r, p) for r, p in zip(meaning.change["VAE"], meaning.p["VAE"], strict=True))
    d = [ch4.follows("GAN discriminator", r, p) for r, p in zip(meaning.change["GAN discriminator"], meaning.p[
        "GAN discriminator"], strict=True)]  # fmt: skip
    assert d == [True, False, True]
    assert [row["loss"] for row in meaning.table.rows][0] == "VAE −ELBO"
    runs, without, dropout = _meaning_runs(generator_follows=True)
    with pytest.raises(ClaimError, match="the generator's on none"):
        ch4.loss_meaning(runs, without, dropout, Config())


def test_short_runs_repeat_whatever_ran_before(smoke):
    """Each short run of the grid is seeded by its own seed: the global stream before it changes nothing."""
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    config = Config(latent_dim=2, hidden_dim=8)
    torch.manual_seed(123)
    first = ch4.short_run("GAN", 1.0, 5, x, Pixels(), config, 2)
    torch.randn(1000)  # another draw from the global stream
    assert ch4.short_run("GAN", 1.0, 5, x, Pixels(), config, 2) == first
    state = torch.random.get_rng_state()
    ch4.short_run("VAE", 1.0, 5, x, Pixels(), config, 2)
    assert torch.equal(torch.random.get_rng_state(), state)  # and it leaves the stream where it was
    ch4.parameter_table(4, 16)
    assert torch.equal(torch.random.get_rng_state(), state)


def test_few_labels_keeps_the_active_dimensions(smoke):
    torch.manual_seed(0)
    y = torch.arange(200) % 10
    x = (y.float() + 0.5).reshape(-1, 1, 1, 1) / 10 + 0.05 * torch.rand(200, 1, 28, 28)  # brightness tells the class
    data = FashionMNIST(x, y, x[:100].clone(), y[:100].clone(), source=Path("."))
    vae = VAE(4, 16)
    with torch.no_grad():  # the first two code dimensions active, the last two constant: inactive
        vae.mu_head.weight[:2] *= 100
        vae.mu_head.weight[2:] = 0
        vae.mu_head.bias[2:] = 0.5
    runs = [_run(vae, [1.0, 1.0])] * 3
    aes = [Autoencoder(4, 8, sigmoid_output=True)] * 3
    accuracy, t = ch4.few_labels(runs, aes, data, data.x_train, Config(), replace(SMALL, label_counts=(20, 40)))
    assert set(accuracy) == {f"{k}, {n}" for k in ("VAE codes", ch4.ACTIVE, "AE codes", "pixels") for n in (20, 40)}
    assert ch4._Codes(vae, torch.tensor([True, True, False, False]))(data.x_test[:5]).shape == (5, 2)
    assert active_units(encode(vae, data.x_train)).tolist() == [True, True, False, False]
    assert len(t.rows) == 4


def test_folded_rows_draws_a_set_over_several_rows():
    images = torch.rand(12, 1, 28, 28)
    fig = ch4.folded_rows({"real": images, "VAE seed 0": images}, 6)
    assert len(fig.axes) == 4 * 6  # two sets, two rows of six each
    labels = [ax.get_ylabel() for ax in fig.axes if ax.get_ylabel().strip()]
    assert labels == ["real", "VAE seed 0"]


def test_difficulty_counts_lines_and_lists_each_short_run(smoke):
    x = torch.rand(64, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    config = Config(latent_dim=2, hidden_dim=8, batch_size=16, seeds=(0, 1))
    result = ch4.difficulty(x, Pixels(), config, replace(SMALL, grid_lr_scales=(1.0, 16.0), grid_steps=4))
    assert result.lines_of_code == {name: sum(map(ch4.code_lines, ch4.TAUGHT[name])) for name in ("VAE", "GAN")}
    assert [row["short runs"] for row in result.table.rows] == [
        "VAE, lr × 1",
        "VAE, lr × 16",
        "GAN, lr × 1",
        "GAN, lr × 16",
    ]
    for row in result.table.rows:  # one count per seed, as short_run left them
        name, scale = row["short runs"].split(", lr × ")
        counts = [result.left_out[name, float(scale), s] for s in config.seeds]
        assert row["classes under 1%, by seed"] == ", ".join(map(str, counts))
    assert result.grid_steps == 4  # 64 images, 16 a batch: one epoch of 4 steps
