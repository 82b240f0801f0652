"""The book's trained models as files: float16 safetensors weights (nothing runs on load) beside a JSON manifest of
the run (config, seed, device, versions, seconds, the weights' SHA-256, test metrics, per-epoch history), so every
curve the book draws comes from the stored run. `load_or_train(...)` loads the checkpoint that matches the chapter's
config at the full budget and trains otherwise (`AECOURSE_RETRAIN`: 1 always, missing to train and store the rest,
model by model). A checkpoint is what it says: its manifest names the model and seed asked for, is complete, and
matches its SHA-256 line in `weights-checksums/<folder>.sha256`; names are `<folder>/<model>` and nothing else.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import platform
import re
import time
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from aecourse import __version__
from aecourse.checks import CourseError, check_int
from aecourse.files import remove_leftovers, write_atomically
from aecourse.runtime import budget, native_bfloat16, retrain_mode, seeded
from aecourse.train import History

PACKAGE_WEIGHTS = Path(__file__).resolve().parent / "weights"  # package data: a pip install carries them (Colab)
WEIGHTS_DIR = PACKAGE_WEIGHTS  # where checkpoints are read and written (the tests point it elsewhere)
SHARED_MODELS = ("classifier",)  # folders of WEIGHTS_DIR that no chapter owns: trained once, used by several
STORED_DTYPE = torch.float16  # half the size of float32; the book's numbers are computed from these weights
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*/[A-Za-z0-9][A-Za-z0-9_.+-]*")  # <folder>/<model>, nothing else
# What every manifest holds, with its type: the fields the package and the book read.
MANIFEST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "name": str,
    "seed": int,
    "config": dict,
    "epochs": int,
    "device": str,
    "torch": str,
    "training_seconds": (int, float),
    "sha256": str,
    "metrics": dict,
    "history": list,
}


class CheckpointError(CourseError):
    """A checkpoint is missing, damaged, or was trained with another config; the message says how to retrain."""


class Trained(NamedTuple):
    """A model ready to use, the per-epoch history of its training, and the manifest that describes it."""

    model: nn.Module
    history: History
    manifest: dict[str, Any]


def training_config(config: Any) -> dict[str, Any]:
    """The fields of a chapter's config dataclass that its models' training depends on, as plain JSON values: every
    field but those its class lists in `compared` (which models the chapter trains and compares: the seeds, the sizes
    of a sweep). Each checkpoint records its own seed, and its name says which member of a sweep it is."""
    if not dataclasses.is_dataclass(config) or isinstance(config, type):
        raise TypeError(f"config must be a chapter's config dataclass instance; got {type(config).__name__}.")
    names = [f.name for f in dataclasses.fields(config)]
    compared = tuple(getattr(type(config), "compared", ()))
    unknown = sorted(set(compared) - set(names))
    if unknown:
        raise TypeError(f"{type(config).__name__}.compared names {unknown}, which are not fields of the config.")
    kept = {name: getattr(config, name) for name in names if name not in compared}
    return json.loads(json.dumps(kept, default=str))


def check_name(name: str) -> str:
    """A checkpoint's name, `<folder>/<model>` ("03_vae/vae", "05_beta_vae_torchbearer/beta_0.5"): it becomes a
    path under the weights folder, so no `..`, no absolute path, no other separator, nothing hidden."""
    if not isinstance(name, str) or not NAME.fullmatch(name) or ".." in name:
        raise ValueError(
            f"{name!r} is not a checkpoint name: it must be <folder>/<model> (letters, digits, _ . + -; no '..', no "
            "leading dot or slash), e.g. '03_vae/vae', and is stored under the weights folder."
        )
    return name


def retrain_command(name: str) -> str:
    """The command that retrains the checkpoint `name` ("03_vae/vae"): its notebook's, or the shared model's
    (`make checkpoints NB=classifier`); the whole book's for a folder that is neither."""
    folder = name.split("/")[0]
    if folder in SHARED_MODELS:
        return f"make checkpoints NB={folder}"
    notebook = Path("book") / f"{folder}.ipynb"
    return (
        f"make checkpoints NB={notebook}" if (PACKAGE_WEIGHTS.parents[1] / notebook).is_file() else "make checkpoints"
    )


def _how_to_train(name: str) -> str:
    """How to get a checkpoint that is missing or unusable: the command, and for a chapter's model the switches that
    train it in the notebook instead (no switch trains a shared model: its chapters only load it)."""
    command = f"Train it with `{retrain_command(name)}`"
    if name.split("/")[0] in SHARED_MODELS:
        return command + "."
    return command + ", or run the notebook with AECOURSE_RETRAIN=1 (or AECOURSE_BUDGET=short for a short run)."


