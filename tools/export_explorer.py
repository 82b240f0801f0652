"""Build the latent explorer's assets (book/explorer.md): the ONNX decoders with their JSON, and the
onnxruntime-web files that run them in the reader's browser.

Usage: python tools/export_explorer.py [--out .cache/explorer] [--force]

The Sphinx extension book/_ext/explorer_assets.py runs this at every book build, so the assets are never stale:
the decoders are re-exported whenever the weights, the model code or the export code change (a fingerprint of
all three), and left alone otherwise (a few seconds). `make explorer` runs it on its own.
Output: OUT/static/explorer/models/ (manifest.json and one .onnx per model) and OUT/static/explorer/ort/.

`load_models` is the one place that says where the weights come from; see its docstring.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import hashlib
import inspect
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, `tools` is not on the path

from aecourse.checkpoints import CheckpointError, load, paths, training_config  # noqa: E402
from aecourse.data import CLASS_NAMES, FashionMNIST, load_fashion_mnist  # noqa: E402
from aecourse.evidence.metrics import active_units  # noqa: E402
from aecourse.inference import posterior  # noqa: E402
from aecourse.losses import gaussian_kl  # noqa: E402
from aecourse.models import VAE, ConvVAE  # noqa: E402
from tools import onnx_export  # noqa: E402
from tools.onnx_export import StartImage, export_model, write_json  # noqa: E402

DEFAULT_OUT = ROOT / ".cache" / "explorer"
# onnxruntime-web from the npm registry, pinned; the same release as the Python onnxruntime of requirements.txt.
ORT_WEB_VERSION = "1.30.0"
ORT_CACHE = ROOT / ".cache" / f"onnxruntime-web-{ORT_WEB_VERSION}"
# The wasm-only build, its Emscripten glue and the SIMD wasm binary: all the page loads (about 14 MB).
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")

BETAS = (0.5, 1.0, 2.0, 5.0, 10.0)  # chapter 5's sweep (its main run is beta = 5)
BETA_CHAPTER = "05_beta_vae_torchbearer"
NUM_SLIDERS_20D = 8  # the 20-D VAE's top dimensions by KL; the rest stay at the start point
EXAMPLE_CLASSES = (0, 1, 2, 5, 8, 9)  # T-shirt/top, Trouser, Pullover, Sandal, Bag, Ankle boot: varied shapes
NUM_TEST_IMAGES = 2000  # test images behind the KL ranking, the slider ranges and the 2-D map's points


@dataclass
class ExplorerModels:
    """The decoders the page explores, in eval mode on the CPU, and one line, shown on the page, saying where
    their weights come from."""

    vae_2d: nn.Module  # chapter 3: VAE(latent_dim=2)
    vae_20d: nn.Module  # chapter 3: VAE(latent_dim=20)
    beta_vaes: dict[float, nn.Module]  # chapter 5: ConvVAE(latent_dim=10), one per beta
    source: str
    missing_betas: tuple[float, ...] = ()  # values of beta whose checkpoint is not trained yet


def chapter_config(notebook: Path) -> dict:
    """The training config of a chapter's full budget, read from the notebook itself: its `Config` dataclass, whose
    defaults are the full budget, evaluated without running the notebook. A checkpoint whose manifest records
    another config is stale: the chapter would not load it, so neither does the explorer."""
    cells = json.loads(notebook.read_text())["cells"]
    code = ["".join(cell["source"]) for cell in cells if cell["cell_type"] == "code"]
    classes = [
        node
        for text in code
        if "class Config" in text
        for node in ast.parse("\n".join("" if line.lstrip()[:1] in "%!" else line for line in text.splitlines())).body
        if isinstance(node, ast.ClassDef) and node.name == "Config"
    ]
    if len(classes) != 1:
        raise CheckpointError(
            f"{notebook} does not define one `class Config`: the explorer reads the chapter's full-budget config "
            "(its defaults) from there to refuse stale checkpoints."
        )
    namespace = {"dataclass": dataclasses.dataclass, "field": dataclasses.field, "ClassVar": ClassVar}
    # dont_inherit: this module's `from __future__ import annotations` would make `compared: ClassVar` a field
    exec(compile(ast.Module([classes[0]], type_ignores=[]), str(notebook), "exec", dont_inherit=True), namespace)  # noqa: S102
    return training_config(namespace["Config"]())


def load_models(cache: Path) -> ExplorerModels:
    """Where the explorer's weights come from: the full-budget checkpoints of chapters 3 and 5 (seed 0), as
    `make checkpoints` stored them, each checked as its chapter checks it (its manifest, its SHA-256, and the
    chapter's config, read from the notebook). Chapter 3's are required; a β of chapter 5 whose checkpoint is not
    there at all (neither weights nor manifest) is left out of the switch, and the page says which are missing; a
    damaged, half-present or stale one is an error. `cache` is unused (kept for the interface)."""
    configs = {chapter: chapter_config(ROOT / "book" / f"{chapter}.ipynb") for chapter in ("03_vae", BETA_CHAPTER)}

    def stored(model: nn.Module, name: str) -> nn.Module:
        load(model, name, 0, expect=configs[name.split("/")[0]], complete=True)
        return model.eval()

    beta_vaes, missing = {}, []
    for beta in BETAS:
        name = f"{BETA_CHAPTER}/beta_{beta:g}"
        if not any(path.exists() for path in paths(name, 0)):
            missing.append(beta)  # not trained yet
            continue
        beta_vaes[beta] = stored(ConvVAE(latent_dim=10), name)
    source = "The full-budget checkpoints of chapters 3 and 5 (seed 0), as `make checkpoints` stored them."
    return ExplorerModels(
        vae_2d=stored(VAE(latent_dim=2), "03_vae/vae_2d"),
        vae_20d=stored(VAE(latent_dim=20), "03_vae/vae"),
        beta_vaes=beta_vaes,
        source=source,
        missing_betas=tuple(missing),
    )


def _named_models(models: ExplorerModels) -> Iterator[tuple[str, nn.Module]]:
    yield "vae_2d", models.vae_2d
    yield "vae_20d", models.vae_20d
    for beta, model in models.beta_vaes.items():
        yield f"beta_vae_{beta:g}", model


def fingerprint(models: ExplorerModels) -> str:
    """A hash of everything the exported files depend on: the weights, the models' code, the export code, the
    exporter's version and the source line."""
    digest = hashlib.sha256()
    sources = {Path(__file__), Path(onnx_export.__file__)}
    sources |= {Path(inspect.getfile(type(model))) for _, model in _named_models(models)}
    for path in sorted(sources):
        digest.update(path.name.encode() + path.read_bytes())
    digest.update(f"{torch.__version__} {models.source}".encode())
    for name, model in _named_models(models):
        digest.update(name.encode())
        for key, tensor in model.state_dict().items():
            digest.update(key.encode() + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _examples(model: nn.Module, data: FashionMNIST) -> list[StartImage]:
    indices = [int((data.y_test == c).nonzero()[0]) for c in EXAMPLE_CLASSES]  # the first test image of each
    x = data.x_test[indices]
    mu, _ = posterior(model, x)
    return [StartImage(CLASS_NAMES[c], image, m) for c, image, m in zip(EXAMPLE_CLASSES, x, mu, strict=True)]


def _export(model: nn.Module, out: Path, data: FashionMNIST, *, name: str, title: str, k: int | None, **extra) -> dict:
    """Export one decoder with sliders on its top-k dimensions by KL (k=None: its active units)."""
    x = data.x_test[:NUM_TEST_IMAGES]
    mu, logvar = posterior(model, x)
    kl = gaussian_kl(mu, logvar).mean(0)  # (latent_dim,): the rate, split by dimension
    if k is None:
        k = max(1, int(active_units(mu).sum()))
    examples = _examples(model, data)
    return export_model(model, out, name=name, title=title, kl_per_dim=kl, k=k, mu=mu, examples=examples, **extra)


def build_manifest(models: ExplorerModels, out: Path, data: FashionMNIST) -> dict:
    """Export every decoder into `out` and return the manifest the page reads: three explorers."""
    labels = data.y_test[:NUM_TEST_IMAGES]
    mu_2d, _ = posterior(models.vae_2d, data.x_test[:NUM_TEST_IMAGES])
    vae_2d = _export(
        models.vae_2d, out, data, name="vae_2d", title="Chapter 3 VAE, 2-D code", k=2, points=(mu_2d, labels)
    )
    vae_20d = _export(models.vae_20d, out, data, name="vae_20d", title="Chapter 3 VAE, 20-D code", k=NUM_SLIDERS_20D)
    beta_vaes = [
        _export(model, out, data, name=f"beta_vae_{beta:g}", title="Chapter 5 β-VAE", k=None, label=f"β = {beta:g}")
        for beta, model in models.beta_vaes.items()
    ]
    explorers = [
        {"id": "vae-2d", "kind": "map", "models": [vae_2d]},
        {"id": "vae-20d", "kind": "sliders", "models": [vae_20d]},
    ]
    if beta_vaes:
        explorers.append({"id": "beta-vae", "kind": "sliders", "switch": "β", "models": beta_vaes})
    missing = {}
    if models.missing_betas:
        values = ", ".join(f"{b:g}" for b in models.missing_betas)
        missing["beta-vae"] = (
            f"Chapter 5's checkpoints for β = {values} are not trained yet: `make checkpoints "
            f"NB=book/{BETA_CHAPTER}.ipynb` trains them, and the next book build adds them here."
        )
    return {
        "version": 1,
        "source": models.source,
        "class_names": list(CLASS_NAMES),
        "explorers": explorers,
        "missing": missing,
    }


def export_models(out: Path, *, force: bool = False) -> bool:
    """Export the decoders into out/static/explorer/models unless its fingerprint is current; True if exported."""
    models = load_models(out)
    key = fingerprint(models)
    target = out / "static" / "explorer" / "models"
    stamp = target / "fingerprint.txt"
    if not force and stamp.is_file() and stamp.read_text().strip() == key:
        return False
    data = load_fashion_mnist()
    target.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=".models-", dir=target.parent))
    try:
        write_json(build_manifest(models, fresh, data), fresh / "manifest.json")
        (fresh / "fingerprint.txt").write_text(key + "\n")
        fresh.chmod(0o755)  # mkdtemp makes 0700; the folder is served as it is
        _replace_dir(fresh, target)
    finally:
        shutil.rmtree(fresh, ignore_errors=True)
    return True


