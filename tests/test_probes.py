"""Probes: wrong inputs, damaged or swapped files, killed writes, stray arguments and every switch value, each tried
against the public surface of the package and its tools. Every case must end in one of two ways: the right result,
or an error that says what was expected, what came and what to do. Never a number computed from garbage, a silent
fallback, or a traceback from deep inside torch, scikit-learn or torchvision.

One parametrized test per kind of probe; a case is one line of its table, so that the next regression of the same
kind is one more line. Issue #24 ran this file against the code before its fixes: see PROBE_RECORD at the end.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import json
import os
import re
import shutil
import signal
import struct
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from aecourse import checkpoints as ck
from aecourse import data, inference
from aecourse.checkpoints import CheckpointError
from aecourse.checks import CourseError
from aecourse.data import IdxSpec, add_noise, binarize, load_fashion_mnist
from aecourse.evidence import ch3, ch4, metrics
from aecourse.evidence.classifier import ClassifierSettings, FashionClassifier, accuracy, pretrained_classifier
from aecourse.gan import GAN, gan_step, train_gan
from aecourse.losses import bce, mse, reconstruction_loss
from aecourse.models import VAE, Autoencoder, ConvDenoisingAutoencoder, ConvVAE, DenoisingAutoencoder, PCABaseline
from aecourse.runtime import BUDGET_ENV, DEVICE_ENV, RETRAIN_ENV, budget, pick_device, retrain_mode, set_seed
from aecourse.train import TrainingDivergedError, evaluate, fit
from tools.train_checkpoints import store_classifier, train_classifier

ROOT = Path(__file__).resolve().parents[1]
# Chapters 3 and 4 keep their own measurements in a cell of their notebooks: probed as the chapters run them.
chapter4 = ch4  # chapter 4's measurements live in its evidence module
chapter3 = ch3  # chapter 3's measurements live in its evidence module
generator_gradient_norms = chapter4.generator_gradient_norms
INF, NAN = float("inf"), float("nan")


def _images(n: int = 8, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 1, 28, 28, generator=torch.Generator().manual_seed(seed))


X = _images()
EMPTY = torch.zeros(0, 1, 28, 28)


def _with_nan(x: torch.Tensor) -> torch.Tensor:
    x = x.clone()
    x.view(-1)[3] = NAN
    return x


def _ae() -> Autoencoder:
    torch.manual_seed(0)
    return Autoencoder(4, 8)


def _vae() -> VAE:
    torch.manual_seed(0)
    return VAE(2, 8)


def _gan() -> GAN:
    torch.manual_seed(0)
    return GAN(2, 8)


def _gan_with_inf_discriminator() -> GAN:
    gan = _gan()
    with torch.no_grad():
        gan.discriminator.net[-1].weight[0, 0] = INF
    return gan


def _tiny_split():
    from aecourse.data import FashionMNIST

    labels = torch.arange(8) % 10
    return FashionMNIST(X, labels, X, labels, Path("tiny"))


def _history():
    from aecourse.train import History

    return History([{"epoch": 1.0, "train_loss": 1.0, "seconds": 0.1}])


def _enter(context) -> None:
    with context:
        pass


def _evaluating(model, **kwargs):
    from aecourse.runtime import evaluating

    return evaluating(model, **kwargs)


def _classifier() -> FashionClassifier:
    torch.manual_seed(0)
    return FashionClassifier((2, 2), 4)


@dataclass(frozen=True)
class Probe:
    """A call that must fail at the door: with an exception of type `error` whose message matches `match`."""

    id: str
    call: Callable[[], object]
    match: str
    error: type[BaseException] | tuple[type[BaseException], ...] = (ValueError, TypeError)


def _cases(*probes: Probe):
    return [pytest.param(p, id=p.id) for p in probes]


# 1. Inputs at the door: every public function of the package, a wrong value of each kind it can receive.
AT_THE_DOOR = _cases(
    # data
    Probe("add_noise/0-255 images", lambda: add_noise(X * 255, "gaussian", 0.2), r"\[0, 1\].*got values in"),
    Probe("add_noise/unknown kind", lambda: add_noise(X, "uniform", 0.2), r"kind must be 'gaussian' or 'masking'"),
    Probe("add_noise/nan sigma", lambda: add_noise(X, "gaussian", NAN), r"sigma.*finite"),
    Probe("add_noise/int images", lambda: add_noise((X * 255).to(torch.uint8), "masking", 0.3), r"float images"),
    Probe("binarize/uint8 images", lambda: binarize(torch.ones(2, 784, dtype=torch.uint8)), r"float images"),
    Probe("binarize/nan", lambda: binarize(_with_nan(X)), r"\[0, 1\]"),
    Probe("load_fashion_mnist/device bogus", lambda: load_fashion_mnist(device="bogus"), r"device.*'bogus'"),
    # models
    Probe("ConvVAE/latent_dim 0", lambda: ConvVAE(latent_dim=0), r"latent_dim must be an int >= 1; got 0"),
    Probe("ConvVAE/latent_dim float", lambda: ConvVAE(latent_dim=2.5), r"latent_dim must be an int >= 1; got 2.5"),
    Probe("ConvDAE/channels 0", lambda: ConvDenoisingAutoencoder(channels=0), r"channels must be an int >= 1"),
    Probe("PCABaseline/0 components", lambda: PCABaseline(0), r"n_components must be an int >= 1; got 0"),
    Probe("PCABaseline.fit/nan", lambda: PCABaseline(2).fit(_with_nan(X)), r"PCABaseline.fit.*NaN"),
    Probe("PCABaseline.reconstruct/empty", lambda: PCABaseline(2).fit(X).reconstruct(EMPTY), r"PCABaseline.*empty"),
    Probe("model/0-255 images", lambda: _ae()(X * 255), r"divide by 255"),
    Probe("model/one image without batch", lambda: _ae()(X[0, 0]), r"unsqueeze\(0\)"),
    Probe("model/float64 images", lambda: _ae()(X.double()), r"x.to\(torch.float32\)"),
    Probe("DAE/0-255 images", lambda: DenoisingAutoencoder(8)(X * 255), r"divide by 255"),
    Probe("FashionClassifier/hidden_dim 0", lambda: FashionClassifier((2, 2), 0), r"hidden_dim must be an int >= 1"),
    # losses
    Probe("mse/uint8 target", lambda: mse(X, (X * 255).to(torch.uint8)), r"mse.*float"),
    Probe("mse/shapes", lambda: mse(X, X[:4]), r"same images"),
    Probe("bce/0-255 target", lambda: bce(X, X * 255), r"targets x in \[0, 1\]"),
    Probe("iwae_bound/k 0", lambda: chapter3.iwae_bound(_vae(), X, 0), r"k is a number of importance samples"),
    Probe(
        "iwae_bound/k float",
        lambda: chapter3.iwae_bound(_vae(), X, 2.5),
        r"k is a number of importance samples and must be an int >= 1; got 2.5",
    ),
    Probe("iwae_bound/chunk 0", lambda: chapter3.iwae_bound(_vae(), X, 2, chunk=0), r"chunk must be an int >= 1"),
    # training
    Probe("fit/lr inf", lambda: fit(_ae(), reconstruction_loss, X, lr=INF), r"lr must be a finite number > 0; got inf"),
    Probe(
        "fit/lr nan",
        lambda: fit(_ae(), reconstruction_loss, X, lr=NAN),
        r"lr must be a finite number > 0; got nan|Invalid learning rate: nan",
    ),
    Probe("fit/lr 0", lambda: fit(_ae(), reconstruction_loss, X, lr=0.0), r"lr must be a finite number > 0; got 0"),
    Probe(
        "fit/lr negative",
        lambda: fit(_ae(), reconstruction_loss, X, lr=-1e-3),
        r"lr must be a finite number > 0|Invalid learning rate: -0.001",
    ),
    Probe("fit/lr string", lambda: fit(_ae(), reconstruction_loss, X, lr="1e-3"), r"lr must be a finite number > 0"),
    Probe(
        "fit/num_epochs float",
        lambda: fit(_ae(), reconstruction_loss, X, num_epochs=1.5),
        r"num_epochs must be an int >= 0; got 1.5",
    ),
    Probe(
        "fit/num_epochs negative",
        lambda: fit(_ae(), reconstruction_loss, X, num_epochs=-1),
        r"num_epochs must be .*>= 0.*got -1",
    ),
    Probe("fit/batch_size 0", lambda: fit(_ae(), reconstruction_loss, X, batch_size=0), r"batch_size .*>= 1.*got .*0"),
    Probe(
        "fit/batch_size float",
        lambda: fit(_ae(), reconstruction_loss, X, batch_size=4.0),
        r"batch_size must be an int >= 1; got 4.0",
    ),
    Probe(
        "fit/batch_size bool",
        lambda: fit(_ae(), reconstruction_loss, X, batch_size=True),
        r"batch_size must be an int >= 1; got True",
    ),
    Probe("fit/seed string", lambda: fit(_ae(), reconstruction_loss, X, seed="0"), r"seed must be an int; got '0'"),
    Probe("fit/x_train a list", lambda: fit(_ae(), reconstruction_loss, X.tolist()), r"torch.Tensor"),
    Probe("fit/x_train empty", lambda: fit(_ae(), reconstruction_loss, EMPTY), r"x_train is empty"),
    Probe("fit/x_train 0-255", lambda: fit(_ae(), reconstruction_loss, X * 255), r"\[0, 1\].*divide by 255"),
    Probe("fit/x_train with nan", lambda: fit(_ae(), reconstruction_loss, _with_nan(X)), r"NaN"),
    Probe("fit/x_train uint8", lambda: fit(_ae(), reconstruction_loss, (X * 255).byte()), r"float images"),
    Probe("fit/x_test empty", lambda: fit(_ae(), reconstruction_loss, X, x_test=EMPTY), r"x_test is empty"),
    Probe("fit/x_test 0-255", lambda: fit(_ae(), reconstruction_loss, X, x_test=X * 255), r"divide by 255"),
    Probe("fit/loss_fn not callable", lambda: fit(_ae(), "mse", X), r"loss_fn must be a function"),
    Probe("fit/model without weights", lambda: fit(torch.nn.ReLU(), reconstruction_loss, X), r"no parameters"),
    Probe(
        "fit/DAE on 0-255 images",
        lambda: fit(
            DenoisingAutoencoder(8),
            lambda m, x: reconstruction_loss(m, data.add_gaussian_noise(x, 0.2)),
            X * 255,
        ),
        r"fit.*\[0, 1\].*divide by 255",
    ),
    Probe("evaluate/empty", lambda: evaluate(_ae(), reconstruction_loss, EMPTY), r"evaluate.*empty"),
    Probe(
        "evaluate/batch_size 0",
        lambda: evaluate(_ae(), reconstruction_loss, X, batch_size=0),
        r"batch_size must be an int >= 1; got 0",
    ),
    Probe(
        "gradient_norm/empty",
        lambda: chapter4.gradient_norm(_ae(), reconstruction_loss, EMPTY),
        r"gradient_norm.*non-empty",
    ),
    Probe("train_gan/lr 0", lambda: train_gan(_gan(), X, lr=0.0), r"lr must be a finite number > 0; got 0"),
    Probe("train_gan/lr inf", lambda: train_gan(_gan(), X, lr=INF), r"lr must be a finite number .*; got inf"),
    Probe("train_gan/num_epochs float", lambda: train_gan(_gan(), X, num_epochs=1.5), r"num_epochs must be an int"),
    Probe("train_gan/batch_size float", lambda: train_gan(_gan(), X, batch_size=4.0), r"batch_size must be an int"),
    Probe("train_gan/empty", lambda: train_gan(_gan(), EMPTY), r"x_train.*empty"),
    Probe(
        "train_gan/discriminator inf",
        lambda: train_gan(_gan_with_inf_discriminator(), X),
        r"discriminator starts with non-finite weights",
    ),
    Probe("train_gan/seed float", lambda: train_gan(_gan(), X, seed=0.5), r"seed must be an int; got 0.5"),
    Probe(
        "generator_gradient_norms/z width",
        lambda: generator_gradient_norms(_gan(), torch.randn(4, 3)),
        r"codes of width 2.*got \(4, 3\)",
    ),
    # inference
    Probe("encode/empty", lambda: inference.encode(_ae(), EMPTY), r"encode.*empty"),
    Probe("reconstruct/empty", lambda: inference.reconstruct(_ae(), EMPTY), r"reconstruct.*empty"),
    Probe("predict/empty", lambda: inference.predict(_classifier(), EMPTY), r"predict.*empty"),
    Probe("elbo_per_image/empty", lambda: chapter3.elbo_per_image(_vae(), EMPTY), r"elbo_per_image.*empty"),
    Probe("decode/wrong width", lambda: inference.decode(_ae(), torch.randn(3, 5)), r"codes of width 4.*got \(3, 5\)"),
    Probe("decode/one code without batch", lambda: inference.decode(_ae(), torch.randn(4)), r"\(N, 4\).*unsqueeze"),
    Probe("decode/nan code", lambda: inference.decode(_ae(), torch.full((2, 4), NAN)), r"decode.*NaN"),
    Probe("decode/empty", lambda: inference.decode(_ae(), torch.zeros(0, 4)), r"decode.*empty"),
    Probe("decode/int codes", lambda: inference.decode(_ae(), torch.ones(2, 4, dtype=torch.long)), r"float"),
    Probe("generate/0 samples", lambda: inference.generate(_vae(), 0), r"num_samples must be an int >= 1; got 0"),
    Probe("prior_codes/negative", lambda: inference.prior_codes(_vae(), -1), r"num_samples must be an int >= 1"),
    Probe("prior_codes/float", lambda: inference.prior_codes(_vae(), 2.5), r"num_samples must be an int >= 1"),
    Probe(
        "interpolate/float steps",
        lambda: inference.interpolate(_vae(), torch.zeros(2), torch.ones(2), 2.5),
        r"num_steps .*must be an int >= 2; got 2.5",
    ),
    Probe(
        "interpolate/wrong width",
        lambda: inference.interpolate(_vae(), torch.zeros(3), torch.ones(3), 4),
        r"codes of width 2",
    ),
    Probe("batched/batch_size 0", lambda: inference.batched(torch.sin, X, 0), r"batch_size must be an int >= 1"),
    Probe("batched/empty", lambda: inference.batched(torch.sin, EMPTY), r"batched.*empty"),
    Probe("fit_gaussian/nan codes", lambda: inference.fit_gaussian(torch.full((10, 2), NAN)), r"fit_gaussian.*NaN"),
    # metrics
    Probe("psnr/uint8 against float", lambda: metrics.psnr((X * 255).byte(), X), r"psnr.*float"),
    Probe("psnr/empty", lambda: metrics.psnr(EMPTY, EMPTY), r"psnr.*empty"),
    Probe("psnr/nan", lambda: metrics.psnr(_with_nan(X), X), r"psnr.*NaN"),
    Probe("psnr/nan target", lambda: metrics.psnr(X, _with_nan(X)), r"psnr.*NaN"),
    Probe("psnr/0-255 floats against 0-1", lambda: metrics.psnr(X * 255, X), r"psnr.*divide by 255"),
    Probe("psnr/max_value 0", lambda: metrics.psnr(X, X, max_value=0.0), r"max_value must be a finite number > 0"),
    Probe("active_units/nan codes", lambda: metrics.active_units(torch.full((10, 3), NAN)), r"active_units.*NaN"),
    Probe("active_units/negative threshold", lambda: metrics.active_units(torch.rand(10, 3), -1.0), r"threshold"),
    Probe("active_units/int codes", lambda: metrics.active_units(torch.ones(10, 3, dtype=torch.long)), r"float"),
    Probe("edge_energy/0-255 images", lambda: chapter4.edge_energy(X * 255), r"edge_energy.*divide by 255"),
    Probe("edge_energy/empty", lambda: chapter4.edge_energy(EMPTY), r"edge_energy.*empty"),
    Probe("edge_energy/nan", lambda: chapter4.edge_energy(_with_nan(X)), r"edge_energy.*NaN"),
    Probe("edge_energy/not images", lambda: chapter4.edge_energy(torch.rand(4, 100)), r"edge_energy.*\(B, 784\)"),
    Probe(
        "anomaly_auc/nan scores",
        lambda: metrics.anomaly_auc(torch.tensor([0.1, NAN, 0.3]), torch.tensor([True, False, True])),
        r"anomaly_auc.*scores.*NaN",
    ),
    Probe(
        "linear_probe_accuracy/empty",
        lambda: metrics.linear_probe_accuracy(torch.zeros(0, 3), torch.zeros(0), torch.zeros(0, 3), torch.zeros(0)),
        r"linear_probe_accuracy.*empty",
    ),
    Probe(
        "linear_probe_accuracy/nan features",
        lambda: metrics.linear_probe_accuracy(
            torch.full((6, 3), NAN), torch.arange(6) % 2, torch.zeros(2, 3), torch.zeros(2)
        ),
        r"linear_probe_accuracy.*NaN",
    ),
    Probe("jump_ratio/nan", lambda: chapter4.jump_ratio(torch.full((3, 4), NAN)), r"jump_ratio.*NaN"),
    Probe("jump_ratio/1-D", lambda: chapter4.jump_ratio(torch.ones(4)), r"jump_ratio.*\(num_pairs, num_steps - 1\)"),
    Probe("sampling_seconds/0 repeats", lambda: chapter4.sampling_seconds(_vae(), 10, repeats=0), r"repeats must be"),
    Probe("sampling_seconds/0 samples", lambda: chapter4.sampling_seconds(_vae(), 0), r"num_samples must be an int"),
    Probe("missing_classes/negative", lambda: chapter4.missing_classes(torch.ones(10) / 10, min_fraction=-1), r"min_"),
    Probe(
        "interpolation_steps/0 pairs",
        lambda: chapter4.interpolation_steps(_vae(), _classifier(), num_pairs=0),
        r"num_pairs must be an int >= 1; got 0",
    ),
    Probe(
        "frechet_distance/one image",
        lambda: metrics.frechet_distance(X[:1], X, _classifier()),
        r"frechet_distance.*at least 2",
    ),
    Probe(
        "class_histogram/0-255 images",
        lambda: chapter4.class_histogram(_classifier(), X * 255),
        r"divide by 255",
    ),
    Probe(
        "importance_weighted_curve/k float",
        lambda: chapter3.importance_weighted_curve(_vae(), X, [2.5]),
        r"importance_weighted_curve: k must be an int >= 1; got 2.5",
    ),
    # classifier
    Probe(
        "accuracy/labels of another length",
        lambda: accuracy(_classifier(), X, torch.zeros(1, dtype=torch.long)),
        r"accuracy.*one label per image",
    ),
    # runtime
    Probe("set_seed/float", lambda: set_seed(1.5), r"seed must be an int.*got 1.5"),
    Probe("set_seed/negative", lambda: set_seed(-1), r"(?i)seed must be"),
    Probe("pick_device/bogus", lambda: pick_device("bogus"), r"not a device"),
    Probe("pick_device/meta", lambda: pick_device("meta"), r"cpu or cuda"),
    Probe("seeded/negative", lambda: _enter(__import__("aecourse.runtime").runtime.seeded(-1)), r"(?i)seed must be"),
    Probe("evaluating/float seed", lambda: _enter(_evaluating(_ae(), seed=1.5)), r"seed must be an int; got 1.5"),
    Probe("add_noise/float seed", lambda: add_noise(X, "gaussian", 0.2, seed=1.5), r"seed must be an int; got 1.5"),
    Probe("FashionMNIST.to/bogus", lambda: _tiny_split().to("bogus"), r"device='bogus' is not a device"),
    Probe("posterior/empty", lambda: inference.posterior(_vae(), EMPTY), r"posterior.*empty"),
    Probe(
        "class_histogram/0 classes", lambda: chapter4.class_histogram(_classifier(), X, num_classes=0), r"num_classes"
    ),
    Probe("ClassifierFeatures/no features", lambda: metrics.ClassifierFeatures(_ae()), r"features\(x\) method"),
    Probe(
        "train_classifier/lr inf",
        lambda: train_classifier(_classifier(), _tiny_split(), ClassifierSettings(lr=INF, num_epochs=1)),
        r"lr must be a finite number > 0; got inf",
    ),
    Probe(
        "pretrained_classifier/min_accuracy 2",
        lambda: pretrained_classifier(_tiny_split(), "cpu", min_accuracy=2.0),
        r"min_accuracy is a probability",
    ),
    # checkpoints: names and seeds become file paths
    Probe("paths/parent folder", lambda: ck.paths("../../etc/x", 0), r"checkpoint name"),
    Probe("paths/absolute", lambda: ck.paths("/tmp/x/y", 0), r"checkpoint name"),
    Probe("paths/no folder", lambda: ck.paths("model", 0), r"checkpoint name"),
    Probe("paths/too deep", lambda: ck.paths("01_a/b/c", 0), r"checkpoint name"),
    Probe("paths/hidden", lambda: ck.paths("01_a/.b", 0), r"checkpoint name"),
    Probe("paths/backslash", lambda: ck.paths("01_a\\b", 0), r"checkpoint name"),
    Probe("paths/seed float", lambda: ck.paths("01_a/b", 1.5), r"seed must be an int"),
    Probe("paths/seed negative", lambda: ck.paths("01_a/b", -1), r"seed must be an int"),
    Probe("reused/parent folder", lambda: ck.reused(_vae(), "../x/y", seed=0, expect={}), r"checkpoint name"),
    Probe(
        "save/absolute name",
        lambda: ck.save(_vae(), "/tmp/x", 0, config={}, history=_history(), device="cpu"),
        r"checkpoint name",
    ),
)


def _tb_probes():
    from aecourse.tb import run_epochs, tensor_loader

    return _cases(
        Probe("tensor_loader/lengths", lambda: tensor_loader(X, torch.zeros(3)), r"tensor_loader.*same length"),
        Probe("tensor_loader/batch_size 0", lambda: tensor_loader(X, batch_size=0), r"batch_size"),
        Probe("run_epochs/num_epochs float", lambda: run_epochs(None, 1.5), r"num_epochs must be an int"),
    )


AT_THE_DOOR += _tb_probes() if importlib.util.find_spec("torchbearer") else []


@pytest.mark.parametrize("probe", AT_THE_DOOR)
def test_a_wrong_input_is_refused_at_the_door(probe):
    with pytest.raises(probe.error, match=probe.match):
        probe.call()


# 2. Training: nothing leaves the weights non-finite without saying so, and nothing claims they are finite when
# they are not. A loss whose gradient is 1 on one bias makes Adam move it by lr per step: with lr = 3e37 the twelfth
# step overflows it to -inf while every loss and gradient the guards saw was finite (batches of one image).
def _overflowing(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return model.encoder[0].bias[0] + 0.0 * reconstruction_loss(model, x).detach()


def _fit_overflow(built: list, num_images: int) -> None:
    built.append(_ae())
    fit(built[-1], _overflowing, _images(num_images), num_epochs=2, batch_size=1, lr=3e37)


def _gan_run(built: list, values_finite: bool) -> None:
    def poisoned_step(gan, x, z, opt_d, opt_g):
        values = gan_step(gan, x, z, opt_d, opt_g)
        with torch.no_grad():
            gan.generator.net[0].bias.fill_(INF)
        return values if values_finite else {key: torch.tensor(NAN) for key in values}

    built.append(_gan())
    gan_module = sys.modules[train_gan.__module__]  # the chapter's loop calls gan_step by its module's name
    original, gan_module.gan_step = gan_module.gan_step, poisoned_step
    try:
        history = train_gan(built[-1], X, num_epochs=2, batch_size=4)
    finally:
        gan_module.gan_step = original
    assert len(history) == 1, "the run stops at the epoch that broke it, and keeps that row"


def _classifier_overflow(built: list) -> None:
    from tools import train_checkpoints

    built.append(_classifier())
    settings = ClassifierSettings(channels=(2, 2), hidden_dim=4, num_epochs=1, batch_size=1, lr=1.0)

    def poisoned(model, optimizer, loss_fn, x_train, **kwargs):  # an epoch whose last step overflows a weight
        with torch.no_grad():
            model.head.bias.fill_(INF)
        return {"loss": 1.0}

    original = train_checkpoints.train_epoch
    train_checkpoints.train_epoch = poisoned
    try:
        train_classifier(built[-1], _tiny_split(), settings)
    finally:
        train_checkpoints.train_epoch = original


def _torchbearer_poisoned(built: list) -> None:
    pytest.importorskip("torchbearer")
    from torchbearer import callbacks

    from aecourse.tb import StateVAE, quiet_trial, run_epochs, tensor_loader

    torch.manual_seed(0)
    built.append(ConvVAE(2))

    @callbacks.on_step_training
    def poison(state):
        with torch.no_grad():
            built[-1].mu_head.bias.fill_(INF)

    model = StateVAE(built[-1])
    trial = quiet_trial(model, torch.optim.Adam(model.parameters(), lr=1e-3), callbacks=[poison])
    trial.with_generators(train_generator=tensor_loader(X[:4], batch_size=4))
    run_epochs(trial, 2)


@pytest.mark.parametrize(
    "run, raises",
    [
        pytest.param(lambda b: _fit_overflow(b, 12), True, id="fit/overflow at an epoch's last step"),
        pytest.param(lambda b: _fit_overflow(b, 13), True, id="fit/overflow, then a non-finite loss"),
        pytest.param(lambda b: _gan_run(b, True), False, id="train_gan/weights inf, losses finite"),
        pytest.param(lambda b: _gan_run(b, False), False, id="train_gan/weights inf, losses nan"),
        pytest.param(lambda b: _classifier_overflow(b), True, id="train_classifier/overflow"),
        pytest.param(lambda b: _torchbearer_poisoned(b), True, id="run_epochs/weights inf"),
    ],
)
def test_training_never_leaves_weights_silently_non_finite(run, raises):
    built: list[torch.nn.Module] = []
    if raises:
        with pytest.raises(TrainingDivergedError, match=r"restored") as caught:
            run(built)
        assert "last finite update" not in str(caught.value)
    else:
        run(built)
    assert all(bool(torch.isfinite(p).all()) for p in built[0].parameters()), "a failed run keeps finite weights"


# 3. Checkpoints are what they say. A store with two tiny models; each case damages it, then a chapter loads.
@dataclass(frozen=True)
class TinyConfig:
    latent_dim: int = 2


def _build() -> VAE:
    return VAE(2, 8)


def _train(model: VAE, seed: int):
    from aecourse.train import History

    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1)
    return History([{"epoch": 1.0, "train_loss": 1.0, "seconds": 0.1}])


def _load(name: str = "01_demo/a", seed: int = 0):
    return ck.load_or_train(_build(), name, TinyConfig(), seed=seed, train=_train)


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    for name, seed in (("01_demo/a", 0), ("01_demo/a", 1), ("01_demo/b", 0)):
        _load(name, seed)
    monkeypatch.delenv(RETRAIN_ENV)
    return tmp_path / "weights"


def _copy_over(store: Path, source: str, target: str) -> None:
    for ext in ("safetensors", "json"):
        shutil.copyfile(store / f"01_demo/{source}.{ext}", store / f"01_demo/{target}.{ext}")


def _edit_manifest(change: Callable[[dict], object], *, replace: bool = False) -> Callable[[Path], None]:
    """A damage to the manifest of 01_demo/a seed 0: `change` edits it in place (or, with `replace`, returns what
    is written instead)."""

    def edit(store: Path) -> None:
        path = store / "01_demo/a-seed0.json"
        manifest = json.loads(path.read_text())
        replaced = change(manifest)
        path.write_text(json.dumps(replaced if replace else manifest))

    return edit


CHECKPOINT_CASES = [
    ("another model's files", lambda s: _copy_over(s, "b-seed0", "a-seed0"), r"01_demo/b.*not 01_demo/a"),
    ("another seed's files", lambda s: _copy_over(s, "a-seed1", "a-seed0"), r"seed 1.*not.*seed 0"),
    ("manifest without history", _edit_manifest(lambda m: m.pop("history")), r"manifest.*history"),
    ("manifest without name", _edit_manifest(lambda m: m.pop("name")), r"manifest.*name"),
    ("config not a dict", _edit_manifest(lambda m: m.update(config=[1, 2])), r"manifest.*config"),
    ("manifest a list", _edit_manifest(lambda m: [m], replace=True), r"manifest.*JSON object"),
    ("history rows not dicts", _edit_manifest(lambda m: m.update(history=[1.0])), r"manifest.*history"),
    ("seed a string", _edit_manifest(lambda m: m.update(seed="0")), r"manifest.*seed"),
    ("sha256 missing", _edit_manifest(lambda m: m.pop("sha256")), r"manifest.*sha256"),
    ("history edited", _edit_manifest(lambda m: m["history"][0].update(train_loss=0.5)), r"checksum|SHA-256"),
    ("manifest not JSON", lambda s: (s / "01_demo/a-seed0.json").write_text("{"), r"not a readable manifest"),
    ("weights without manifest", lambda s: (s / "01_demo/a-seed0.json").unlink(), r"manifest.*missing|no checkpoint"),
    ("weights truncated", lambda s: (s / "01_demo/a-seed0.safetensors").write_bytes(b"x"), r"SHA-256"),
]


@pytest.mark.parametrize("damage, match", [pytest.param(d, m, id=i) for i, d, m in CHECKPOINT_CASES])
def test_a_checkpoint_is_what_it_says(store, damage, match):
    damage(store)
    with pytest.raises(CheckpointError, match=match):
        _load()


# 4. Verified data cannot be replaced by anything in the cache.
NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _write_idx(folder: Path, *, gz: bool = True) -> IdxSpec:
    g = torch.Generator().manual_seed(0)
    images = (torch.randint(0, 256, (20, 28, 28), generator=g), torch.randint(0, 256, (10, 28, 28), generator=g))
    labels = (torch.arange(20) % 10, torch.arange(10) % 10)
    contents = {
        NAMES[0]: struct.pack(">IIII", 0x803, 20, 28, 28) + images[0].byte().numpy().tobytes(),
        NAMES[1]: struct.pack(">II", 0x801, 20) + labels[0].byte().numpy().tobytes(),
        NAMES[2]: struct.pack(">IIII", 0x803, 10, 28, 28) + images[1].byte().numpy().tobytes(),
        NAMES[3]: struct.pack(">II", 0x801, 10) + labels[1].byte().numpy().tobytes(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in contents.items():
        (folder / (f"{name}.gz" if gz else name)).write_bytes(gzip.compress(payload) if gz else payload)
    sums = {name: hashlib.sha256(payload).hexdigest() for name, payload in contents.items()}
    return IdxSpec(sha256=sums, num_train=20, num_test=10, train_per_class=2)


def _processed_pt(cache: Path) -> None:
    processed = cache / "FashionMNIST" / "processed"
    processed.mkdir(parents=True, exist_ok=True)
    for name, n in (("training.pt", 20), ("test.pt", 10)):
        torch.save((torch.zeros(n, 28, 28, dtype=torch.uint8), torch.zeros(n, dtype=torch.long)), processed / name)


DATA_CASES = [
    ("processed .pt in the cache", lambda t: _processed_pt(t / "cache")),
    ("processed .pt under the named root", lambda t: _processed_pt(t / "debian")),
    ("a raw copy in the cache", lambda t: _write_idx(t / "cache/FashionMNIST/raw", gz=False) and None),
]


@pytest.mark.parametrize("plant", [pytest.param(p, id=i) for i, p in DATA_CASES])
def test_verified_data_cannot_be_replaced(isolated, plant):
    spec = _write_idx(isolated / "debian")
    first = load_fashion_mnist(spec=spec)
    plant(isolated)
    again = load_fashion_mnist(spec=spec)
    assert torch.equal(again.x_train, first.x_train) and torch.equal(again.y_test, first.y_test)
    assert again.source == isolated / "debian"
    assert float(again.x_train.std()) > 0.1, "the verified images, not planted zeros"


# 5. A write killed midway leaves nothing that stays: the next run removes it, without racing a live writer.
def _killed_in_child(code: str) -> None:
    """Run `code` in a child Python that SIGKILLs itself midway (inside the write it starts)."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], env=env, capture_output=True, text=True)
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]