def _repository_root(path: Path) -> Path | None:
    for folder in path.resolve().parents:
        if (folder / ".git").exists():
            return folder
    return None


def restore_hint(path: Path) -> str:
    """How to get the stored version of `path` back: `git checkout` with its path from the repository root in a
    checkout (the README's commands run there), a reinstall of the package where pip put it."""
    repository = _repository_root(path)
    if repository is not None:
        relative = path.resolve().relative_to(repository).as_posix()
        return f"Restore it from the repository root ({repository}) with `git checkout -- {relative}`"
    if path.resolve().is_relative_to(PACKAGE_WEIGHTS):
        return "Restore it by reinstalling the package (`pip install --force-reinstall --no-deps aecourse`)"
    return "Restore it from the copy it came from"


def paths(name: str, seed: int, root: Path | None = None) -> tuple[Path, Path]:
    """Where the weights and the manifest of `name` (e.g. "03_vae/vae") for one seed live."""
    check_name(name)
    check_int("seed", seed, minimum=0)
    stem = f"{name}-seed{seed}"  # joined as text, not with_suffix: a name may hold a dot (beta_0.5)
    root = root or WEIGHTS_DIR
    return root / f"{stem}.safetensors", root / f"{stem}.json"


def checksums_path(name: str, root: Path | None = None) -> Path:
    """The list of the SHA-256 of every manifest of `name`'s folder: `<root>-checksums/<folder>.sha256`, beside the
    weights folder (aecourse/weights-checksums/03_vae.sha256), in `sha256sum` format."""
    root = root or WEIGHTS_DIR
    return root.parent / f"{root.name}-checksums" / f"{check_name(name).split('/')[0]}.sha256"


def _read_checksums(path: Path) -> dict[str, str]:
    sums = {}
    for number, line in enumerate(path.read_text().splitlines(), 1):
        digest, _, file = line.partition("  ")
        if not re.fullmatch(r"[0-9a-f]{64}", digest) or not file:
            raise CheckpointError(
                f"{path}, line {number}, is not '<sha256>  <file>': the list of manifest checksums is damaged. "
                f"{restore_hint(path)}."
            )
        sums[file] = digest
    return sums


@contextmanager
def _locked(folder: Path):
    """An exclusive lock on `folder` (flock on its descriptor), where the OS has one: two processes that store
    checkpoints of one chapter at once must not lose each other's checksum lines."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        import fcntl
    except ImportError:  # no flock (Windows): a single writer is assumed
        yield
        return
    handle = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        os.close(handle)


def _record_checksum(name: str, manifest_path: Path, root: Path | None) -> None:
    """Write the manifest's SHA-256 into its folder's checksum list (its line replaced, the others kept)."""
    path = checksums_path(name, root)
    with _locked(path.parent):
        remove_leftovers(path.parent, [path.name])
        sums = _read_checksums(path) if path.is_file() else {}
        sums[f"{name.split('/')[0]}/{manifest_path.name}"] = _sha256(manifest_path)
        text = "".join(f"{digest}  {file}\n" for file, digest in sorted(sums.items()))
        write_atomically(path, lambda tmp: Path(tmp).write_text(text))


def _check_checksum(name: str, manifest_path: Path, content: bytes, root: Path | None) -> None:
    """The manifest must match its line in the checksum list. The list must exist for the package's own weights;
    elsewhere (a folder that never had one) there is nothing to check against."""
    root = root or WEIGHTS_DIR
    path = checksums_path(name, root)
    if not path.is_file():
        if root.resolve() == PACKAGE_WEIGHTS:
            raise CheckpointError(
                f"{path} is missing: it holds the SHA-256 of every manifest of {name.split('/')[0]}, and no manifest "
                f"is trusted without it. {restore_hint(path)}."
            )
        return
    file = f"{name.split('/')[0]}/{manifest_path.name}"
    recorded = _read_checksums(path).get(file)
    if recorded is None:
        raise CheckpointError(
            f"{manifest_path} has no line in {path}: it was not stored by `make checkpoints` (which records every "
            f"manifest's SHA-256 there). {_how_to_train(name)}"
        )
    if recorded != hashlib.sha256(content).hexdigest():
        raise CheckpointError(
            f"{manifest_path} does not match its SHA-256 in {path}: the manifest was edited or damaged after it was "
            f"stored, so its history and metrics cannot be trusted. {restore_hint(manifest_path)}, or retrain with "
            f"`{retrain_command(name)}`."
        )


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


def _remove_leftovers(name: str, seed: int, root: Path | None) -> None:
    """Remove the temporary files that a killed save of this checkpoint left (aecourse.files says which)."""
    weights_path, manifest_path = paths(name, seed, root)
    remove_leftovers(weights_path.parent, [weights_path.name, manifest_path.name], stacklevel=4)


def save(
    module: nn.Module, name: str, seed: int, *, config: dict, history: History, device: str, root: Path | None = None
) -> dict[str, Any]:
    """Store `module`'s weights (float16, safetensors) and its manifest, each written atomically; return the
    manifest. The weights go first: a kill between the two leaves a manifest whose SHA-256 does not match."""
    from safetensors.torch import save_file

    weights_path, manifest_path = paths(name, seed, root)
    _remove_leftovers(name, seed, root)
    state = _rounded(module.state_dict())
    _check_weights(state, name)
    write_atomically(weights_path, lambda tmp: save_file(state, tmp))
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
    write_atomically(manifest_path, lambda tmp: Path(tmp).write_text(text))
    _record_checksum(name, manifest_path, root)
    return manifest


def _malformed(manifest: Any) -> str | None:
    """What is wrong with a manifest's structure, or None: the fields the package and the book read, typed."""
    if not isinstance(manifest, dict):
        return f"it holds a JSON {type(manifest).__name__}, not a JSON object"
    for key, kind in MANIFEST_FIELDS.items():
        if key not in manifest:
            return f"it has no {key!r}"
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, kind):
            expected = " or ".join(k.__name__ for k in (kind if isinstance(kind, tuple) else (kind,)))
            return f"its {key!r} is {type(value).__name__} {value!r:.60}, not {expected}"
    if not re.fullmatch(r"[0-9a-f]{64}", manifest["sha256"]):
        return f"its 'sha256' is not 64 hexadecimal digits: {manifest['sha256']!r:.80}"
    for number, row in enumerate(manifest["history"], 1):
        if not isinstance(row, dict) or not all(
            isinstance(k, str) and isinstance(v, (int, float)) and not isinstance(v, bool) for k, v in row.items()
        ):
            return f"its 'history' row {number} is not a mapping of names to numbers: {row!r:.80}"
    if manifest["epochs"] != len(manifest["history"]):
        return f"its 'epochs' ({manifest['epochs']}) and its 'history' ({len(manifest['history'])} rows) disagree"
    return None


