"""A VAE's decoder for the reader's browser: the decoder as an ONNX file, and the JSON the latent explorer page
(book/explorer.md, Reference part; the models of chapters 3 and 5) needs to put sliders on it.

The ONNX decoder maps z, (B, latent_dim) float32, to x_hat, (B, 784) grey levels clamped to [0, 1]: one layout
for the MLP VAE (already (B, 784)) and the conv VAE ((B, 1, 28, 28), unbounded). The page runs it with
onnxruntime-web. Exporting needs onnx and onnxscript (pinned in requirements.txt).

One model's description (`model_spec`), as the page reads it:
    name, title, label      the file stem, a heading, and the text of its switch (e.g. "β = 2") when it has siblings
    decoder                 the ONNX file, relative to the manifest
    latent_dim              the length of z
    sliders                 [{dim, kl, min, max}], the k dimensions with the largest KL, largest first
    ranges                  [[min, max]] for every dimension (the 2-D map's axes)
    start                   z where the page starts (the prior's mean, zeros)
    examples                [{name, pixels, mu}]: a test image (784 grey levels 0..255, row by row) and its
                            posterior mean, which the page can start from
    points                  optional, for a 2-D code: [[z_1, z_2, label]] of test images, the map's background
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from aecourse.runtime import evaluating

NUM_PIXELS = 28 * 28
INPUT_NAME = "z"
OUTPUT_NAME = "x_hat"
PRIOR_SD = 3.0  # sliders reach at least +-3 prior standard deviations: 99.7% of N(0, 1)
HOW_TO_INSTALL = "Install the exporter's packages: `pip install onnx onnxscript` (requirements.txt pins them)."


@dataclass(frozen=True)
class StartImage:
    """A test image the page can start from: its name (e.g. its class), the image, and its posterior mean mu."""

    name: str
    x: torch.Tensor  # (784,) or (1, 28, 28) in [0, 1]
    mu: torch.Tensor  # (latent_dim,)


class DisplayDecoder(nn.Module):
    """decode(z) as the page shows it: (B, latent_dim) -> (B, 784) grey levels clamped to [0, 1]."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.latent_dim = check_decoder(model)
        self.model = model

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        x_hat = self.model.decode(z)  # (B, 784) for the MLP VAE, (B, 1, 28, 28) for the conv VAE
        return x_hat.reshape(z.shape[0], NUM_PIXELS).clamp(0.0, 1.0)  # -> (B, 784)


def check_decoder(model: object) -> int:
    """The model's latent_dim, after checking that it is an nn.Module with `decode(z)` and an int `latent_dim`."""
    name = type(model).__name__
    if not isinstance(model, nn.Module) or not callable(getattr(model, "decode", None)):
        raise TypeError(
            f"{name} cannot be exported: the explorer needs a torch.nn.Module with a decode(z) method "
            "(a VAE or ConvVAE of aecourse.models), not the whole training wrapper or a state_dict."
        )
    latent_dim = getattr(model, "latent_dim", None)
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise TypeError(f"{name} needs an int attribute latent_dim >= 1 (the length of z); got {latent_dim!r}.")
    return latent_dim


def export_decoder(model: nn.Module, path: str | Path) -> Path:
    """Write the model's decoder, z (B, latent_dim) -> x_hat (B, 784) in [0, 1], to `path` as ONNX.

    Uses the torch.export-based exporter (the TorchScript one is deprecated); the batch dimension stays dynamic.
    The file is written through a temporary file, so a failed export leaves nothing behind.
    """
    decoder = DisplayDecoder(model)
    decoder.training = False  # the wrapper only; `evaluating` below puts the model in eval mode and restores it
    try:
        import onnxscript  # noqa: F401 - the exporter needs it; fail here with a message that says what to install
    except ImportError as exc:
        raise ImportError(f"exporting to ONNX needs onnxscript. {HOW_TO_INSTALL}") from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    z = torch.zeros(2, decoder.latent_dim, device=_device_of(model))  # batch 2: the exporter keeps B symbolic
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".onnx", dir=path.parent)
    os.close(handle)
    try:
        with evaluating(model):
            program = torch.onnx.export(
                decoder,
                (z,),
                input_names=[INPUT_NAME],
                output_names=[OUTPUT_NAME],
                dynamic_shapes={"z": {0: torch.export.Dim("batch")}},
                dynamo=True,
                external_data=False,
                verbose=False,
            )
        program.save(tmp_name)
        os.chmod(tmp_name, 0o644)  # mkstemp makes 0600; the file is served to readers as it is
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


def rank_dimensions(kl_per_dim: torch.Tensor | Sequence[float], k: int) -> list[int]:
    """The k latent dimensions with the largest KL(q(z_j|x) || N(0, 1)), largest first: the ones worth a slider."""
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64).detach().cpu()
    if kl.dim() != 1 or len(kl) == 0 or not bool(torch.isfinite(kl).all()):
        raise ValueError(
            f"kl_per_dim must be a finite 1-D tensor with one KL per latent dimension; got shape {tuple(kl.shape)}. "
            "Average the KL over test images: gaussian_kl(*posterior(model, x)).mean(0) (aecourse.losses, .inference)."
        )
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= len(kl):
        raise ValueError(f"k is the number of sliders and must be an int in 1..{len(kl)} (latent_dim); got {k!r}.")
    order = sorted(range(len(kl)), key=lambda j: (-float(kl[j]), j))  # ties: the lower index first, repeatably
    return order[:k]


