"""tools/npm_tarball.py: a pinned tarball is checked against its SHA-512 before anything is unpacked, unpacks whole or
not at all, and never writes outside its folder; no npm is needed. Tarballs are made here, nothing is downloaded."""

from __future__ import annotations

import base64
import hashlib
import io
import sys
import tarfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools import npm_tarball  # noqa: E402


def _tarball(files: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _serve(monkeypatch, data: bytes, *, pinned: bytes | None = None) -> list[str]:
    """Pin a package "demo" to the SHA-512 of `pinned` (default: `data`) and answer every download with `data`."""
    digest = base64.b64encode(hashlib.sha512(pinned if pinned is not None else data).digest()).decode()
    monkeypatch.setitem(npm_tarball.PINNED, "demo", ("1.0.0", digest))
    asked: list[str] = []

    def urlopen(url, timeout):
        asked.append(url)
        return io.BytesIO(data)

    monkeypatch.setattr(npm_tarball.urllib.request, "urlopen", urlopen)
    return asked


def test_a_pinned_tarball_unpacks_its_package_folder(monkeypatch, tmp_path):
    data = _tarball({"package/es5/tex.js": b"js", "package/README.md": b"r", "other/x": b"not the package"})
    asked = _serve(monkeypatch, data)
    monkeypatch.setenv("NPM_CONFIG_REGISTRY", "https://mirror.example/npm")
    npm_tarball.unpack(npm_tarball.download("demo"), tmp_path / "demo")
    assert asked == ["https://mirror.example/npm/demo/-/demo-1.0.0.tgz"]
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()) == [
        "demo/README.md",
        "demo/es5/tex.js",
    ]


def test_a_tarball_with_another_digest_is_refused_before_anything_is_written(monkeypatch, tmp_path):
    _serve(monkeypatch, _tarball({"package/a": b"changed"}), pinned=b"what was pinned")
    with pytest.raises(RuntimeError, match="not the pinned .*refused"):
        npm_tarball.download("demo")
    assert not (tmp_path / "demo").exists()


def test_a_member_outside_the_folder_or_missing_leaves_nothing(tmp_path):
    (tmp_path / "keep").mkdir()
    (tmp_path / "keep" / "old.txt").write_text("the previous copy")
    with pytest.raises(RuntimeError, match="outside its folder"):
        npm_tarball.unpack(_tarball({"package/../../escape": b"x"}), tmp_path / "keep")
    with pytest.raises(RuntimeError, match="has no dist/b.js"):
        npm_tarball.unpack(_tarball({"package/dist/a.js": b"x"}), tmp_path / "keep", members=("dist/b.js",))
    assert (tmp_path / "keep" / "old.txt").read_text() == "the previous copy"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep"]


def test_an_unknown_package_is_named():
    with pytest.raises(ValueError, match="not pinned here; known: mathjax, onnxruntime-web"):
        npm_tarball.download("left-pad")
