"""Micro-benchmark: one training step of the chapter 5 conv VAE, per layout, precision and transposed-conv layer.

It isolates what the epoch benchmark (run.py) cannot: the cost of the stock `nn.ConvTranspose2d` with
`output_padding` (oneDNN has no kernel for it) against `CroppedConvTranspose2d`, the same layer computed as a crop.

Usage:  python benchmarks/train_step.py [--steps 40] [--batch-size 128]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from aecourse.losses import vae_objective
from aecourse.models import ConvVAE
from aecourse.runtime import native_bfloat16, set_seed


def conv_vae(stock_layer: bool) -> ConvVAE:
    """The chapter 5 VAE; `stock_layer` puts back the article's nn.ConvTranspose2d for the 14 -> 29 layer."""
    model = ConvVAE(latent_dim=10)
    if stock_layer:
        cropped = model.decoder[2]
        stock = nn.ConvTranspose2d(32, 32, 4, 2, 1, 1)
        stock.load_state_dict(cropped.state_dict())
        model.decoder[2] = stock
    return model


def milliseconds_per_step(model: nn.Module, *, channels_last: bool, bf16: bool, steps: int, batch_size: int) -> float:
    set_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    x = torch.rand(batch_size, 1, 28, 28).contiguous(memory_format=fmt)
    optimizer = torch.optim.Adam(model.parameters(), lr=5e-4)
    objective = vae_objective(5.0)

    def step() -> None:
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            loss, _ = objective(model, x)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    for _ in range(5):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    precisions = [False, True] if native_bfloat16("cpu") else [False]
    print(f"CPU, {torch.get_num_threads()} threads, batch {args.batch_size}, mean of {args.steps} steps")
    print("| 14 -> 29 layer | layout | precision | ms / step |\n|---|---|---|---:|")
    for stock_layer in (True, False):
        for channels_last in (False, True):
            for bf16 in precisions:
                ms = milliseconds_per_step(
                    conv_vae(stock_layer),
                    channels_last=channels_last,
                    bf16=bf16,
                    steps=args.steps,
                    batch_size=args.batch_size,
                )
                layer = "nn.ConvTranspose2d (stock)" if stock_layer else "CroppedConvTranspose2d"
                layout = "channels_last" if channels_last else "NCHW"
                print(f"| {layer} | {layout} | {'bf16 autocast' if bf16 else 'float32'} | {ms:.1f} |", flush=True)


if __name__ == "__main__":
    main()
