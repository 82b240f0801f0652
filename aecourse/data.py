"""Fashion-MNIST, found offline and verified; and the input noise of the denoising autoencoder (chapter 2).

Every chapter loads the data through `load_fashion_mnist`. The IDX files are read by torchvision's own
reader, which wants them gunzipped under `ROOT/FashionMNIST/raw/`; this module finds the files, unpacks
them there atomically, and checks the decompressed bytes against checksums pinned below, so the Debian
copy (`apt-get install dataset-fashion-mnist`) and torchvision's download are accepted alike.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import torch

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "AECOURSE_DATA"
CACHE_ENV = "AECOURSE_CACHE"

CLASS_NAMES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

IMAGE_SHAPE = (1, 28, 28)


class DataError(RuntimeError):
    """The data could not be found or did not pass verification; the message says what to do."""


@dataclass(frozen=True)
class IdxSpec:
    """What a set of four IDX files must contain: their SHA-256 (of the decompressed bytes) and counts."""

    sha256: dict[str, str]
    num_train: int
    num_test: int
    train_per_class: int | None = None


# SHA-256 of the *decompressed* files: the Debian .gz files and torchvision's .gz files differ as
# archives, but unpack to the same bytes.
FASHION_MNIST = IdxSpec(
    sha256={
        "train-images-idx3-ubyte": "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "train-labels-idx1-ubyte": "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "t10k-images-idx3-ubyte": "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "t10k-labels-idx1-ubyte": "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
    num_train=60_000,
    num_test=10_000,
    train_per_class=6_000,
)

HOW_TO_GET_IT = (
    "Get Fashion-MNIST in one of three ways:\n"
    "  1. Debian/Ubuntu: `sudo apt-get install dataset-fashion-mnist` (files land in "
    f"{DEBIAN_DIR});\n"
    f"  2. put the four IDX files (gzipped or not) in a folder and set {DATA_ENV}=/that/folder, or pass "
    "`root=` to load_fashion_mnist;\n"
    "  3. with internet access, call load_fashion_mnist(download=True) and torchvision downloads them "
    "(this is what happens on Colab)."
)


@dataclass
class FashionMNIST:
    """The train and test splits as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: Path
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)

    def to(self, device: torch.device | str) -> FashionMNIST:
        """The same data on another device (the whole set fits in GPU memory: 220 MB)."""
        return FashionMNIST(
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_test.to(device),
            self.y_test.to(device),
            self.source,
            self.class_names,
        )