def parsed_manifest(manifest_path: Path, command: str) -> tuple[bytes, dict[str, Any]]:
    """The bytes of a manifest and its content, readable and complete (`_malformed`), or a CheckpointError that
    names `command` to retrain."""
    try:
        content = manifest_path.read_bytes()
        manifest = json.loads(content)
    except (OSError, ValueError) as exc:
        raise CheckpointError(
            f"{manifest_path} is not a readable manifest ({exc}); {restore_hint(manifest_path)}, or retrain with "
            f"`{command}`."
        ) from exc
    problem = _malformed(manifest)
    if problem is not None:
        raise CheckpointError(
            f"{manifest_path} is not a complete manifest: {problem}. {restore_hint(manifest_path)}, or retrain with "
            f"`{command}`."
        )
    return content, manifest


def read_manifest(name: str, seed: int, root: Path | None = None) -> dict[str, Any]:
    """The manifest of a stored model, checked: readable, complete, its line in the checksum list matched, and
    naming `name` and `seed` (a file copied over another's is refused). A missing or unusable one is a
    CheckpointError that says how to restore or retrain it."""
    weights_path, manifest_path = paths(name, seed, root)
    if not manifest_path.is_file():
        if weights_path.is_file():
            raise CheckpointError(
                f"the manifest of {name} (seed {seed}) is missing at {manifest_path}, although its weights are there: "
                f"without it nothing says what the weights are. {restore_hint(manifest_path)}, or retrain with "
                f"`{retrain_command(name)}`."
            )
        raise CheckpointError(f"no checkpoint of {name} (seed {seed}) at {manifest_path}. {_how_to_train(name)}")
    content, manifest = parsed_manifest(manifest_path, retrain_command(name))
    if (manifest["name"], manifest["seed"]) != (name, seed):
        raise CheckpointError(
            f"{manifest_path} is the manifest of {manifest['name']} (seed {manifest['seed']}), not {name} (seed "
            f"{seed}): the files were copied or renamed, and the weights beside it are another model's. "
            f"{restore_hint(manifest_path)} (and its weights), or retrain with `{retrain_command(name)}`."
        )
    _check_checksum(name, manifest_path, content, root)
    return manifest


