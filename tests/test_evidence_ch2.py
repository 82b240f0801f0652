"""Chapter 2's evidence module (aecourse.evidence.ch2), called directly on small synthetic inputs: what each function
measures, checked against a hand or library reference, and the claims that stop the book when a comparison stops
holding. Also the chapter's visible training loop (it must take fit's steps) and the door checks of the DAE's noise
(clean float images in [0, 1], or a clear error), which the package keeps out of the taught code."""

from __future__ import annotations

import ast
import dataclasses
import json
import math
import re
import typing
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

from aecourse.checkpoints import Trained
from aecourse.data import add_gaussian_noise, add_masking_noise, add_noise
from aecourse.evidence import ch2
from aecourse.evidence.report import ClaimError
from aecourse.losses import denoising_loss
from aecourse.models import ConvDenoisingAutoencoder, DenoisingAutoencoder, PCABaseline
from aecourse.runtime import BUDGET_ENV, seeded
from aecourse.train import History, fit, train_epoch

NOTEBOOK = Path(__file__).resolve().parents[1] / "book" / "02_denoising_autoencoder.ipynb"


pytestmark = pytest.mark.usefixtures("full_budget")  # tests/conftest.py


@pytest.fixture
def glued(glue_recorder) -> dict[str, str]:
    """What the module glues, name -> the text the page would show."""
    return glue_recorder(ch2)


def _notebook_definitions(*names: str, **namespace: Any) -> dict[str, Any]:
    """The chapter's top-level definitions `names` (its Config, its train_dae), run from the notebook's cells."""
    nodes = []
    for cell in json.loads(NOTEBOOK.read_text())["cells"]:
        if cell["cell_type"] == "code":
            lines = "".join(cell["source"]).splitlines()  # a magic (the Colab cell's %pip) becomes `pass`
            tree = ast.parse("\n".join(re.sub(r"^(\s*)%.*", r"\1pass", line) for line in lines))
            nodes += [n for n in tree.body if isinstance(n, (ast.ClassDef, ast.FunctionDef)) and n.name in names]
    namespace = {"dataclass": dataclasses.dataclass, "ClassVar": typing.ClassVar} | namespace
    exec(compile(ast.Module(nodes, type_ignores=[]), str(NOTEBOOK), "exec", dont_inherit=True), namespace)
    return namespace


