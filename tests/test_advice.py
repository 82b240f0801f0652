"""Every error message's advice, followed: each test provokes a message, does what it says, and checks that it
works. Where the advice is a command that retrains for hours (`make checkpoints NB=...`), the test checks that the
command is right: its target is a chapter notebook or a shared model that the tool accepts and that trains what is
missing."""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from aecourse import checkpoints as ck
from aecourse import inference
from aecourse.checkpoints import CheckpointError
from aecourse.data import DataError, IdxSpec, load_fashion_mnist
from aecourse.losses import reconstruction_loss
from aecourse.models import VAE, Autoencoder
from aecourse.runtime import BUDGET_ENV, DEVICE_ENV, RETRAIN_ENV, budget, pick_device, retrain_mode
from aecourse.train import History, TrainingDivergedError, fit
from tools.stored_checkpoints import manifests

ROOT = Path(__file__).resolve().parents[1]
X = torch.rand(12, 1, 28, 28, generator=torch.Generator().manual_seed(0))


def _command(message: str, prefix: str) -> str:
    """The command a message quotes in backticks, starting with `prefix`."""
    found = re.search(rf"`({re.escape(prefix)}[^`]*)`", message)
    assert found, f"no `{prefix}...` in: {message}"
    return found.group(1)


def _make_target(command: str) -> str:
    """The NB= of a `make checkpoints NB=...` command, checked against what tools/train_checkpoints.py accepts."""
    pytest.importorskip("nbclient", reason="the tools need the book's requirements")
    from tools import train_checkpoints as tool

    target = re.fullmatch(r"make checkpoints NB=(\S+)", command)
    assert target, command
    accepted = tool._target(str(ROOT / target.group(1)) if "/" in target.group(1) else target.group(1))
    assert accepted is not None, f"{command}: train_checkpoints.py refuses {target.group(1)}"
    return target.group(1)


# Checkpoints. A tiny VAE stands for a chapter's model; 01_autoencoder is a real chapter, so the commands name it.
@dataclass(frozen=True)
class Config:
    latent_dim: int = 2
    num_epochs: int = 1


def _train(model: VAE, seed: int) -> History:
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01)
    return History([{"epoch": 1.0, "train_loss": 1.0, "seconds": 0.1}])


def _trained(config: Config = Config(), name: str = "01_autoencoder/tiny", seed: int = 0):
    return ck.load_or_train(VAE(2, 8), name, config, seed=seed, train=_train)


@pytest.fixture
def store(tmp_path, monkeypatch):
    """A git repository holding aecourse/weights with one stored tiny model, as a checkout holds the book's."""
    repo = tmp_path / "repo"
    monkeypatch.setattr(ck, "WEIGHTS_DIR", repo / "aecourse" / "weights")
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _trained()
    monkeypatch.delenv(RETRAIN_ENV)
    if shutil.which("git"):
        git = ["git", "-c", "user.name=test", "-c", "user.email=test@example.org"]
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "stored"]):
            subprocess.run([*git, *command], cwd=repo, check=True, capture_output=True)
    return repo


def _follow_git_hint(message: str, repo: Path) -> None:
    subprocess.run(shlex.split(_command(message, "git checkout --")), cwd=repo, check=True, capture_output=True)


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda w, m: w.write_bytes(b"damaged"), id="weights damaged"),
        pytest.param(lambda w, m: w.write_bytes(b"{}"), id="weights not safetensors"),
        pytest.param(lambda w, m: w.unlink(), id="weights missing"),
        pytest.param(lambda w, m: m.unlink(), id="manifest missing"),
        pytest.param(lambda w, m: m.write_text("{"), id="manifest not JSON"),
        pytest.param(lambda w, m: m.write_text(m.read_text().replace('"history"', '"hist"')), id="manifest incomplete"),
        pytest.param(lambda w, m: m.write_text(m.read_text().replace("1.0", "0.5")), id="manifest edited"),
        pytest.param(
            lambda w, m: m.write_text(m.read_text().replace("01_autoencoder/tiny", "01_autoencoder/other")),
            id="manifest of another model",
        ),
    ],
)
def test_a_damaged_checkpoint_is_restored_by_the_command_its_error_gives(store, damage):
    weights, manifest = ck.paths("01_autoencoder/tiny", 0)
    damage(weights, manifest)
    with pytest.raises(CheckpointError) as caught:
        _trained()
    message = str(caught.value)
    assert _make_target(_command(message, "make checkpoints")) == "book/01_autoencoder.ipynb"
    _follow_git_hint(message, store)
    _trained()  # restored: it loads


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_missing_checksum_list_of_the_package_is_restored_by_its_command(store, monkeypatch):
    monkeypatch.setattr(ck, "PACKAGE_WEIGHTS", ck.WEIGHTS_DIR)  # the store is the package's own weights here
    ck.checksums_path("01_autoencoder/tiny").unlink()
    with pytest.raises(CheckpointError, match="weights-checksums/01_autoencoder.sha256 is missing") as caught:
        _trained()
    _follow_git_hint(str(caught.value), store)
    _trained()


