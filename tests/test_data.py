"""aecourse.data: finding, verifying and loading Fashion-MNIST, and the DAE's noise.

The loader is tested on small IDX files written here, through the same code path (torchvision's reader) as the
real data; one test loads the real data when it is installed.
"""

from __future__ import annotations

import gzip
import hashlib
import struct
from pathlib import Path

import pytest
import torch

from aecourse import data
from aecourse.data import (
    DataError,
    IdxSpec,
    add_gaussian_noise,
    add_masking_noise,
    add_noise,
    binarize,
    load_fashion_mnist,
)

NAMES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


def _idx_images(images: torch.Tensor) -> bytes:
    n, rows, cols = images.shape
    return struct.pack(">IIII", 0x00000803, n, rows, cols) + images.to(torch.uint8).numpy().tobytes()


def _idx_labels(labels: torch.Tensor) -> bytes:
    return struct.pack(">II", 0x00000801, len(labels)) + labels.to(torch.uint8).numpy().tobytes()


def write_small_fashion_mnist(folder: Path, *, gz: bool, per_class: int = 3, num_test: int = 10) -> IdxSpec:
    """Write four small IDX files like Debian's (gzipped) or torchvision's raw ones; return their spec."""
    generator = torch.Generator().manual_seed(0)
    num_train = 10 * per_class
    contents = {
        "train-images-idx3-ubyte": _idx_images(torch.randint(0, 256, (num_train, 28, 28), generator=generator)),
        "train-labels-idx1-ubyte": _idx_labels(torch.arange(10).repeat(per_class)),
        "t10k-images-idx3-ubyte": _idx_images(torch.randint(0, 256, (num_test, 28, 28), generator=generator)),
        "t10k-labels-idx1-ubyte": _idx_labels(torch.arange(num_test) % 10),
    }
    folder.mkdir(parents=True, exist_ok=True)
    for name, payload in contents.items():
        if gz:
            (folder / f"{name}.gz").write_bytes(gzip.compress(payload))
        else:
            (folder / name).write_bytes(payload)
    return IdxSpec(
        sha256={name: hashlib.sha256(payload).hexdigest() for name, payload in contents.items()},
        num_train=num_train,
        num_test=num_test,
        train_per_class=per_class,
    )


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No Debian folder, no $AECOURSE_DATA, a private cache: the test decides where the data is."""
    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "no-debian")
    monkeypatch.delenv("AECOURSE_DATA", raising=False)
    monkeypatch.setenv("AECOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.mark.parametrize("gz", [True, False])
def test_loads_small_idx_files_from_explicit_root(isolated, gz):
    spec = write_small_fashion_mnist(isolated / "src", gz=gz)
    loaded = load_fashion_mnist(isolated / "src", spec=spec)
    assert loaded.x_train.shape == (30, 1, 28, 28) and loaded.x_train.dtype == torch.float32
    assert loaded.x_test.shape == (10, 1, 28, 28)
    assert loaded.y_train.dtype == torch.int64 and loaded.y_train.tolist() == list(range(10)) * 3
    assert 0.0 <= float(loaded.x_train.min()) and float(loaded.x_train.max()) <= 1.0
    assert len(loaded.class_names) == 10
    assert not (isolated / "cache").exists()  # the verified bytes are parsed where they are: nothing is copied


def test_the_idx_parser_agrees_with_torchvisions_reader(isolated):
    """The loader parses the bytes it verified itself; torchvision's IDX reader is the reference."""
    from torchvision.datasets.mnist import read_image_file, read_label_file

    write_small_fashion_mnist(isolated / "src", gz=False)
    for name, reference in (("train-images-idx3-ubyte", read_image_file), ("t10k-labels-idx1-ubyte", read_label_file)):
        path = isolated / "src" / name
        ndim = 3 if "images" in name else 1
        assert torch.equal(data._parse_idx(path.read_bytes(), path, ndim), reference(str(path)))
    with pytest.raises(DataError, match="not an IDX file of 3-D unsigned bytes"):
        data._parse_idx(b"\x00\x00\x08\x01" + bytes(8), path, 3)
    with pytest.raises(DataError, match="holds 3 values after its header, not 4"):
        data._parse_idx(b"\x00\x00\x08\x01" + (4).to_bytes(4, "big") + bytes(3), path, 1)


def test_pixel_values_survive_the_round_trip(isolated):
    spec = write_small_fashion_mnist(isolated / "src", gz=True)
    raw = (isolated / "src" / "train-images-idx3-ubyte.gz").read_bytes()
    first_image = torch.frombuffer(bytearray(gzip.decompress(raw)[16 : 16 + 784]), dtype=torch.uint8)
    loaded = load_fashion_mnist(isolated / "src", spec=spec)
    assert torch.equal((loaded.x_train[0].flatten() * 255).round().to(torch.uint8), first_image)


