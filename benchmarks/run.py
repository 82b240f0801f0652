"""Speed benchmark: the article's training path against aecourse's trainer, same model, same batch size,
same machine, in one run.

(a) the article's code as written: its conv VAE with the stock `nn.ConvTranspose2d(..., output_padding=1)`,
    torchvision's FashionMNIST Dataset with ToTensor, a DataLoader with num_workers=8, and a torchbearer Trial
    (the chapter 5 glue: StateVAE, beta_kl); the first row, what a reader who copies the article gets;
(b) the same path with the course's model (`CroppedConvTranspose2d`, the same layer computed on a faster path), so
    that the trainers are compared on one and the same network;
(c) aecourse.train.fit on in-memory tensors (the whole set resident on the device), with channels_last for the
    conv model, and with bfloat16 autocast where the hardware has bfloat16.

Both train the same network with the same loss for one epoch (or --batches batches) from the same seed; the
benchmark reports images per second, seconds per epoch and the test loss after the epoch (same metric for every
path, so a faster path that learns less shows). It also counts the FLOPs of one training step and measures the
machine's matmul peak, which bounds how fast any path can be. It writes JSON and a Markdown table to
benchmarks/results/, which the book's appendix shows.

Usage:  python benchmarks/run.py [--device cuda] [--batches 100] [--rounds 3] [--batch-size 128] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn
from train_step import conv_vae  # benchmarks/ is on the path of a script run from it

from aecourse.data import default_cache_dir, load_fashion_mnist
from aecourse.losses import bce, gaussian_kl, mse, vae_batch_loss
from aecourse.models import VAE
from aecourse.runtime import check_bfloat16, native_bfloat16, pick_device, set_seed
from aecourse.train import evaluate, fit

RESULTS = Path(__file__).resolve().parent / "results"
ARTICLE_PATH = "article: DataLoader + torchbearer"
ARTICLE_CODE = ARTICLE_PATH + ", the article's model"  # the stock layer for the conv VAE; the MLP VAE has none


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def article_path(
    model: nn.Module, criterion: Callable, beta: float, *, device: torch.device, batch_size: int, workers: int, batches
) -> tuple[float, int]:
    """One epoch through Dataset + DataLoader(num_workers) + torchbearer Trial, as the article trains."""
    import warnings

    from torchvision import transforms
    from torchvision.datasets import FashionMNIST

    from aecourse.tb import StateVAE, beta_kl, quiet_trial

    warnings.filterwarnings("ignore", message="This DataLoader will create")  # the article's 8 workers, on purpose
    load_fashion_mnist()  # makes sure the verified raw files are in the cache, where torchvision reads them
    dataset = FashionMNIST(root=str(default_cache_dir()), train=True, transform=transforms.ToTensor())
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, num_workers=workers, pin_memory=device.type == "cuda"
    )
    steps = batches or len(loader)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    import torchbearer

    @torchbearer.callbacks.on_sample
    def reconstruct_the_input(state):  # the article sets state[Y_TRUE] = image inside its forward()
        state[torchbearer.Y_TRUE] = state[torchbearer.X]

    callbacks = [reconstruct_the_input, beta_kl(beta)]
    trial = quiet_trial(StateVAE(model), optimizer, criterion, callbacks=callbacks, device=device)
    trial.with_generators(train_generator=loader, train_steps=steps)
    _sync(device)
    start = time.perf_counter()
    trial.run(1)
    _sync(device)
    return time.perf_counter() - start, min(steps * batch_size, len(dataset))


GAUSSIAN_CONSTANT = 0.5 * 784 * math.log(math.pi)  # -log N(x; x_hat, I/2) = ||x - x_hat||^2 + this


def course_objective(beta: float, *, mixed_precision: bool = False):
    """The course's loss for `fit`, the -ELBO with beta on the KL: for the MLP VAE with its Bernoulli decoder (ch. 3),
    for the conv VAE with a Gaussian decoder of variance 1/2, whose -log p(x|z) is chapter 5's squared error plus
    GAUSSIAN_CONSTANT (the same gradients). Under bfloat16 autocast when `mixed_precision` (weights, gradients and
    Adam stay float32)."""

    def loss(model: nn.Module, x: torch.Tensor):
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=mixed_precision):
            if isinstance(model, VAE):
                return vae_batch_loss(model, x, beta)
            x_hat, mu, logvar = (t.float() for t in model(x))
        nll = (mse(x_hat, x, per_image=True) + GAUSSIAN_CONSTANT).mean()
        kl = gaussian_kl(mu, logvar).sum(1).mean()
        return nll + beta * kl, {"reconstruction": nll, "kl": kl}

    return loss


def aecourse_path(
    model: nn.Module,
    beta: float,
    x_train: torch.Tensor,
    *,
    batch_size: int,
    batches,
    channels_last: bool,
    mixed_precision: bool,
) -> tuple[float, int]:
    """One epoch of aecourse.train.fit over tensors already on the device."""
    x = x_train[: batches * batch_size] if batches else x_train
    if mixed_precision:
        check_bfloat16(x.device, who="the bf16 autocast path")
    _sync(x.device)
    start = time.perf_counter()
    fit(
        model,
        course_objective(beta, mixed_precision=mixed_precision),
        x,
        num_epochs=1,
        batch_size=batch_size,
        lr=5e-4,
        channels_last=channels_last,
    )
    _sync(x.device)
    return time.perf_counter() - start, len(x)


def flops_per_image(model: nn.Module, beta: float, batch_size: int, device: torch.device) -> float:
    """FLOPs of one training step (forward, loss, backward) per image, counted by torch's FlopCounterMode."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(batch_size, 1, 28, 28, device=device)
    with FlopCounterMode(display=False) as counter:
        loss, _ = course_objective(beta)(model, x)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / batch_size


