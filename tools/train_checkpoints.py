"""Train every model of the book at the full budget, then re-execute the notebooks on the load path.

Usage: python tools/train_checkpoints.py [book/03_vae.ipynb ...]   (`make checkpoints [NB=...]`; no argument: all)

Each notebook runs twice. First with AECOURSE_CHECKPOINTS=update: each `trained(...)` call loads its checkpoint when
the manifest matches the chapter's config and otherwise trains the model and stores it at once, so a killed run loses
at most the model in progress and a second run goes on where the first stopped. Progress bars (one per model over
its epochs, one per epoch over its batches) go to this terminal. Then the notebook is executed again as a reader's
machine and the tests execute it, loading every model, and saved with those outputs.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from nbclient.exceptions import CellExecutionError  # noqa: E402

from aecourse.checkpoints import manifests, stored_size  # noqa: E402
from tools.execute_notebooks import execute  # noqa: E402


def main(names: list[str]) -> int:
    notebooks = [Path(n) for n in names] or sorted((ROOT / "book").glob("[0-9]*.ipynb"))
    missing = [str(n) for n in notebooks if not n.is_file()]
    if missing:
        print(f"no such notebook: {', '.join(missing)}", file=sys.stderr)
        return 2
    started = time.perf_counter()
    failed = []
    for notebook in notebooks:
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