def _replace_dir(fresh: Path, target: Path) -> None:
    old = target.with_name(f".{target.name}-old")
    shutil.rmtree(old, ignore_errors=True)
    if target.exists():
        target.rename(old)
    fresh.rename(target)
    shutil.rmtree(old, ignore_errors=True)


def fetch_runtime(out: Path) -> bool:
    """Copy onnxruntime-web's wasm build into out/static/explorer/ort, fetching the pinned release with
    from the npm registry into .cache/ once; True if copied."""
    target = out / "static" / "explorer" / "ort"
    version = target / "VERSION"
    if version.is_file() and version.read_text().strip() == ORT_WEB_VERSION:
        return False
    if not all((ORT_CACHE / name).is_file() for name in ORT_FILES):
        _npm_pack(ORT_CACHE)
    target.mkdir(parents=True, exist_ok=True)
    for name in ORT_FILES:
        shutil.copy2(ORT_CACHE / name, target / name)
    version.write_text(ORT_WEB_VERSION + "\n")
    return True


def _npm_pack(dest: Path) -> None:
    """onnxruntime-web's files of ORT_FILES, from the pinned tarball of the npm registry (no npm needed)."""
    from tools.npm_tarball import PINNED, download, unpack

    if PINNED["onnxruntime-web"][0] != ORT_WEB_VERSION:
        raise RuntimeError(
            f"tools/npm_tarball.py pins onnxruntime-web {PINNED['onnxruntime-web'][0]}, not {ORT_WEB_VERSION}."
        )
    with tempfile.TemporaryDirectory() as tmp:
        unpack(download("onnxruntime-web"), Path(tmp) / "ort", members=tuple(f"dist/{name}" for name in ORT_FILES))
        dest.mkdir(parents=True, exist_ok=True)
        for name in ORT_FILES:
            shutil.copy2(Path(tmp) / "ort" / "dist" / name, dest / name)