def matmul_peak(device: torch.device, dtype: torch.dtype, n: int = 2048, repeats: int = 10) -> float:
    """The machine's dense matmul throughput in FLOP/s: a ceiling for any training path on it."""
    a = torch.rand(n, n, device=device, dtype=dtype)
    b = torch.rand(n, n, device=device, dtype=dtype)
    for _ in range(3):
        a @ b
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


def bernoulli_criterion(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The MLP VAE's reconstruction term in the article's path: BCE summed over pixels, per image."""
    return bce(x_hat, x, per_image=True).mean()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=128, help="the article's 128")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers in the article's path (8)")
    parser.add_argument("--batches", type=int, default=0, help="time this many batches instead of a full epoch")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; each path reports its median")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.rounds < 1 or args.batches < 0:
        parser.error(f"--rounds must be >= 1 and --batches >= 0; got {args.rounds} and {args.batches}.")

    device = pick_device(args.device)
    data = load_fashion_mnist(device=device)
    epoch_images = len(data.x_train)
    bf16 = native_bfloat16(device)
    peaks = {"float32": matmul_peak(device, torch.float32)}
    if bf16:
        peaks["bfloat16"] = matmul_peak(device, torch.bfloat16)
    print("matmul peak: " + ", ".join(f"{k} {v / 1e9:.0f} GFLOP/s" for k, v in peaks.items()))
    cases = [
        ("conv VAE (ch. 5)", lambda: conv_vae(stock_layer=False), 5.0, None),
        ("MLP VAE (ch. 3)", lambda: VAE(latent_dim=20), 1.0, bernoulli_criterion),
    ]
    flops = {}
    jobs = []  # (model name, build, beta, criterion, label, channels_last, mixed_precision); None: the article's
    for name, build, beta, criterion in cases:
        flops[name] = flops_per_image(build().to(device), beta, args.batch_size, device)
        if "conv" in name:
            jobs.append((name, lambda: conv_vae(stock_layer=True), beta, criterion, ARTICLE_CODE, None, False))
            paths = [(ARTICLE_PATH + ", cropped layer", None, False), ("aecourse: fit, NCHW", False, False)]
            paths += [("aecourse: fit, channels_last", True, False)]
            paths += [("aecourse: fit, channels_last, bf16 autocast", True, True)] if bf16 else []
        else:
            paths = [(ARTICLE_CODE, None, False), ("aecourse: fit", False, False)]
            paths += [("aecourse: fit, bf16 autocast", False, True)] if bf16 else []
        jobs += [(name, build, beta, criterion, *path) for path in paths]

    # Rounds interleave the paths, so that a slow spell of a shared machine hits every path alike; each path's
    # figure is its median round.
    timings: dict[tuple[str, str], list[tuple[float, int]]] = {}
    test_losses: dict[tuple[str, str], float] = {}
    for round_index in range(args.rounds):
        for name, build, beta, criterion, path, channels_last, mixed_precision in jobs:
            set_seed(0)
            model = build().to(device)
            if channels_last is None:
                from aecourse.tb import squared_error

                seconds, images = article_path(
                    model,
                    criterion or squared_error,
                    beta,
                    device=device,
                    batch_size=args.batch_size,
                    workers=args.workers,
                    batches=args.batches,
                )
            else:
                seconds, images = aecourse_path(
                    model,
                    beta,
                    data.x_train,
                    batch_size=args.batch_size,
                    batches=args.batches,
                    channels_last=channels_last,
                    mixed_precision=mixed_precision,
                )
            timings.setdefault((name, path), []).append((seconds, images))
            if round_index == 0:  # every round trains the same model from the same seed
                model = model.to(memory_format=torch.contiguous_format)
                test_losses[name, path] = evaluate(model, course_objective(beta), data.x_test)["loss"]
            print(
                f"round {round_index + 1}/{args.rounds}  {name:18} {path:44} {images / seconds:9.0f} img/s "
                f"{epoch_images * seconds / images:8.2f} s/epoch  test loss {test_losses[name, path]:.2f}",
                flush=True,
            )
    runs = []
    for (name, path), rounds in timings.items():
        seconds, images = sorted(rounds)[len(rounds) // 2]
        runs.append(
            {
                "model": name,
                "path": path,
                "images_per_second": images / seconds,
                "seconds_per_epoch": epoch_images * seconds / images,
                "seconds_per_epoch_each_round": [epoch_images * t / n for t, n in rounds],
                "timed_images": images,
                "gflops_per_second": images * flops[name] / seconds / 1e9,
                "test_loss": test_losses[name, path],
            }
        )
    add_speedups(runs)

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    result = {
        "device": device_name,
        "device_type": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "workers_in_article_path": args.workers,
        "timed": (f"{args.batches} batches" if args.batches else "one full epoch")
        + f", median of {args.rounds} interleaved rounds",
        "machine": platform.machine(),
        "command": "python benchmarks/run.py"
        + (f" --device {args.device}" if args.device else "")
        + (f" --batches {args.batches}" if args.batches else "")
        + (f" --rounds {args.rounds}" if args.rounds != 3 else ""),
        "matmul_peak_gflops": {k: v / 1e9 for k, v in peaks.items()},
        "train_step_mflops_per_image": {k: v / 1e6 for k, v in flops.items()},
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = device.type
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown_table(result))
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")


def add_speedups(runs: list[dict]) -> None:
    """Each run's speed-up against the article's code, and against the article's trainer on the same network (the
    cropped layer; for the MLP VAE, which has no such layer, the article's code itself)."""
    for name in {r["model"] for r in runs}:
        article = next(r for r in runs if r["model"] == name and r["path"] == ARTICLE_CODE)
        cropped = ARTICLE_PATH + ", cropped layer"
        same_layer = next((r for r in runs if r["model"] == name and r["path"] == cropped), article)
        for r in runs:
            if r["model"] == name:
                r["speedup_vs_article"] = r["images_per_second"] / article["images_per_second"]
                r["speedup_vs_same_layer"] = r["images_per_second"] / same_layer["images_per_second"]


def markdown_table(result: dict) -> str:
    """The appendix table: one row per model and path."""
    peaks = ", ".join(f"{k} {v:,.0f} GFLOP/s" for k, v in result["matmul_peak_gflops"].items())
    lines = [
        f"Measured on {result['device']} ({result['machine']}, torch {result['torch']}, {result['threads']} threads), "
        f"batch size {result['batch_size']}, {result['timed']}, with `{result['command']}`. "
        f"Test loss: the model's loss on the 10,000 test images after the timed training (nats per image).",
        "",
        "| model | path | images / s | s / epoch | s / epoch, each round | GFLOP/s | test loss "
        "| speed-up vs the article's code | vs the same layer |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in result["runs"]:
        each_round = " / ".join(f"{t:.1f}" for t in r["seconds_per_epoch_each_round"])
        lines.append(
            f"| {r['model']} | {r['path']} | {r['images_per_second']:,.0f} | {r['seconds_per_epoch']:.2f} "
            f"| {each_round} | {r['gflops_per_second']:.1f} | {r['test_loss']:.1f} | {r['speedup_vs_article']:.2f}x "
            f"| {r['speedup_vs_same_layer']:.2f}x |"
        )
    lines += ["", f"Dense matmul peak of the same machine: {peaks}. One training step costs"]
    steps = [f"{v:.1f} MFLOP per image for the {k}" for k, v in result["train_step_mflops_per_image"].items()]
    lines[-1] += " " + " and ".join(steps) + " (forward, loss and backward, counted by `FlopCounterMode`)."
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
