"""Speed benchmark: the article's training path against aecourse's trainer, same model, same batch size,
same machine, in one run.

(a) the article's path: torchvision's FashionMNIST Dataset with ToTensor, a DataLoader with num_workers=8,
    and a torchbearer Trial (the chapter 5 glue: StateVAE, beta_kl);
(b) aecourse.train.fit on in-memory tensors (the whole set resident on the device), with channels_last for the
    conv model.

Both train the same network with the same loss for one epoch (or --batches batches) from the same seed; the
benchmark reports images per second and seconds per epoch, writes JSON and a Markdown table to
benchmarks/results/, which the book's appendix shows.

Usage:  python benchmarks/run.py [--device cuda] [--batches 100] [--batch-size 128] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from aecourse.data import default_cache_dir, load_fashion_mnist
from aecourse.losses import bce, vae_objective
from aecourse.models import VAE, ConvVAE
from aecourse.runtime import pick_device, set_seed
from aecourse.train import fit

RESULTS = Path(__file__).resolve().parent / "results"


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


def aecourse_path(
    model: nn.Module, beta: float, x_train: torch.Tensor, *, batch_size: int, batches, channels_last: bool
) -> tuple[float, int]:
    """One epoch of aecourse.train.fit over tensors already on the device."""
    x = x_train[: batches * batch_size] if batches else x_train
    _sync(x.device)
    start = time.perf_counter()
    fit(model, vae_objective(beta), x, num_epochs=1, batch_size=batch_size, lr=5e-4, channels_last=channels_last)
    _sync(x.device)
    return time.perf_counter() - start, len(x)


def bernoulli_criterion(x_hat: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The MLP VAE's reconstruction term in the article's path: BCE summed over pixels, per image."""
    return bce(x_hat, x, reduction="per_image")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when present)")
    parser.add_argument("--batch-size", type=int, default=128, help="the article's 128")
    parser.add_argument("--workers", type=int, default=8, help="DataLoader workers in the article's path (8)")
    parser.add_argument("--batches", type=int, default=0, help="time this many batches instead of a full epoch")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    device = pick_device(args.device)
    data = load_fashion_mnist(device=device)
    epoch_images = len(data.x_train)
    runs = []
    cases = [
        ("conv VAE (ch. 5)", lambda: ConvVAE(latent_dim=10), 5.0, None),
        ("MLP VAE (ch. 3)", lambda: VAE(latent_dim=20), 1.0, bernoulli_criterion),
    ]
    for name, build, beta, criterion in cases:
        conv = "conv" in name
        paths = [("article: DataLoader + torchbearer", None)]
        paths += [("aecourse: fit, NCHW", False), ("aecourse: fit, channels_last", True)] if conv else []
        paths += [] if conv else [("aecourse: fit", False)]
        for path, channels_last in paths:
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
                )
            row = {
                "model": name,
                "path": path,
                "images_per_second": images / seconds,
                "seconds_per_epoch": epoch_images * seconds / images,
                "timed_images": images,
            }
            runs.append(row)
            print(f"{name:18} {path:36} {row['images_per_second']:9.0f} img/s {row['seconds_per_epoch']:8.2f} s/epoch")
    for name in {r["model"] for r in runs}:
        base = next(r for r in runs if r["model"] == name and r["path"].startswith("article"))
        for r in runs:
            if r["model"] == name:
                r["speedup_vs_article"] = r["images_per_second"] / base["images_per_second"]

    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {os.cpu_count()} cores"
    result = {
        "device": device_name,
        "device_type": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch_size": args.batch_size,
        "workers_in_article_path": args.workers,
        "timed": f"{args.batches} batches" if args.batches else "one full epoch",
        "machine": platform.machine(),
        "command": "python benchmarks/run.py"
        + (f" --device {args.device}" if args.device else "")
        + (f" --batches {args.batches}" if args.batches else ""),
        "runs": runs,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = device.type
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / f"{stem}.md").write_text(markdown_table(result))
    print(f"wrote {args.out / f'{stem}.json'} and {args.out / f'{stem}.md'}")


def markdown_table(result: dict) -> str:
    """The appendix table: one row per model and path."""
    lines = [
        f"Measured on {result['device']} ({result['machine']}, torch {result['torch']}, {result['threads']} threads), "
        f"batch size {result['batch_size']}, {result['timed']}, with `{result['command']}`.",
        "",
        "| model | path | images / s | s / epoch | speed-up vs article |",
        "|---|---|---:|---:|---:|",
    ]
    for r in result["runs"]:
        lines.append(
            f"| {r['model']} | {r['path']} | {r['images_per_second']:,.0f} | {r['seconds_per_epoch']:.2f} "
            f"| {r['speedup_vs_article']:.2f}x |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