def test_a_missing_chapter_checkpoint_is_trained_by_each_way_its_error_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "WEIGHTS_DIR", tmp_path)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    with pytest.raises(CheckpointError) as caught:
        _trained()
    message = str(caught.value)
    assert _make_target(_command(message, "make checkpoints")) == "book/01_autoencoder.ipynb"
    for variable, value in re.findall(r"(AECOURSE_\w+)=(\w+)", message):
        with monkeypatch.context() as patched:
            patched.setenv(variable, value)
            assert _trained().manifest["stored"] is False  # trained in the notebook, as the message says
    monkeypatch.setenv(RETRAIN_ENV, "missing")  # what `make checkpoints` runs the notebook with
    _trained()
    monkeypatch.delenv(RETRAIN_ENV)
    _trained()  # stored: it loads


def test_a_stale_checkpoint_is_fixed_by_each_way_its_error_gives(tmp_path, monkeypatch):
    monkeypatch.setattr(ck, "WEIGHTS_DIR", tmp_path)
    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.setenv(RETRAIN_ENV, "missing")
    _trained()
    monkeypatch.delenv(RETRAIN_ENV)
    changed = Config(num_epochs=2)
    with pytest.raises(CheckpointError, match=r"num_epochs=1 \(asked: 2\).*change the config back") as caught:
        _trained(changed)
    _trained(Config())  # the config changed back: it loads
    assert _make_target(_command(str(caught.value), "make checkpoints")) == "book/01_autoencoder.ipynb"
    monkeypatch.setenv(RETRAIN_ENV, "1")
    assert _trained(changed).manifest["stored"] is False


@pytest.mark.parametrize("name", sorted({m["name"] for m in manifests()}))
def test_every_stored_checkpoint_names_a_command_that_trains_it(name):
    command = ck.retrain_command(name)
    target = _make_target(command)
    folder = name.split("/")[0]
    assert target == (folder if folder in ck.SHARED_MODELS else f"book/{folder}.ipynb")
    if folder not in ck.SHARED_MODELS:
        notebook = json.loads((ROOT / target).read_text())
        assert any(
            f'"{name}' in "".join(c["source"]) or f"{folder}/" in "".join(c["source"]) for c in notebook["cells"]
        )