def _images(n: int = 40, seed: int = 0) -> torch.Tensor:
    """Garment-like images: a bright block on a black background, with some grey texture."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 8:20] = 0.4 + 0.6 * torch.rand(n, 1, 16, 12, generator=g)
    return x


class Scale(nn.Module):
    """A 'DAE' that multiplies its input by a factor: brightness is all it changes."""

    def __init__(self, factor: float) -> None:
        super().__init__()
        self.factor = factor
        self.weight = nn.Parameter(torch.zeros(1))  # a parameter, so that the helpers find its device

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(len(x), 784) * self.factor

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return z


def _trained(model: nn.Module, seed: int = 0, seconds: float = 1.0) -> Trained:
    manifest = {"name": "02_denoising_autoencoder/test", "seed": seed, "epochs": 1, "training_seconds": seconds}
    return Trained(model, History([{"train_loss": 1.0, "seconds": seconds}]), manifest)


# --- budgets and the chapter's config ---------------------------------------------------------------------------------


def test_the_budgets_change_only_fields_of_the_chapter_config(monkeypatch):
    config = _notebook_definitions("Config")["Config"]()
    assert ch2.at_budget(config) == config  # the full budget: the defaults, as the stored models were trained
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    smoke = ch2.at_budget(config)
    assert (smoke.seeds, smoke.train_size, smoke.mlp_epochs, smoke.conv_epochs) == ((0,), 2_000, 1, 1)
    monkeypatch.setenv(BUDGET_ENV, "short")
    short = ch2.at_budget(config)
    assert (short.seeds, short.train_size, short.mlp_epochs, short.conv_epochs) == ((0,), None, 10, 5)


def test_the_config_records_what_the_stored_manifests_hold():
    from aecourse.checkpoints import PACKAGE_WEIGHTS, training_config

    config = _notebook_definitions("Config")["Config"]()
    manifests = sorted((PACKAGE_WEIGHTS / "02_denoising_autoencoder").glob("*.json"))
    assert manifests, "the chapter's stored models are missing"
    for path in manifests:
        assert json.loads(path.read_text())["config"] == training_config(config), path.name


# --- the visible training loop is fit's -------------------------------------------------------------------------------


@pytest.mark.parametrize("conv", [False, True], ids=["mlp", "conv"])
def test_the_chapters_training_loop_takes_the_steps_fit_took(conv, request):
    """The stored DAEs were trained by the package's `fit`; the chapter trains with its own visible loop around
    `train_epoch`. Both must give the same weights, bit for bit, from the same seed. (The stored conv DAEs were
    trained in channels_last memory, which the chapter leaves out: a layout that changes how the sums are rounded,
    not what is computed.)"""
    x_train = _images(96)
    config = _notebook_definitions("Config")["Config"](
        mlp_epochs=2, conv_epochs=2, batch_size=32, conv_batch_size=24, lr=2e-3
    )

    def corrupt(x):
        return add_gaussian_noise(x, config.sigma)

    namespace = _notebook_definitions(
        "train_dae",
        config=config,
        x_train=x_train,
        torch=torch,
        nn=nn,
        Callable=Callable,
        partial=partial,
        History=History,
        train_epoch=train_epoch,
        denoising_loss=denoising_loss,
        ConvDenoisingAutoencoder=ConvDenoisingAutoencoder,
    )

    def build() -> nn.Module:
        with seeded(3):
            return ConvDenoisingAutoencoder(channels=4) if conv else DenoisingAutoencoder(16)

    by_loop, by_fit = build(), build()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # a BLAS may pick its thread count by the machine's load, and with it the sums' order
    request.addfinalizer(lambda: torch.set_num_threads(threads))
    with seeded(3):
        history = namespace["train_dae"](by_loop, 3, corrupt)
    with seeded(3):
        fit(
            by_fit,
            lambda model, x: denoising_loss(model, x, corrupt),
            x_train,
            num_epochs=2,
            batch_size=24 if conv else 32,
            lr=2e-3,
            seed=3,
        )
    assert len(history) == 2 and all(row["loss"] > 0 for row in history.rows)
    for key, tensor in by_fit.state_dict().items():
        assert torch.equal(tensor, by_loop.state_dict()[key]), key


# --- the door checks of the noise -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "corrupt", [add_gaussian_noise, add_masking_noise, lambda x, level: add_noise(x, "gaussian", level, seed=1)]
)
def test_the_noise_refuses_uint8_and_0_to_255_images(corrupt):
    x = torch.rand(4, 1, 28, 28)
    with pytest.raises(TypeError, match=r"float images in \[0, 1\].*Divide uint8 images by 255"):
        corrupt((x * 255).to(torch.uint8), 0.3)
    with pytest.raises(ValueError, match=r"pixel values in \[0, 1\]; got values in .*divide by 255"):
        corrupt(x * 255, 0.3)
    assert corrupt(x, 0.3).shape == x.shape  # clean images in [0, 1] pass


def test_the_noise_names_itself_and_its_level_in_its_errors():
    x = torch.rand(2, 784)
    with pytest.raises(ValueError, match="add_masking_noise expects pixel values"):
        add_masking_noise(x * 255, 0.3)
    with pytest.raises(ValueError, match=r"sigma \(the noise's std\) must be a finite number >= 0"):
        add_gaussian_noise(x, float("nan"))
    with pytest.raises(ValueError, match="drop_prob is a probability"):
        add_masking_noise(x, 1.5)
    with pytest.raises(TypeError, match="float images"):
        add_gaussian_noise(x=(x * 255).to(torch.uint8), sigma=0.2)  # named arguments reach the check too
    generator = torch.Generator().manual_seed(0)
    by_keyword = add_masking_noise(x, drop_prob=torch.tensor(0.25), generator=generator)
    assert torch.equal(by_keyword, add_masking_noise(x, 0.25, generator=generator.manual_seed(0)))


# --- the test draws and the bench -------------------------------------------------------------------------------------


def test_a_seeds_test_draw_is_a_generator_seeded_one_above_it():
    x = _images(8)
    for seed in (0, 2):
        drawn = ch2.test_draw(x, "gaussian", 0.2, seed, clip=False)
        expected = x + 0.2 * torch.randn(x.shape, generator=torch.Generator().manual_seed(seed + 1))
        torch.testing.assert_close(drawn, expected)
        assert torch.equal(ch2.test_draw(x, "gaussian", 0.2, seed), drawn.clamp(0, 1))
        assert torch.equal(ch2.test_draw(x, "masking", 0.3, seed), add_noise(x, "masking", 0.3, seed=seed + 1))


def _bench(seeds=(0, 1, 2), **extra) -> ch2.Bench:
    x = _images(30)
    methods = {ch2.NOISY: [torch.clone] * len(seeds), "half": [lambda x: x / 2] * len(seeds)} | extra
    return ch2.Bench(x, methods, seeds, {"gaussian": (0.05, 0.5), "masking": (0.1, 0.7)})


def test_the_bench_scores_each_seed_on_its_own_draw_by_psnr():
    bench = _bench()
    scores = bench.scores("gaussian", 0.5)
    for seed, value in zip(bench.seeds, scores[ch2.NOISY], strict=True):
        x_noisy = ch2.test_draw(bench.x_test, "gaussian", 0.5, seed)
        mse = float((x_noisy - bench.x_test).pow(2).mean())
        assert value == pytest.approx(-10 * math.log10(mse), rel=1e-6)
    assert bench.scores("gaussian", 0.5) is scores  # measured once
    clean = bench.clean()
    assert ch2.NOISY not in clean  # the noisy input on clean images would be exact
    x = bench.x_test
    assert clean["half"][0] == pytest.approx(-10 * math.log10(float((x / 2 - x).pow(2).mean())), rel=1e-6)


def test_the_bench_sorts_the_levels_by_verdict():
    bench = _bench()
    # halving an image is worse than light noise and better than heavy noise, on every draw
    assert bench.by_level("gaussian", "half", ch2.NOISY) == {"higher": [0.5], "lower": [0.05], "not decided": []}
    assert bench.above_all("gaussian", "half", [ch2.NOISY]) == [0.5]
    one_seed = _bench(seeds=(0,))
    assert one_seed.by_level("gaussian", "half", ch2.NOISY)["not decided"] == [0.05, 0.5]  # one seed decides nothing
    rows = ch2.level_rows(bench, [("gaussian", "half", ch2.NOISY)])
    assert rows == [
        {"method": "half", "against": "the noisy input", "above at": "0.5", "below at": "0.05", "not told apart at": ""}
    ]


def test_a_gap_the_prose_quotes_is_the_difference_of_the_rounded_means():
    # 20.46 - 15.94 = 4.52 would print 4.5, but the page shows 20.5 and 15.9: the sentence says 4.6
    assert ch2.shown_gap([20.44, 20.48], [15.93, 15.95]) == pytest.approx(4.6)
    assert ch2.shown_gap([22.73], [20.48]) == pytest.approx(2.2)


def test_the_methods_are_one_denoiser_per_seed():
    x = _images(20)
    pca = PCABaseline(4).fit(x)
    plain = [_trained(Scale(1.0), seed=s) for s in (0, 1)]
    daes = {ch2.MASKING: [_trained(Scale(1.2), seed=s) for s in (0, 1)]}
    methods = ch2.methods(pca, plain, daes)
    assert list(methods) == [ch2.NOISY, "PCA (4)", ch2.PLAIN, ch2.MASKING]
    assert all(len(runs) == 2 for runs in methods.values())
    torch.testing.assert_close(methods[ch2.MASKING][1](x), (1.2 * x).clamp(0, 1))
    torch.testing.assert_close(methods["PCA (4)"][0](x), pca.reconstruct(x))


def _full_bench(seeds=(0, 1, 2)) -> ch2.Bench:
    """Every method of the chapter as a simple map: each DAE a brightness factor, the baselines a blur."""
    n = len(seeds)

    def scale(factor):
        return [lambda x, f=factor: (f * x).clamp(0, 1)] * n

    def blur(x):
        return torch.nn.functional.avg_pool2d(x, 3, stride=1, padding=1)

    methods = {ch2.NOISY: [torch.clone] * n, "PCA (64)": [blur] * n, ch2.PLAIN: scale(0.9)}
    methods |= {ch2.GAUSS: scale(0.95), ch2.UNCLIPPED: scale(1.05), ch2.MASKING: scale(1.4), ch2.CONV: scale(1.0)}
    return ch2.Bench(_images(30), methods, seeds, {"gaussian": (0.05, 0.2, 0.5), "masking": (0.1, 0.3, 0.7)})


def test_the_training_level_verdicts_glue_gaps_that_add_up(glued, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # simple maps support few of the chapter's claims
    bench = _full_bench()
    ch2.training_level_verdicts(bench, 0.2, 0.3)
    gauss, masked = bench.scores("gaussian", 0.2), bench.scores("masking", 0.3)

    def shown(values):
        return round(sum(values) / len(values), 1)

    assert float(glued["dae_gain"]) == pytest.approx(shown(gauss[ch2.GAUSS]) - shown(gauss[ch2.NOISY]))
    assert float(glued["dae_psnr"]) - float(glued["psnr_noisy"]) == pytest.approx(float(glued["dae_gain"]))
    best = max(shown(masked[n]) for n in ch2.GAUSSIAN_DAES)  # the best Gaussian DAE on masking noise
    assert float(glued["masking_cross"]) == pytest.approx(shown(masked[ch2.MASKING]) - best)
    for kind in ("gaussian", "masking"):  # one table per noise, with no column that says "3 seeds" on every row
        evidence = glued[f"ch2_level_evidence_{kind}"]
        assert evidence.startswith("| comparison | difference (mean ± sd) | verdict |") and "seeds" not in evidence
        differences = re.findall(r"\| ([-+]\d+\.\d+) ± (\d+\.\d+) \|", evidence)  # to 0.01 dB
        assert differences and all(len(d.split(".")[1]) == len(sd.split(".")[1]) == 2 for d, sd in differences)
    assert glued["pca_masked"] == f"{shown(masked['PCA (64)']):.1f}"
    assert float(glued["conv_below_pca"]) == pytest.approx(shown(masked["PCA (64)"]) - shown(masked[ch2.CONV]))
    assert "the conv DAE minus the article's DAE" in glued["ch2_level_evidence_gaussian"]
    table = ch2.training_level_table(bench, 0.2, 0.3)
    assert [row["PSNR [dB]"] for row in table.rows] == list(bench.methods)
    assert table.rows[0]["σ = 0.2"] == pytest.approx(sum(gauss[ch2.NOISY]) / 3)
    assert all(len(cell.split(".")[-1]) == 1 for row in table._cells()[1] for cell in row[1:])


def test_the_training_level_claims_fail_where_the_conv_dae_is_not_the_best(glued):
    bench = _full_bench()  # the conv 'DAE' returns the noisy input: the baselines beat it at sigma = 0.5
    with pytest.raises(ClaimError):
        ch2.training_level_verdicts(bench, 0.2, 0.3)


def test_the_sweep_figure_starts_from_the_clean_images_and_marks_the_training_level():
    bench = _full_bench()
    figure = ch2.sweep_figure(bench, "gaussian", 0.2)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines[ch2.PLAIN].get_xdata()) == [0.0, 0.05, 0.2, 0.5]  # level 0: the clean test images
    assert list(lines[ch2.NOISY].get_xdata()) == [0.05, 0.2, 0.5]  # exact on clean images: no point there
    assert lines[ch2.PLAIN].get_ydata()[0] == pytest.approx(sum(bench.clean()[ch2.PLAIN]) / 3)
    assert list(lines["training level"].get_xdata()) == [0.2, 0.2]


def test_the_sweep_verdicts_glue_how_far_the_plain_ae_and_pca_fall(glued, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # simple maps support few of the chapter's claims
    bench = _full_bench()
    ch2.sweep_verdicts(bench, 0.2, 0.3)
    clean, top = bench.clean(), bench.scores("gaussian", 0.5)

    def shown(values):
        return round(sum(values) / len(values), 1)

    for glued_name, name in (("plain_fall", ch2.PLAIN), ("pca_fall", "PCA (64)")):  # clean images to the top sigma
        assert float(glued[glued_name]) == pytest.approx(shown(clean[name]) - shown(top[name]))


def test_the_sweep_table_holds_the_means_and_the_largest_spread(glued):
    bench = _full_bench()
    ch2.sweep_table(bench)
    lines = glued["ch2_sweep_table"].splitlines()
    assert lines[0] == "| noise | input | PCA (64) | AE | DAE | DAE unclipped | masking DAE | conv DAE |"
    assert lines[2].startswith("| none | – |") and lines[3].startswith("| σ = 0.05 |")
    mean = sum(bench.scores("masking", 0.7)[ch2.MASKING]) / 3
    assert "| p = 0.7 |" in lines[-1] and f"{mean:.1f}" in lines[-1]
    assert float(glued["sweep_sd_max"]) >= 0


def test_the_grid_shows_each_method_in_a_column_of_large_tiles():
    bench = _full_bench()
    figure = ch2.denoised_figure(bench, bench.x_test, bench.x_test, count=3)
    titles = [ax.get_title() for ax in figure.axes[: len(bench.methods) + 1]]
    assert titles[:3] == ["clean", "noisy\ninput", "PCA\n(64)"] and len(figure.axes) == 3 * 8


def test_the_training_curves_are_the_seeds_mean_and_their_claims_hold_only_where_true(glued):
    def entry(losses):
        return _trained(Scale(1.0))._replace(history=History([{"train_loss": v} for v in losses]))

    daes = {
        ch2.GAUSS: [
            entry([0.04, 0.015, 0.010, 0.009]),
            entry([0.04, 0.016, 0.011, 0.0095]),
            entry([0.04, 0.016, 0.010, 0.0085]),
        ],
        ch2.CONV: [
            entry([0.02, 0.008, 0.006, 0.005]),
            entry([0.02, 0.009, 0.006, 0.006]),
            entry([0.02, 0.009, 0.006, 0.0055]),
        ],
    }
    config = _notebook_definitions("Config")["Config"]()
    figure = ch2.training_curves(daes, config, 60_000)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines[ch2.CONV].get_ydata()) == pytest.approx([0.02, 0.026 / 3, 0.006, 0.0055])
    assert glued["conv_train_loss"] == "0.0055" and glued["dae_train_loss"] == "0.0090"
    # 15 epochs of ceil(60,000 / 128) = 469 batches against 30 of ceil(60,000 / 256) = 235
    assert (glued["conv_epochs"], glued["conv_batch"], glued["conv_steps"]) == ("15", "128", "7,035")
    assert (glued["mlp_epochs"], glued["mlp_batch"], glued["mlp_steps"]) == ("30", "256", "7,050")
    with pytest.raises(ClaimError, match="as many Adam steps"):  # twice the conv DAE's epochs: twice the steps
        ch2.training_curves(daes, dataclasses.replace(config, conv_epochs=30), 60_000)
    daes[ch2.CONV] = [entry([0.02, 0.019, 0.018, 0.005])] * 3  # most of its fall after the third epoch
    with pytest.raises(ClaimError, match="three quarters"):
        ch2.training_curves(daes, config, 60_000)


def test_each_method_keeps_one_style_in_every_figure(glued, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # equal losses: the claims are not the point here

    def entry(losses):
        return _trained(Scale(1.0))._replace(history=History([{"train_loss": v} for v in losses]))

    daes = {name: [entry([0.04, 0.01, 0.009, 0.008])] * 3 for name in (ch2.GAUSS, ch2.MASKING, ch2.CONV)}
    config = _notebook_definitions("Config")["Config"]()
    training = ch2.training_curves(daes, config, 60_000)
    sweep = ch2.sweep_figure(_full_bench(), "gaussian", 0.2)

    def styles(figure):
        lines = figure.axes[0].get_lines()
        return {line.get_label(): (line.get_color(), line.get_marker(), line.get_linestyle()) for line in lines}

    in_training, in_sweep = styles(training), styles(sweep)
    assert all(in_training[name] == in_sweep[name] for name in daes)
    assert len(set(in_sweep.values())) == len(in_sweep)  # and no two methods share one


# --- the masking DAE's brightness -------------------------------------------------------------------------------------


def _masking_bench(factor: float) -> tuple[ch2.Bench, list[Trained]]:
    seeds = (0, 1, 2)
    entries = [_trained(Scale(factor), seed=s) for s in seeds]
    runs = [lambda x, m=e.model: m.encode(x).reshape(x.shape).clamp(0, 1) for e in entries]
    bench = ch2.Bench(
        _images(60), {ch2.NOISY: [torch.clone] * 3, ch2.MASKING: runs}, seeds, {"masking": (0.1, 0.3, 0.5)}
    )
    return bench, entries


def test_the_brightness_of_the_masking_daes_outputs_against_the_images(glued, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # a scaling 'DAE' fills no hole: it does not support every claim
    bench, entries = _masking_bench(1 / 0.7)  # scales up by what masking at p = 0.3 takes away on average
    x = bench.x_test
    shown = ch2.masking_brightness(entries, bench, 0.3)
    assert glued["masking_excess"] == f"{100 * (float((x / 0.7).clamp(0, 1).mean()) / float(x.mean()) - 1):.0f}"
    assert glued["masking_own_psnr"] == f"{sum(bench.scores('masking', 0.3)[ch2.MASKING]) / 3:.1f}"
    assert glued["masking_clean_psnr"] == f"{sum(bench.clean()[ch2.MASKING]) / 3:.1f}"
    assert glued["rule_clean"] == f"{1 / 0.7:.3f}"
    rows = {row["p"]: row for row in shown.rows}  # the gap a reader finds in the table, from p = 0.3 up
    gaps = [abs(float(rows[q]["output / clean brightness"]) - float(rows[q]["(1 − p) / 0.7"])) for q in ("0.3", "0.5")]
    assert float(glued["brightness_gap"]) == pytest.approx(max(gaps), abs=1e-9)
    assert "| p |" in glued["ch2_brightness_evidence"] and "| 0.3 |" in glued["ch2_brightness_evidence"]
    assert [row["p"] for row in shown.rows] == ["0", "0.1", "0.3", "0.5"]
    assert [row["(1 − p) / 0.7"] for row in shown.rows] == ["1.429", "1.286", "1.000", "0.714"]


def test_the_brightness_claims_fail_for_a_dae_that_changes_nothing(glued):
    bench, entries = _masking_bench(1.0)  # the identity: on clean images its output is exactly as bright
    with pytest.raises(ClaimError, match="higher at its own p|too bright"):
        ch2.masking_brightness(entries, bench, 0.3)


# --- the probe exercise, the clipping section, the sizes --------------------------------------------------------------


def test_the_probe_verdict_holds_only_where_masking_costs_the_dae_less(glued):
    ch2.probe_verdict([0.020, 0.024, 0.022], [0.049, 0.051, 0.047])
    assert glued["probe_drop_dae"] == "2.2" and glued["probe_drop_plain"] == "4.9"
    with pytest.raises(ClaimError, match="costs the DAE's codes less"):
        ch2.probe_verdict([0.049, 0.051, 0.047], [0.020, 0.024, 0.022])


def test_the_probe_verdict_is_only_a_note_below_the_full_budget(glued, monkeypatch, capsys):
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    ch2.probe_verdict([0.05], [0.02])
    assert "does not support" in capsys.readouterr().out


def test_the_sizes_count_parameters_and_the_conv_daes_code(glued):
    mlp, conv = DenoisingAutoencoder(256), ConvDenoisingAutoencoder(channels=32)  # the chapter's sizes
    daes = {ch2.GAUSS: [_trained(mlp)], ch2.CONV: [_trained(conv)]}
    ch2.model_sizes(daes, _images(2))
    assert glued["mlp_params"] == f"{784 * 256 + 256 + 256 * 784 + 784:,d}"
    assert glued["conv_params"] == f"{sum(p.numel() for p in conv.parameters()):,d}"
    assert glued["conv_code"] == "3,136" and glued["code_ratio"] == "4"  # 2c x 7 x 7 numbers for c = 32
    narrow = ConvDenoisingAutoencoder(channels=8)  # a code of 16 x 7 x 7 = 784 numbers: no more than the image
    with pytest.raises(ClaimError, match="more numbers than the image"):
        ch2.model_sizes({ch2.GAUSS: [_trained(mlp)], ch2.CONV: [_trained(narrow)]}, _images(2))


def test_clipping_measures_the_noisy_input_on_both_kinds_of_noise(glued, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "smoke")  # identity 'DAEs' support none of the section's claims
    x, seeds = _images(50), (0, 1, 2)
    daes = {name: [_trained(Scale(1.0), seed=s) for s in seeds] for name in (ch2.GAUSS, ch2.UNCLIPPED)}
    rows = ch2.clipping(daes, x, 0.2, seeds).rows
    raw = ch2.test_draw(x, "gaussian", 0.2, 0, clip=False)
    assert glued["outside"] == f"{100 * float(((raw < 0) | (raw > 1)).float().mean()):.0f}"
    assert glued["black_share"] == f"{100 * float((x == 0).float().mean()):.0f}"
    clipped = [float(-10 * torch.log10((ch2.test_draw(x, "gaussian", 0.2, s) - x).pow(2).mean())) for s in seeds]
    assert [r["PSNR at σ = 0.2 [dB]"] for r in rows] == [
        "noisy input",
        "DAE trained on unclipped",
        "DAE trained on clipped",
    ]
    assert rows[0]["clipped test noise"] == pytest.approx(sum(clipped) / 3)
    assert "noisy input: clipped minus unclipped" in glued["ch2_clip_evidence"]
