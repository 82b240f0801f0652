"""Where the course runs: seeding, device choice and the CPU/GPU budget, decided in one place."""

from __future__ import annotations

import os
import random
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import numpy as np
import torch

T = TypeVar("T")


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a chapter's numbers repeat on the same machine."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (Colab), else the CPU; `AECOURSE_DEVICE` or `prefer` override for benchmarks."""
    wanted = prefer or os.environ.get("AECOURSE_DEVICE")
    if wanted:
        device = torch.device(wanted)
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"device {wanted!r} was asked for, but torch sees no CUDA GPU here. "
                "Unset AECOURSE_DEVICE (or pass prefer=None) to run on the CPU."
            )
        return device
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def native_bfloat16(device: torch.device | str) -> bool:
    """True where bfloat16 matmuls and convolutions run in hardware (AVX512-BF16 or AMX CPUs, Ampere+ GPUs).

    Elsewhere bfloat16 is emulated and slower than float32, so mixed precision only pays where this holds.
    """
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported(including_emulation=False)
    if device.type == "cpu":
        return torch.backends.mkldnn.is_available() and bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def on_colab() -> bool:
    """True inside Google Colab, where the setup cell installs what is missing."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def by_device(device: torch.device | str, *, cpu: T, cuda: T) -> T:
    """Pick a budget by device: the short CPU run that CI and the built book use, or the longer GPU run."""
    return cuda if torch.device(device).type == "cuda" else cpu


@contextmanager
def seeded_eval(model: torch.nn.Module, device: torch.device | str, seed: int) -> Iterator[None]:
    """Eval mode and a private, seeded random stream for a measurement, both restored afterwards.

    The random draws of a VAE's z then repeat from run to run, and the caller's own stream is left as it was.
    """
    was_training = model.training
    model.eval()
    devices = [device] if torch.device(device).type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        model.train(was_training)