def slider_ranges(mu: torch.Tensor, *, quantile: float = 0.005) -> list[tuple[float, float]]:
    """A range per dimension: +-3 prior standard deviations, widened to the middle 99% of the test images'
    posterior means `mu`, (N, latent_dim), where they reach further; ends rounded outwards to 0.1."""
    if mu.dim() != 2 or len(mu) < 2:
        raise ValueError(
            f"mu holds the posterior means of several test images, (N, latent_dim); got {tuple(mu.shape)}."
        )
    q = torch.tensor([quantile, 1.0 - quantile], dtype=torch.float64)
    low, high = torch.quantile(mu.detach().double().cpu(), q, dim=0)  # each (latent_dim,)
    return [
        (math.floor(min(-PRIOR_SD, float(lo)) * 10) / 10, math.ceil(max(PRIOR_SD, float(hi)) * 10) / 10)
        for lo, hi in zip(low, high, strict=True)
    ]


def grey_levels(x: torch.Tensor) -> list[int]:
    """One image, (784,) or (1, 28, 28) in [0, 1], as 784 grey levels 0..255, row by row (what a canvas draws)."""
    if x.numel() != NUM_PIXELS:
        raise ValueError(f"expected one 28x28 image, (784,) or (1, 28, 28); got {tuple(x.shape)}.")
    return [int(v) for v in (x.detach().float().cpu().reshape(NUM_PIXELS).clamp(0, 1) * 255).round().to(torch.uint8)]


def _rounded(values: torch.Tensor, digits: int = 4) -> list[float]:
    return [round(float(v), digits) for v in values.detach().cpu().reshape(-1)]


def model_spec(
    *,
    name: str,
    title: str,
    latent_dim: int,
    kl_per_dim: torch.Tensor,
    k: int,
    mu: torch.Tensor,
    examples: Sequence[StartImage],
    label: str = "",
    points: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict:
    """The page's description of one exported decoder (see the module docstring), with sliders on the k
    dimensions of largest KL. `mu` (N, latent_dim) are test images' posterior means: they set the slider ranges.
    `points` = (mu (N, 2), labels (N,)) draws the test images under a 2-D map."""
    if len(kl_per_dim) != latent_dim or mu.dim() != 2 or mu.shape[1] != latent_dim:
        raise ValueError(
            f"{name}: kl_per_dim ({len(kl_per_dim)} values) and mu {tuple(mu.shape)} must both have latent_dim = "
            f"{latent_dim} dimensions."
        )
    ranges = slider_ranges(mu)
    kl = torch.as_tensor(kl_per_dim, dtype=torch.float64)
    spec: dict = {
        "name": name,
        "title": title,
        "label": label,
        "decoder": f"{name}.onnx",
        "latent_dim": latent_dim,
        "sliders": [
            {"dim": j, "kl": round(float(kl[j]), 4), "min": ranges[j][0], "max": ranges[j][1]}
            for j in rank_dimensions(kl, k)
        ],
        "ranges": [list(r) for r in ranges],
        "start": [0.0] * latent_dim,
        "examples": [],
    }
    for example in examples:
        if example.mu.numel() != latent_dim:
            raise ValueError(
                f"{name}: example {example.name!r} has mu of {example.mu.numel()} values, not {latent_dim}."
            )
        spec["examples"].append({"name": example.name, "pixels": grey_levels(example.x), "mu": _rounded(example.mu)})
    if points is not None:
        z, labels = points
        if latent_dim != 2 or z.dim() != 2 or z.shape[1] != 2 or len(labels) != len(z):
            raise ValueError(f"{name}: points are (mu (N, 2), labels (N,)) for a 2-D code; got {tuple(z.shape)}.")
        spec["points"] = [[*_rounded(row, 3), int(c)] for row, c in zip(z, labels, strict=True)]
    return spec


def export_model(model: nn.Module, out_dir: str | Path, **spec_args: object) -> dict:
    """Export the decoder to out_dir/<name>.onnx and return its `model_spec` (same keyword arguments, but
    latent_dim, which comes from the model). The spec is checked before the (slower) export runs."""
    spec = model_spec(latent_dim=check_decoder(model), **spec_args)  # type: ignore[arg-type]
    export_decoder(model, Path(out_dir) / spec["decoder"])
    return spec


def write_json(data: object, path: str | Path) -> Path:
    """Write `data` as compact JSON through a temporary file (a crash leaves the old file or none)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(data, out, ensure_ascii=False, separators=(",", ":"))
        os.chmod(tmp_name, 0o644)
        os.replace(tmp_name, path)
    finally:
        Path(tmp_name).unlink(missing_ok=True)
    return path
