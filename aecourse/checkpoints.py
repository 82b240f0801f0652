"""The book's trained models as files: float16 weights in safetensors (no pickle, nothing to run on load) beside a
JSON manifest of how each was trained: its config, seed, epochs, device, versions, seconds, the weights' SHA-256,
its final test metrics and its per-epoch history, so every curve the book draws comes from the stored run.

`trained(...)` is what a chapter calls for each model. At the full budget it loads the checkpoint whose manifest
matches the chapter's config (a mismatch, a missing file or a damaged one is an error that names the command to
retrain); `AECOURSE_RETRAIN=1` trains instead, and the short and smoke budgets always train. `make checkpoints`
runs the notebooks with `AECOURSE_RETRAIN=missing`: it loads what matches and trains and stores the rest,
model by model, so a killed run loses at most the model in progress.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from aecourse import __version__
from aecourse.checks import CourseError
from aecourse.runtime import budget, native_bfloat16, retrain_mode, seeded
from aecourse.train import History

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"  # package data: a pip install carries them (Colab)
SHARED_MODELS = ("classifier",)  # folders of WEIGHTS_DIR that no chapter owns: trained once, used by several
STORED_DTYPE = torch.float16  # half the size of float32; the book's numbers are computed from these weights


class CheckpointError(CourseError):
    """A checkpoint is missing, damaged, or was trained with another config; the message says how to retrain."""


class Trained(NamedTuple):
    """A model ready to use, the per-epoch history of its training, and the manifest that describes it."""

    model: nn.Module
    history: History
    manifest: dict[str, Any]


def measurement(default: Any) -> Any:
    """A config field that changes how a chapter measures, or which of its models it trains and compares (the
    seeds, the sizes of a sweep), but not how any one model trains: checkpoints ignore it. Each checkpoint records
    its own seed, and its name says which member of a sweep it is."""
    return dataclasses.field(default=default, metadata={"training": False})


def training_config(config: Any) -> dict[str, Any]:
    """The fields of a chapter's config dataclass that its models' training depends on, as plain JSON values."""
    if not dataclasses.is_dataclass(config):
        raise TypeError(f"config must be a chapter's config dataclass; got {type(config).__name__}.")
    fields = [f for f in dataclasses.fields(config) if f.metadata.get("training", True)]
    return json.loads(json.dumps({f.name: getattr(config, f.name) for f in fields}, default=str))


def retrain_command(name: str) -> str:
    """The command that retrains the checkpoint `name` ("03_vae/vae"): its notebook's, when there is one."""
    notebook = Path("book") / f"{name.split('/')[0]}.ipynb"
    return f"make checkpoints NB={notebook}" if (WEIGHTS_DIR.parents[1] / notebook).is_file() else "make checkpoints"


def paths(name: str, seed: int, root: Path | None = None) -> tuple[Path, Path]:
    """Where the weights and the manifest of `name` (e.g. "03_vae/vae") for one seed live."""
    stem = f"{name}-seed{seed}"  # joined as text, not with_suffix: a name may hold a dot (beta_0.5)
    root = root or WEIGHTS_DIR
    return root / f"{stem}.safetensors", root / f"{stem}.json"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_weights(state: Mapping[str, torch.Tensor], where: str) -> None:
    for key, tensor in state.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            raise CheckpointError(f"{where}: {key} holds NaN or infinite values; the weights are unusable.")