def test_environment_variable_and_torchvision_layout(isolated, monkeypatch):
    spec = write_small_fashion_mnist(isolated / "env" / "FashionMNIST" / "raw", gz=False)
    monkeypatch.setenv("AECOURSE_DATA", str(isolated / "env"))
    assert load_fashion_mnist(spec=spec).x_train.shape[0] == 30


def test_debian_folder_is_searched(isolated, monkeypatch):
    spec = write_small_fashion_mnist(isolated / "debian", gz=True)
    monkeypatch.setattr(data, "DEBIAN_DIR", isolated / "debian")
    loaded = load_fashion_mnist(spec=spec, device="cpu")
    assert loaded.source == isolated / "debian"


def test_missing_data_names_the_three_ways(isolated):
    with pytest.raises(DataError) as info:
        load_fashion_mnist()
    message = str(info.value)
    assert "apt-get install dataset-fashion-mnist" in message
    assert "AECOURSE_DATA" in message
    assert "download=True" in message


def test_failed_download_is_a_clear_error(isolated, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    with pytest.raises(DataError, match="download .* failed .*network is unreachable") as caught:
        load_fashion_mnist(download=True)
    assert "On Colab" not in str(caught.value)
    # in a notebook, IPython shows the message alone, without a traceback through the package
    assert caught.value._render_traceback_() == [f"DataError: {caught.value}"]


def test_on_colab_the_data_is_downloaded_and_a_failed_download_says_what_to_do_there(isolated, monkeypatch):
    import torchvision.datasets

    calls = []

    def offline(*args, **kwargs):
        calls.append(kwargs.get("download"))
        raise OSError("HTTP Error 503")

    monkeypatch.setattr(torchvision.datasets, "FashionMNIST", offline)
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab-test")  # what Colab's runtime sets
    with pytest.raises(DataError, match=r"(?s)HTTP Error 503.*On Colab: .*run the cell again.*%env AECOURSE_DATA="):
        load_fashion_mnist()  # no download=True: on Colab it downloads by default
    assert calls == [True]


def test_truncated_file_is_refused_and_nothing_is_left_behind(isolated):
    spec = write_small_fashion_mnist(isolated / "src", gz=True)
    target = isolated / "src" / "train-images-idx3-ubyte.gz"
    target.write_bytes(target.read_bytes()[:-200])
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz is corrupt or truncated"):
        load_fashion_mnist(isolated / "src", spec=spec)
    assert not (isolated / "cache").exists()  # nothing written anywhere


def test_wrong_content_is_refused_by_checksum(isolated):
    spec = write_small_fashion_mnist(isolated / "src", gz=False)
    labels = isolated / "src" / "t10k-labels-idx1-ubyte"
    payload = bytearray(labels.read_bytes())
    payload[-1] = (payload[-1] + 1) % 10
    labels.write_bytes(bytes(payload))
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte does not hold the expected data"):
        load_fashion_mnist(isolated / "src", spec=spec)


def test_wrong_counts_are_refused(isolated):
    spec = write_small_fashion_mnist(isolated / "src", gz=True)
    wrong = IdxSpec(sha256=spec.sha256, num_train=31, num_test=10, train_per_class=3)
    with pytest.raises(DataError, match="expected 31 images"):
        load_fashion_mnist(isolated / "src", spec=wrong)


@pytest.mark.parametrize("how", ["root", "env"])
def test_named_folder_without_the_files_is_an_error_not_a_fallback(isolated, monkeypatch, how):
    spec = write_small_fashion_mnist(isolated / "debian", gz=True)  # good data elsewhere must not be used
    monkeypatch.setattr(data, "DEBIAN_DIR", isolated / "debian")
    write_small_fashion_mnist(isolated / "partial", gz=True)
    (isolated / "partial" / "t10k-labels-idx1-ubyte.gz").unlink()
    if how == "env":
        monkeypatch.setenv("AECOURSE_DATA", str(isolated / "partial"))
    with pytest.raises(DataError) as info:
        load_fashion_mnist(isolated / "partial" if how == "root" else None, spec=spec)
    message = str(info.value)
    assert ("root=" if how == "root" else "$AECOURSE_DATA") in message
    assert f"{isolated / 'partial'} lacks t10k-labels-idx1-ubyte (" in message  # only the missing file
    assert ("drop root=" if how == "root" else "unset AECOURSE_DATA") in message
    assert str(isolated / "debian") not in message


def test_named_folder_that_does_not_exist_says_so(isolated):
    with pytest.raises(DataError, match=f"root= names {isolated / 'typo'} .* does not exist"):
        load_fashion_mnist(isolated / "typo")


@pytest.mark.parametrize("damage", ["truncate", "change"])
def test_damaged_source_is_an_error_even_after_a_good_load(isolated, damage):
    spec = write_small_fashion_mnist(isolated / "src", gz=True)
    assert load_fashion_mnist(isolated / "src", spec=spec).source == isolated / "src"
    damaged = isolated / "src" / "train-labels-idx1-ubyte.gz"
    payload = gzip.decompress(damaged.read_bytes())
    if damage == "truncate":
        damaged.write_bytes(damaged.read_bytes()[:-5])
    else:
        damaged.write_bytes(gzip.compress(payload[:-1] + bytes([(payload[-1] + 1) % 10])))
    expected = "is corrupt or truncated" if damage == "truncate" else "does not hold the expected data"
    with pytest.raises(DataError, match=f"train-labels-idx1-ubyte.gz {expected}"):
        load_fashion_mnist(isolated / "src", spec=spec)


def test_damaged_debian_file_says_to_reinstall(isolated, monkeypatch):
    spec = write_small_fashion_mnist(isolated / "debian", gz=True)
    monkeypatch.setattr(data, "DEBIAN_DIR", isolated / "debian")
    (isolated / "debian" / "t10k-images-idx3-ubyte.gz").write_bytes(b"not gzip")
    with pytest.raises(DataError, match="t10k-images-idx3-ubyte.gz is corrupt.*apt-get install --reinstall"):
        load_fashion_mnist(spec=spec)


def test_source_is_the_cache_when_the_data_come_from_it(isolated):
    spec = write_small_fashion_mnist(isolated / "cache" / "FashionMNIST" / "raw", gz=False)
    loaded = load_fashion_mnist(spec=spec)
    assert loaded.source == isolated / "cache" / "FashionMNIST" / "raw"


@pytest.mark.skipif(
    not (data.DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason="real Fashion-MNIST is not installed here (sudo apt-get install dataset-fashion-mnist)",
)
def test_real_fashion_mnist_from_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.delenv("AECOURSE_DATA", raising=False)
    monkeypatch.setenv("AECOURSE_CACHE", str(tmp_path))
    loaded = load_fashion_mnist()
    assert loaded.source == data.DEBIAN_DIR
    assert loaded.x_train.shape == (60000, 1, 28, 28) and loaded.x_test.shape == (10000, 1, 28, 28)
    assert torch.bincount(loaded.y_train).tolist() == [6000] * 10
    assert torch.bincount(loaded.y_test).tolist() == [1000] * 10
    assert 0.28 < float(loaded.x_train.mean()) < 0.29  # Fashion-MNIST's well-known mean pixel, 0.286


def test_gaussian_noise_is_clipped_seedable_and_optional():
    x = torch.rand(64, 1, 28, 28)
    a = add_gaussian_noise(x, 0.5, generator=torch.Generator().manual_seed(1))
    b = add_gaussian_noise(x, 0.5, generator=torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    raw = add_gaussian_noise(x, 0.5, clip=False, generator=torch.Generator().manual_seed(1))
    assert float(raw.min()) < 0.0 and float(raw.max()) > 1.0
    assert abs(float((raw - x).std()) - 0.5) < 0.01
    for sigma in (-0.1, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="sigma .* must be a finite number >= 0"):
            add_gaussian_noise(x, sigma)
    with pytest.raises(ValueError, match="sigma"):
        add_noise(x, "gaussian", float("nan"))


def test_masking_noise_drops_the_asked_fraction():
    x = torch.ones(100, 784)
    masked = add_masking_noise(x, 0.3, generator=torch.Generator().manual_seed(0))
    assert abs(float((masked == 0).float().mean()) - 0.3) < 0.01
    assert set(masked.unique().tolist()) <= {0.0, 1.0}
    for drop_prob in (-0.1, 1.5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="drop_prob"):
            add_masking_noise(x, drop_prob)


def test_binarize_draws_each_pixel_with_its_grey_level():
    x = torch.rand(20, 1, 28, 28)
    draws = binarize(x.expand(400, *x.shape).contiguous())  # (400, 20, 1, 28, 28): 400 draws of each image
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert float((draws.mean(0) - x).abs().mean()) < 0.03  # E[binarize(x)] = x
    assert torch.equal(binarize(x, torch.Generator().manual_seed(3)), binarize(x, torch.Generator().manual_seed(3)))


@pytest.mark.parametrize("bad", [-0.5, 1.5, float("nan")])
def test_binarize_refuses_grey_levels_outside_zero_one(bad):
    x = torch.rand(4, 784)
    x[0, 0] = bad
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        binarize(x)