def _kill_checkpoint_write(store: Path) -> Path:
    weights, _ = ck.paths("01_demo/a", 0, store)
    _killed_in_child(
        f"""
        import os, signal
        from pathlib import Path
        from aecourse import checkpoints as ck
        ck.write_atomically(Path({str(weights)!r}), lambda tmp: os.kill(os.getpid(), signal.SIGKILL))
        """
    )
    return weights.parent


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_a_killed_checkpoint_write_leaves_nothing_after_the_next_save(store):
    folder = _kill_checkpoint_write(store)
    assert _leftovers(folder), "the child was killed inside the write: its temporary file is there"
    ck.save(_build(), "01_demo/a", 0, config={"latent_dim": 2}, history=_train(_build(), 0), device="cpu", root=store)
    assert _leftovers(folder) == []


def test_a_killed_checkpoint_write_leaves_nothing_after_the_next_load(store):
    folder = _kill_checkpoint_write(store)
    _load()
    assert _leftovers(folder) == []


# 6. The tools: run the checkout they are in, and keep names that become paths inside their folders.
pytest.importorskip("nbclient", reason="the tools need the book's requirements")
from tools import execute_notebooks, export_explorer  # noqa: E402
from tools import train_checkpoints as train_tool  # noqa: E402


@pytest.fixture
def tool_sandbox(tmp_path, monkeypatch):
    """train_checkpoints with every path it writes moved into tmp_path and nothing executed for real."""
    monkeypatch.setattr(train_tool, "SET_ASIDE", tmp_path / "aside")
    monkeypatch.setattr(train_tool, "RETRAIN_TIMINGS", tmp_path / "retrain_timings.json")
    monkeypatch.setattr(train_tool, "WEIGHTS_DIR", tmp_path / "weights")
    ran = []

    def must_not_run(*args, **kwargs):
        ran.append(args)
        raise RuntimeError("a refused target was run")

    monkeypatch.setattr(train_tool, "execute", must_not_run)
    monkeypatch.setattr(train_tool, "_train_shared", must_not_run)
    monkeypatch.chdir(ROOT)
    return ran


