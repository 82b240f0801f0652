"""aecourse.checkpoints: weights stored without pickle and checked on load; a chapter's config and its checkpoint's
manifest must agree; the budget decides between loading and training; the caller's random streams stay untouched."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pytest
import torch

from aecourse import checkpoints as ck
from aecourse.checkpoints import CheckpointError, load_or_train
from aecourse.models import VAE
from aecourse.runtime import BUDGET_ENV, RETRAIN_ENV, seeded
from aecourse.train import History
from tools.stored_checkpoints import manifests, stored_size


@dataclass(frozen=True)
class Config:
    latent_dim: int = 3
    num_epochs: int = 2
    seeds: tuple[int, ...] = (0, 1)
    num_samples: int = 100  # how a chapter measures: not part of any checkpoint
    compared: ClassVar = ("num_samples",)


class Recorder:
    """build() and train() for a tiny VAE, counting how often training really runs."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.trainings = 0

    def build(self) -> VAE:
        return VAE(latent_dim=self.config.latent_dim, hidden_dim=8)

    def train(self, model: VAE, seed: int) -> History:
        self.trainings += 1
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p))  # "training": a random step, so the result depends on the seed
        return History([{"epoch": float(e + 1), "train_loss": 1.0 / (e + 1), "seconds": 0.5} for e in range(2)])


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "WEIGHTS_DIR", tmp_path)
    for name in (BUDGET_ENV, RETRAIN_ENV):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def _rewrite(manifest_path, manifest: dict, name: str = "01_demo/vae") -> None:
    """Write a changed manifest as `make checkpoints` would have stored it: its SHA-256 recorded in the checksum
    list too, so that the load gets past that check to the one a test is after."""
    manifest_path.write_text(json.dumps(manifest))
    ck._record_checksum(name, manifest_path, None)


def _call(recorder: Recorder, seed: int = 0, name: str = "01_demo/vae"):
    with seeded(seed):
        model = recorder.build()
    return load_or_train(model, name, recorder.config, seed=seed, train=recorder.train)


def test_missing_checkpoint_names_the_command_that_trains_it(store):
    with pytest.raises(CheckpointError, match="(?s)no checkpoint of 01_demo/vae.*make checkpoints.*AECOURSE_RETRAIN"):
        _call(Recorder(Config()))


def test_update_trains_once_then_loads_the_same_float16_weights(store, monkeypatch):
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    recorder = Recorder(Config())
    first = _call(recorder)
    assert recorder.trainings == 1 and first.manifest["stored_dtype"] == "float16"
    weights, manifest = ck.paths("01_demo/vae", 0)
    assert weights.is_file() and manifest.is_file()
    assert not [p for p in weights.parent.iterdir() if p.name.startswith(".")], "no temporary file left behind"
    assert weights.read_bytes()[:8] != b"\x80\x02\x8a\nl\xfc\x9c"  # not a pickle
    monkeypatch.delenv(RETRAIN_ENV)
    second = _call(recorder)
    assert recorder.trainings == 1, "a matching checkpoint is loaded, not retrained"
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)  # training ends on the float16-rounded weights: both paths give the same numbers
    assert second.history.rows == first.history.rows and second.manifest["config"] == {
        "latent_dim": 3,
        "num_epochs": 2,
        "seeds": [0, 1],
    }
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    other_seed = _call(recorder, seed=1)
    assert not torch.equal(other_seed.model.mu_head.weight, first.model.mu_head.weight)


def test_a_stale_checkpoint_is_retrained_from_the_seeds_initial_weights_not_from_its_own(store, monkeypatch):
    """`make checkpoints` found a manifest whose config had a field the chapter no longer has, after its weights
    were already loaded into the model; the retrained model then continued the stale weights (chapter 1's 2-D
    autoencoder, seed 0, started its first epoch at the loss where the old one ended)."""
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    fresh = _call(Recorder(Config())).model.state_dict()
    _, manifest_path = ck.paths("01_demo/vae", 0)
    manifest = json.loads(manifest_path.read_text())
    manifest["config"]["a_removed_field"] = 1  # the chapter's config has lost a field since this was stored
    _rewrite(manifest_path, manifest)
    recorder = Recorder(Config())
    again = _call(recorder)
    assert recorder.trainings == 1, "a stale checkpoint is retrained"
    for a, b in zip(fresh.values(), again.model.state_dict().values(), strict=True):
        assert torch.equal(a, b), "retraining must start from the seed's initial weights, as from nothing"
    assert "a_removed_field" not in json.loads(manifest_path.read_text())["config"]


def test_a_changed_config_is_an_error_that_says_what_changed(store, monkeypatch):
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _call(Recorder(Config()))
    monkeypatch.delenv(RETRAIN_ENV)
    _call(Recorder(Config(num_samples=5)))  # a measurement field: the checkpoint still fits
    with pytest.raises(CheckpointError, match=r"(?s)num_epochs=2 \(asked: 5\).*make checkpoints"):
        _call(Recorder(Config(num_epochs=5)))


