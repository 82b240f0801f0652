"""Fetch a pinned package tarball from the npm registry over HTTPS, check it against its pinned SHA-512, and unpack
it: what `npm pack` did for the book (MathJax, which the pages carry, and onnxruntime-web, which the latent explorer
runs), without needing npm or Node.js. The registry is npm's public one unless `NPM_CONFIG_REGISTRY` (or
`npm_config_registry`) names a mirror. A tarball whose digest differs from the pin is refused, nothing is unpacked,
and a failed unpack leaves nothing behind.

    python tools/npm_tarball.py mathjax --into .cache/mathjax-3.2.2
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import io
import os
import shutil
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
from pathlib import Path

# package -> (version, the tarball's SHA-512 as the registry's `dist.integrity` gives it)
PINNED = {
    "mathjax": ("3.2.2", "Bt+SSVU8eBG27zChVewOicYs7Xsdt40qm4+UpHyX7k0/O9NliPc+x77k1/FEsPsjKPZGJvtRZM1vO+geW0OhGw=="),
    "onnxruntime-web": (
        "1.30.0",
        "q0y+JrrtukXSzsBWEMccVfqX25LRmosXHF+CaRJmg8pZClzcV7svNc4rKY3jL02Vb7QmRMDs1SigqR4CXAfKYQ==",
    ),
}
DEFAULT_REGISTRY = "https://registry.npmjs.org/"


def registry() -> str:
    url = os.environ.get("NPM_CONFIG_REGISTRY") or os.environ.get("npm_config_registry") or DEFAULT_REGISTRY
    return url if url.endswith("/") else url + "/"


def tarball_url(package: str) -> str:
    version, _ = PINNED[package]
    return f"{registry()}{package}/-/{package.rsplit('/', 1)[-1]}-{version}.tgz"


def download(package: str) -> bytes:
    """The pinned tarball's bytes, checked against the pinned SHA-512; a clear error otherwise."""
    if package not in PINNED:
        raise ValueError(f"{package!r} is not pinned here; known: {', '.join(sorted(PINNED))}.")
    url = tarball_url(package)
    try:
        with urllib.request.urlopen(url, timeout=120) as response:
            data = response.read()
    except (urllib.error.URLError, OSError) as exc:
        raise RuntimeError(
            f"fetching {url} failed ({exc}). The book needs {package} {PINNED[package][0]} from the npm registry: "
            "check that it is reachable (or set NPM_CONFIG_REGISTRY to a mirror)."
        ) from None
    digest = base64.b64encode(hashlib.sha512(data).digest()).decode()
    if digest != PINNED[package][1]:
        raise RuntimeError(
            f"{url} has SHA-512 {digest}, not the pinned {PINNED[package][1]}: refused (a changed or damaged "
            "download). Nothing was unpacked."
        )
    return data


def unpack(data: bytes, into: Path, members: tuple[str, ...] = ()) -> None:
    """The tarball's `package/` folder (or only `members` of it, paths below `package/`) as `into`, written whole
    or not at all: it is unpacked beside `into`, then moved in place."""
    into = Path(into)
    into.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=into.parent, prefix=f".{into.name}.") as tmp:
        staging = Path(tmp) / "package"
        staging.mkdir()
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            for member in tar.getmembers():
                name = member.name.removeprefix("package/")
                if not member.isfile() or name == member.name or (members and name not in members):
                    continue
                target = (staging / name).resolve()
                if not target.is_relative_to(staging.resolve()):
                    raise RuntimeError(f"the tarball's {member.name!r} points outside its folder: refused.")
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(tar.extractfile(member).read())
        missing = [m for m in members if not (staging / m).is_file()]
        if missing:
            raise RuntimeError(
                f"the tarball has no {', '.join(missing)}; the pinned version and the files asked disagree."
            )
        if into.exists():
            shutil.rmtree(into)
        staging.rename(into)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("package", choices=sorted(PINNED))
    parser.add_argument("--into", type=Path, required=True, help="the folder the package's files go to")
    args = parser.parse_args(argv)
    try:
        unpack(download(args.package), args.into)
    except (RuntimeError, ValueError) as exc:
        print(f"npm_tarball: {exc}", file=sys.stderr)
        return 1
    print(f"{args.package} {PINNED[args.package][0]} -> {args.into}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
