"""Micro-benchmark: one training step of the chapter 5 conv VAE, per transposed-conv layer, layout and precision.

It isolates what the epoch benchmark (run.py) cannot: the cost of the stock `nn.ConvTranspose2d` with
`output_padding` (which PyTorch runs outside oneDNN) against `CroppedConvTranspose2d`, the same layer computed as a
crop; and, with --compile, what torch.compile adds on this machine. Writes benchmarks/results/train_step_cpu.md.

Usage:  python benchmarks/train_step.py [--steps 40] [--batch-size 128] [--compile]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from torch import nn

from aecourse.losses import gaussian_kl, mse
from aecourse.models import ConvVAE, CroppedConvTranspose2d
from aecourse.runtime import native_bfloat16, set_seed

RESULTS = Path(__file__).resolve().parent / "results"


def conv_vae(stock_layer: bool) -> ConvVAE:
    """The chapter 5 VAE, with the article's nn.ConvTranspose2d for the 14 -> 29 layer (`stock_layer`) or, with the
    same weights, the CroppedConvTranspose2d its stored models were trained with."""
    model = ConvVAE(latent_dim=10)
    if not stock_layer:
        cropped = CroppedConvTranspose2d(32, 32, 4, 2, 1, 1)
        cropped.load_state_dict(model.decoder[2].state_dict())
        model.decoder[2] = cropped
    return model


def milliseconds_per_step(
    model: nn.Module, *, channels_last: bool, bf16: bool, compile_model: bool, steps: int, batch_size: int
) -> tuple[float, float]:
    """Mean time of a training step, and the seconds the warm-up took (where torch.compile pays its compile)."""
    set_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    x = torch.rand(batch_size, 1, 28, 28).contiguous(memory_format=fmt)

    def loss_of(images: torch.Tensor) -> torch.Tensor:  # chapter 5's objective, beta = 5
        x_hat, mu, logvar = (t.float() for t in model(images))
        return mse(x_hat, images, per_image=True).mean() + 5.0 * gaussian_kl(mu, logvar).sum(1).mean()

    loss_fn = torch.compile(loss_of) if compile_model else loss_of  # the whole forward pass and loss, compiled

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss = loss_fn(x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    start = time.perf_counter()
    for _ in range(5):
        step()
    warm_up = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3, warm_up


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--compile", action="store_true", help="add torch.compile rows (compiles for minutes)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    if args.steps < 1 or args.batch_size < 1:
        parser.error(f"--steps and --batch-size must be >= 1; got {args.steps} and {args.batch_size}.")
    precisions = [False, True] if native_bfloat16("cpu") else [False]
    configs = [(stock, cl, bf16, False) for stock in (True, False) for cl in (False, True) for bf16 in precisions]
    if args.compile:
        configs += [(False, True, bf16, True) for bf16 in precisions]
    lines = [
        f"Measured on CPU ({torch.get_num_threads()} threads, torch {torch.__version__}), batch {args.batch_size}, "
        f"mean of {args.steps} steps after 5 warm-up steps, with `python benchmarks/train_step.py"
        + (" --compile" if args.compile else "")
        + "`. Stock: the article's `nn.ConvTranspose2d(32, 32, 4, 2, 1, 1)`; cropped: `CroppedConvTranspose2d`.",
        "",
        "| 14 → 29 layer | layout | precision | compiled | ms / step | warm-up, s |",
        "|---|---|---|---|---:|---:|",
    ]
    print(lines[0])
    rows = []
    for stock, channels_last, bf16, compile_model in configs:
        ms, warm_up = milliseconds_per_step(
            conv_vae(stock),
            channels_last=channels_last,
            bf16=bf16,
            compile_model=compile_model,
            steps=args.steps,
            batch_size=args.batch_size,
        )
        layer = "stock" if stock else "cropped"
        layout = "channels_last" if channels_last else "NCHW"
        precision = "bf16 autocast" if bf16 else "float32"
        lines.append(
            f"| {layer} | {layout} | {precision} | {'yes' if compile_model else 'no'} | {ms:.1f} | {warm_up:.1f} |"
        )
        rows.append(
            {
                "layer": layer,
                "layout": layout,
                "precision": precision,
                "compiled": compile_model,
                "ms_per_step": ms,
                "warm_up_seconds": warm_up,
            }
        )
        print(lines[-1], flush=True)
    args.out.mkdir(parents=True, exist_ok=True)
    out = args.out / "train_step_cpu.md"
    out.write_text("\n".join(lines) + "\n")
    record = {
        "command": "python benchmarks/train_step.py" + (" --compile" if args.compile else ""),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "steps": args.steps,
        "rows": rows,
    }
    (args.out / "train_step_cpu.json").write_text(json.dumps(record, indent=1) + "\n")
    print(f"wrote {out} and its .json")


if __name__ == "__main__":
    main()