def test_damaged_weights_or_non_finite_values_are_refused(store, monkeypatch):
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _call(Recorder(Config()))
    monkeypatch.delenv(RETRAIN_ENV)
    weights, manifest_path = ck.paths("01_demo/vae", 0)
    good = weights.read_bytes()
    weights.write_bytes(good[:-8] + b"\x00" * 8)
    with pytest.raises(CheckpointError, match="does not match the SHA-256"):
        _call(Recorder(Config()))
    from safetensors.torch import load_file, save_file

    weights.write_bytes(good)
    state = load_file(str(weights))
    state["mu_head.weight"][0, 0] = float("nan")
    save_file(state, str(weights))
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = ck._sha256(weights)
    _rewrite(manifest_path, manifest)
    with pytest.raises(CheckpointError, match="NaN or infinite"):
        _call(Recorder(Config()))
    state["mu_head.weight"][0, 0] = 0.0
    state["mu_head.weight"] = state["mu_head.weight"].float()  # float32 where float16 is stored
    save_file(state, str(weights))
    manifest["sha256"] = ck._sha256(weights)
    _rewrite(manifest_path, manifest)
    with pytest.raises(CheckpointError, match="stored as torch.float32"):
        _call(Recorder(Config()))


def test_a_checkpoint_of_another_architecture_is_refused(store, monkeypatch):
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _call(Recorder(Config()))
    monkeypatch.delenv(RETRAIN_ENV)
    with pytest.raises(CheckpointError, match="does not fit VAE"):
        ck.load(VAE(latent_dim=4, hidden_dim=8), "01_demo/vae", 0)


def test_retrain_and_the_short_budgets_train_without_storing(store, monkeypatch):
    recorder = Recorder(Config())
    monkeypatch.setenv(RETRAIN_ENV, "1")
    result = _call(recorder)
    assert recorder.trainings == 1 and result.manifest["stored"] is False
    monkeypatch.delenv(RETRAIN_ENV)
    monkeypatch.setenv(BUDGET_ENV, "smoke")
    _call(recorder)
    assert recorder.trainings == 2 and not list(store.rglob("*.safetensors"))


def test_the_callers_random_streams_are_untouched(store, monkeypatch):
    monkeypatch.setenv(BUDGET_ENV, "short")
    torch.manual_seed(5)
    random.seed(5)
    np.random.seed(5)
    before = torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy()
    a = _call(Recorder(Config()))
    assert torch.equal(torch.get_rng_state(), before[0]) and random.getstate() == before[1]
    assert np.array_equal(np.random.get_state()[1], before[2])
    b = _call(Recorder(Config()))  # the same seed gives the same model, whatever ran before
    assert torch.equal(a.model.mu_head.weight, b.model.mu_head.weight)


def test_the_books_checkpoints_fit_the_size_budget_and_match_their_manifests():
    """Every checkpoint shipped with the package: at most 50 MiB in all (52,428,800 bytes, as `du -h` and `make
    checkpoints` count it), each file's SHA-256 as its manifest says."""
    assert stored_size() <= 50 * 2**20
    for manifest in manifests():
        weights, _ = ck.paths(manifest["name"], manifest["seed"])
        assert ck._sha256(weights) == manifest["sha256"], f"{weights} does not match its manifest"
        assert manifest["stored_dtype"] == "float16" and manifest["history"]


def test_a_file_that_is_not_safetensors_is_refused_with_a_clear_error(store, monkeypatch):
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _call(Recorder(Config()))
    monkeypatch.delenv(RETRAIN_ENV)
    weights, manifest_path = ck.paths("01_demo/vae", 0)
    import pickle

    weights.write_bytes(pickle.dumps([1, 2, 3]))  # a pickled list where the weights should be
    manifest = json.loads(manifest_path.read_text())
    manifest["sha256"] = ck._sha256(weights)
    _rewrite(manifest_path, manifest)
    with pytest.raises(CheckpointError, match="not a readable safetensors file"):
        _call(Recorder(Config()))


def test_names_with_a_dot_keep_one_file_per_seed(store, monkeypatch):
    """A model named after a value (beta_0.5) must not lose its seed to a suffix rule."""
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    recorder = Recorder(Config())
    for seed in (0, 1):
        _call(recorder, seed, name="01_demo/beta_0.5")
    files = sorted(p.name for p in ck.paths("01_demo/beta_0.5", 0)[0].parent.iterdir())
    assert files == [f"beta_0.5-seed{s}.{ext}" for s in (0, 1) for ext in ("json", "safetensors")]
    monkeypatch.delenv(RETRAIN_ENV)
    assert _call(recorder, 1, name="01_demo/beta_0.5").manifest["seed"] == 1 and recorder.trainings == 2