@pytest.mark.parametrize(
    "target",
    ["../README.md", "/etc/hostname", "README.md", "book/intro.ipynb", "book/../book/intro.ipynb", "classifier/.."],
)
def test_train_checkpoints_refuses_a_target_outside_the_chapters(tool_sandbox, capsys, target):
    assert train_tool.main([target]) == 2
    assert "book/" in capsys.readouterr().err and not tool_sandbox


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--runs", "-1"], ["README.md"], ["../book/01_autoencoder.ipynb"]])
def test_time_book_refuses_what_it_cannot_time(monkeypatch, tmp_path, capsys, argv):
    from tools import time_book

    (tmp_path / "book").mkdir()
    monkeypatch.setattr(time_book, "ROOT", tmp_path)
    monkeypatch.setattr(execute_notebooks, "execute", lambda *a, **k: pytest.fail("a refused notebook was run"))
    monkeypatch.setattr(sys, "argv", ["time_book.py", *argv])
    monkeypatch.chdir(ROOT)
    with pytest.raises(SystemExit) as caught:
        time_book.main()
    assert caught.value.code == 2 and re.search(r"--runs|chapter", capsys.readouterr().err)
    assert not (tmp_path / "book" / "timings.json").exists()


@pytest.mark.parametrize("argv", [["no_such.ipynb"], ["README.md"]])
def test_execute_notebooks_refuses_what_is_not_a_notebook(monkeypatch, capsys, argv):
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(execute_notebooks, "execute", lambda *a, **k: pytest.fail("a refused path was run"))
    assert execute_notebooks.main(argv) == 2
    assert "no such notebook" in capsys.readouterr().err


