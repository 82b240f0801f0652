"""Re-execute notebooks in place and save their outputs, reporting the time of each.

Usage: python tools/execute_notebooks.py book/01_autoencoder.ipynb [more.ipynb ...]
A notebook that fails is reported and left as it was on disk: nothing half-written. The kernel sees this process's
environment: AECOURSE_BUDGET, AECOURSE_RETRAIN and AECOURSE_DEVICE choose what the notebooks do.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError


@contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    """The kernel is started from this process: set its environment for the duration, then restore ours."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def execute(
    path: Path, timeout: int | None = 7200, *, env: Mapping[str, str] | None = None, save: bool = True
) -> float:
    """Execute the notebook at `path` (in its folder) and, if `save`, write it back with the new outputs. `timeout`
    is the limit for each cell, in seconds (None: no limit)."""
    notebook = nbformat.read(path, as_version=4)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    with _environment(env or {}):
        client.execute()
    seconds = time.perf_counter() - start
    if not save:
        return seconds
    handle, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(handle)
    try:
        nbformat.write(notebook, tmp)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; a notebook is an ordinary, readable file
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return seconds


def main(paths: list[str]) -> int:
    if not paths:
        print(__doc__)
        return 2
    failed = 0
    for name in paths:
        path = Path(name)
        try:
            seconds = execute(path)
        except CellExecutionError as exc:
            failed += 1
            print(f"FAILED {path}: {str(exc)[-2000:]}", file=sys.stderr)
            continue
        print(f"{seconds:7.1f} s  {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
