"""tools/train_checkpoints.py: `--from-nothing` sets a chapter's checkpoints aside (nothing deleted), records the
time of a training pass that started from none of them, and says which checkpoints came back byte for byte."""

from __future__ import annotations

import hashlib
import json

import pytest

pytest.importorskip("nbclient", reason="the tools need the book's requirements, not just the package's")
from tools import train_checkpoints as tool  # noqa: E402


def _manifest(root, name: str, seed: int, sha: str) -> None:
    """A stored checkpoint as far as the tool looks: a complete manifest whose weights' SHA-256 stands for `sha`."""
    path = root / f"{name}-seed{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    manifest = {"name": name, "seed": seed, "config": {}, "epochs": 0, "device": "cpu", "torch": "2.0"}
    manifest |= {"training_seconds": 1.0, "sha256": hashlib.sha256(sha.encode()).hexdigest(), "metrics": {}}
    path.write_text(json.dumps(manifest | {"history": []}))
    (root / f"{name}-seed{seed}.safetensors").write_bytes(sha.encode())


def test_from_nothing_moves_the_chapter_aside_then_compares_and_records(tmp_path, monkeypatch, capsys):
    weights, aside, book = tmp_path / "weights", tmp_path / "aside", tmp_path / "book"
    book.mkdir()
    monkeypatch.setattr(tool, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(tool, "SET_ASIDE", aside)
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "RETRAIN_TIMINGS", book / "retrain_timings.json")
    _manifest(weights, "04_gan/gan", 0, "aaa")
    _manifest(weights, "04_gan/gan", 1, "bbb")
    _manifest(weights, "03_vae/vae", 0, "ccc")

    moved = tool._set_aside("04_gan")
    assert moved is not None and sorted(p.name for p in moved.iterdir()) == [
        "gan-seed0.json",
        "gan-seed0.safetensors",
        "gan-seed1.json",
        "gan-seed1.safetensors",
    ]
    assert not (weights / "04_gan").exists() and (weights / "03_vae/vae-seed0.json").is_file()  # others stay
    assert tool._set_aside("04_gan") is None  # nothing left to move: no empty folder set aside

    _manifest(weights, "04_gan/gan", 0, "aaa")  # retrained: seed 0 identical, seed 1 not
    _manifest(weights, "04_gan/gan", 1, "zzz")
    tool._compare("04_gan", moved)
    out = capsys.readouterr().out
    assert "reproduced byte for byte: 1 of 2" in out and "different weights: 04_gan/gan-seed1." in out

    trained = [json.loads((weights / "04_gan" / f"gan-seed{s}.json").read_text()) for s in (0, 1)]
    tool._record("04_gan", 1234.4, trained)
    tool._record("01_ae", 99.0, [{"name": "01_ae/ae", "device": "cpu"}, {"name": "classifier/c", "device": "cpu"}])
    assert [p.name for p in book.iterdir()] == ["retrain_timings.json"]  # no partial file left behind
    record = json.loads((book / "retrain_timings.json").read_text())["chapters"]
    assert list(record) == ["01_ae", "04_gan"]  # both kept, in order
    assert record["04_gan"]["seconds"] == 1234 and record["04_gan"]["models"] == 2
    assert record["01_ae"]["also_trained"] == ["classifier"]
    assert record["04_gan"]["command"] == "make checkpoints NB=book/04_gan.ipynb FROM_NOTHING=1"


def test_the_shared_classifier_is_set_aside_trained_alone_and_recorded_under_its_own_name(
    tmp_path, monkeypatch, capsys
):
    weights, book = tmp_path / "weights", tmp_path / "book"
    book.mkdir()
    monkeypatch.setattr(tool, "WEIGHTS_DIR", weights)
    monkeypatch.setattr(tool, "SET_ASIDE", tmp_path / "aside")
    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "RETRAIN_TIMINGS", book / "retrain_timings.json")
    _manifest(weights, "classifier/fashion_cnn", 0, "aaa")
    _manifest(weights, "03_vae/vae", 0, "ccc")

    def train_alone(name: str) -> float:
        assert name == "classifier" and not (weights / "classifier").exists()  # set aside before it trains
        _manifest(weights, "classifier/fashion_cnn", 0, "aaa")
        return 41.6

    monkeypatch.setattr(tool, "_train_shared", train_alone)
    assert tool.main(["--from-nothing", "classifier"]) == 0
    out = capsys.readouterr().out
    assert "trained 1 models in this pass" in out and "reproduced byte for byte: 1 of 1" in out
    record = json.loads((book / "retrain_timings.json").read_text())["chapters"]
    assert list(record) == ["classifier"] and record["classifier"]["seconds"] == 42
    assert record["classifier"]["command"] == "make checkpoints NB=classifier FROM_NOTHING=1"
    assert (weights / "03_vae/vae-seed0.json").is_file()  # no chapter was touched

    monkeypatch.setattr(tool, "_train_shared", lambda name: 3.0)  # present: loaded, not trained
    assert tool.main(["classifier"]) == 0  # so no time is recorded
    assert "trained 0 models" in capsys.readouterr().out
    assert json.loads((book / "retrain_timings.json").read_text())["chapters"]["classifier"]["seconds"] == 42


def test_an_unknown_target_names_what_can_be_trained(capsys):
    assert tool.main(["book/no_such_chapter.ipynb"]) == 2
    assert "classifier" in capsys.readouterr().err
    with pytest.raises(ValueError, match="classifier"):
        tool._train_shared("inception")