def test_the_notebook_kernels_import_the_checkout(monkeypatch, tmp_path):
    """tools/execute_notebooks.py starts kernels from this process: their environment puts this checkout first."""
    seen = {}

    class Client:
        def __init__(self, *args, **kwargs):
            pass

        def execute(self):
            seen["PYTHONPATH"] = os.environ.get("PYTHONPATH", "")

    monkeypatch.setattr(execute_notebooks, "NotebookClient", Client)
    monkeypatch.setenv("PYTHONPATH", "/somewhere/else")
    notebook = tmp_path / "n.ipynb"
    notebook.write_text(json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    execute_notebooks.execute(notebook, save=False)
    assert seen["PYTHONPATH"].split(os.pathsep)[0] == str(ROOT)


@pytest.mark.parametrize(
    "argv, match",
    [
        (["--out", "/"], r"--out"),
        (["--out", "../outside"], r"--out"),
        (["--out", "{tmp}/a-file/sub"], r"--out.*cannot be written|--out"),
    ],
)
def test_export_explorer_refuses_an_out_it_cannot_use(monkeypatch, tmp_path, capsys, argv, match):
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setattr(export_explorer, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(export_explorer, "load_models", lambda *a: pytest.fail("the models were loaded first"))
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    assert export_explorer.main(argv) == 2
    assert re.search(match, capsys.readouterr().err)


@pytest.mark.parametrize("damage", ["corrupt", "stale", "half"])
def test_the_explorer_refuses_a_damaged_or_stale_beta_checkpoint(tmp_path, monkeypatch, damage):
    weights = tmp_path / "weights"
    for chapter in ("03_vae", "05_beta_vae_torchbearer"):
        shutil.copytree(ck.WEIGHTS_DIR / chapter, weights / chapter, ignore=shutil.ignore_patterns("*seed[12]*"))
    monkeypatch.setattr(ck, "WEIGHTS_DIR", weights)
    beta_2 = weights / "05_beta_vae_torchbearer" / "beta_2-seed0"
    if damage == "corrupt":
        Path(f"{beta_2}.safetensors").write_bytes(b"damaged")
    elif damage == "stale":
        manifest = json.loads(Path(f"{beta_2}.json").read_text())
        manifest["config"]["num_epochs"] = 7  # trained with a config the chapter no longer has
        Path(f"{beta_2}.json").write_text(json.dumps(manifest))
    else:
        Path(f"{beta_2}.json").unlink()  # weights without their manifest: not "not trained yet"
    with pytest.raises(CheckpointError, match=r"beta_2"):
        export_explorer.load_models(tmp_path)


# 7. Errors point the right way: the command they name exists and trains what is missing.
def test_a_missing_classifier_names_its_own_command(tmp_path, monkeypatch):
    from aecourse.data import FashionMNIST
    from aecourse.evidence.classifier import pretrained_classifier

    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    tiny = FashionMNIST(X, torch.zeros(8, dtype=torch.long), X, torch.zeros(8, dtype=torch.long), tmp_path)
    with pytest.raises(CheckpointError) as caught:
        pretrained_classifier(tiny, "cpu", root=tmp_path)
    message = str(caught.value)
    assert "make checkpoints NB=classifier" in message
    assert "AECOURSE_RETRAIN=1" not in message and "AECOURSE_BUDGET=short" not in message


def test_a_weak_classifier_names_its_own_command(tmp_path, monkeypatch):
    from aecourse.data import FashionMNIST

    tiny = FashionMNIST(X, torch.arange(8) % 10, X, torch.arange(8) % 10, tmp_path)
    settings = ClassifierSettings(channels=(2, 2), hidden_dim=4, num_epochs=1, batch_size=4)
    with pytest.raises(CheckpointError, match=r"make checkpoints NB=classifier`"):
        store_classifier(tiny, "cpu", settings=settings, root=tmp_path, min_accuracy=0.99)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_the_restore_hint_works_from_the_repository_root(tmp_path, monkeypatch):
    """The hint a damaged checkpoint gives is a command that restores it, run where the README runs commands."""
    repo = tmp_path / "repo"
    monkeypatch.setattr(ck, "WEIGHTS_DIR", repo / "aecourse" / "weights")
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    _load()
    monkeypatch.delenv(RETRAIN_ENV)
    git = ["git", "-c", "user.name=probe", "-c", "user.email=probe@example.org"]
    for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "stored"]):
        subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    weights = repo / "aecourse" / "weights" / "01_demo" / "a-seed0.safetensors"
    weights.write_bytes(b"damaged")
    with pytest.raises(CheckpointError) as caught:
        _load()
    hint = re.search(r"`(git checkout -- [^`]+)`", str(caught.value))
    assert hint, str(caught.value)
    subprocess.run(hint.group(1).split(), cwd=repo, check=True, capture_output=True)
    _load()  # restored: it loads


