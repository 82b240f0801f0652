"""Fashion-MNIST, found offline and verified, and the transforms of its images: the denoising autoencoder's input
noise (ch. 2) and dynamic binarization (ch. 3). `load_fashion_mnist` finds the four IDX files (the Debian package's
or torchvision's download), checks their decompressed bytes against the SHA-256 pinned here, and parses those very
bytes: nothing unverified is read.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import inspect
import math
import os
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from aecourse.checks import CourseError, check_device, check_images, check_int, check_nonnegative, check_probability
from aecourse.runtime import on_colab

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
DATA_ENV = "AECOURSE_DATA"
CACHE_ENV = "AECOURSE_CACHE"

CLASS_NAMES: tuple[str, ...] = tuple(
    "T-shirt/top|Trouser|Pullover|Dress|Coat|Sandal|Shirt|Sneaker|Bag|Ankle boot".split("|")
)

IMAGE_SHAPE = (1, 28, 28)


class DataError(CourseError):
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
    """The train and test splits as tensors: images (N, 1, 28, 28) float32 in [0, 1], labels int64.

    `source` is the folder whose files were read: the tensors are parsed from the very bytes whose SHA-256 was
    checked against the pinned sums, in that load. A damaged source is an error, never a quiet fallback to another
    copy: the user named or installed that source, and reading something else would hide the damage.
    """

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    source: Path
    class_names: tuple[str, ...] = field(default=CLASS_NAMES)

    def to(self, device: torch.device | str) -> FashionMNIST:
        """The same data on another device (the whole set fits in GPU memory: 220 MB)."""
        device = check_device(device, who="FashionMNIST.to")
        return FashionMNIST(
            self.x_train.to(device),
            self.y_train.to(device),
            self.x_test.to(device),
            self.y_test.to(device),
            self.source,
            self.class_names,
        )


def default_cache_dir() -> Path:
    """Where a download goes: `AECOURSE_CACHE`, else ~/.cache/aecourse."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "aecourse")


def _find_file(folder: Path, name: str) -> Path | None:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    return None


def _layouts(folder: Path) -> tuple[Path, Path]:
    """Where the files may lie under `folder`: directly in it, or torchvision-style in FashionMNIST/raw."""
    return folder, folder / "FashionMNIST" / "raw"


def _complete_folder(folder: Path, spec: IdxSpec) -> dict[str, Path] | None:
    """The four files in `folder` (or its torchvision-style `FashionMNIST/raw`), if all are there."""
    for candidate in _layouts(folder):
        found = {name: _find_file(candidate, name) for name in spec.sha256}
        if all(found.values()):
            return found  # type: ignore[return-value]
    return None


def _what_is_missing(folder: Path, spec: IdxSpec) -> str:
    """Why `folder` does not hold the data: it is not a folder, or these files are missing from it."""
    if not folder.is_dir():
        return f"{folder} is not a folder" if folder.exists() else f"{folder} does not exist"
    missing = min(
        ([name for name in spec.sha256 if _find_file(candidate, name) is None] for candidate in _layouts(folder)),
        key=len,
    )
    return f"{folder} lacks {', '.join(missing)} (each gzipped or not, directly in it or in FashionMNIST/raw/)"


def _explicit_folder(root: str | Path | None) -> tuple[Path, str] | None:
    """The folder the user named, by `root=` or $AECOURSE_DATA, and how they named it (for error messages)."""
    if root is not None:
        return Path(root).expanduser(), "root="
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"
    return None


def _how_to_replace(source: Path) -> str:
    if source.is_relative_to(DEBIAN_DIR):
        return "Reinstall the package: `sudo apt-get install --reinstall dataset-fashion-mnist`."
    return "Delete it and get the data again.\n" + HOW_TO_GET_IT


def _chunks(source: Path) -> Iterator[bytes]:
    """The decompressed content of `source`, in blocks; a corrupt or truncated file is a DataError naming it."""
    opener = gzip.open if source.suffix == ".gz" else open
    try:
        with opener(source, "rb") as handle:
            while block := handle.read(1 << 20):
                yield block
    except (OSError, EOFError, zlib.error) as exc:
        raise DataError(f"{source} is corrupt or truncated ({exc}). " + _how_to_replace(source)) from exc


def _check_sha256(source: Path, actual: str, expected: str) -> None:
    if actual != expected:
        raise DataError(
            f"{source} does not hold the expected data: SHA-256 of its content is {actual}, expected {expected}. "
            "The file is damaged or is not Fashion-MNIST. " + _how_to_replace(source)
        )


def _verified_content(source: Path, expected_sha256: str) -> bytes:
    """The decompressed content of `source`, after checking its SHA-256: the bytes that are then parsed, so that
    what is read is what was verified."""
    digest, blocks = hashlib.sha256(), []
    for block in _chunks(source):
        digest.update(block)
        blocks.append(block)
    _check_sha256(source, digest.hexdigest(), expected_sha256)
    return b"".join(blocks)


