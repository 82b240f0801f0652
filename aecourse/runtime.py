"""Where and how long the course runs: seeding, the device, the training budget, progress bars, and the one
context manager that runs a trained model for a measurement (eval mode, no gradients, a seeded private stream).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import numpy as np
import torch
from torch import nn

T = TypeVar("T")

# The switches a reader sets (the README's "Switches" table documents them):
# AECOURSE_RETRAIN: load the stored models (unset or 0), retrain them all (1), or load what is stored and matches the
#   chapter's config and train and store the rest ("missing": what `make checkpoints` runs).
# AECOURSE_BUDGET: full, the budget each chapter calls right, whose models are stored as checkpoints; short, a few
#   CPU minutes per chapter, trained on the spot; smoke, seconds, to check that training cells run (CI).
# AECOURSE_DEVICE: the device to run on (cpu, cuda, cuda:1), instead of CUDA where there is one.
BUDGET_ENV = "AECOURSE_BUDGET"
RETRAIN_ENV = "AECOURSE_RETRAIN"
DEVICE_ENV = "AECOURSE_DEVICE"
BUDGETS = ("full", "short", "smoke")
RETRAIN_MODES = {"": "no", "0": "no", "no": "no", "false": "no", "1": "all", "yes": "all", "true": "all"}
RETRAIN_MODES["missing"] = "missing"


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices) so that a chapter's numbers repeat on the same machine."""
    from aecourse.checks import check_int

    check_int("set_seed: seed", seed, minimum=0, maximum=2**32 - 1)  # NumPy's range
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)


def pick_device(prefer: str | None = None) -> torch.device:
    """CUDA when present (Colab), else the CPU; `AECOURSE_DEVICE` or `prefer` override (benchmarks, strict tests)."""
    wanted = prefer or os.environ.get(DEVICE_ENV, "").strip()
    where = f"prefer={prefer!r}" if prefer else f"{DEVICE_ENV}={wanted!r}"
    if wanted:
        try:
            device = torch.device(wanted)
        except RuntimeError as exc:
            raise ValueError(f"{where} is not a device; use cpu, cuda or cuda:N. ({exc})") from None
        if device.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(
                f"{where} asks for a CUDA GPU, but torch sees none here. Unset {DEVICE_ENV} (or pass prefer=None) "
                "to run on the CPU."
            )
        if device.type not in ("cpu", "cuda"):
            raise ValueError(f"{where}: the course runs on cpu or cuda, not {device.type}.")
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


def check_bfloat16(device: torch.device | str, *, who: str) -> None:
    """Refuse bfloat16 autocast where the hardware lacks it: emulated, it is slower than float32."""
    if not native_bfloat16(device):
        raise ValueError(
            f"{who} asks for bfloat16 autocast, but {device} has no hardware bfloat16 (it needs an AVX512-BF16/AMX "
            "CPU or an Ampere-or-newer GPU), where it would be slower than float32. Pass "
            "mixed_precision=native_bfloat16(device) to use it only where it pays."
        )