def test_the_classifier_command_is_one_the_tool_and_make_accept(tmp_path, monkeypatch):
    from aecourse.data import FashionMNIST
    from aecourse.evidence.classifier import pretrained_classifier

    monkeypatch.delenv(RETRAIN_ENV, raising=False)
    tiny = FashionMNIST(X, torch.zeros(12, dtype=torch.long), X, torch.zeros(12, dtype=torch.long), tmp_path)
    with pytest.raises(CheckpointError) as caught:
        pretrained_classifier(tiny, "cpu", root=tmp_path)
    assert _make_target(_command(str(caught.value), "make checkpoints")) == "classifier"
    if shutil.which("make"):
        dry = subprocess.run(["make", "-n", "-W", "requirements.txt", "checkpoints", "NB=classifier"], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        assert re.search(r"tools/train_checkpoints.py\s+classifier\b", dry.stdout), dry.stdout[-2000:]


# Training.
def test_a_diverged_fit_recovers_with_the_lower_learning_rate_it_advises():
    def overflowing(model, x):
        return model.encoder[0].bias[0] + 0.0 * reconstruction_loss(model, x).detach()

    torch.manual_seed(0)
    model = Autoencoder(4, 8)
    with pytest.raises(TrainingDivergedError, match=r"restored.*Try a lower learning rate \(lr=3e\+37 now\)"):
        fit(model, overflowing, X, num_epochs=1, batch_size=1, lr=3e37)
    history = fit(model, overflowing, X, num_epochs=1, batch_size=1, lr=1e-3)  # the restored weights train on
    assert len(history) == 1 and all(bool(torch.isfinite(p).all()) for p in model.parameters())


# Inputs: the fix a message names makes the call work.
@pytest.mark.parametrize(
    "call, fixed, match",
    [
        (lambda m: m((X * 255).byte()), lambda m: m((X * 255).byte() / 255), r"Divide uint8 images by 255"),
        (lambda m: m(X * 255), lambda m: m(X * 255 / 255), r"divide by 255"),
        (lambda m: m(X[0]), lambda m: m(X[0].unsqueeze(0)), r"x.unsqueeze\(0\)"),
        (lambda m: m(X.double()), lambda m: m(X.double().to(torch.float32)), r"x.to\(torch.float32\)"),
        (lambda m: m.double()(X), lambda m: m.double()(X.to(torch.float64)), r"x.to\(torch.float64\)"),
        (
            lambda m: inference.decode(m, torch.zeros(4)),
            lambda m: inference.decode(m, torch.zeros(4).unsqueeze(0)),
            r"z.unsqueeze\(0\)",
        ),
        (
            lambda m: inference.decode(m, torch.zeros(2, 3)),
            lambda m: inference.decode(m, inference.encode(m, X[:2])),
            r"Use codes of this model \(its encode",
        ),
        (
            lambda m: inference.encode(m, X[:0]),
            lambda m: inference.encode(m, X[:1]),
            r"at least one item",
        ),
        (lambda m: fit(m, reconstruction_loss, X, lr=0.0), lambda m: fit(m, reconstruction_loss, X, lr=1e-3), r"> 0"),
    ],
)
def test_the_fix_an_input_error_names_works(call, fixed, match):
    torch.manual_seed(0)
    model = Autoencoder(4, 8)
    with pytest.raises((ValueError, TypeError), match=match):
        call(model)
    fixed(model)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the case of a machine without a GPU")
def test_a_device_that_is_not_there_is_fixed_as_the_messages_say(monkeypatch, tmp_path):
    with pytest.raises(ValueError, match=r"Pass device='cpu', or device=pick_device\(\)") as caught:
        load_fashion_mnist(device="cuda")
    assert "device='cpu'" in str(caught.value)
    monkeypatch.setenv(DEVICE_ENV, "cuda")
    with pytest.raises(RuntimeError, match=f"Unset {DEVICE_ENV}"):
        pick_device()
    monkeypatch.delenv(DEVICE_ENV)
    assert pick_device().type == "cpu"


@pytest.mark.parametrize(
    "variable, bad, read",
    [(BUDGET_ENV, "fast", budget), (RETRAIN_ENV, "2", retrain_mode), (DEVICE_ENV, "bogus", pick_device)],
)
def test_a_wrong_switch_value_is_fixed_by_a_value_its_message_lists(monkeypatch, variable, bad, read):
    monkeypatch.setenv(variable, bad)
    with pytest.raises(ValueError) as caught:
        read()
    listed = re.findall(r"\b(full|short|smoke|missing|cpu|1|0)\b", str(caught.value).split(";", 1)[-1])
    assert listed, str(caught.value)
    for value in listed:
        monkeypatch.setenv(variable, value)
        read()


# Data: the small IDX files of tests/test_data.py, written here.
def _write(folder: Path) -> IdxSpec:
    import gzip
    import hashlib
    import struct

    g = torch.Generator().manual_seed(0)
    contents = {
        "train-images-idx3-ubyte": struct.pack(">IIII", 0x803, 20, 28, 28)
        + torch.randint(0, 256, (20, 28, 28), generator=g).byte().numpy().tobytes(),
        "train-labels-idx1-ubyte": struct.pack(">II", 0x801, 20) + (torch.arange(20) % 10).byte().numpy().tobytes(),
        "t10k-images-idx3-ubyte": struct.pack(">IIII", 0x803, 10, 28, 28)
        + torch.randint(0, 256, (10, 28, 28), generator=g).byte().numpy().tobytes(),
        "t10k-labels-idx1-ubyte": struct.pack(">II", 0x801, 10) + (torch.arange(10) % 10).byte().numpy().tobytes(),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in contents.items():
        (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
    sums = {name: hashlib.sha256(payload).hexdigest() for name, payload in contents.items()}
    return IdxSpec(sha256=sums, num_train=20, num_test=10, train_per_class=2)


def test_an_unusable_download_folder_is_fixed_by_the_variable_the_message_names(isolated, monkeypatch):
    import torchvision.datasets

    spec = _write(isolated / "elsewhere")
    (isolated / "a-file").write_text("not a folder")
    monkeypatch.setenv("AECOURSE_CACHE", str(isolated / "a-file"))
    with pytest.raises(
        DataError, match=r"download folder .*a-file cannot be made.*set AECOURSE_CACHE=/a/writable/folder"
    ):
        load_fashion_mnist(download=True, spec=spec)

    def download(root, train, download):  # torchvision's download, offline: the files it would fetch
        _write(Path(root) / "FashionMNIST" / "raw")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", download)
    monkeypatch.setenv("AECOURSE_CACHE", str(isolated / "writable"))
    loaded = load_fashion_mnist(download=True, spec=spec)
    assert loaded.source == isolated / "writable" / "FashionMNIST" / "raw"


@pytest.mark.parametrize("how", ["root", "env"])
def test_a_named_folder_without_the_data_is_fixed_as_the_message_says(isolated, monkeypatch, how):
    spec = _write(isolated / "debian")
    if how == "env":
        monkeypatch.setenv("AECOURSE_DATA", str(isolated / "typo"))
    with pytest.raises(DataError, match=r"drop root=|unset AECOURSE_DATA"):
        load_fashion_mnist(isolated / "typo" if how == "root" else None, spec=spec)
    monkeypatch.delenv("AECOURSE_DATA", raising=False)  # unset, or: drop root=
    assert load_fashion_mnist(spec=spec).source == isolated / "debian"
    _write(isolated / "typo")  # or: put the four files there
    assert load_fashion_mnist(isolated / "typo", spec=spec).source == isolated / "typo"


def test_a_damaged_file_is_fixed_by_getting_the_data_again(isolated):
    spec = _write(isolated / "src")
    target = isolated / "src" / "t10k-labels-idx1-ubyte.gz"
    target.write_bytes(b"damaged")
    with pytest.raises(DataError, match=r"Delete it and get the data again"):
        load_fashion_mnist(isolated / "src", spec=spec)
    target.unlink()
    _write(isolated / "src")
    assert load_fashion_mnist(isolated / "src", spec=spec).x_test.shape == (10, 1, 28, 28)


# The tools.
def test_a_refused_target_is_fixed_by_a_name_the_message_lists(tmp_path, monkeypatch, capsys):
    pytest.importorskip("nbclient", reason="the tools need the book's requirements")
    from tools import train_checkpoints as tool

    monkeypatch.chdir(ROOT)
    assert tool.main(["README.md"]) == 2
    listed = re.findall(r"book/\d\d_\w+\.ipynb", capsys.readouterr().err)
    assert listed and all(tool._target(name) is not None for name in listed)


def test_an_interrupted_from_nothing_run_is_undone_by_the_mv_the_tool_prints(tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="the tools need the book's requirements")
    from tools import train_checkpoints as tool

    monkeypatch.setattr(tool, "ROOT", tmp_path)
    monkeypatch.setattr(tool, "WEIGHTS_DIR", tmp_path / "weights")
    monkeypatch.setattr(tool, "SET_ASIDE", tmp_path / ".cache" / "checkpoints-before")
    (tmp_path / "weights" / "04_vae_vs_gan").mkdir(parents=True)
    (tmp_path / "weights" / "04_vae_vs_gan" / "gan-seed0.json").write_text("{}")
    (tmp_path / "weights" / "04_vae_vs_gan" / "gan-seed0.safetensors").write_bytes(b"w")
    aside = tool._set_aside("04_vae_vs_gan")  # then the run is killed before it retrains anything
    (note,) = tool._waiting_aside()
    subprocess.run(_command(note, "mkdir -p"), shell=True, cwd=tmp_path, check=True)  # noqa: S602 - the tool's own text
    assert sorted(p.name for p in (tmp_path / "weights" / "04_vae_vs_gan").iterdir()) == [
        "gan-seed0.json",
        "gan-seed0.safetensors",
    ]
    assert tool._waiting_aside() == [] and not any(aside.iterdir())


def test_an_out_outside_the_checkout_is_fixed_by_the_default_the_message_names(tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="the tools need the book's requirements")
    from tools import export_explorer

    monkeypatch.setattr(export_explorer, "ROOT", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=r"the default is \.cache/explorer") as caught:
        export_explorer.usable_out(Path("/"))
    default = re.search(r"the default is (\S+)\.$", str(caught.value)).group(1)
    assert export_explorer.usable_out(Path(default)) == tmp_path / ".cache" / "explorer"


def test_the_kernel_check_names_this_checkout_and_the_install_command(tmp_path, monkeypatch):
    pytest.importorskip("nbclient", reason="the tools need the book's requirements")
    from tools import execute_notebooks

    execute_notebooks.check_kernel_imports_checkout(tmp_path, execute_notebooks.checkout_environment({}))
    elsewhere = tmp_path / "elsewhere" / "aecourse"
    elsewhere.mkdir(parents=True)
    (elsewhere / "__init__.py").write_text("")
    with pytest.raises(execute_notebooks.KernelSetupError) as caught:
        execute_notebooks.check_kernel_imports_checkout(tmp_path, {"PYTHONPATH": str(elsewhere.parent)})
    message = str(caught.value)
    assert str(elsewhere / "__init__.py") in message and f"pip install --no-deps -e {ROOT}" in message