def _download(root: Path) -> None:
    from torchvision.datasets import FashionMNIST as TorchvisionFashionMNIST

    try:
        for train in (True, False):
            TorchvisionFashionMNIST(root=str(root), train=train, download=True)
    except Exception as exc:  # urllib, HTTP or checksum errors from deep inside torchvision
        where = (
            "On Colab: check that the runtime is connected, and run the cell again (torchvision's mirrors are "
            "sometimes down for a while); or upload the four IDX files into a folder and set "
            f"{DATA_ENV} to it (%env {DATA_ENV}=/content/fashion-mnist) before this cell.\n"
            if on_colab()
            else ""
        )
        raise DataError(
            f"Fashion-MNIST was not found locally and torchvision's download into {root} failed ({exc}).\n"
            + where
            + HOW_TO_GET_IT
        ) from exc


def _parse_idx(content: bytes, source: Path, ndim: int) -> torch.Tensor:
    """The uint8 tensor an IDX file holds (LeCun et al.'s format: a magic number 0x0000 08 <ndim>, ndim big-endian
    sizes, then the values), parsed from `content`, the bytes already verified."""
    header = 4 + 4 * ndim
    if len(content) < header or content[:4] != bytes([0, 0, 0x08, ndim]):
        raise DataError(f"{source} is not an IDX file of {ndim}-D unsigned bytes (its header: {content[:4].hex()}).")
    shape = struct.unpack(f">{ndim}I", content[4:header])
    if len(content) - header != math.prod(shape):
        raise DataError(f"{source} holds {len(content) - header} values after its header, not {math.prod(shape)}.")
    return torch.from_numpy(np.frombuffer(content, dtype=np.uint8, offset=header).reshape(shape).copy())


def _read_split(content: dict[str, bytes], found: dict[str, Path], train: bool) -> tuple[torch.Tensor, torch.Tensor]:
    prefix = "train" if train else "t10k"
    images, labels = f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"
    return _parse_idx(content[images], found[images], 3), _parse_idx(content[labels], found[labels], 1)


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
    """The four files: in `root` or $AECOURSE_DATA only, when given; else in the Debian folder, then the cache."""
    for folder in _searched(root, cache_dir):
        found = _complete_folder(folder, spec)
        if found:
            return found
    return None


def _searched(root: str | Path | None, cache_dir: str | Path | None) -> list[Path]:
    """A folder the user names is the only place searched: data from elsewhere would not be what they asked for."""
    explicit = _explicit_folder(root)
    if explicit is not None:
        return [explicit[0]]
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    return [DEBIAN_DIR, cache]


def _not_found(root: str | Path | None, cache: Path, spec: IdxSpec) -> DataError:
    explicit = _explicit_folder(root)
    if explicit is None:
        searched = ", ".join(str(p) for p in _searched(root, cache))
        return DataError(f"Fashion-MNIST was not found (looked in {searched}).\n" + HOW_TO_GET_IT)
    folder, named_by = explicit
    instead = "drop root=" if named_by == "root=" else f"unset {DATA_ENV}"
    return DataError(
        f"{named_by} names {folder} as the Fashion-MNIST folder, but {_what_is_missing(folder, spec)}; only that "
        f"folder is searched. Put the four files there or name the folder that holds them (download=True "
        f"downloads them into it), or {instead} to search the Debian folder and the cache.\n" + HOW_TO_GET_IT
    )


def load_fashion_mnist(
    root: str | Path | None = None,
    *,
    device: torch.device | str = "cpu",
    download: bool | None = None,
    cache_dir: str | Path | None = None,
    spec: IdxSpec = FASHION_MNIST,
) -> FashionMNIST:
    """Load Fashion-MNIST (Xiao et al. 2017) as tensors on `device`; used by every chapter.

    `download=True` lets torchvision fetch the files when none are found locally; into `root` or $AECOURSE_DATA
    when one is given, else into the cache. By default (None) it downloads on Colab only: elsewhere the files are
    installed (`apt-get install dataset-fashion-mnist`) and a missing file is an error that says so.
    """
    device = check_device(device, who="load_fashion_mnist")  # before a second of reading, not after
    if download is None:
        download = on_colab()
    cache = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    found = find_fashion_mnist(root, cache_dir=cache, spec=spec)
    if found is None:
        if not download:
            raise _not_found(root, cache, spec)
        explicit = _explicit_folder(root)
        target = explicit[0] if explicit is not None else cache
        try:
            target.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a file where the folder should be, no permission, a read-only file system
            fix = (
                f"name another folder ({'root=' if root is not None else DATA_ENV})"
                if explicit
                else (f"set {CACHE_ENV}=/a/writable/folder or pass cache_dir= to load_fashion_mnist")
            )
            raise DataError(f"the download folder {target} cannot be made ({exc}); {fix}.") from exc
        _download(target)
        found = _complete_folder(target, spec)
        if found is None:
            raise DataError(f"torchvision reported success but the files are not in {target}.\n" + HOW_TO_GET_IT)
    content = {name: _verified_content(path, spec.sha256[name]) for name, path in found.items()}
    train_images, train_labels = _read_split(content, found, train=True)
    test_images, test_labels = _read_split(content, found, train=False)
    _check_split(train_images, train_labels, spec.num_train, "train")
    _check_split(test_images, test_labels, spec.num_test, "test")
    if spec.train_per_class is not None:
        counts = torch.bincount(train_labels, minlength=len(CLASS_NAMES))
        if not bool((counts == spec.train_per_class).all()):
            raise DataError(f"expected {spec.train_per_class} training images per class, found {counts.tolist()}.")
    source = next(iter(found.values())).parent
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