def on_colab() -> bool:
    """True inside Google Colab, where the setup cell installs what is missing."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


# The runtime that CI's Colab job (.ci/colab) runs every chapter on: Colab's Python and its preinstalled packages
# (tests/test_packaging.py holds this to the job's constraints file).
COLAB_TESTED = {"Python": "3.13", "torch": "2.11", "torchvision": "0.26", "numpy": "2.1"}


def runtime_note() -> str:
    """One line on the runtime at hand beside the one CI tests for Colab: what the Colab setup cell prints."""
    from importlib.metadata import version

    import numpy
    import torchvision

    here = f"Python {sys.version.split()[0]}, torch {torch.__version__}, torchvision {torchvision.__version__}, "
    here += f"numpy {numpy.__version__}"
    gpu = f"GPU: {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "no GPU (CPU runtime)"
    tested = ", ".join(f"{name} {v}" for name, v in COLAB_TESTED.items())
    return (
        f"aecourse {version('aecourse')} on {here}; {gpu}. CI runs every chapter on Colab's runtime as of its last "
        f"check: {tested}."
    )


def check_versions(package: str = "aecourse") -> list[str]:
    """Print the runtime note, then compare the installed versions with the package's declared ranges and print
    what falls outside (the Colab setup cell calls it: Colab's preinstalled torch is used as it is, so a runtime
    older than the range is said plainly instead of failing later in an obscure way). Returns the problems found."""
    from importlib.metadata import PackageNotFoundError, requires, version

    from packaging.requirements import Requirement

    print(runtime_note())

    problems = []
    for text in requires(package) or []:
        requirement = Requirement(text)
        if requirement.marker is not None:  # an optional extra: not required here
            continue
        try:
            installed = version(requirement.name)
        except PackageNotFoundError:
            problems.append(f"{requirement.name} is not installed; {package} needs {requirement}.")
            continue
        if not requirement.specifier.contains(installed, prereleases=True):
            problems.append(f"{requirement.name} {installed} is installed; {package} needs {requirement}.")
    for problem in problems:
        print(f"version problem: {problem} Install a matching version (pip install '{package}') and restart.")
    return problems


def budget() -> str:
    """The training budget, from `AECOURSE_BUDGET`: "full" (the default), "short" or "smoke"."""
    name = os.environ.get(BUDGET_ENV, "full").strip().lower() or "full"
    if name not in BUDGETS:
        raise ValueError(f"{BUDGET_ENV}={name!r} is not a budget; use one of {', '.join(BUDGETS)}.")
    return name


def at_budget(config: T, *, short: Mapping[str, Any], smoke: Mapping[str, Any]) -> T:
    """A chapter's config at the budget `AECOURSE_BUDGET` asks for: `config` itself at the full budget (the one its
    stored models were trained with), else `config` with the short or smoke run's fields replaced."""
    changes = {"full": {}, "short": short, "smoke": smoke}[budget()]
    fields = {f.name for f in dataclasses.fields(config)}
    unknown = sorted(set(changes) - fields)
    if unknown:
        raise TypeError(f"at_budget: {type(config).__name__} has no field(s) {unknown} to change.")
    return dataclasses.replace(config, **changes)


def retrain_mode() -> str:
    """What `AECOURSE_RETRAIN` asks for: "no" (load the stored models), "all" (train them all) or "missing" (load
    what is stored and matches, train and store the rest: `make checkpoints`)."""
    value = os.environ.get(RETRAIN_ENV, "").strip().lower()
    if value not in RETRAIN_MODES:
        raise ValueError(
            f"{RETRAIN_ENV}={value!r} is not a setting: use 1 to retrain every model, 0 (or leave it unset) to load "
            "the stored ones, or 'missing' to load what is stored and train the rest."
        )
    return RETRAIN_MODES[value]


def retrain() -> bool:
    """True when `AECOURSE_RETRAIN=1`: train the full-budget models instead of loading their checkpoints."""
    return retrain_mode() == "all"


def progress(iterable: Iterable[T], *, total: int | None = None, desc: str = "", leave: bool = False) -> Iterable[T]:
    """A tqdm bar in a terminal, or on the terminal that started a notebook's kernel under `make checkpoints`
    (`AECOURSE_RETRAIN=missing`); nothing in a notebook, so that stored outputs stay clean."""
    forced = retrain_mode() == "missing"
    stream = sys.__stderr__ if forced else sys.stderr
    if not (forced or (stream is not None and stream.isatty())):
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, total=total, desc=desc, leave=leave, file=stream, dynamic_ncols=True)


@contextmanager
def seeded(seed: int) -> Iterator[None]:
    """Seed Python, NumPy and torch inside the block; outside it their streams are as they were (ch. 4)."""
    python_state, numpy_state = random.getstate(), np.random.get_state()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            set_seed(seed)
            yield
    finally:
        random.setstate(python_state)
        np.random.set_state(numpy_state)


def _device_of(model: nn.Module) -> torch.device:
    return next((p.device for p in model.parameters()), torch.device("cpu"))


@contextmanager
def evaluating(model: nn.Module, *, seed: int | None = None, gradients: bool = False) -> Iterator[nn.Module]:
    """Run `model` for a measurement: eval mode, no gradients and, given a seed, a private seeded random stream
    (a VAE's z repeats from run to run; the caller's stream is untouched). All restored on exit, errors included.
    `gradients=True` keeps autograd on, for a measurement of gradients through a model read without dropout."""
    if seed is not None:
        from aecourse.checks import check_int

        check_int("evaluating: seed", seed)
    was_training = model.training
    device = _device_of(model)
    devices = [device] if device.type == "cuda" else []
    model.eval()
    try:
        with torch.set_grad_enabled(gradients), torch.random.fork_rng(devices=devices, enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            yield model
    finally:
        model.train(was_training)
