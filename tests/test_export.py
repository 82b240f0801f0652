"""tools/onnx_export.py: the ONNX decoders against torch (onnxruntime in Python), the page's JSON, and bad input."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from aecourse.models import VAE, ConvVAE
from tools.onnx_export import (
    DisplayDecoder,
    StartImage,
    export_decoder,
    export_model,
    grey_levels,
    model_spec,
    rank_dimensions,
    slider_ranges,
)

TOLERANCE = 1e-4  # max abs difference of grey levels in [0, 1], torch against onnxruntime


def _model(kind: str) -> nn.Module:
    torch.manual_seed(0)
    model = {"vae_2": lambda: VAE(latent_dim=2), "vae_20": lambda: VAE(latent_dim=20), "conv_10": ConvVAE}[kind]()
    return model.eval()


@pytest.fixture(scope="module", params=["vae_2", "vae_20", "conv_10"])
def exported(request, tmp_path_factory):
    ort = pytest.importorskip("onnxruntime", reason="pip install onnxruntime (pinned in requirements.txt)")
    pytest.importorskip("onnxscript", reason="pip install onnx onnxscript (pinned in requirements.txt)")
    model = _model(request.param)
    path = export_decoder(model, tmp_path_factory.mktemp("onnx") / f"{request.param}.onnx")
    return model, ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


@pytest.mark.parametrize("batch", [1, 16])
def test_onnx_decoder_matches_torch(exported, batch):
    model, session = exported
    z = 2.0 * torch.randn(batch, model.latent_dim, generator=torch.Generator().manual_seed(batch))
    (x_onnx,) = session.run(None, {"z": z.numpy()})
    with torch.no_grad():
        x_torch = model.decode(z).reshape(batch, 784).clamp(0, 1)
    assert x_onnx.shape == (batch, 784)
    assert 0.0 <= x_onnx.min() and x_onnx.max() <= 1.0
    assert float((torch.from_numpy(x_onnx) - x_torch).abs().max()) <= TOLERANCE


def test_display_decoder_is_the_clamped_flat_decode():
    model = _model("conv_10")
    z = 3.0 * torch.randn(4, 10)
    with torch.no_grad():
        assert torch.equal(DisplayDecoder(model)(z), model.decode(z).reshape(4, 784).clamp(0, 1))


def test_rank_dimensions_largest_kl_first():
    assert rank_dimensions(torch.tensor([0.1, 3.0, 0.0, 1.5, 3.0]), 3) == [1, 4, 3]  # ties: lower index first
    assert rank_dimensions([0.5, 0.2], 2) == [0, 1]


@pytest.mark.parametrize("k", [0, 6, -1, 2.0, True])
def test_rank_dimensions_refuses_a_bad_k(k):
    with pytest.raises(ValueError, match="k is the number of sliders"):
        rank_dimensions(torch.ones(5), k)


def test_rank_dimensions_refuses_bad_kl():
    with pytest.raises(ValueError, match="one KL per latent dimension"):
        rank_dimensions(torch.ones(2, 5), 1)
    with pytest.raises(ValueError, match="finite"):
        rank_dimensions(torch.tensor([1.0, float("nan")]), 1)


class _NoDecode(nn.Module):
    latent_dim = 2


class _NoLatentDim(nn.Module):
    def decode(self, z):
        return z


@pytest.mark.parametrize(
    ("model", "message"),
    [(_NoDecode(), "decode"), (_NoLatentDim(), "latent_dim"), ({"fc3.weight": torch.ones(1)}, "state_dict")],
)
def test_export_refuses_what_has_no_decoder(model, message, tmp_path):
    with pytest.raises(TypeError, match=message):
        export_decoder(model, tmp_path / "x.onnx")
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_slider_ranges_cover_the_prior_and_the_codes():
    mu = torch.cat([torch.zeros(500, 2), torch.tensor([[5.0, 0.0]]).expand(500, 2)])  # dim 0 reaches 5
    (low0, high0), (low1, high1) = slider_ranges(mu)
    assert (low0, high0) == (-3.0, 5.0) and (low1, high1) == (-3.0, 3.0)


def test_grey_levels():
    x = torch.zeros(1, 28, 28)
    x[0, 0, 1] = 1.0
    x[0, 27, 27] = 0.5
    levels = grey_levels(x)
    assert len(levels) == 784 and levels[1] == 255 and levels[-1] == 128 and levels[0] == 0
    with pytest.raises(ValueError, match="one 28x28 image"):
        grey_levels(torch.zeros(2, 784))


def _spec_args(latent_dim: int, k: int) -> dict:
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(3, 1, 28, 28, generator=generator)
    return {
        "name": "m",
        "title": "A model",
        "kl_per_dim": torch.arange(latent_dim, dtype=torch.float32),  # the last dimension has the largest KL
        "k": k,
        "mu": torch.randn(100, latent_dim, generator=generator),
        "examples": [StartImage(f"image {i}", images[i], torch.full((latent_dim,), float(i))) for i in range(3)],
    }


def test_model_spec_has_what_the_page_needs():
    spec = json.loads(json.dumps(model_spec(latent_dim=20, **_spec_args(20, 8))))  # survives JSON
    assert spec["decoder"] == "m.onnx" and spec["latent_dim"] == 20 and spec["title"] == "A model"
    assert [s["dim"] for s in spec["sliders"]] == list(range(19, 11, -1))
    for slider in spec["sliders"]:
        assert slider["min"] <= -3.0 and slider["max"] >= 3.0 and slider["kl"] == slider["dim"]
    assert len(spec["ranges"]) == 20 and spec["start"] == [0.0] * 20
    assert [e["name"] for e in spec["examples"]] == ["image 0", "image 1", "image 2"]
    for example in spec["examples"]:
        assert len(example["pixels"]) == 784 and all(0 <= p <= 255 for p in example["pixels"])
        assert len(example["mu"]) == 20
    assert "points" not in spec


def test_model_spec_points_of_a_2d_map():
    labels = torch.arange(100) % 10
    spec = model_spec(latent_dim=2, points=(torch.zeros(100, 2), labels), **_spec_args(2, 2))
    assert len(spec["points"]) == 100 and spec["points"][3] == [0.0, 0.0, 3]
    with pytest.raises(ValueError, match="2-D code"):
        model_spec(latent_dim=20, points=(torch.zeros(100, 20), labels), **_spec_args(20, 2))


def test_model_spec_refuses_mismatched_inputs():
    args = _spec_args(20, 8)
    with pytest.raises(ValueError, match="latent_dim = 10"):
        model_spec(latent_dim=10, **args)
    args["examples"] = [StartImage("short", torch.zeros(784), torch.zeros(3))]
    with pytest.raises(ValueError, match="'short' has mu of 3 values"):
        model_spec(latent_dim=20, **args)


def test_export_model_checks_k_before_exporting(tmp_path):
    with pytest.raises(ValueError, match="k is the number of sliders"):
        export_model(_model("vae_20"), tmp_path, **_spec_args(20, 21))
    assert not list(tmp_path.iterdir())