def test_a_killed_from_nothing_run_says_where_the_old_checkpoints_wait(tool_sandbox, tmp_path, capsys):
    aside = tmp_path / "aside" / "04_vae_vs_gan-20260101-000000"
    aside.mkdir(parents=True)
    (aside / "gan-seed0.json").write_text(json.dumps({"name": "04_vae_vs_gan/gan", "seed": 0, "sha256": "x"}))
    train_tool.main(["classifier"])
    out = capsys.readouterr()
    assert ".cache/checkpoints-before" in out.out + out.err or str(aside) in out.out + out.err


# 8. Every value of every switch: a value is either taken, with the documented meaning, or refused by name.
SWITCH_CASES = [
    (BUDGET_ENV, "full", budget, "full"),
    (BUDGET_ENV, " Short ", budget, "short"),
    (BUDGET_ENV, "", budget, "full"),
    (BUDGET_ENV, "fast", budget, ValueError),
    (RETRAIN_ENV, "1", retrain_mode, "all"),
    (RETRAIN_ENV, "missing", retrain_mode, "missing"),
    (RETRAIN_ENV, "0", retrain_mode, "no"),
    (RETRAIN_ENV, "2", retrain_mode, ValueError),
    (RETRAIN_ENV, "some", retrain_mode, ValueError),
    (DEVICE_ENV, "cpu", pick_device, torch.device("cpu")),
    (DEVICE_ENV, "bogus", pick_device, ValueError),
    (DEVICE_ENV, "meta", pick_device, ValueError),
    (DEVICE_ENV, "cuda:x", pick_device, ValueError),
    (DEVICE_ENV, "mps", pick_device, ValueError),
]
if not torch.cuda.is_available():
    SWITCH_CASES += [(DEVICE_ENV, "cuda", pick_device, RuntimeError), (DEVICE_ENV, "cuda:1", pick_device, RuntimeError)]