def _refuses_what_the_noise_cannot_use(noise):
    """The door check that chapter 2's noise leaves out of its lesson: float images in [0, 1] (uint8 or 0..255 images
    would be clipped or masked into other images without a word) and its level, sigma >= 0 or drop_prob in [0, 1]."""
    level = list(inspect.signature(noise).parameters)[1]  # sigma or drop_prob
    default = inspect.signature(noise).parameters[level].default

    @functools.wraps(noise)
    def checked(x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        check_images(x, who=noise.__name__)
        value = args[0] if args else kwargs.pop(level, default)
        check = check_nonnegative if level == "sigma" else check_probability
        value = check("sigma (the noise's std)" if level == "sigma" else level, value)
        return noise(x, value, *args[1:], **kwargs)

    return checked


# The definitions between `fmt: off` and `fmt: on` are shown in chapter 2, at the book's 75 columns: the chapter's
# cell and the definition here are one source (tests/test_taught_code.py).
# fmt: off
@_refuses_what_the_noise_cannot_use
def add_gaussian_noise(
    x: torch.Tensor,
    sigma: float = 0.2,
    *,
    clip: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_noisy = x + sigma * eps with eps ~ N(0, I) (ch. 2), clipped to
    [0, 1] unless clip=False (the article leaves it unclipped)."""
    eps = torch.randn(
        x.shape, generator=generator, device=x.device, dtype=x.dtype
    )
    x_noisy = x + sigma * eps
    return x_noisy.clamp_(0.0, 1.0) if clip else x_noisy


@_refuses_what_the_noise_cannot_use
def add_masking_noise(
    x: torch.Tensor,
    drop_prob: float = 0.3,
    *,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Masking noise (Vincent et al. 2008; ch. 2): each pixel is set to 0
    with probability drop_prob, the others are kept as they are."""
    keep = torch.rand(x.shape, generator=generator, device=x.device)
    return x * (keep >= drop_prob)
# fmt: on


def binarize(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Dynamic binarization: each pixel is 1 with probability its grey level, drawn afresh at every call (ch. 3).

    Gives binary images on which a Bernoulli decoder's log p(x|z) is a true log-probability. A grey level outside
    [0, 1] (or NaN) is not a probability: refused here, since torch's message names neither the cause nor the fix.
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        what = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"binarize expects float images in [0, 1]; got {what}. Divide uint8 images by 255.")
    if x.numel() and not bool(((x >= 0) & (x <= 1)).all()):
        raise ValueError(
            "binarize draws each pixel with probability its grey level, so x must lie in [0, 1]; got values in "
            f"[{float(x.min()):.3g}, {float(x.max()):.3g}] (or NaN). Scale the images to [0, 1] first."
        )
    return torch.bernoulli(x, generator=generator)


def add_noise(x: torch.Tensor, kind: str, level: float, *, seed: int | None = None) -> torch.Tensor:
    """Corrupt `x` by "gaussian" noise (level = sigma, clipped) or "masking" noise (level = drop probability).

    Chapter 2 sweeps both kinds with one call. `seed` fixes the draw on any device (CPU or CUDA), so a test
    set is corrupted the same way for every model compared on it, without touching the global random state.
    """
    if kind not in ("gaussian", "masking"):
        raise ValueError(f"kind must be 'gaussian' or 'masking'; got {kind!r}.")
    check_images(x, who="add_noise")  # 0..255 images would be clipped to [0, 1] without a word
    if seed is not None:
        check_int("add_noise: seed", seed)
    corrupt = add_gaussian_noise if kind == "gaussian" else add_masking_noise
    if seed is None:
        return corrupt(x, level)
    with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
        torch.manual_seed(seed)
        return corrupt(x, level)
