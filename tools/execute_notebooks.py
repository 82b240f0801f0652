"""Re-execute notebooks in place and save their outputs, reporting the time of each.

Usage: python tools/execute_notebooks.py book/01_autoencoder.ipynb [more.ipynb ...]
A notebook that fails is reported and left as it was on disk: nothing half-written. The kernel sees this process's
environment: AECOURSE_BUDGET, AECOURSE_RETRAIN and AECOURSE_DEVICE choose what the notebooks do. Its PYTHONPATH
starts with this checkout, so that the kernel imports this checkout's aecourse (and trains into its weights), not
an aecourse installed elsewhere; `execute` checks that before it starts a kernel.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
KERNEL = "python3"


class KernelSetupError(RuntimeError):
    """The notebook kernel would not run this checkout's package; the message says what it imports instead."""


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


def checkout_environment(env: Mapping[str, str] | None = None) -> dict[str, str]:
    """`env` with PYTHONPATH starting at this checkout: what a kernel started from here must see."""
    inherited = (env or {}).get("PYTHONPATH", os.environ.get("PYTHONPATH", ""))
    rest = [part for part in inherited.split(os.pathsep) if part and Path(part).resolve() != ROOT]
    return {**(env or {}), "PYTHONPATH": os.pathsep.join([str(ROOT), *rest])}


def _kernel_python() -> str:
    """The interpreter the notebook kernel runs, as jupyter_client starts it (a bare `python` in the kernel spec
    means this interpreter)."""
    from jupyter_client.kernelspec import KernelSpecManager

    argv = KernelSpecManager().get_kernel_spec(KERNEL).argv
    bare = {"python", f"python{sys.version_info[0]}", f"python{sys.version_info[0]}.{sys.version_info[1]}"}
    return sys.executable if not argv or argv[0] in bare else argv[0]


def check_kernel_imports_checkout(folder: Path, env: Mapping[str, str]) -> None:
    """Start the kernel's interpreter with the kernel's environment, in the notebook's folder, and refuse to go on
    unless it imports aecourse from this checkout: else a tool run here would train into another copy's weights."""
    python = _kernel_python()
    probe = "import aecourse, sys; sys.stdout.write(aecourse.__file__)"
    done = subprocess.run(
        [python, "-c", probe], cwd=folder, env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    expected = ROOT / "aecourse" / "__init__.py"
    if done.returncode != 0 or Path(done.stdout.strip()).resolve() != expected:
        found = done.stdout.strip() or done.stderr.strip()[-500:]
        raise KernelSetupError(
            f"the notebook kernel ({python}) imports aecourse from {found or 'nowhere'}, not from this checkout "
            f"({expected}); it would run and train another copy of the package. Install this checkout in the "
            f"kernel's environment (`{python} -m pip install --no-deps -e {ROOT}`) or run the tool with that "
            "environment's Python."
        )


def execute(
    path: Path, timeout: int | None = 7200, *, env: Mapping[str, str] | None = None, save: bool = True
) -> float:
    """Execute the notebook at `path` (in its folder) and, if `save`, write it back with the new outputs. `timeout`
    is the limit for each cell, in seconds (None: no limit). The kernel imports this checkout's aecourse."""
    notebook = nbformat.read(path, as_version=4)
    env = checkout_environment(env)
    check_kernel_imports_checkout(path.parent, env)
    client = NotebookClient(
        notebook, timeout=timeout, kernel_name=KERNEL, resources={"metadata": {"path": str(path.parent)}}
    )
    start = time.perf_counter()
    with _environment(env):
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
    missing = [name for name in paths if not Path(name).is_file() or Path(name).suffix != ".ipynb"]
    if missing:
        names = ", ".join(missing)
        print(f"no such notebook: {names}. Name .ipynb files, e.g. book/01_autoencoder.ipynb.", file=sys.stderr)
        return 2
    failed = 0
    for name in paths:
        path = Path(name)
        try:
            seconds = execute(path)
        except (CellExecutionError, KernelSetupError) as exc:
            failed += 1
            print(f"FAILED {path}: {str(exc)[-2000:]}", file=sys.stderr)
            continue
        print(f"{seconds:7.1f} s  {path}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
