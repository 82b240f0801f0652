"""The checkpoints as stored files, for the tools that report on them (`make checkpoints`, tools/time_book.py) and
the tests: every manifest under a folder, and the bytes they take."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aecourse.checkpoints as ck  # noqa: E402
from aecourse.checkpoints import parsed_manifest  # noqa: E402


def stored_size(root: Path | None = None) -> int:
    """Bytes of every checkpoint file (weights and manifests) under `root`."""
    root = root or ck.WEIGHTS_DIR
    return sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) if root.is_dir() else 0


def manifests(root: Path | None = None) -> list[dict[str, Any]]:
    """Every manifest under `root` (the weights folder, one of its folders, or a copy set aside), sorted by name and
    seed (the intro's table of training times reads them). One in its place in a weights folder is checked as
    `read_manifest` checks it; one elsewhere must at least be complete and name the model and seed of its file."""
    root = root or ck.WEIGHTS_DIR
    found = []
    for path in sorted(root.rglob("*.json")) if root.is_dir() else []:
        model, _, seed = path.name.removesuffix(".json").rpartition("-seed")
        if not seed.isdigit():
            raise ck.CheckpointError(f"{path} is not named <model>-seed<N>.json, as a stored manifest is.")
        _, manifest = parsed_manifest(path, "make checkpoints")
        if manifest["name"] == f"{path.parent.name}/{model}" and manifest["seed"] == int(seed):
            manifest = ck.read_manifest(manifest["name"], int(seed), path.parents[1])  # in its place: every check
        elif manifest["name"].split("/")[-1] != model or manifest["seed"] != int(seed):
            raise ck.CheckpointError(
                f"{path} is the manifest of {manifest['name']} (seed {manifest['seed']}), not of the model its file "
                "is named after: the files were copied or renamed."
            )
        found.append(manifest)
    return sorted(found, key=lambda m: (m["name"], m["seed"]))