def _rounded(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The state_dict as it will be stored: floating tensors in float16, on the CPU, contiguous."""
    largest = torch.finfo(STORED_DTYPE).max
    out = {}
    for key, tensor in state.items():
        tensor = tensor.detach().cpu().contiguous()
        if tensor.is_floating_point():
            if tensor.numel() and float(tensor.abs().max()) > largest:
                raise CheckpointError(f"{key} has values beyond the float16 range (±{largest:g}); cannot store it.")
            tensor = tensor.to(STORED_DTYPE)
        out[key] = tensor
    return out


def _load_into(module: nn.Module, state: Mapping[str, torch.Tensor], where: str) -> None:
    target = module.state_dict()
    for key, tensor in state.items():
        if key in target and target[key].is_floating_point() and tensor.dtype != STORED_DTYPE:
            raise CheckpointError(f"{where}: {key} is stored as {tensor.dtype}, expected {STORED_DTYPE}.")
    try:
        module.load_state_dict({k: v.to(target[k].dtype) if k in target else v for k, v in state.items()})
    except RuntimeError as exc:
        raise CheckpointError(
            f"{where} does not fit {type(module).__name__}: {exc}. Build the model with the same arguments as the one "
            "that was stored, or retrain it."
        ) from exc


def _write_atomically(path: Path, write: Callable[[str], None]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        write(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def save(
    module: nn.Module, name: str, seed: int, *, config: dict, history: History, device: str, root: Path | None = None
) -> dict[str, Any]:
    """Store `module`'s weights (float16, safetensors) and its manifest, each written atomically; return the
    manifest. The weights go first: a kill between the two leaves a manifest whose SHA-256 does not match."""
    from safetensors.torch import save_file

    weights_path, manifest_path = paths(name, seed, root)
    state = _rounded(module.state_dict())
    _check_weights(state, name)
    _write_atomically(weights_path, lambda tmp: save_file(state, tmp))
    manifest = {
        "name": name,
        "seed": seed,
        "config": config,
        "epochs": len(history),
        "device": device,
        "native_bfloat16": native_bfloat16(device),  # with a config's mixed_precision: was autocast on?
        "torch": torch.__version__.split("+")[0],
        "aecourse": __version__,
        "python": platform.python_version(),
        "training_seconds": round(history.seconds, 2),
        "stored_dtype": str(STORED_DTYPE).removeprefix("torch."),
        "parameters": sum(t.numel() for t in state.values()),
        "sha256": _sha256(weights_path),
        "metrics": {k: v for k, v in history.last.items() if k.startswith("test_")},
        "history": history.rows,
    }
    text = json.dumps(manifest, indent=1, sort_keys=False) + "\n"
    _write_atomically(manifest_path, lambda tmp: Path(tmp).write_text(text))
    return manifest


def read_manifest(name: str, seed: int, root: Path | None = None) -> dict[str, Any]:
    """The manifest of a stored model; a missing or unreadable one is a CheckpointError that says how to retrain."""
    _, manifest_path = paths(name, seed, root)
    if not manifest_path.is_file():
        raise CheckpointError(
            f"no checkpoint of {name} (seed {seed}) at {manifest_path}. Train it with `{retrain_command(name)}`, "
            "or run the notebook with AECOURSE_RETRAIN=1 (or AECOURSE_BUDGET=short for a short run)."
        )
    try:
        return json.loads(manifest_path.read_text())
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{manifest_path} is not a readable manifest ({exc}); retrain with `{retrain_command(name)}`."
        ) from exc


def load(
    module: nn.Module, name: str, seed: int, *, expect: Mapping[str, Any] | None = None, root: Path | None = None
) -> dict[str, Any]:
    """Load the stored weights of `name` into `module` after checking them: the SHA-256 in the manifest, finite
    float16 tensors that fit the module, and (given `expect`) config entries that must hold. Returns the manifest."""
    from safetensors.torch import load_file

    manifest = read_manifest(name, seed, root)
    stored_config = manifest.get("config", {})
    wanted = json.loads(json.dumps(dict(expect or {}), default=str))
    differ = [
        f"{k}={stored_config.get(k, '<absent>')!r} (asked: {v!r})"
        for k, v in wanted.items()
        if stored_config.get(k, "<absent>") != v
    ]
    if differ:
        raise CheckpointError(
            f"the checkpoint of {name} (seed {seed}) was trained with {', '.join(differ)}. Retrain it with "
            f"`{retrain_command(name)}` (or set AECOURSE_RETRAIN=1), or change the config back."
        )
    weights_path, _ = paths(name, seed, root)
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path} is missing although its manifest is there; retrain with `{retrain_command(name)}`."
        )
    if _sha256(weights_path) != manifest.get("sha256"):
        raise CheckpointError(
            f"{weights_path} does not match the SHA-256 in its manifest: the file is damaged or was replaced. "
            f"Restore it (git checkout -- {weights_path.name}) or retrain with `{retrain_command(name)}`."
        )
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for a malformed header
        raise CheckpointError(f"{weights_path} is not a readable safetensors file ({exc}).") from exc
    _check_weights(state, str(weights_path))
    _load_into(module, state, str(weights_path))
    return manifest


def trained(
    name: str,
    config: Any,
    *,
    seed: int,
    build: Callable[[], nn.Module],
    train: Callable[[nn.Module], History],
    stored: Callable[[nn.Module], nn.Module] = lambda model: model,
) -> Trained:
    """The model `name` for one seed: `build()` makes the network (on its device), `train(model)` trains it and
    returns its History. Which happens depends on the budget (see the module's docstring); either way the seed is
    set before `build`, the caller's random streams are left untouched, and the weights the model ends with are the
    float16-rounded ones that a checkpoint holds, so loading and retraining give the same numbers.

    `stored(model)` is the part that is kept: a GAN keeps its generator, which is all that is needed to sample.
    """
    wanted = training_config(config)
    with seeded(seed):
        model = build()
    device = str(next(model.parameters()).device)
    update = retrain_mode() == "missing"
    at_full = budget() == "full"
    if at_full and retrain_mode() != "all":
        try:
            manifest = load(stored(model), name, seed, expect=wanted)
            extra = sorted(set(manifest["config"]) - set(wanted))
            if extra or manifest.get("seed") != seed:
                raise CheckpointError(
                    f"the checkpoint of {name} (seed {manifest.get('seed')}) has config fields the chapter no longer "
                    f"has ({', '.join(extra) or 'none'}) or another seed; retrain with `{retrain_command(name)}`."
                )
            return Trained(model, History([dict(row) for row in manifest["history"]]), manifest)
        except CheckpointError:
            if not update:
                raise
            # The failed load may already have copied stored tensors into the model (a stale manifest is found
            # out after loading; load_state_dict copies what fits before it complains): start again from the
            # seed's initial weights, or the retrained model would silently continue the stale one.
            with seeded(seed):
                model = build()
    with seeded(seed):
        start = time.perf_counter()
        history = train(model)
        wall = time.perf_counter() - start
    part = stored(model)
    _load_into(part, _rounded(part.state_dict()), name)  # what a checkpoint would hold
    if at_full and update:
        manifest = save(part, name, seed, config=wanted, history=history, device=device)
    else:
        manifest = {
            "name": name,
            "seed": seed,
            "config": wanted,
            "epochs": len(history),
            "device": device,
            "training_seconds": round(history.seconds, 2),
            "wall_seconds": round(wall, 2),
            "stored": False,
        }
    return Trained(model, history, manifest)


def reused(name: str, *, seed: int, build: Callable[[], nn.Module], expect: Mapping[str, Any]) -> Trained:
    """A model that another chapter trained and stored, loaded here to be compared again (ch. 2 reuses chapter 1's
    autoencoder, ch. 4 chapter 3's VAE). Its manifest must record the settings in `expect`, so both chapters are
    known to mean the same model; a mismatch or a missing checkpoint names the command that trains it."""
    with seeded(seed):
        model = build()
    manifest = load(model, name, seed, expect=expect)
    return Trained(model, History([dict(row) for row in manifest["history"]]), manifest)


def stored_size(root: Path | None = None) -> int:
    """Bytes of every checkpoint file (weights and manifests) under `root`."""
    root = root or WEIGHTS_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def manifests(root: Path | None = None) -> list[dict[str, Any]]:
    """Every stored manifest, sorted by name and seed (the intro's table of training times reads them)."""
    root = root or WEIGHTS_DIR
    found = [json.loads(p.read_text()) for p in sorted(root.rglob("*.json"))] if root.is_dir() else []
    return sorted(found, key=lambda m: (m["name"], m["seed"]))
