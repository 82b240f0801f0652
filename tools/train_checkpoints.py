"""Train every model of the book at the full budget, then re-execute the notebooks on the load path.

Usage: python tools/train_checkpoints.py [--from-nothing] [book/03_vae.ipynb ...]
       (`make checkpoints [NB=...] [FROM_NOTHING=1]`; no notebook: all of them)

Each notebook runs twice. First with AECOURSE_CHECKPOINTS=update: each `trained(...)` call loads its checkpoint when
the manifest matches the chapter's config and otherwise trains the model and stores it at once, so a killed run loses
at most the model in progress and a second run goes on where the first stopped. Progress bars (one per model over
its epochs, one per epoch over its batches) go to this terminal. Then the notebook is executed again as a reader's
machine and the tests execute it, loading every model, and saved with those outputs.

`--from-nothing` measures what retraining a chapter costs: its stored checkpoints are first moved aside (to
.cache/checkpoints-before/, nothing is deleted), so that the chapter trains all of its models. The wall time of a
training pass that started with none of the chapter's checkpoints is written to book/retrain_timings.json, which the
intro's time table reads, and each new checkpoint is compared with the one moved aside: identical bytes mean that
the stored model was reproduced exactly.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbclient.exceptions import CellExecutionError  # noqa: E402

from aecourse.checkpoints import WEIGHTS_DIR, manifests, stored_size  # noqa: E402
from tools.execute_notebooks import execute  # noqa: E402
from tools.time_book import machine  # noqa: E402

RETRAIN_TIMINGS = ROOT / "book" / "retrain_timings.json"
SET_ASIDE = ROOT / ".cache" / "checkpoints-before"


def _by_model(root: Path = WEIGHTS_DIR) -> dict[str, dict]:
    """Every manifest under `root`, by model and seed ("03_vae/vae-seed0")."""
    return {f"{m['name']}-seed{m['seed']}": m for m in manifests(root)}


def _set_aside(chapter: str) -> Path | None:
    """Move the chapter's checkpoints to a new folder under .cache/checkpoints-before/; return it (None: none)."""
    source = WEIGHTS_DIR / chapter
    if not source.is_dir() or not any(source.iterdir()):
        return None
    target = SET_ASIDE / f"{chapter}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    print(f"    moved the stored checkpoints of {chapter} to {target.relative_to(ROOT)}", flush=True)
    return target


def _compare(chapter: str, before: Path) -> None:
    """Say which new checkpoints of `chapter` have the same bytes as the ones moved aside to `before`."""
    old, new = _by_model(before), _by_model(WEIGHTS_DIR / chapter)
    same = [key for key, m in new.items() if key in old and old[key]["sha256"] == m["sha256"]]
    differ = sorted(key for key in new if key in old and key not in same)
    print(f"    reproduced byte for byte: {len(same)} of {len(old)} stored checkpoints", flush=True)
    if differ:
        print(
            f"    different weights: {', '.join(differ)}. The stored ones are in {before.relative_to(ROOT)}; "
            f"`git checkout -- aecourse/weights/{chapter}` restores them.",
            flush=True,
        )


def _record(chapter: str, seconds: float, trained: list[dict]) -> None:
    """Write the from-nothing training time of `chapter` into book/retrain_timings.json (other chapters kept)."""
    record = json.loads(RETRAIN_TIMINGS.read_text()) if RETRAIN_TIMINGS.is_file() else {"chapters": {}}
    devices = sorted({m["device"].split(":")[0] for m in trained})
    record["chapters"][chapter] = {
        "seconds": round(seconds),
        "models": len(trained),
        "also_trained": sorted({m["name"].split("/")[0] for m in trained} - {chapter}),
        "device": ",".join(devices),
        "machine": machine() if devices == ["cpu"] else f"{machine()} + {torch.cuda.get_device_name()}",
        "torch": torch.__version__.split("+")[0],
        "date": datetime.date.today().isoformat(),
        "command": f"make checkpoints NB=book/{chapter}.ipynb FROM_NOTHING=1",
    }
    record["chapters"] = dict(sorted(record["chapters"].items()))
    partial = RETRAIN_TIMINGS.with_name(f".{RETRAIN_TIMINGS.name}.partial")  # never a half-written record
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(RETRAIN_TIMINGS)
    print(f"    recorded in {RETRAIN_TIMINGS.relative_to(ROOT)}", flush=True)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-nothing", action="store_true", help="move each chapter's checkpoints aside first")
    parser.add_argument("notebooks", nargs="*")
    args = parser.parse_args(argv)
    notebooks = [Path(n) for n in args.notebooks] or sorted((ROOT / "book").glob("[0-9]*.ipynb"))
    missing = [str(n) for n in notebooks if not n.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    failed = []
    for notebook in notebooks:
        chapter = notebook.stem
        aside = _set_aside(chapter) if args.from_nothing else None
        before = _by_model()
        from_nothing = not any(key.startswith(f"{chapter}/") for key in before)
        passes = (
            ("training what is missing or stale", {"AECOURSE_CHECKPOINTS": "update", "AECOURSE_PROGRESS": "1"}, False),
            ("executing on the load path and saving the outputs", {}, True),
        )
        for what, env, save in passes:
            print(f"=== {notebook}: {what}", flush=True)
            try:
                # No time limit per cell: one cell trains all of a chapter's models (hours on a CPU).
                seconds = execute(
                    notebook, timeout=None, env={"AECOURSE_BUDGET": "full", "AECOURSE_RETRAIN": "0", **env}, save=save
                )
            except CellExecutionError as exc:  # the checkpoints stored so far stay; the next notebook still runs
                print(f"FAILED {notebook} ({what}):\n{str(exc)[-3000:]}", file=sys.stderr, flush=True)
                failed.append(str(notebook))
                break
            print(f"    {seconds:.0f} s", flush=True)
            if save:
                continue
            trained = [m for key, m in _by_model().items() if before.get(key) != m]  # new or rewritten manifests
            print(f"    trained {len(trained)} models in this pass", flush=True)
            if from_nothing and trained:
                _record(chapter, seconds, trained)
            if aside is not None:
                _compare(chapter, aside)
    by_chapter: dict[str, float] = {}
    for manifest in manifests():
        group = manifest["name"].split("/")[0]
        by_chapter[group] = by_chapter.get(group, 0.0) + manifest["training_seconds"]
    print("\ntraining seconds stored in the manifests, by notebook:")
    for group, seconds in sorted(by_chapter.items()):
        print(f"{seconds:9.0f} s  {group}")
    size = stored_size()
    print(f"checkpoints: {size:,} bytes ({size / 2**20:.1f} MiB); this run took {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"notebooks that failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