def usable_out(out: Path) -> Path:
    """`--out` resolved, after checking that it is a folder inside this checkout that can be written: the export
    replaces folders under it, so a path outside the checkout (`/`, `..`) is refused before anything is loaded."""
    resolved = (Path.cwd() / out).resolve()
    if not resolved.is_relative_to(ROOT) or resolved == ROOT:
        raise ValueError(
            f"--out {out} is outside this checkout ({ROOT}): the export replaces folders under it, so it stays in the "
            "checkout; the default is .cache/explorer."
        )
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=resolved):
            pass
    except OSError as exc:
        raise ValueError(f"--out {out} cannot be written ({exc}); name a writable folder inside {ROOT}.") from None
    return resolved


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output folder (default: .cache/explorer)")
    parser.add_argument("--force", action="store_true", help="export even if the fingerprint is current")
    args = parser.parse_args(argv)
    try:
        args.out = usable_out(args.out)
    except ValueError as exc:
        print(f"export_explorer: {exc}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    try:
        exported = export_models(args.out, force=args.force)
        copied = fetch_runtime(args.out)
    except (CheckpointError, RuntimeError, OSError) as exc:  # CheckpointError is a RuntimeError: says what to do
        print(f"export_explorer: {exc}", file=sys.stderr)
        return 1
    done = [what for what, did in (("decoders exported", exported), ("runtime copied", copied)) if did]
    print(f"explorer assets in {args.out}: {', '.join(done) or 'up to date'} ({time.perf_counter() - start:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
