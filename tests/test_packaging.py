"""What a reader installs carries the book's checkpoints: a wheel and an sdist built from the tracked files of the
checkout hold every tracked weights file and manifest under aecourse/weights/, and nothing of the tests, the book or
the caches. Colab's setup cell installs the package this way; without them every chapter's load path fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tracked(*paths: str) -> list[str]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs a git checkout: the tracked files are the reference")
    out = subprocess.run(["git", "ls-files", "-z", *paths], cwd=ROOT, capture_output=True, check=True).stdout
    return sorted(p for p in out.decode().split("\0") if p)


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, list[str]]:
    """Build a wheel and an sdist, with setuptools' own PEP 517 hooks, from a copy of the tracked files (what a
    clean clone holds): the files of each, as paths inside the package's tree."""
    import re

    import tomllib

    requires = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["build-system"]["requires"]
    lowest = next(re.fullmatch(r"setuptools>=([\d.]+)", r)[1] for r in requires if r.startswith("setuptools"))
    pytest.importorskip("setuptools", minversion=lowest, reason=f"pyproject.toml builds with setuptools>={lowest}")
    source = tmp_path_factory.mktemp("checkout")
    for name in _tracked():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, source / name)
    out = tmp_path_factory.mktemp("dist")
    for hook in ("build_sdist", "build_wheel"):  # one process each: setuptools' hooks share state within one
        script = f"import sys; from setuptools import build_meta; build_meta.{hook}(sys.argv[1])"
        done = subprocess.run([sys.executable, "-c", script, str(out)], cwd=source, capture_output=True, text=True)
        assert done.returncode == 0, f"{hook} failed:\n{done.stderr[-3000:]}"
    (wheel,) = out.glob("*.whl")
    (sdist,) = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        wheel_files = [n for n in archive.namelist() if not n.endswith("/")]
    with tarfile.open(sdist) as archive:
        sdist_files = [m.name.split("/", 1)[1] for m in archive.getmembers() if m.isfile()]
    return {"wheel": sorted(wheel_files), "sdist": sorted(sdist_files)}


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_built_package_holds_every_tracked_checkpoint(built, kind):
    tracked = _tracked("aecourse/weights")
    assert len(tracked) > 100 and all(p.endswith((".safetensors", ".json")) for p in tracked)
    shipped = [p for p in built[kind] if p.startswith("aecourse/weights/")]
    assert shipped == tracked, f"the {kind}'s checkpoints differ from the tracked ones"


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_built_package_holds_the_manifests_checksums(built, kind):
    """Without them, every load of an installed package refuses its manifests (aecourse.checkpoints)."""
    tracked = _tracked("aecourse/weights-checksums")
    assert tracked and [p for p in built[kind] if p.startswith("aecourse/weights-checksums/")] == tracked


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_the_built_package_holds_nothing_but_the_package(built, kind):
    allowed = ("aecourse/", "aecourse-", "aecourse.egg-info/")
    metadata = {"README.md", "LICENSE", "PKG-INFO", "pyproject.toml", "setup.cfg", "MANIFEST.in"}
    extra = metadata if kind == "sdist" else set()
    stray = [p for p in built[kind] if not p.startswith(allowed) and p not in extra]
    assert not stray, f"the {kind} carries files that are not the package: {stray[:10]}"
    modules = {p for p in built[kind] if p.startswith("aecourse/") and p.endswith(".py")}
    assert modules == set(_tracked("aecourse/*.py")), "the package's modules are not exactly the tracked ones"


def test_the_runtime_note_names_the_runtime_the_colab_job_pins():
    """What the Colab setup cell prints as the runtime CI tests (aecourse.runtime.COLAB_TESTED) is what .ci/colab
    installs: the Python line and the torch, torchvision and numpy pins of its constraints file, to major.minor."""
    import re

    from aecourse.runtime import COLAB_TESTED

    text = (ROOT / ".ci" / "colab-constraints.txt").read_text(encoding="utf-8")
    python = re.search(r"^# Python: (\d+\.\d+)$", text, re.MULTILINE)
    assert python is not None, "the constraints file has no '# Python: X.Y' line"
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", text, re.MULTILINE))
    pinned = {"Python": python[1]}
    pinned |= {name: ".".join(pins[name].split(".")[:2]) for name in ("torch", "torchvision", "numpy")}
    assert pinned == COLAB_TESTED, "aecourse.runtime.COLAB_TESTED and .ci/colab-constraints.txt disagree"