@pytest.mark.parametrize(
    "variable, value, read, expected", [pytest.param(*c, id=f"{c[0]}={c[1]!r}") for c in SWITCH_CASES]
)
def test_every_switch_value_is_taken_or_refused_by_name(monkeypatch, variable, value, read, expected):
    monkeypatch.setenv(variable, value)
    if isinstance(expected, type) and issubclass(expected, Exception):
        with pytest.raises(expected, match=variable):
            read()
    else:
        assert read() == expected


@pytest.mark.parametrize(
    "setting",
    [
        pytest.param(lambda t, m: m.setenv("AECOURSE_DATA", str(t / "nowhere")), id="AECOURSE_DATA=missing folder"),
        pytest.param(lambda t, m: m.setenv("AECOURSE_DATA", str(t / "a-file")), id="AECOURSE_DATA=a file"),
        pytest.param(lambda t, m: m.setenv("AECOURSE_DEVICE", "bogus"), id="load with AECOURSE_DEVICE=bogus"),
    ],
)
def test_data_switches_are_refused_by_name(isolated, monkeypatch, setting):
    spec = _write_idx(isolated / "debian")
    (isolated / "a-file").write_text("not a folder")
    setting(isolated, monkeypatch)
    with pytest.raises((CourseError, ValueError), match=r"AECOURSE_(DATA|CACHE|DEVICE)"):
        load_fashion_mnist(device=pick_device(), spec=spec)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the case of a machine without a GPU")