def load(
    module: nn.Module,
    name: str,
    seed: int,
    *,
    expect: Mapping[str, Any] | None = None,
    complete: bool = False,
    root: Path | None = None,
) -> dict[str, Any]:
    """Load the stored weights of `name` into `module` after checking them: the manifest (see `read_manifest`), the
    weights' SHA-256 in it, finite float16 tensors that fit the module, and (given `expect`) config entries that
    must hold; `complete=True` also refuses entries the stored config has beyond `expect` (a chapter's whole
    training config: the checkpoint of a config that lost a field is stale). Returns the manifest."""
    from safetensors.torch import load_file

    _remove_leftovers(name, seed, root)
    manifest = read_manifest(name, seed, root)
    stored_config = manifest["config"]
    wanted = json.loads(json.dumps(dict(expect or {}), default=str))
    differ = [
        f"{k}={stored_config.get(k, '<absent>')!r} (asked: {v!r})"
        for k, v in wanted.items()
        if stored_config.get(k, "<absent>") != v
    ]
    if complete:
        differ += [
            f"{k}={stored_config[k]!r} (a field the config no longer has)" for k in stored_config if k not in wanted
        ]
    if differ:
        how = _how_to_train(name).removeprefix("Train it with ")
        raise CheckpointError(
            f"the checkpoint of {name} (seed {seed}) was trained with {', '.join(differ)}: it is stale. Retrain it "
            f"with {how.rstrip('.')}; or change the config back."
        )
    weights_path, _ = paths(name, seed, root)
    if not weights_path.is_file():
        raise CheckpointError(
            f"{weights_path} is missing although its manifest is there. {restore_hint(weights_path)}, or retrain "
            f"with `{retrain_command(name)}`."
        )
    if _sha256(weights_path) != manifest["sha256"]:
        raise CheckpointError(
            f"{weights_path} does not match the SHA-256 in its manifest: the file is damaged or was replaced. "
            f"{restore_hint(weights_path)}, or retrain with `{retrain_command(name)}`."
        )
    try:
        state = load_file(str(weights_path))
    except Exception as exc:  # safetensors raises its own error types for a malformed header
        raise CheckpointError(
            f"{weights_path} is not a readable safetensors file ({exc}). {restore_hint(weights_path)}, or retrain "
            f"with `{retrain_command(name)}`."
        ) from exc
    _check_weights(state, str(weights_path))
    _load_into(module, state, str(weights_path))
    return manifest


def load_or_train(
    model: nn.Module,
    name: str,
    config: Any,
    *,
    seed: int,
    train: Callable[..., History],
    keep: Callable[[nn.Module], nn.Module] | None = None,
    **options: Any,
) -> Trained:
    """The model `name` ("01_autoencoder/ae_mse_d64") for one seed, as the budget says (see the module's docstring):
    at the full budget the stored weights, loaded into `model` after every check; otherwise `train(model, seed,
    **options)` trains it, seeded, and returns its History. `model` comes freshly built with the seed's initial
    weights (`with seeded(seed): model = ...`), so that a retrained model starts where the stored one started; it
    ends with the float16-rounded weights a checkpoint holds, so loading and retraining give the same numbers.
    `keep(model)` is the part that is stored (a GAN keeps its generator, all that is needed to sample)."""
    wanted = training_config(config)
    check_name(name)
    check_int("seed", seed, minimum=0)
    if not isinstance(model, nn.Module):
        raise TypeError(f"load_or_train: model must be the freshly built nn.Module; got {type(model).__name__}.")
    keep = keep or (lambda module: module)
    device = str(next(model.parameters()).device)
    update = retrain_mode() == "missing"
    at_full = budget() == "full"
    if at_full and retrain_mode() != "all":
        initial = {key: tensor.clone() for key, tensor in model.state_dict().items()}
        try:
            manifest = load(keep(model), name, seed, expect=wanted, complete=True)
            return Trained(model, History([dict(row) for row in manifest["history"]]), manifest)
        except CheckpointError:
            if not update:
                raise
            # The failed load may already have copied stored tensors into the model (a stale manifest is found
            # out after loading; load_state_dict copies what fits before it complains): start again from the
            # seed's initial weights, or the retrained model would silently continue the stale one.
            model.load_state_dict(initial)
    with seeded(seed):
        start = time.perf_counter()
        history = train(model, seed, **options)
        wall = time.perf_counter() - start
    part = keep(model)
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


def reused(model: nn.Module, name: str, *, seed: int, expect: Mapping[str, Any]) -> Trained:
    """A model that another chapter trained and stored, loaded into `model` to be compared again (ch. 2 reuses
    chapter 1's autoencoder, ch. 4 chapter 3's VAE). Its manifest must record the settings in `expect`, so both
    chapters are known to mean the same model; a mismatch or a missing checkpoint names the command that trains it."""
    manifest = load(model, name, seed, expect=expect)
    return Trained(model, History([dict(row) for row in manifest["history"]]), manifest)