def default_cache_dir() -> Path:
    """Where unpacked files go: `AECOURSE_CACHE`, else ~/.cache/aecourse."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "aecourse")


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _complete_folder(folder: Path, spec: IdxSpec) -> dict[str, Path] | None:
    """The four files in `folder` (or its torchvision-style `FashionMNIST/raw`), if all are there."""
    for candidate in (folder, folder / "FashionMNIST" / "raw"):
        found = {name: _find_file(candidate, name) for name in spec.sha256}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unpack_verified(source: Path, target: Path, expected_sha256: str) -> None:
    """Copy or gunzip `source` to `target` through a temporary file, so a failure leaves nothing behind."""
    if target.is_file() and _sha256_of(target) == expected_sha256:
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(handle, "wb") as out:
            opener = gzip.open if source.suffix == ".gz" else open
            try:
                with opener(source, "rb") as inp:
                    shutil.copyfileobj(inp, out, 1 << 20)
            except (OSError, EOFError, zlib.error) as exc:
                raise DataError(
                    f"{source} is corrupt or truncated ({exc}). Delete it and get the data again.\n" + HOW_TO_GET_IT
                ) from exc
        actual = _sha256_of(tmp)
        if actual != expected_sha256:
            raise DataError(
                f"{source} does not hold the expected data: SHA-256 of its content is {actual}, "
                f"expected {expected_sha256}. The file is damaged or is not Fashion-MNIST; delete it "
                "and get the data again.\n" + HOW_TO_GET_IT
            )
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; the unpacked data are ordinary readable files
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _prepare_raw_folder(files: dict[str, Path], cache_dir: Path, spec: IdxSpec) -> Path:
    """Make `cache_dir/FashionMNIST/raw` hold verified, gunzipped copies; return the torchvision root."""
    raw = cache_dir / "FashionMNIST" / "raw"
    for name, source in files.items():
        if source.parent.resolve() == raw.resolve() and source.name == name:
            if _sha256_of(source) != spec.sha256[name]:
                raise DataError(
                    f"{source} does not hold the expected data (checksum mismatch). Delete it and get "
                    "the data again.\n" + HOW_TO_GET_IT
                )
            continue
        _unpack_verified(source, raw / name, spec.sha256[name])
    return cache_dir


def _download(root: Path) -> None:
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    try:
        for train in (True, False):
            TorchvisionFashionMNIST(root=str(root), train=train, download=True)
    except Exception as exc:  # urllib, HTTP or checksum errors from deep inside torchvision
        raise DataError(
            f"Fashion-MNIST was not found locally and the download into {root} failed ({exc}).\n" + HOW_TO_GET_IT
        ) from exc


def _read_split(torchvision_root: Path, train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    try:
        split = TorchvisionFashionMNIST(root=str(torchvision_root), train=train, download=False)
    except Exception as exc:
        raise DataError(f"torchvision could not read the IDX files under {torchvision_root}: {exc}") from exc
    return split.data, split.targets


def _check_split(images: torch.Tensor, labels: torch.Tensor, expected: int, split: str) -> None:
    if images.shape[1:] != (28, 28) or len(images) != expected or len(labels) != expected:
        raise DataError(
            f"the {split} split has {len(images)} images of shape {tuple(images.shape[1:])} and "
            f"{len(labels)} labels; expected {expected} images of 28x28 and as many labels."
        )
    if labels.min() < 0 or labels.max() >= len(CLASS_NAMES):
        raise DataError(f"the {split} labels must lie in 0..9; found {labels.min()}..{labels.max()}.")


def find_fashion_mnist(
    root: str | Path | None = None, *, cache_dir: str | Path | None = None, spec: IdxSpec = FASHION_MNIST
) -> dict[str, Path] | None:
    """The four files, searched in order: `root` or $AECOURSE_DATA, the Debian folder, the cache folder."""
    for folder in _searched(root, cache_dir):
        found = _complete_folder(folder, spec)
        if found:
            return found
    return None


def _searched(root: str | Path | None, cache_dir: str | Path | None) -> list[Path]:
    explicit = root if root is not None else os.environ.get(DATA_ENV)
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return ([Path(explicit).expanduser()] if explicit else []) + [DEBIAN_DIR, cache]


def load_fashion_mnist(
    root: str | Path | None = None,
    *,
    device: torch.device | str = "cpu",
    download: bool = False,
    cache_dir: str | Path | None = None,
    spec: IdxSpec = FASHION_MNIST,
) -> FashionMNIST:
    """Load Fashion-MNIST (Xiao et al. 2017) as tensors on `device`; used by every chapter.

    `download=True` lets torchvision fetch the files when none are found locally (Colab).
    """
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    files = find_fashion_mnist(root, cache_dir=cache, spec=spec)
    if files is None:
        if not download:
            raise DataError(
                "Fashion-MNIST was not found (looked in "
                + ", ".join(str(p) for p in _searched(root, cache))
                + ").\n"
                + HOW_TO_GET_IT
            )
        target = Path(root or os.environ.get(DATA_ENV) or cache).expanduser()
        _download(target)
        files = _complete_folder(target, spec)
        if files is None:
            raise DataError(f"torchvision reported success but the files are not in {target}.\n" + HOW_TO_GET_IT)
    torchvision_root = _prepare_raw_folder(files, cache, spec)
    train_images, train_labels = _read_split(torchvision_root, train=True)
    test_images, test_labels = _read_split(torchvision_root, train=False)
    _check_split(train_images, train_labels, spec.num_train, "train")
    _check_split(test_images, test_labels, spec.num_test, "test")
    if spec.train_per_class is not None:
        counts = torch.bincount(train_labels, minlength=len(CLASS_NAMES))
        if not bool((counts == spec.train_per_class).all()):
            raise DataError(f"expected {spec.train_per_class} training images per class, found {counts.tolist()}.")
    source = next(iter(files.values())).parent
    return FashionMNIST(
        x_train=_to_unit_float(train_images, device),
        y_train=train_labels.to(device=device, dtype=torch.int64),
        x_test=_to_unit_float(test_images, device),
        y_test=test_labels.to(device=device, dtype=torch.int64),
        source=source,
    )


def _to_unit_float(images: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    # (N, 28, 28) uint8 -> (N, 1, 28, 28) float32 in [0, 1]
    return images.to(device).unsqueeze(1).float().div_(255.0)


def add_gaussian_noise(
    x: torch.Tensor, sigma: float = 0.2, *, clip: bool = True, generator: torch.Generator | None = None
) -> torch.Tensor:
    """x_noisy = x + sigma * eps, eps ~ N(0, I) (chapter 2). Clipped to [0, 1] by default.

    The source article leaves the noisy pixels outside [0, 1]; the course clips them so the input lives in
    the same range as the images the sigmoid decoder is asked to produce. Pass clip=False to see the difference.
    """
    if sigma < 0:
        raise ValueError(f"sigma is a standard deviation and must be >= 0; got {sigma}.")
    eps = torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    x_noisy = x + sigma * eps
    return x_noisy.clamp_(0.0, 1.0) if clip else x_noisy


def add_masking_noise(
    x: torch.Tensor, drop_prob: float = 0.3, *, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Masking noise (Vincent et al. 2008): each pixel is set to 0 with probability `drop_prob` (chapter 2)."""
    if not 0.0 <= drop_prob <= 1.0:
        raise ValueError(f"drop_prob is a probability and must lie in [0, 1]; got {drop_prob}.")
    keep = torch.rand(x.shape, generator=generator, device=x.device) >= drop_prob
    return x * keep


def add_noise(x: torch.Tensor, kind: str, level: float, *, seed: int | None = None) -> torch.Tensor:
    """Corrupt `x` by "gaussian" noise (level = sigma, clipped) or "masking" noise (level = drop probability).

    Chapter 2 sweeps both kinds with one call. `seed` fixes the draw on any device (CPU or CUDA), so a test
    set is corrupted the same way for every model compared on it, without touching the global random state.
    """
    if kind not in ("gaussian", "masking"):
        raise ValueError(f"kind must be 'gaussian' or 'masking'; got {kind!r}.")
    corrupt = add_gaussian_noise if kind == "gaussian" else add_masking_noise
    if seed is None:
        return corrupt(x, level)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return corrupt(x, level)