def test_load_on_a_gpu_that_is_not_there_says_so(isolated):
    spec = _write_idx(isolated / "debian")
    with pytest.raises((CourseError, ValueError), match=r"device='cuda' asks for a CUDA GPU"):
        load_fashion_mnist(device="cuda", spec=spec)


# PROBE_RECORD. Issue #24 ran this file, as it stands, against the code before its fixes (commit e0a8d45): of its
# 198 cases, 143 found a defect (and 55 passed: what was already refused clearly or already worked), by kind:
#   inputs at the door            101 of 128: empty batches into encode/reconstruct/decode/predict/psnr/... (raw
#                                 torch.cat errors or NaN), codes of the wrong width or NaN into decode, float or bool
#                                 counts (range() and randn errors deep in torch), lr 0 or inf into fit and train_gan,
#                                 psnr of uint8 or 0..255 images (-43 dB) or NaN (nan), active_units of NaN (all
#                                 inactive), edge_energy of 0..255 images, the DAE trained on 0..255 images without a
#                                 word, checkpoint names and seeds that lead out of the weights folder, ...
#   training left non-finite        6 of 6: fit, train_gan, the classifier's training and chapter 5's run_epochs
#   checkpoints what they say      10 of 13: another model's or seed's files loaded, KeyError on an incomplete
#                                 manifest, an edited history accepted
#   verified data replaced          1 of 3: torchvision's processed/*.pt in the cache read instead of the raw files
#   killed writes left behind       3 of 4: a checkpoint's and an unpack's temporary files kept
#   tools                          17 of 19: non-chapter targets run, kernels importing another checkout, --out
#                                 outside the checkout or unwritable (traceback), a damaged or stale beta exported
#                                 as "not trained yet", time_book --runs 0, execute_notebooks on a missing file
#   errors pointing the wrong way   4 of 4: the classifier's command, the restore hint, the set-aside checkpoints
#   switches and devices            1 of 21: load_fashion_mnist(device="cuda") on a machine without a GPU
# Since then, cases went with the code they probed: the data cache's unpack (the verified bytes are parsed where
# they lie), the test-only Fréchet closed form and chapter 3's quantile grid (now two lines of its figure's cell).
