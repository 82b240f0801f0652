"""Chapter 4's evidence (VAE vs GAN): the measures of generated images and of training runs, one function per
section of the chapter that measures, glues the numbers its prose quotes, checks the claims its sentences make and
returns the table or figure the chapter shows, and the verdict table that sets the article's claims against the
measurements. The chapter's hidden cells are short calls into this module; the GAN, its losses and its training
loop are taught in the chapter (aecourse.gan holds the same code)."""

from __future__ import annotations

import ast
import inspect
import math
import textwrap
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

import matplotlib.pyplot as plt
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter
from torch import nn

from aecourse import gan as gan_module
from aecourse import losses, models, runtime
from aecourse.checkpoints import Trained, load_or_train, reused
from aecourse.checks import check_codes, check_images, check_int, check_probability, check_tensor
from aecourse.data import FashionMNIST
from aecourse.evidence.classifier import accuracy
from aecourse.evidence.figures import class_bars, plot_panels
from aecourse.evidence.metrics import active_units, frechet_distance
from aecourse.evidence.report import (
    ALPHA,
    Comparison,
    Table,
    claim,
    compare,
    comparison_rows,
    glue,
    glue_markdown,
    mean_sd,
    pm,
    round_outward,
    table,
)
from aecourse.gan import GAN, generator_loss, train_gan
from aecourse.inference import batched, decode, encode, fit_gaussian, generate, interpolate, predict, prior_codes
from aecourse.losses import reconstruction_loss, vae_batch_loss
from aecourse.models import VAE, Autoencoder, count_parameters
from aecourse.plot import STYLE, finish, image_rows
from aecourse.runtime import budget, evaluating, retrain, seeded
from aecourse.train import History, fit

Runs = Mapping[str, Sequence[Trained]]  # "VAE" and "GAN": one trained run per seed, in the order of the seeds

# The chapter's Config holds the full budget of its models; the short and smoke runs change these fields.
SHORT = {"num_epochs": 5, "seeds": (0, 1)}
SMOKE = {"num_epochs": 2, "seeds": (0,), "train_size": 2_000, "track_samples": 500}


def at_budget(config: Any) -> Any:
    """Chapter 4's config at the budget AECOURSE_BUDGET asks for (the full one unless it says short or smoke)."""
    return runtime.at_budget(config, short=SHORT, smoke=SMOKE)


@dataclass(frozen=True)
class Measures:
    """How chapter 4 measures its models: how many samples, which epochs count as the end, the grid of short
    runs, the label counts. No checkpoint records these, so they live here rather than in the chapter's Config."""

    recent_epochs: int = 10  # "near the end": the last epochs compared
    num_samples: int = 10_000  # per model: Fréchet distance, class histogram
    grid_lr_scales: tuple[float, ...] = (1.0, 4.0, 16.0)  # times each model's own learning rate
    grid_steps: int = 200  # steps of each short run of that grid
    label_counts: tuple[int, ...] = (100, 1_000)  # labelled images for the classifier on codes


MEASURES_SHORT = {"recent_epochs": 3}
MEASURES_SMOKE = {"recent_epochs": 2, "num_samples": 2_000, "grid_lr_scales": (1.0, 16.0), "grid_steps": 20}


def measures() -> Measures:
    """The chapter's measurement settings at the budget AECOURSE_BUDGET asks for."""
    return runtime.at_budget(Measures(), short=MEASURES_SHORT, smoke=MEASURES_SMOKE)


# --- Measures of generated images and of training runs (ch. 4; tests/test_gan_and_classifier.py) -------------


def class_histogram(classifier: nn.Module, x: torch.Tensor, *, num_classes: int = 10) -> torch.Tensor:
    """Fraction of the images the classifier assigns to each class, (num_classes,), summing to 1. For samples of a
    generative model, a flat histogram says every mode (class) is produced as often as in Fashion-MNIST, whose
    classes are balanced; a missing bar is mode collapse."""
    check_int("class_histogram: num_classes", num_classes, minimum=1)
    if len(x) == 0:
        raise ValueError("class_histogram needs at least one image.")
    return torch.bincount(predict(classifier, x).cpu(), minlength=num_classes).double() / len(x)


def distance_from_uniform(fractions: torch.Tensor) -> float:
    """Total variation distance 1/2 sum_k |p_k - 1/K| between a class histogram and the uniform one: 0 for a
    perfectly balanced set, 1 - 1/K when every sample falls in one class."""
    total = float(fractions.sum())
    if fractions.dim() != 1 or bool((fractions < 0).any()) or not math.isfinite(total) or total <= 0:
        raise ValueError(
            f"fractions must be a 1-D histogram of non-negative counts with a positive sum; got {fractions}."
        )
    p = fractions.double() / total
    return float(0.5 * (p - 1.0 / len(p)).abs().sum())


def missing_classes(fractions: torch.Tensor, *, min_fraction: float = 0.01) -> list[int]:
    """The classes that fewer than `min_fraction` of the samples fall into: the modes a generator dropped."""
    check_probability("missing_classes: min_fraction", min_fraction)
    check_tensor(fractions, "missing_classes: fractions", dims=1)
    return [k for k, fraction in enumerate(fractions.tolist()) if fraction < min_fraction]


def edge_energy(x: torch.Tensor) -> float:
    """Mean squared difference between neighbouring pixels, horizontally and vertically, over a set: a blur lowers
    it and pixel noise raises it; the value of real images is the mark a generator should hit."""
    check_images(x, who="edge_energy", nonempty=True)  # on 0..255 images it would be 65,025 times too large
    images = x.detach().double().reshape(-1, 28, 28)  # (B, 784) or (B, 1, 28, 28) -> (B, 28, 28)
    dx = (images[:, :, 1:] - images[:, :, :-1]).pow(2).mean()
    dy = (images[:, 1:, :] - images[:, :-1, :]).pow(2).mean()
    return float((dx + dy) / 2)


def interpolation_steps(
    model: nn.Module, feature_extractor: nn.Module, *, num_pairs: int = 100, num_steps: int = 10, seed: int = 0
) -> torch.Tensor:
    """Feature distances between consecutive frames of `num_pairs` straight latent paths, (num_pairs, num_steps -
    1). A smooth path moves in even steps; one large step among small ones is a jump in what the image shows. The
    endpoints z0, z1 ~ the model's prior are drawn from `seed`."""
    check_int("interpolation_steps: num_pairs", num_pairs, minimum=1)
    check_int("interpolation_steps: num_steps", num_steps, minimum=2)
    ends = prior_codes(model, 2 * num_pairs, seed=seed)
    frames = interpolate(model, ends[:num_pairs], ends[num_pairs:], num_steps)  # (P, T, 1, 28, 28)
    extract = getattr(feature_extractor, "features", feature_extractor)
    with evaluating(feature_extractor):
        h = batched(extract, frames.reshape(-1, 1, 28, 28))  # (P * T, D)
    h = h.reshape(num_pairs, num_steps, -1)
    return (h[:, 1:] - h[:, :-1]).norm(dim=-1)


def jump_ratio(steps: torch.Tensor) -> torch.Tensor:
    """Largest step of each path over its mean step, (num_pairs,): 1 for even steps, T - 1 when all the change
    happens between two frames."""
    check_tensor(steps, "jump_ratio: steps")
    if steps.dim() != 2:
        raise ValueError(
            f"jump_ratio: steps must be (num_pairs, num_steps - 1), as interpolation_steps returns; got "
            f"{tuple(steps.shape)}."
        )
    return steps.max(1).values / steps.mean(1).clamp_min(1e-12)


def sampling_seconds(model: nn.Module, num_samples: int = 10_000, *, repeats: int = 5) -> float:
    """The fastest of `repeats` timings of generating `num_samples` images, after one warm-up."""
    check_int("sampling_seconds: num_samples", num_samples, minimum=1)
    check_int("sampling_seconds: repeats", repeats, minimum=1)
    device = next(model.parameters()).device

    def once() -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        generate(model, num_samples, seed=0)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - start

    once()
    return min(once() for _ in range(repeats))


def divergence(history: Mapping[str, Sequence[float]], *, d_loss_floor: float = 0.05) -> list[str]:
    """How a training run broke down, if it did (an empty list: it did not): a loss that became non-finite, weights
    that did (`weights_finite` = 0 in a row of `train_gan`, whose weights were then put back), or a discriminator
    loss (`d_loss`) that ends below `d_loss_floor` nats: the discriminator wins outright and the generator's
    gradient vanishes. Mode coverage is a separate question (`missing_classes`)."""
    reasons = [
        f"{name} became non-finite"
        for name, values in history.items()
        if name != "weights_finite" and not all(map(math.isfinite, values))
    ]
    if any(value == 0 for value in history.get("weights_finite", [])):
        reasons.append("the weights became non-finite (put back to the last finite ones)")
    d_losses = list(history.get("d_loss", []))
    if d_losses and math.isfinite(d_losses[-1]) and d_losses[-1] < d_loss_floor:
        reasons.append(f"discriminator loss collapsed to {d_losses[-1]:.3g} nats (< {d_loss_floor})")
    return reasons


def generator_gradient_norms(gan: nn.Module, z: torch.Tensor) -> dict[str, float]:
    """The norm of the generator's gradient at the current weights under the two generator losses of Goodfellow et
    al. (2014): the minimax log(1 - D(G(z))), whose gradient vanishes when D rejects the samples confidently, and
    the non-saturating -log D(G(z)) that the chapter's gan_step minimises. Nothing is updated; D is read in eval
    mode (no dropout), so the measurement does not depend on a random mask."""
    check_codes(z, gan, who="generator_gradient_norms")
    parameters = list(gan.generator.parameters())
    with evaluating(gan.discriminator, gradients=True):  # the graph outlives the block; D's mode does not
        fake_logits = gan.discriminator(gan.generator(z))
    minimax = -F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))  # mean log(1 - D)
    norms = {}
    for name, loss in (("minimax", minimax), ("non_saturating", generator_loss(fake_logits))):
        gradients = torch.autograd.grad(loss, parameters, retain_graph=True)
        norms[name] = float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))
    return norms


def gradient_norm(
    model: nn.Module, loss_fn: Callable, x: torch.Tensor, part: nn.Module | None = None, *, seed: int = 0
) -> float:
    """The norm of the gradient of `loss_fn(model, x)` at the current weights with respect to the parameters of
    `part` (the whole model by default), in training mode with seeded draws; nothing is updated: how much gradient
    reaches a decoder early in training."""
    if not isinstance(x, torch.Tensor) or len(x) == 0:
        raise ValueError("gradient_norm: x must be a non-empty tensor of images.")
    parameters = list((part or model).parameters())
    cuda = [x.device] if x.device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(seed)
        out = loss_fn(model, x)
        loss = out[0] if isinstance(out, tuple) else out
    gradients = torch.autograd.grad(loss, parameters)
    return float(torch.linalg.vector_norm(torch.stack([g.norm() for g in gradients])))


def smallest_over_early(trace: Sequence[float]) -> float:
    """The smallest value of a gradient-norm trace over its first value: 1 when the gradient never fell below its
    early size, near 0 when it all but vanished at some point, even if it grew back later (a late/early ratio
    would miss that dip)."""
    if len(trace) == 0 or not all(map(math.isfinite, trace)) or trace[0] <= 0:
        raise ValueError(f"smallest_over_early needs a non-empty finite trace with a positive start; got {trace}.")
    return min(trace) / trace[0]


def epoch_to_epoch_change(fid: Sequence[float], recent_epochs: int) -> float:
    """The mean absolute change of a run's tracked Fréchet distance from one epoch to the next over its last
    `recent_epochs` epochs, in the distance's own units (the VAE and the GAN share them); not divided by the run's
    level, which would inflate the swings of the model whose distances are smaller."""
    check_int("epoch_to_epoch_change: recent_epochs", recent_epochs, minimum=2)
    recent = torch.tensor(list(fid)[-recent_epochs:], dtype=torch.float64)
    if len(recent) < 2:
        raise ValueError("epoch_to_epoch_change needs a distance for at least two epochs.")
    return float(recent.diff().abs().mean())


def sample_tracker(
    classifier: nn.Module, x_test: torch.Tensor, num_samples: int
) -> Callable[[nn.Module], dict[str, float]]:
    """What training records after every epoch (ch. 4): the Fréchet distance of `num_samples` samples, decoded
    from the same codes z every epoch, to as many test images: cheap, and biased upwards on so few images."""
    check_int("sample_tracker: num_samples", num_samples, minimum=2)

    def track(model: nn.Module) -> dict[str, float]:
        samples = generate(model, num_samples, seed=123)
        return {"fid": frechet_distance(x_test[:num_samples], samples, classifier)}

    return track


# --- The models compared with the GAN: chapter 3's VAE and autoencoder -------------------------------------------


def _train_vae(model: VAE, seed: int, *, x_train, x_test, recipe, track) -> History:
    """Chapter 3's VAE training (its Adam, lr, batches and epochs), tracking samples after every epoch."""
    return fit(
        model,
        vae_batch_loss,
        x_train,
        x_test=x_test,
        num_epochs=recipe.num_epochs,
        batch_size=recipe.batch_size,
        lr=recipe.vae_lr,
        seed=seed,
        epoch_end=track,
    )


def chapter_3_vaes(config: Any, x_train: torch.Tensor, x_test: torch.Tensor, track: Callable, device) -> list[Trained]:
    """Chapter 3's VAE for each seed (ch. 4): its stored checkpoint at the full budget, whose manifest must record
    this chapter's settings; trained here as chapter 3 trains it otherwise (AECOURSE_RETRAIN=1 or a short budget)."""
    expect = {
        "latent_dim": config.latent_dim,
        "hidden_dim": config.hidden_dim,
        "num_epochs": config.num_epochs,
        "batch_size": config.batch_size,
        "lr": config.vae_lr,
        "train_size": config.train_size,
        "track_samples": config.track_samples,
    }
    runs = []
    for seed in config.seeds:
        with seeded(seed):  # the initial weights this seed draws, as chapter 3 built them
            model = VAE(config.latent_dim, config.hidden_dim).to(device)
        if budget() == "full" and not retrain():
            runs.append(reused(model, "03_vae/vae", seed=seed, expect=expect))
        else:
            options = {"x_train": x_train, "x_test": x_test, "recipe": config, "track": track}
            runs.append(load_or_train(model, "04_vae_vs_gan/vae", config, seed=seed, train=_train_vae, **options))
    return runs


AE_EPOCHS = 20  # chapter 3's ae_epochs: the stored autoencoder, and its retrain


def _bce_loss(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return reconstruction_loss(model, x, "bce")


def _train_ae(model: Autoencoder, seed: int, *, x_train, recipe) -> History:
    return fit(
        model,
        _bce_loss,
        x_train,
        num_epochs=min(AE_EPOCHS, recipe.num_epochs),
        batch_size=recipe.batch_size,
        lr=recipe.vae_lr,
        seed=seed,
    )


def chapter_3_autoencoders(config: Any, x_train: torch.Tensor, device) -> list[Autoencoder]:
    """Chapter 3's autoencoder (20-dimensional codes, BCE, 20 epochs) for each seed: the model without a KL term that
    the smoothness and few-label sections set beside the VAE."""
    expect = {
        "ae_epochs": AE_EPOCHS,
        "latent_dim": config.latent_dim,
        "batch_size": config.batch_size,
        "lr": config.vae_lr,
        "train_size": config.train_size,
    }
    found = []
    for seed in config.seeds:
        with seeded(seed):
            model = Autoencoder(config.latent_dim, 256, sigmoid_output=True).to(device)
        if budget() == "full" and not retrain():
            found.append(reused(model, "03_vae/ae", seed=seed, expect=expect).model)
        else:
            options = {"x_train": x_train, "recipe": config}
            found.append(load_or_train(model, "04_vae_vs_gan/ae", config, seed=seed, train=_train_ae, **options).model)
    return found


class FittedPrior(nn.Module):
    """An autoencoder whose prior is the Gaussian fitted to its training codes (it has none of its own), so that it
    can be sampled and walked like the VAE and the GAN."""

    def __init__(self, ae: Autoencoder, x_train: torch.Tensor) -> None:
        super().__init__()
        self.ae, self.latent_dim = ae, ae.latent_dim
        self.fitted = fit_gaussian(encode(ae, x_train))

    def sample_prior(self, num_samples, *, device=None, generator=None) -> torch.Tensor:
        eps = torch.randn(num_samples, self.latent_dim, device=device, generator=generator, dtype=torch.float64)
        return (self.fitted.mean + eps @ self.fitted.scale_tril.T).float()  # z ~ N(mean, L L^T)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.ae.decode(z)


# --- The chapter's sections, in order ----------------------------------------------------------------------------


def parameter_table(latent_dim: int, hidden_dim: int) -> Table:
    """The parameter counts of the VAE's and the GAN's networks side by side: the generator is the decoder."""
    with seeded(0):  # counted, never trained: a private stream, so the chapter's own is left as it was
        vae, gan = VAE(latent_dim, hidden_dim), GAN(latent_dim, hidden_dim)
    rows = [
        {"network": "VAE decoder / GAN generator", "VAE": vae.decoder, "GAN": gan.generator},
        {"network": "VAE encoder / GAN discriminator", "VAE": (vae.encoder, vae.mu_head, vae.logvar_head)},
    ]
    rows[1]["GAN"] = gan.discriminator
    for row in rows:
        for key in ("VAE", "GAN"):
            parts = row[key] if isinstance(row[key], tuple) else (row[key],)
            row[key] = float(count_parameters(*parts))  # a float, so that the table shows 322,784
    return table(rows, formats={"VAE": ",.0f", "GAN": ",.0f"})


def yardstick(classifier: nn.Module, data: FashionMNIST, num_samples: int) -> Table:
    """The classifier's test accuracy and the Fréchet distance of real training images to the test images: what a
    perfect generator would score, up to sampling noise."""
    test_accuracy = accuracy(classifier, data.x_test, data.y_test)
    fid_real = frechet_distance(data.x_test, data.x_train[:num_samples], classifier)
    glue("classifier_accuracy", test_accuracy, ".3f")
    glue("fid_real", fid_real, ".2f")
    return table(
        [
            {"yardstick": "classifier's test accuracy", "value": f"{test_accuracy:.3f}"},
            {"yardstick": f"Fréchet distance, {num_samples:,} real training images", "value": f"{fid_real:.2f}"},
        ]
    )


def showcase_codes(latent_dim: int, device) -> torch.Tensor:
    """The twelve codes z every sample figure of the chapter decodes, (12, latent_dim)."""
    return torch.randn(12, latent_dim, generator=torch.Generator().manual_seed(7)).to(device)


def folded_rows(rows: Mapping[str, torch.Tensor], per_row: int, *, scale: float = 1.0) -> Figure:
    """Each labelled set of images over several rows of `per_row`, so that the images stay large enough to show
    their pixels on a phone; a set's later rows carry no label (blank labels of distinct lengths)."""
    folded: dict[str, torch.Tensor] = {}
    for label, images in rows.items():
        for i in range(0, len(images), per_row):
            folded[label if i == 0 else " " * (len(folded) + 1)] = images[i : i + per_row]
    return image_rows(folded, num_images=per_row, scale=scale)


def samples_figure(runs: Runs, x_test: torch.Tensor, seeds: Sequence[int], latent_dim: int) -> Figure:
    """Real test images, then each run's images decoded from the same twelve codes, six to a row."""
    z = showcase_codes(latent_dim, x_test.device)
    rows = {"real": x_test[:12]}
    for name, entries in runs.items():
        for seed, entry in zip(seeds, entries, strict=True):
            rows[f"{name} seed {seed}"] = decode(entry.model, z)
    return folded_rows(rows, 6, scale=0.85)


@dataclass(frozen=True)
class Quality:
    """The sample-quality section's measurements, one value per seed; `samples` keeps each run's images for the
    sections after it."""

    samples: Mapping[tuple[str, int], torch.Tensor]
    fid: Mapping[str, list[float]]  # 10,000 samples of the final weights against the test images
    fid_recent: Mapping[str, list[float]]  # the best tracked distance over the last epochs
    fid_real: list[float]  # disjoint sets of real training images, one per seed
    edges: Mapping[str, list[float]]
    edges_real: list[float]  # the same real sets' edge energy
    table: Table


FD_GAN_BAR = 32.0  # the stored runs, GAN 27.4 ± 1.5 over 3 seeds: mean + 3 sd, rounded up (a regression guard)
FD_REAL_RATIO_BAR = 35  # the GAN's distance over its seed's real set, 53 ± 6: mean - 3 sd, rounded down


def sample_quality(runs: Runs, data: FashionMNIST, classifier: nn.Module, config: Any, measures: Measures) -> Quality:
    """Score `measures.num_samples` samples of every run, and as many real training images per seed, against the
    test set: the Fréchet distance and the edge energy."""
    x_test, seeds, num_samples = data.x_test, config.seeds, measures.num_samples
    recent_epochs = measures.recent_epochs
    samples = {
        (name, s): generate(entry.model, num_samples, seed=s)
        for name, entries in runs.items()
        for s, entry in zip(seeds, entries, strict=True)
    }
    fid = {name: [frechet_distance(x_test, samples[name, s], classifier) for s in seeds] for name in runs}
    fid_recent = {name: [min(e.history["fid"][-recent_epochs:]) for e in runs[name]] for name in runs}
    edges = {name: [edge_energy(samples[name, s]) for s in seeds] for name in runs}
    real_sets = [data.x_train[i * num_samples : (i + 1) * num_samples] for i in range(len(seeds))]
    fid_real = [frechet_distance(x_test, x, classifier) for x in real_sets]
    edges_real = [edge_energy(x) for x in real_sets]
    real_ratio = [g / r for g, r in zip(fid["GAN"], fid_real, strict=True)]
    glue("num_real_sets", len(real_sets))
    glue("fid_gan", mean_sd(fid["GAN"])[0], ".1f")
    glue("fid_vae", mean_sd(fid["VAE"])[0], ".1f")
    glue("fid_real_mean", mean_sd(fid_real)[0], ".2f")
    glue("fid_real_range", f"{min(fid_real):.2f} to {max(fid_real):.2f}")
    glue("fid_real_ratio", mean_sd(real_ratio)[0], ".0f")
    glue("edges_gan_excess", mean_sd(edges["GAN"])[0] / mean_sd(edges_real)[0] - 1, ".0%")
    claim(max(fid["GAN"]) <= FD_GAN_BAR, "every GAN run draws garments: Fréchet distance at most 32")
    claim(
        min(real_ratio) >= FD_REAL_RATIO_BAR, "the GAN's distance is at least 35 times that of the real set of its seed"
    )
    claim(max(fid["GAN"]) < min(fid["VAE"]), "every GAN run is closer to the data than every VAE run")
    claim(
        max(edges["VAE"]) < min(edges_real) and max(edges_real) < min(edges["GAN"]),
        "VAE samples are smoother than real images, GAN samples rougher",
    )
    evidence = {
        "GAN's Fréchet distance - VAE's": compare(fid["GAN"], fid["VAE"]),
        "GAN's Fréchet distance - a real set's": compare(fid["GAN"], fid_real),
        "VAE's edge energy - real images'": compare(edges["VAE"], edges_real),
        "GAN's edge energy - real images'": compare(edges["GAN"], edges_real),
    }
    claim(all(c.decided for c in evidence.values()), "all four comparisons of the quality section are decided")
    glue_markdown("quality_evidence", table(comparison_rows(evidence)).markdown())
    rows = [
        {"run": f"{name} seed {s}", "Fréchet distance": fid[name][i]}
        | {"best of the last epochs": fid_recent[name][i], "edge energy": edges[name][i]}
        for name in runs
        for i, s in enumerate(seeds)
    ]
    rows += [
        {"run": f"real training images, set {i + 1}", "Fréchet distance": fid_real[i], "edge energy": edges_real[i]}
        for i in range(len(real_sets))
    ]
    rows.append({"run": "real test images", "edge energy": edge_energy(x_test)})
    formats = {"Fréchet distance": ".2f", "best of the last epochs": ".2f", "edge energy": ".4f"}
    return Quality(samples, fid, fid_recent, fid_real, edges, edges_real, table(rows, formats=formats))


def _by_seed(runs: Sequence[Trained], seeds: Sequence[int], key: str) -> dict[str, list[float]]:
    return {f"seed {s}": e.history[key] for s, e in zip(seeds, runs, strict=True)}


def loss_figure(runs: Runs, seeds: Sequence[int]) -> Figure:
    """The training losses per epoch: the VAE's -ELBO, the GAN's two losses, one curve per seed."""
    return plot_panels(
        {
            "VAE: -ELBO (train)": _by_seed(runs["VAE"], seeds, "train_loss"),
            "GAN: discriminator loss": _by_seed(runs["GAN"], seeds, "d_loss"),
            "GAN: generator loss": _by_seed(runs["GAN"], seeds, "g_loss"),
        },
        ylabels=["nats per image", "nats", "nats"],
    )


def _log_y(fig: Figure, *, plain_ticks: bool = False) -> Figure:
    """The figure with every panel's y axis on a log scale: a curve's last small moves, or a trace far below the
    others, stay visible. `plain_ticks` labels the axis 30, 50, 100, 200 (not 3 x 10^1 ...) and lays it out again."""
    with plt.rc_context(STYLE):
        for ax in fig.axes:
            ax.set_yscale("log")
            if plain_ticks:
                ax.yaxis.set_major_locator(LogLocator(subs=(1.0, 2.0, 3.0, 5.0)))
                ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
                ax.yaxis.set_minor_formatter(NullFormatter())
        if plain_ticks:
            fig.tight_layout(rect=(0, 0.6 / fig.get_figheight() + 0.02, 1, 1))  # as plot_panels lays it out
    return finish(fig, layout=False)


def fid_figure(runs: Runs, seeds: Sequence[int]) -> Figure:
    """The tracked Fréchet distance of fresh samples after every epoch, one curve per seed, on a log scale."""
    return _log_y(
        plot_panels(
            {f"{name}: Fréchet distance of samples": _by_seed(runs[name], seeds, "fid") for name in ("VAE", "GAN")},
            ylabels=["Fréchet distance (log scale)", "Fréchet distance (log scale)"],
        ),
        plain_ticks=True,
    )


@dataclass(frozen=True)
class Stability:
    diverged: Mapping[str, list[list[str]]]  # why each run broke down, if it did
    change: Mapping[str, list[float]]  # epoch-to-epoch change of the tracked distance near the end
    table: Table


def stability(runs: Runs, config: Any, measures: Measures) -> Stability:
    """Did any run break down, and how much did the quality of its samples still move near the end?"""
    seeds, recent_epochs = config.seeds, measures.recent_epochs
    losses_of = {"VAE": ("train_loss",), "GAN": ("d_loss", "g_loss")}
    diverged = {name: [divergence({k: e.history[k] for k in losses_of[name]}) for e in runs[name]] for name in runs}
    change = {name: [epoch_to_epoch_change(e.history["fid"], recent_epochs) for e in runs[name]] for name in runs}
    glue("recent_epochs", recent_epochs)
    glue("d_loss_floor", divergence.__kwdefaults__["d_loss_floor"], "g")
    for name in runs:
        glue(f"change_{name.lower()}", mean_sd(change[name])[0], ".1f")
    recent = {name: [mean_sd(e.history["fid"][-recent_epochs:])[0] for e in runs[name]] for name in runs}
    level = mean_sd(recent["VAE"])[0] / mean_sd(recent["GAN"])[0]  # how much smaller the GAN's distances are
    glue("level_ratio", level, ".1f")
    claim(not any(diverged["GAN"]) and not any(diverged["VAE"]), "no run of either model broke down")
    moved = compare(change["GAN"], change["VAE"])
    claim(moved.verdict == "higher", "near the end the GAN's samples kept moving more than the VAE's")
    claim(level > 1, "the GAN's distances are the smaller ones")
    finals = [e.history.last for e in runs["GAN"]]
    glue("d_real_final", mean_sd([f["d_real"] for f in finals])[0], ".2f")
    glue("d_fake_final", mean_sd([f["d_fake"] for f in finals])[0], ".2f")
    claim(
        all(0.5 < f["d_real"] < 0.6 and 0.4 < f["d_fake"] < 0.5 for f in finals),
        "every GAN ends with D(x) a little over one half and D(G(z)) a little under",
    )
    glue_markdown(
        "stability_evidence",
        table(comparison_rows({"GAN's change per epoch - VAE's (Fréchet distance)": moved})).markdown(),
    )

    def final_d(history: History) -> str:
        last = history.last
        return f"{last['d_real']:.2f}, {last['d_fake']:.2f}" if "d_real" in last else "–"

    rows = [
        {"run": f"{name} seed {s}", "broke down": "; ".join(diverged[name][i]) or "no"}
        | {"change per epoch": change[name][i], "final D(x), D(G(z))": final_d(runs[name][i].history)}
        for name in runs
        for i, s in enumerate(seeds)
    ]
    return Stability(diverged, change, table(rows, formats={"change per epoch": ".2f"}))


@dataclass(frozen=True)
class Dropout:
    fid_without: list[float]
    missing_without: list[list[int]]
    missing_with: list[list[int]]
    table: Table


def dropout_comparison(
    quality: Quality,
    without_dropout: Sequence[Trained],
    data: FashionMNIST,
    classifier: nn.Module,
    config: Any,
    measures: Measures,
) -> Dropout:
    """The GAN with and without dropout in its discriminator, seed by seed: the Fréchet distance of its samples and
    the classes they leave (nearly) empty."""
    seeds, num_samples = config.seeds, measures.num_samples
    samples = [generate(e.model, num_samples, seed=s) for s, e in zip(seeds, without_dropout, strict=True)]
    fid_with = quality.fid["GAN"]
    fid_without = [frechet_distance(data.x_test, x, classifier) for x in samples]
    missing_without = [missing_classes(class_histogram(classifier, x)) for x in samples]
    missing_with = [missing_classes(class_histogram(classifier, quality.samples["GAN", s])) for s in seeds]
    kept = [i for i, m in enumerate(missing_without) if not m]
    collapsed = [i for i, m in enumerate(missing_without) if m]
    glue("d_dropout", config.d_dropout, "g")
    glue("collapsed_without", len(collapsed))
    glue("num_seeds", len(seeds))
    glue("seed_without_collapsed", ", ".join(str(seeds[i]) for i in collapsed) or "none")
    glue("classes_without", "; ".join(", ".join(data.class_names[k] for k in missing_without[i]) for i in collapsed))
    glue("fid_collapsed", max((fid_without[i] for i in collapsed), default=math.nan), ".0f")
    glue("further_without", " and ".join(f"{fid_without[i] / fid_with[i]:.1f}" for i in kept) or "none")
    glue("fid_with_worst", max(fid_with), ".1f")
    claim(
        all(fid_without[i] > fid_with[i] for i in kept),
        "every run without dropout that covers the classes ends further from the data than the same seed with dropout",
    )
    claim(max(fid_with) < max(fid_without), "dropout improves the worst of the three runs")
    claim(
        any(missing_without) and not any(missing_with),
        "without dropout a run leaves classes out; with dropout none does",
    )
    rows = [
        {"seed": s, "with dropout": fid_with[i], "without": fid_without[i]}
        | {"classes below 1% without": ", ".join(data.class_names[k] for k in missing_without[i]) or "none"}
        for i, s in enumerate(seeds)
    ]
    return Dropout(
        fid_without, missing_without, missing_with, table(rows, formats={"with dropout": ".2f", "without": ".2f"})
    )


def without_dropout_figure(without_dropout: Sequence[Trained], config: Any) -> Figure:
    """The runs without dropout, decoding the same twelve codes as the samples figure."""
    z = showcase_codes(config.latent_dim, next(without_dropout[0].model.parameters()).device)
    pairs = zip(config.seeds, without_dropout, strict=True)
    rows = {f"seed {s}": decode(e.model, z) for s, e in pairs}
    return folded_rows(rows, 6, scale=0.85)


@dataclass(frozen=True)
class Gradients:
    traces: list[dict[str, list[float]]]  # per seed: "VAE", "GAN minimax", "GAN" (non-saturating), every 30 steps
    dip: Mapping[str, list[float]]  # per key: the smallest norm of each seed's trace over its first
    saturation: list[float]  # per seed: the non-saturating gradient over the minimax one at the same weights (mean)
    stored_dip: list[float]  # the stored GANs' smallest epoch-mean gradient over their first epoch's
    table: Table


EARLY_IMAGES = 3_840  # 30 steps of 128 images per pass; 10 passes: the first 300 steps


def gradients(x_train: torch.Tensor, gan_runs: Sequence[Trained], config: Any, device) -> Gradients:
    """The gradient reaching the VAE's decoder and the GAN's generator (under both generator losses) during the first
    300 steps from fresh networks, every 30 steps; and, over the stored GANs' 50 epochs, the generator's mean
    gradient norm per epoch (the non-saturating loss they were trained with)."""
    x_early = x_train[:EARLY_IMAGES]
    z_probe = torch.randn(512, config.latent_dim, generator=torch.Generator().manual_seed(3)).to(device)

    def probe_gan(gan: nn.Module) -> dict[str, float]:
        return generator_gradient_norms(gan, z_probe)

    def probe_vae(model: VAE) -> dict[str, float]:
        return {"decoder": gradient_norm(model, vae_batch_loss, x_early[:512], model.decoder)}

    traces = []
    for seed in config.seeds:
        with seeded(seed):
            gan = GAN(config.latent_dim, config.hidden_dim, dropout=config.d_dropout).to(device)
            gan_trace = train_gan(
                gan, x_early, num_epochs=10, batch_size=128, lr=config.gan_lr, seed=seed, epoch_end=probe_gan
            )
        with seeded(seed):
            vae = VAE(config.latent_dim, config.hidden_dim).to(device)
            vae_trace = fit(
                vae, vae_batch_loss, x_early, num_epochs=10, batch_size=128, lr=config.vae_lr, seed=seed,
                epoch_end=probe_vae,
            )  # fmt: skip
        traces.append(
            {"VAE": vae_trace["decoder"], "GAN minimax": gan_trace["minimax"], "GAN": gan_trace["non_saturating"]}
        )
    dip = {key: [smallest_over_early(trace[key]) for trace in traces] for key in traces[0]}
    saturation = [
        mean_sd([n / m for n, m in zip(trace["GAN"], trace["GAN minimax"], strict=True)])[0] for trace in traces
    ]
    stored = [smallest_over_early(e.history["g_grad_norm"]) for e in gan_runs]
    for key, name in (("VAE", "vae"), ("GAN minimax", "minimax"), ("GAN", "non_saturating")):
        glue(f"dip_{name}", mean_sd(dip[key])[0], ".2f")
    glue("dip_minimax_lowest", min(dip["GAN minimax"]), ".2f")
    glue("saturation", mean_sd(saturation)[0], ".1f")
    glue("saturation_range", f"{min(saturation):.1f} to {max(saturation):.1f}")
    glue("early_images", f"{EARLY_IMAGES:,}")
    claim(
        min(saturation) > 1.5, "at the same weights the minimax gradient is smaller on every seed, by a third or more"
    )
    glue("stored_dip", mean_sd(stored)[0], ".2f")
    glue("stored_dip_min", min(stored), ".2f")
    claim(
        all(g > v for g, v in zip(dip["GAN"], dip["VAE"], strict=True)),
        "on every seed, the GAN's gradient under the non-saturating loss fell less far than the VAE decoder's",
    )
    claim(min(stored) > 0.1, "over the stored runs' training the generator's gradient never fell below a tenth")
    # 0.75: the stored runs' smallest ratios, 0.93 ± 0.04 over 3 seeds, mean - 3 sd rounded down
    claim(min(dip["GAN"]) > 0.75, "under the non-saturating loss the GAN's gradient stayed near its early size")
    evidence = {
        "GAN minimax - VAE (smallest / early)": compare(dip["GAN minimax"], dip["VAE"]),
        "GAN non-saturating - VAE (smallest / early)": compare(dip["GAN"], dip["VAE"]),
    }
    glue_markdown("gradient_evidence", table(comparison_rows(evidence)).markdown())
    early, late = "300 steps: smallest / early", "50 epochs: smallest / first"
    rows = [
        {"gradient reaching": "VAE decoder", early: pm(dip["VAE"], ".3g")},
        {"gradient reaching": "GAN generator, minimax", early: pm(dip["GAN minimax"], ".3g")},
        {"gradient reaching": "GAN generator, non-saturating", early: pm(dip["GAN"], ".3g"), late: pm(stored, ".3g")},
    ]
    return Gradients(traces, dip, saturation, stored, table(rows))


def gradient_figure(traces: Sequence[Mapping[str, list[float]]]) -> Figure:
    """Seed 0's gradient traces over the first 300 steps, on a log scale (the VAE's norm is far above the GAN's)."""
    names = {"VAE": "VAE decoder", "GAN minimax": "GAN minimax", "GAN": "GAN non-saturating"}
    return _log_y(
        plot_panels(
            {"gradient norm reaching the decoder / generator": {names[k]: v for k, v in traces[0].items()}},
            xlabel="steps (x 30)",
            ylabels=["norm (log scale)"],
            size=4.5,
        )
    )


@dataclass(frozen=True)
class Coverage:
    fractions: Mapping[str, torch.Tensor]  # "real test", then "VAE seed 0", "GAN seed 0", ...
    tv: Mapping[str, list[float]]
    tv_real: float
    missing: Mapping[str, list[list[int]]]
    table: Table


def coverage(quality: Quality, data: FashionMNIST, classifier: nn.Module, config: Any) -> Coverage:
    """How evenly each run's samples spread over the ten classes, as the classifier labels them."""
    x_test, class_names, seeds = data.x_test, data.class_names, config.seeds
    real = class_histogram(classifier, x_test)
    tv_real = distance_from_uniform(real)
    fractions = {"real test": real} | {
        f"{name} seed {s}": class_histogram(classifier, quality.samples[name, s]) for name, s in quality.samples
    }
    names = list(quality.fid)
    tv = {name: [distance_from_uniform(fractions[f"{name} seed {s}"]) for s in seeds] for name in names}
    missing = {name: [missing_classes(fractions[f"{name} seed {s}"]) for s in seeds] for name in names}
    glue("tv_real", tv_real, ".3f")
    for name in names:
        glue(f"tv_{name.lower()}", mean_sd(tv[name])[0], ".3f")
    glue("tv_ratio_min", round_outward(min(min(v) for v in tv.values()) / tv_real, 0, up=False), ".0f")
    glue("tv_one_class", distance_from_uniform(torch.eye(10)[0]), ".1f")  # every sample in one class
    glue("min_class_share", missing_classes.__kwdefaults__["min_fraction"], ".0%")
    claim(
        all(min(v) > 6 * tv_real for v in tv.values()),
        "both models' class histograms are over 6 times as uneven as real, on every seed",
    )  # 6: each seed's ratio to the real images, mean - 3 sd over the stored runs (VAE 6.3, GAN 7.2), rounded down
    claim(not any(any(m) for m in missing.values()), "no run of either model leaves a class under 1% of its samples")
    told = compare(tv["GAN"], tv["VAE"])
    claim(not told.decided, "the class histograms do not tell the two models apart")
    glue_markdown("coverage_evidence", table(comparison_rows({"GAN's distance from uniform - VAE's": told})).markdown())
    rows = [
        {"model": name, "distance from uniform": pm(tv[name], ".3f")}
        | {"classes below 1%": "; ".join(", ".join(class_names[k] for k in m) or "none" for m in missing[name])}
        for name in names
    ]
    rows.append({"model": "real test images", "distance from uniform": f"{tv_real:.3f}"})
    return Coverage(fractions, tv, tv_real, missing, table(rows))


def class_figure(coverage: Coverage, class_names: Sequence[str], seed: int) -> Figure:
    """The class histograms of the real test set and of the seed's VAE and GAN samples."""
    shown = ("real test", f"VAE seed {seed}", f"GAN seed {seed}")
    return class_bars({name: coverage.fractions[name] for name in shown}, class_names)


@dataclass(frozen=True)
class Smoothness:
    walkers: Mapping[str, Sequence[nn.Module]]  # "VAE", "GAN", "AE": one model per seed, each with a prior
    jump: Mapping[str, list[float]]  # the mean jump ratio of 100 straight paths, per seed


def smoothness(
    runs: Runs, autoencoders: Sequence[Autoencoder], x_train: torch.Tensor, classifier: nn.Module, config: Any
) -> Smoothness:
    """Walk 100 straight latent paths of 10 frames through every model and measure how evenly the images change (the
    jump ratio in the classifier's feature space). The autoencoder walks between codes of its fitted Gaussian."""
    seeds = config.seeds
    walkers = {
        "VAE": [e.model for e in runs["VAE"]],
        "GAN": [e.model for e in runs["GAN"]],
        "AE": [FittedPrior(ae, x_train) for ae in autoencoders],
    }
    jump = {
        name: [
            float(jump_ratio(interpolation_steps(m, classifier, num_pairs=100, num_steps=10, seed=s)).mean())
            for s, m in zip(seeds, models_, strict=True)
        ]
        for name, models_ in walkers.items()
    }
    for name in walkers:
        glue(f"jump_{name.lower()}", mean_sd(jump[name])[0], ".2f")
    gan_vae, ae_vae = compare(jump["GAN"], jump["VAE"]), compare(jump["AE"], jump["VAE"])
    claim(gan_vae.verdict == "higher", "the VAE's paths move more evenly than the GAN's")
    claim(ae_vae.verdict == "lower", "the autoencoder's paths move more evenly than the VAE's")
    evidence = {"GAN's jump ratio - VAE's": gan_vae, "AE's jump ratio - VAE's": ae_vae}
    glue_markdown("smoothness_evidence", table(comparison_rows(evidence)).markdown())
    return Smoothness(walkers, jump)


def smoothness_table(smooth: Smoothness) -> Table:
    return table([{"model": name, "mean jump ratio": pm(v, ".3f")} for name, v in smooth.jump.items()])


def paths_figure(smooth: Smoothness, latent_dim: int) -> Figure:
    """One straight path from z0 to z1, decoded by the seed-0 VAE and GAN."""
    device = next(smooth.walkers["VAE"][0].parameters()).device
    ends = torch.randn(2, latent_dim, generator=torch.Generator().manual_seed(11)).to(device)
    frames = {name: interpolate(smooth.walkers[name][0], ends[0], ends[1], 10) for name in ("VAE", "GAN")}
    return folded_rows(frames, 5)


SLOWER = 1.5  # "the GAN samples slowly": more than 1.5 times the VAE's time


def sampling_speed(runs: Runs) -> tuple[Mapping[str, list[float]], Table]:
    """Five alternated timings of 10,000 samples of each seed-0 model, on the device at hand."""
    sampling_ms: dict[str, list[float]] = {"VAE": [], "GAN": []}
    for _ in range(5):
        for name in sampling_ms:
            sampling_ms[name].append(1000 * sampling_seconds(runs[name][0].model, 10_000, repeats=1))
    ratio = mean_sd(sampling_ms["GAN"])[0] / mean_sd(sampling_ms["VAE"])[0]
    assert all(t > 0 for v in sampling_ms.values() for t in v)
    assert 0.2 < ratio < 5  # one pass of the same network each: a ratio outside would be a broken timing
    glue("speed_ratio", ratio, ".2f")
    glue("slower_factor", SLOWER, "g")
    rows = [{"model": name, "10,000 samples [ms]": pm(v, ".1f")} for name, v in sampling_ms.items()]
    return sampling_ms, table(rows)


def rank_correlation(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of two curves; NaN where either is too short or constant to rank."""
    from scipy.stats import spearmanr

    if len(a) > 2 and len(set(a)) > 1 and len(set(b)) > 1:
        return float(spearmanr(a, b).statistic)
    return math.nan


def change_correlation(a: Sequence[float], b: Sequence[float]) -> tuple[float, float]:
    """Spearman's rank correlation of the epoch-to-epoch changes of two curves, and SciPy's p-value for "no
    correlation": whether one moves when the other does. Two curves that merely trend over training
    correlate in their levels, not in their changes. NaN, NaN where the changes are too few or constant to rank."""
    from scipy.stats import spearmanr

    da = [y - x for x, y in zip(a, a[1:], strict=False)]
    db = [y - x for x, y in zip(b, b[1:], strict=False)]
    if len(da) > 2 and len(set(da)) > 1 and len(set(db)) > 1:
        result = spearmanr(da, db)
        return float(result.statistic), float(result.pvalue)
    return math.nan, math.nan


# A loss follows the samples on a run when its changes correlate with the distance's in the expected direction and
# the test rejects "no correlation" at the book's 5%: the discriminator's loss should rise as the distance falls.
SIGN = {"GAN discriminator": -1}


def follows(name: str, rho: float, p: float) -> bool:
    """Whether the loss `name` follows the samples on a run whose change correlation is `rho`, with p-value `p`."""
    return SIGN.get(name, 1) * rho > 0 and p < ALPHA


EARLY = 10  # the first epochs, in which every loss and distance falls fast


@dataclass(frozen=True)
class Meaning:
    """Per loss ("VAE", "GAN" for the generator, "GAN discriminator", "GAN without dropout"), one value per run."""

    level: Mapping[str, list[float]]  # rank correlation of the loss with the tracked distance, epoch by epoch
    change: Mapping[str, list[float]]  # the same of their changes from one epoch to the next
    p: Mapping[str, list[float]]  # the p-value of each change correlation
    trend: Mapping[str, list[float]]  # rank correlation of the loss with the epoch
    collapsed: int  # the index of the run without dropout that left classes out
    table: Table


def loss_meaning(runs: Runs, without_dropout: Sequence[Trained], dropout: Dropout, config: Any) -> Meaning:
    """Does each training loss follow the quality of the samples? Run by run, Spearman's correlation of the loss
    with the tracked Fréchet distance (levels), of their changes from one epoch to the next, and of the loss with
    the epoch: every curve here trends over training, so only the changes tell whether the loss moves when the
    samples do."""
    curves = {
        "VAE": (runs["VAE"], "train_loss"),
        "GAN": (runs["GAN"], "g_loss"),
        "GAN discriminator": (runs["GAN"], "d_loss"),
        "GAN without dropout": (without_dropout, "g_loss"),
    }
    level, change, p, trend = {}, {}, {}, {}
    for name, (entries, key) in curves.items():
        level[name] = [rank_correlation(e.history[key], e.history["fid"]) for e in entries]
        pairs = [change_correlation(e.history[key], e.history["fid"]) for e in entries]
        change[name], p[name] = [r for r, _ in pairs], [q for _, q in pairs]
        trend[name] = [rank_correlation(list(range(len(e.history[key]))), e.history[key]) for e in entries]
    following = {name: sum(map(partial(follows, name), change[name], p[name])) for name in curves}
    late = [change_correlation(e.history["train_loss"][EARLY:], e.history["fid"][EARLY:]) for e in runs["VAE"]]
    late_following = sum(follows("VAE", r, q) for r, q in late)
    collapsed = next((i for i, m in enumerate(dropout.missing_without) if m), 0)
    run = without_dropout[collapsed].history
    low = min(range(len(run["fid"])), key=run["fid"].__getitem__)
    generator_trend = [*trend["GAN"], *trend["GAN without dropout"]]
    glue("rho_level_gan_min", round_outward(min(level["GAN"]), 2, up=False), ".2f")  # "or more"
    glue("rho_trend_gan", round_outward(max(generator_trend), 2, up=True), ".2f")  # "or closer to -1"
    glue("rho_change_vae_range", f"{min(change['VAE']):.2f} to {max(change['VAE']):.2f}")  # the table's rounding
    generator = [*change["GAN"], *change["GAN without dropout"]], [*p["GAN"], *p["GAN without dropout"]]
    strongest = max(zip(*generator, strict=True))  # the generator's highest change correlation, and its p
    glue("rho_change_gan_max", strongest[0], ".2f")
    glue("rho_change_gan_max_p", strongest[1], ".3f")
    glue("d_follows", following["GAN discriminator"])
    glue("early_epochs", EARLY)
    glue("late_vae_follows", late_following or "none")
    glue("d_loss_final", mean_sd([e.history["d_loss"][-1] for e in runs["GAN"]])[0], ".2f")
    glue("seed_collapsed", config.seeds[collapsed])
    glue("collapsed_g_first", run["g_loss"][0], ".2f")
    glue("collapsed_g_last", run["g_loss"][-1], ".2f")
    glue("collapsed_fid_low", run["fid"][low], ".0f")
    glue("collapsed_fid_low_epoch", low + 1)
    glue("collapsed_fid_last", run["fid"][-1], ".0f")
    distance_trend = [rank_correlation(list(range(len(e.history["fid"]))), e.history["fid"]) for e in runs["GAN"]]
    claim(
        max(generator_trend) < -0.9 and max(distance_trend) < -0.9,
        "the generator's loss falls steadily with the epoch on every run, and so does the distance with dropout",
    )
    claim(
        min(level["GAN"]) > 0.9 and max(trend["VAE"]) < -0.9,
        "on levels, the generator's loss correlates with the distance on every run with dropout",
    )
    claim(
        following["VAE"] == len(runs["VAE"]) and following["GAN"] == following["GAN without dropout"] == 0,
        "on the changes, the VAE's loss follows its samples on every run, the generator's on none",
    )
    claim(
        late_following < following["VAE"],
        "past the first epochs, the VAE's loss follows its samples on fewer runs",
    )
    claim(
        0 < following["GAN discriminator"] < len(runs["GAN"]),
        "the discriminator's loss follows the samples, inversely, on some runs but not all",
    )
    claim(
        bool(dropout.missing_without[collapsed]) and trend["GAN without dropout"][collapsed] < -0.9
        and run["fid"][-1] > 1.3 * run["fid"][low] and low + 1 < len(run["fid"]) // 2,
        "the collapsed run's generator loss kept falling while its distance rose",
    )  # fmt: skip
    names = {"VAE": "VAE −ELBO", "GAN": "GAN: G", "GAN discriminator": "GAN: D", "GAN without dropout": "G, no dropout"}

    def by_seed(values: Sequence[float]) -> str:
        return ", ".join(f"{r:.2f}" for r in values)

    rows = [
        {"loss": names[k], "levels": by_seed(level[k]), "changes": by_seed(change[k]), "vs epoch": by_seed(trend[k])}
        for k in curves
    ]
    return Meaning(level, change, p, trend, collapsed, table(rows))


def collapsed_figure(without_dropout: Sequence[Trained], meaning: Meaning, seeds: Sequence[int]) -> Figure:
    """The generator loss and the tracked distance of the run without dropout that left classes out."""
    entry = without_dropout[meaning.collapsed]
    label = f"seed {seeds[meaning.collapsed]}, without dropout"
    return plot_panels(
        {
            "generator loss": {label: entry.history["g_loss"]},
            "Fréchet distance of samples": {label: entry.history["fid"]},
        },
        ylabels=["nats", "Fréchet distance"],
        size=3.5,
    )


def few_label_accuracy(
    featurize: Callable[[torch.Tensor], torch.Tensor],
    data: FashionMNIST,
    x_train: torch.Tensor,
    num_labels: int,
    seed: int,
) -> float:
    """Test accuracy of a logistic regression (scikit-learn's, on standardised features) trained on the features of
    `num_labels` training images drawn with `seed`."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    draw = torch.randperm(len(x_train), generator=torch.Generator().manual_seed(seed))[:num_labels]
    labels = data.y_train[: len(x_train)][draw.to(data.y_train.device)]
    classify = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2_000))
    classify.fit(featurize(x_train[draw.to(x_train.device)]).cpu().numpy(), labels.cpu().numpy())
    return float(classify.score(featurize(data.x_test).cpu().numpy(), data.y_test.cpu().numpy()))


class _Codes:
    """A model's codes as features (the VAE's mean code), named so that no lambda is needed; `keep`, a boolean mask
    over the code's dimensions, keeps some of them only."""

    def __init__(self, model: nn.Module, keep: torch.Tensor | None = None) -> None:
        self.model, self.keep = model, keep

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        codes = encode(self.model, x)
        return codes if self.keep is None else codes[:, self.keep.to(codes.device)]


def _pixels(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(len(x), -1)


ACTIVE = "VAE codes, active dimensions"  # the few-label classifier's fourth kind of features


def few_labels(
    vae_runs: Sequence[Trained],
    autoencoders: Sequence[Autoencoder],
    data: FashionMNIST,
    x_train: torch.Tensor,
    config: Any,
    measures: Measures,
) -> tuple[Mapping[str, list[float]], Table]:
    """A classifier on few labels, with the VAE's codes, the autoencoder's codes or the raw pixels as features; and
    the VAE's codes without their inactive dimensions (Burda et al.'s measure, as in chapter 3), which standardising
    would otherwise stretch from noise to the scale of the others."""
    seeds, label_counts = config.seeds, measures.label_counts
    active = [active_units(encode(e.model, x_train)) for e in vae_runs]
    active = [keep if keep.any() else torch.ones_like(keep) for keep in active]  # none active (a smoke run): all
    featurizers = {
        "VAE codes": [_Codes(e.model) for e in vae_runs],
        ACTIVE: [_Codes(e.model, keep) for e, keep in zip(vae_runs, active, strict=True)],
        "AE codes": [_Codes(m) for m in autoencoders],
        "pixels": [_pixels] * len(seeds),
    }
    label_accuracy = {
        f"{kind}, {n}": [few_label_accuracy(f, data, x_train, n, s) for f, s in zip(fs, seeds, strict=True)]
        for kind, fs in featurizers.items()
        for n in label_counts
    }
    assert all(0.1 < a <= 1 for v in label_accuracy.values() for a in v)
    glue("label_counts", " and ".join(f"{n:,}" for n in label_counts))
    few = min(label_counts)
    for kind, key in (("VAE codes", "vae"), (ACTIVE, "active"), ("AE codes", "ae"), ("pixels", "pixels")):
        glue(f"labels_{key}_few", mean_sd(label_accuracy[f"{kind}, {few}"])[0], ".2f")
    counts = sorted({int(mask.sum()) for mask in active})
    glue("active_dims", " to ".join(map(str, counts if len(counts) == 1 else (counts[0], counts[-1]))))
    glue("few_labels", f"{few:,}")
    glue("many_labels", f"{max(label_counts):,}")
    evidence = {}
    for n in label_counts:
        for other in ("pixels", "AE codes"):
            evidence[f"{n:,} labels: VAE codes - {other}"] = compare(
                label_accuracy[f"VAE codes, {n}"], label_accuracy[f"{other}, {n}"]
            )
    claim(
        all(c.verdict == "lower" for c in evidence.values()),
        "at every label count the VAE's codes score below the raw pixels and below the AE's codes",
    )
    claim(
        all(
            compare(label_accuracy[f"AE codes, {n}"], label_accuracy[f"VAE codes, {n}"]).mean > 0 for n in label_counts
        ),
        "on average, the AE's 20-dimensional codes score above the VAE's at every label count",
    )
    many = max(label_counts)
    claim(
        all(
            abs(evidence[f"{many:,} labels: VAE codes - {o}"].mean)
            < abs(evidence[f"{few:,} labels: VAE codes - {o}"].mean)
            for o in ("pixels", "AE codes")
        ),
        "with the most labels the VAE codes' gaps shrink",
    )
    chance = compare(label_accuracy[f"VAE codes, {few}"], [0.1])
    claim(chance.verdict == "higher", "with the fewest labels the VAE's codes score far above chance")
    without = {
        f"{few:,} labels: active dimensions - all": compare(
            label_accuracy[f"{ACTIVE}, {few}"], label_accuracy[f"VAE codes, {few}"]
        ),
        f"{few:,} labels: active dimensions - pixels": compare(
            label_accuracy[f"{ACTIVE}, {few}"], label_accuracy[f"pixels, {few}"]
        ),
    }
    claim(
        [c.verdict for c in without.values()] == ["higher", "lower"],
        "without the inactive dimensions the VAE's codes score higher with the fewest labels, still below the pixels",
    )
    evidence |= {f"{few:,} labels: VAE codes - chance (0.1)": chance} | without
    evidence |= {
        f"{n:,} labels: AE codes - pixels": compare(label_accuracy[f"AE codes, {n}"], label_accuracy[f"pixels, {n}"])
        for n in label_counts
    }
    glue_markdown("labels_evidence", table(comparison_rows(evidence)).markdown())
    rows = [
        {"features": kind} | {f"{n:,} labels": pm(label_accuracy[f"{kind}, {n}"], ".3f") for n in label_counts}
        for kind in featurizers
    ]
    return label_accuracy, table(rows)


def code_lines(definition: Any) -> int:
    """Lines of a definition's code as a chapter shows it: no docstring, comment or blank line, and no decorator (the
    package's door checks, which the chapter's cell leaves out)."""
    source = textwrap.dedent(inspect.getsource(definition))
    tree = ast.parse(source)
    docstrings: set[int] = set(range(1, tree.body[0].lineno))  # the decorators' lines, if any
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            docstrings |= set(range(first.lineno, first.end_lineno + 1))
    return sum(
        1
        for number, line in enumerate(source.splitlines(), 1)
        if line.strip() and not line.strip().startswith("#") and number not in docstrings
    )


# The chapters' model, losses and step (the package holds the same text). Neither loop is counted: the VAE's is
# chapter 1's train_epoch, the GAN's is chapter 4's gan_steps, each a pass over shuffled batches.
TAUGHT = {
    "VAE": [models.reparameterize, models.VAE, losses.gaussian_kl, losses.vae_loss, losses.vae_batch_loss],
    "GAN": [
        gan_module.Generator,
        gan_module.Discriminator,
        gan_module.GAN,
        gan_module.discriminator_loss,
        gan_module.generator_loss,
        gan_module.gan_step,
    ],
}
SETTINGS = {  # typed by hand, not counted by a rule: no verdict uses it
    "VAE": [
        "its learning rate",
        "Adam's betas (the defaults)",
        "the KL term's weight (1)",
        "the likelihood (Bernoulli)",
    ],
    "GAN": [
        "the learning rate of D",
        "that of G (here the same)",
        "Adam's beta1 (0.5)",
        "dropout in D",
        "the number of D steps per G step (k = 1)",
    ],
}


@dataclass(frozen=True)
class Difficulty:
    lines_of_code: Mapping[str, int]
    left_out: Mapping[tuple[str, float, int], int]  # classes under 1% after each short run
    failed: Mapping[tuple[str, float, int], list[str]]  # why each short run failed (empty: it covered every class)
    covered: Mapping[str, list[float]]  # per seed: the share of the learning rates whose short run covered all
    grid_steps: int
    table: Table


def short_run(
    name: str, scale: float, seed: int, x_grid: torch.Tensor, classifier: nn.Module, config: Any, num_epochs: int
) -> tuple[list[str], int]:
    """One short run from fresh weights at `scale` times the model's own learning rate: why it failed (empty: no
    loss or weight became non-finite, the discriminator did not win outright, and 1,000 samples leave no class
    under 1%), and how many classes it left under 1%. The whole run (initial weights, dropout masks, the VAE's
    noise, order of the images, z) is seeded by `seed` alone, so it repeats on one machine whatever ran before it,
    and the runs of one seed start from the same weights at every learning rate."""
    device = x_grid.device
    lr = scale * (config.gan_lr if name == "GAN" else config.vae_lr)
    recipe = {"num_epochs": num_epochs, "batch_size": config.batch_size, "lr": lr, "seed": seed}
    with seeded(seed):
        if name == "GAN":
            model = GAN(config.latent_dim, config.hidden_dim, dropout=config.d_dropout).to(device)
            history = train_gan(model, x_grid, **recipe)
            failed = divergence({k: history[k] for k in ("d_loss", "g_loss", "weights_finite")})
        else:
            model = VAE(config.latent_dim, config.hidden_dim).to(device)
            try:
                fit(model, vae_batch_loss, x_grid, **recipe)
                failed = []
            except FloatingPointError as error:  # fit stops a run whose loss became NaN
                failed = [str(error).splitlines()[0]]
    left_out = missing_classes(class_histogram(classifier, generate(model, 1000, seed=seed)))
    if left_out:
        failed.append(f"{len(left_out)} class{'es' * (len(left_out) != 1)} under 1%")
    return failed, len(left_out)


def difficulty(x_train: torch.Tensor, classifier: nn.Module, config: Any, measures: Measures) -> Difficulty:
    """Lines of taught code, and the short runs over a grid of learning rates: how soon each recipe starts to cover
    the classes, at its own rate and at larger ones."""
    lines_of_code = {name: sum(map(code_lines, definitions)) for name, definitions in TAUGHT.items()}
    x_grid = x_train[: config.batch_size * 40]  # 40 steps an epoch
    per_epoch = math.ceil(len(x_grid) / config.batch_size)
    grid_epochs = max(1, round(measures.grid_steps / per_epoch))
    failed, left_out = {}, {}
    for name in ("VAE", "GAN"):
        for scale in measures.grid_lr_scales:
            for seed in config.seeds:
                key = (name, scale, seed)
                failed[key], left_out[key] = short_run(name, scale, seed, x_grid, classifier, config, grid_epochs)
    scales = measures.grid_lr_scales
    covered = {
        name: [sum(not failed[name, k, s] for k in scales) / len(scales) for s in config.seeds]
        for name in ("VAE", "GAN")
    }
    steps = grid_epochs * per_epoch
    own, top = scales[0], scales[-1]
    glue("grid_steps_done", steps)
    glue("grid_scales", ", ".join(f"{k:g}" for k in scales))
    glue("grid_top", f"{top:g}")
    glue("grid_gan_own", ", ".join(str(left_out["GAN", own, s]) for s in config.seeds))
    glue("grid_gan_top", ", ".join(str(left_out["GAN", top, s]) for s in config.seeds))
    for name in ("VAE", "GAN"):
        covered_runs = sum(not failed[key] for key in failed if key[0] == name)
        glue(f"grid_{name.lower()}_covered", covered_runs or "none")
    glue("grid_runs", len(scales) * len(config.seeds))
    glue("loc_vae", lines_of_code["VAE"])
    glue("loc_gan", lines_of_code["GAN"])
    claim(
        lines_of_code["GAN"] > lines_of_code["VAE"], "the GAN's model, losses and step take more lines than the VAE's"
    )
    sooner = compare(covered["VAE"], covered["GAN"])
    seeds = config.seeds
    claim(
        all(not failed["VAE", own, s] and left_out["GAN", own, s] > 0 for s in seeds),
        "at its own learning rate the VAE covers every class on every seed, and the GAN on none",
    )
    claim(
        all(left_out["GAN", own, s] > left_out["GAN", top, s] for s in seeds),
        "on every seed the GAN's short runs leave fewer classes out at the largest rate than at its own",
    )
    glue_markdown(
        "difficulty_evidence",
        table(comparison_rows({"VAE's share of rates that covered every class - GAN's": sooner})).markdown(),
    )
    for name in ("VAE", "GAN"):
        *first, last = SETTINGS[name]
        glue(f"settings_{name.lower()}", f"{', '.join(first)} and {last}")

    def other(name: str, k: float) -> str:
        """The failures of a grid point's runs besides the classes they left out."""
        return "; ".join(sorted({r for s in seeds for r in failed[name, k, s] if "under 1%" not in r})) or "none"

    others = any(other(name, k) != "none" for name in ("VAE", "GAN") for k in scales)

    def classes(name: str, k: float) -> str:
        return ", ".join(str(left_out[name, k, s]) for s in seeds)

    rows = [
        {"short runs": f"{name}, lr × {k:g}", "classes under 1%, by seed": classes(name, k)}
        | ({"other failures": other(name, k)} if others else {})
        for name in ("VAE", "GAN")
        for k in scales
    ]
    return Difficulty(lines_of_code, left_out, failed, covered, steps, table(rows))


def _step_timer(name: str, x: torch.Tensor, config: Any) -> tuple[nn.Module, list[torch.optim.Optimizer], Callable]:
    """A fresh model, its optimizers, and one training step of it on the batch `x`."""
    device = x.device
    with seeded(0):
        if name == "GAN":
            model = GAN(config.latent_dim, config.hidden_dim, dropout=config.d_dropout).to(device)
        else:
            model = VAE(config.latent_dim, config.hidden_dim).to(device)
    z = torch.randn(128, config.latent_dim).to(device)
    if name == "GAN":
        opts = list(gan_module.gan_optimizers(model, config.gan_lr))
        return model, opts, lambda: gan_module.gan_step(model, x, z, *opts)
    opts = [torch.optim.Adam(model.parameters(), config.vae_lr)]

    def step() -> None:
        loss, _ = vae_batch_loss(model, x)
        opts[0].zero_grad(set_to_none=True)
        loss.backward()
        opts[0].step()

    return model, opts, step


def training_bytes(model: nn.Module, opts: Sequence[torch.optim.Optimizer]) -> int:
    """Weights, gradients and optimizer state held after a step."""
    tensors = [*model.parameters()]
    tensors += [p.grad for p in model.parameters() if p.grad is not None]
    tensors += [
        t for opt in opts for state in opt.state.values() for t in state.values() if torch.is_tensor(t) and t.dim() > 0
    ]
    return sum(t.numel() * t.element_size() for t in tensors)


STEP_STEPS = 20  # steps per timing


@dataclass(frozen=True)
class Requirements:
    step_ms: Mapping[str, list[float]]
    state_mb: Mapping[str, float]
    device: str
    table: Table


def requirements(x_train: torch.Tensor, config: Any) -> Requirements:
    """Time one training step of each model on the same batch of 128 images, 20 steps at a time, alternating, five
    times each, on one thread (CPU time on a CPU, which other work on the machine does not inflate); and count the
    bytes each keeps while training."""
    device = x_train.device
    timers = {name: _step_timer(name, x_train[:128], config) for name in ("VAE", "GAN")}
    step_ms: dict[str, list[float]] = {name: [] for name in timers}
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for _, _, step in timers.values():
            step()  # warm-up
        for _ in range(5):
            for name, (_, _, step) in timers.items():
                cuda = device.type == "cuda"
                clock = time.perf_counter if cuda else time.process_time
                if cuda:
                    torch.cuda.synchronize(device)
                start = clock()
                for _ in range(STEP_STEPS):
                    step()
                if cuda:
                    torch.cuda.synchronize(device)
                step_ms[name].append(1000 * (clock() - start) / STEP_STEPS)
    finally:
        torch.set_num_threads(threads)
    state_mb = {name: training_bytes(model, opts) / 1e6 for name, (model, opts, _) in timers.items()}
    ratio = min(step_ms["GAN"]) / min(step_ms["VAE"])
    assert all(t > 0 for v in step_ms.values() for t in v)
    assert 0.5 < ratio < 10  # D three times and G once a step: a ratio outside would be a broken timing
    assert all(1 < mb < 100 for mb in state_mb.values())
    glue("step_steps", STEP_STEPS)
    glue(
        "step_where",
        f"the GPU ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else "one thread of the CPU",
    )
    glue("step_ratio", ratio, ".1f")
    glue("step_gan_ms", min(step_ms["GAN"]), ".1f")
    glue("step_vae_ms", min(step_ms["VAE"]), ".1f")
    glue("state_vae_mb", state_mb["VAE"], ".1f")
    glue("state_gan_mb", state_mb["GAN"], ".1f")
    claim(ratio > 1, "a GAN step takes longer than a VAE step")
    claim(
        abs(state_mb["GAN"] - state_mb["VAE"]) < 0.1 * state_mb["VAE"],
        "the two models hold nearly the same memory while training",
    )
    rows = [
        {"model": name, "step [ms], five timings": ", ".join(f"{t:.1f}" for t in step_ms[name])}
        | {"weights, gradients, Adam state [MB]": state_mb[name]}
        for name in timers
    ]
    return Requirements(
        step_ms, state_mb, device.type, table(rows, formats={"weights, gradients, Adam state [MB]": ".2f"})
    )


# --- The article's claims against the measurements --------------------------------------------------------------


def _holds(comparison: Comparison, expected: str) -> str:
    """'holds' when the comparison is decided in the expected direction, 'does not hold' when decided the other
    way, 'not decided' otherwise."""
    if not comparison.decided:
        return "not decided"
    return "holds" if comparison.verdict == expected else "does not hold"


def _mean(values: Sequence[float], spec: str) -> str:
    """The mean over the seeds, as the claims table shows it (the spread is in each section's table)."""
    return format(mean_sd(values)[0], spec)


def _label_counts(label_accuracy: Mapping[str, Sequence[float]]) -> list[int]:
    """The label counts of keys such as "VAE codes, 100" (the last part of each key)."""
    return sorted({int(key.rsplit(", ", 1)[1]) for key in label_accuracy})


@dataclass(frozen=True)
class VaeGanMeasurements:
    """What chapter 4 measures of the VAE and the GAN: one value per seed, runs of the same index sharing a seed
    (model keys "VAE", "GAN", and "AE" where the autoencoder joins)."""

    fid: Mapping[str, Sequence[float]]  # 10,000 samples of the final weights against the test set
    fid_real: Sequence[float]  # disjoint sets of real training images, one per seed: a perfect generator's distance
    edges: Mapping[str, Sequence[float]]
    edges_real: Sequence[float]  # the same real sets' edge energy
    diverged: Mapping[str, Sequence[Sequence[str]]]  # why each run broke down, if it did
    change: Mapping[str, Sequence[float]]  # mean epoch-to-epoch change of the tracked distance near the end
    gradient_dip: Mapping[str, Sequence[float]]  # smallest over early gradient norm: "VAE", "GAN minimax", "GAN"
    tv: Mapping[str, Sequence[float]]  # class histogram's distance from uniform
    tv_real: float
    missing: Mapping[str, Sequence[Sequence[int]]]  # classes a run's samples leave (nearly) empty
    jump: Mapping[str, Sequence[float]]  # mean jump ratio of straight latent paths
    # rank correlation of the epoch-to-epoch changes of a loss and of the tracked distance, and its p-value: "VAE",
    # "GAN" (generator), optionally "GAN discriminator" and "GAN without dropout" (generator, the dropout section's)
    loss_rho: Mapping[str, Sequence[float]]
    loss_p: Mapping[str, Sequence[float]]
    sampling_ms: Mapping[str, Sequence[float]]  # alternated timings of 10,000 samples
    # test accuracy of a classifier on few labels, "VAE codes, 100", "AE codes, 100", "pixels, 100", ...
    label_accuracy: Mapping[str, Sequence[float]] | None = None
    lines_of_code: Mapping[str, int] | None = None  # the taught model, losses and step
    grid_covered: Mapping[str, Sequence[float]] | None = None  # per seed: share of rates whose short run covered all
    grid_steps: int | None = None  # steps of each short run of the grid
    step_ms: Mapping[str, Sequence[float]] | None = None  # one training step
    state_mb: Mapping[str, float] | None = None  # weights, gradients, Adam state
    step_device: str = "cpu"  # where the steps were timed
    stored_gradient_dip: Sequence[float] | None = None  # the stored GANs: smallest epoch over first epoch
    saturation: Sequence[float] | None = None  # non-saturating over minimax gradient at the same weights
    # per seed, the classes the GAN trained without dropout left under 1% of its samples ("" for none)
    dropped_without_dropout: Mapping[int, str] | None = None


def _image_quality(m: VaeGanMeasurements) -> tuple[str, str]:
    closer = _holds(compare(m.fid["GAN"], m.fid["VAE"]), "lower")
    realistic = _holds(compare(m.fid["GAN"], m.fid_real), "lower")
    edge = compare(m.edges["GAN"], m.edges_real)
    excess = mean_sd(m.edges["GAN"])[0] / mean_sd(m.edges_real)[0] - 1
    if edge.decided and edge.mean < 0:
        sharp = "does not hold (blur)"
    else:
        sharp = f"holds (edge energy {excess:.0%} above real images': noise, not blur)" if edge.decided else "holds"
    blurry = _holds(compare(m.edges["VAE"], m.edges_real), "lower")
    measured = (
        f"Fréchet distance VAE {_mean(m.fid['VAE'], '.0f')}, GAN {_mean(m.fid['GAN'], '.0f')}, real images "
        f"{_mean(m.fid_real, '.2f')}; edge energy VAE {_mean(m.edges['VAE'], '.3f')}, GAN "
        f"{_mean(m.edges['GAN'], '.3f')}, real images {_mean(m.edges_real, '.3f')}"
    )
    verdict = (
        f"this MLP GAN closer to the data than the VAE: {closer}; as close as real images: {realistic}; not blurry: "
        f"{sharp}; VAE blurrier than real images: {blurry}"
    )
    return measured, verdict


def _stability(m: VaeGanMeasurements) -> tuple[str, str]:
    broke = {name: sum(bool(r) for r in runs) for name, runs in m.diverged.items()}
    calmer = _holds(compare(m.change["GAN"], m.change["VAE"]), "higher")
    without = m.dropped_without_dropout
    dropped = 0 if without is None else sum(bool(names) for names in without.values())
    measured = (
        f"runs that broke down VAE {broke['VAE']} of {len(m.diverged['VAE'])}, GAN {broke['GAN']} of "
        f"{len(m.diverged['GAN'])}; change of the tracked Fréchet distance per epoch near the end VAE "
        f"{_mean(m.change['VAE'], '.1f')}, GAN {_mean(m.change['GAN'], '.1f')}"
        + ("" if without is None else f"; GAN runs without dropout that dropped classes: {dropped} of {len(without)}")
    )
    if broke["VAE"] != broke["GAN"]:
        return measured, "does not hold" if broke["VAE"] > broke["GAN"] else "holds"
    reasons = ["no run of either model broke down" if not broke["GAN"] else "as many runs of each broke down"]
    reasons.append(
        {
            "holds": "the GAN's samples moved more from epoch to epoch near the end",
            "does not hold": "the VAE's samples moved more from epoch to epoch near the end",
        }.get(calmer, "the epoch-to-epoch movement near the end does not tell them apart")
    )
    if dropped:
        reasons.append(f"without dropout {dropped} of {len(without)} GAN runs dropped classes")
    if calmer == "holds" or dropped:
        verdict = "holds in part"
    else:
        verdict = "does not hold" if calmer == "does not hold" else "not decided"
    return measured, f"{verdict} ({'; '.join(reasons)})"


def _vanishing(m: VaeGanMeasurements) -> tuple[str, str]:
    def vanished(gan: str) -> str:
        """'holds' only where the GAN's gradient fell further than the VAE's; the other way round shows no
        vanishing, since the VAE's falls as its loss converges: the claim is then not shown."""
        verdict = _holds(compare(m.gradient_dip[gan], m.gradient_dip["VAE"]), "lower")
        return "not shown" if verdict == "does not hold" else verdict

    minimax, non_saturating = vanished("GAN minimax"), vanished("GAN")
    why = (
        " (no gradient vanished: these runs do not test the claim)" if "not shown" in (minimax, non_saturating) else ""
    )
    dip = m.gradient_dip
    measured = (
        f"smallest gradient over the first 300 steps / its early size: VAE decoder {_mean(dip['VAE'], '.2f')}, GAN "
        f"minimax {_mean(dip['GAN minimax'], '.2f')}, non-saturating {_mean(dip['GAN'], '.2f')}"
        + ("" if m.saturation is None else f"; minimax {_mean(m.saturation, '.1f')} times smaller at the same weights")
        + ("" if m.stored_gradient_dip is None else f"; stored GANs, 50 epochs {_mean(m.stored_gradient_dip, '.2f')}")
    )
    return measured, f"against the minimax loss: {minimax}; against the non-saturating loss: {non_saturating}{why}"


def _smoothness(m: VaeGanMeasurements) -> tuple[str, str]:
    smoother = _holds(compare(m.jump["GAN"], m.jump["VAE"]), "higher")
    ae = compare(m.jump["AE"], m.jump["VAE"]).verdict
    measured = (
        f"jump ratio of 100 straight paths (1 = even steps) VAE {_mean(m.jump['VAE'], '.2f')}, GAN "
        f"{_mean(m.jump['GAN'], '.2f')}, AE {_mean(m.jump['AE'], '.2f')}"
    )
    reading = {
        "lower": "smoother, so not the KL term's doing alone",
        "higher": "rougher",
    }.get(ae, "not told apart, so not the KL term's doing alone")
    return measured, f"{smoother}; the AE's paths against the VAE's: {reading}"


def _loss_meaning(m: VaeGanMeasurements) -> tuple[str, str]:
    following = {
        name: sum(follows(name, r, p) for r, p in zip(rhos, m.loss_p[name], strict=True))
        for name, rhos in m.loss_rho.items()
    }
    generator = ["GAN", *(["GAN without dropout"] if "GAN without dropout" in m.loss_rho else [])]
    g_follow, g_runs = sum(following[k] for k in generator), sum(len(m.loss_rho[k]) for k in generator)
    vae_all = following["VAE"] == len(m.loss_rho["VAE"])
    d_follow = following.get("GAN discriminator", 0)
    if g_runs and g_follow == g_runs:
        verdict = "does not hold"
    elif vae_all:
        verdict = "holds" if g_follow == 0 and d_follow == 0 else "holds in part"
    else:
        verdict = "not decided"
    parts = [f"the VAE's -ELBO follows its samples on {following['VAE']} of {len(m.loss_rho['VAE'])} runs"]
    parts.append(f"the generator's loss on {g_follow} of {g_runs}")
    if "GAN discriminator" in m.loss_rho:
        parts.append(f"the discriminator's, inversely, on {d_follow} of {len(m.loss_rho['GAN discriminator'])}")

    def listed(name: str) -> str:
        return ", ".join(f"{r:.2f}" for r in m.loss_rho[name])

    measured = "rank correlation of the epoch-to-epoch changes of the loss and of the Fréchet distance, by seed: " + (
        "; ".join(f"{label} {listed(k)}" for k, label in LOSS_LABELS.items() if k in m.loss_rho)
    )
    return measured, f"{verdict} ({'; '.join(parts)})"


LOSS_LABELS = {
    "VAE": "VAE -ELBO",
    "GAN": "GAN generator",
    "GAN discriminator": "discriminator",
    "GAN without dropout": "generator without dropout",
}


def _sampling(m: VaeGanMeasurements) -> tuple[str, str]:
    ratio = mean_sd(m.sampling_ms["GAN"])[0] / mean_sd(m.sampling_ms["VAE"])[0]
    slower = compare(m.sampling_ms["GAN"], m.sampling_ms["VAE"])
    if ratio <= SLOWER:
        verdict = "does not hold" if slower.decided else "does not hold (not slower here; the timings scatter)"
    else:
        verdict = "holds" if slower.verdict == "higher" else "not decided"
    measured = (
        f"10,000 samples VAE {_mean(m.sampling_ms['VAE'], '.0f')} ms, GAN {_mean(m.sampling_ms['GAN'], '.0f')} ms "
        f"(ratio {ratio:.2f}); both are one pass of the same network"
    )
    return measured, verdict


def _coverage(m: VaeGanMeasurements) -> tuple[str, str]:
    dropped = {name: sum(len(r) for r in runs) for name, runs in m.missing.items()}
    measured = (
        f"class histogram's distance from uniform VAE {_mean(m.tv['VAE'], '.3f')}, GAN {_mean(m.tv['GAN'], '.3f')}, "
        f"real images {m.tv_real:.3f}; classes under 1% of the samples, all runs: VAE {dropped['VAE']}, GAN "
        f"{dropped['GAN']}"
    )
    verdict = _holds(compare(m.tv["GAN"], m.tv["VAE"]), "higher")
    without = {seed: names for seed, names in (m.dropped_without_dropout or {}).items() if names}
    if without:
        runs = "; ".join(f"seed {seed} {names}" for seed, names in without.items())
        measured += f"; without dropout, classes under 1%: {runs}"
        verdict += " (with dropout; without it the GAN dropped classes, the risk the article names)"
    return measured, verdict


def _supervised(m: VaeGanMeasurements) -> tuple[str, str]:
    la = m.label_accuracy
    if la is None:
        return "–", "not measured: no labels were used"
    counts = _label_counts(la)
    few = counts[0]
    measured = f"logistic regression with {few:,} labels: VAE codes {_mean(la[f'VAE codes, {few}'], '.2f')} (chance "
    measured += (
        f"0.10), raw pixels {_mean(la[f'pixels, {few}'], '.2f')}, AE codes {_mean(la[f'AE codes, {few}'], '.2f')}"
    )
    if len(counts) > 1:
        many = counts[-1]
        measured += (
            f"; with {many:,}: {_mean(la[f'VAE codes, {many}'], '.2f')}, {_mean(la[f'pixels, {many}'], '.2f')}, "
            f"{_mean(la[f'AE codes, {many}'], '.2f')}"
        )
    beat = compare(la[f"VAE codes, {few}"], la[f"pixels, {few}"])
    if beat.decided:
        measured += "; the VAE's codes score " + (
            "below the pixels, unlike M1 of Kingma et al. (2014) on MNIST" if beat.mean < 0 else "above the pixels"
        )
    possible = _holds(compare(la[f"VAE codes, {few}"], [0.1]), "higher")
    verdict = (
        f"the VAE with a classifier: {possible}; the GAN: not measured (its checkpoints keep only the generator; the "
        "discriminator's features are one way, an exercise)"
    )
    return measured, verdict


def _resources(m: VaeGanMeasurements) -> str:
    if m.step_ms is None or m.state_mb is None:
        return "–"
    where = "one CPU thread" if m.step_device == "cpu" else m.step_device.upper()
    return (
        f"one training step VAE {min(m.step_ms['VAE']):.1f} ms, GAN {min(m.step_ms['GAN']):.1f} ms ({where}); "
        f"memory while training VAE {m.state_mb['VAE']:.1f} MB, GAN {m.state_mb['GAN']:.1f} MB"
    )


def _difficulty(m: VaeGanMeasurements) -> tuple[str, str]:
    if m.lines_of_code is None or m.grid_covered is None:
        return "–", "not measured: no code or short runs were measured"
    loc, share = m.lines_of_code, m.grid_covered
    within = "short runs" if m.grid_steps is None else f"runs of {m.grid_steps} steps"
    measured = (
        f"lines of code of the model, losses and step VAE {loc['VAE']}, GAN {loc['GAN']}; share of learning rates "
        f"whose {within} covered every class VAE {_mean(share['VAE'], '.2f')}, GAN {_mean(share['GAN'], '.2f')}"
    )
    verdict = (
        "more code for the GAN: "
        + ("holds" if loc["GAN"] > loc["VAE"] else "does not hold")
        + "; more settings: not measured (listed by hand); needs tuning: not measured; in "
        f"{within} "
        "the VAE covered every class at more learning rates: " + _holds(compare(share["VAE"], share["GAN"]), "higher")
    )
    return measured, verdict


BEYOND = "Beyond this chapter (the article's points 1 and 5)"
ARTICLE = {  # the article's rows, in its order, each with its topic as the verdict table names it
    "Purpose": "the VAE learns a probabilistic latent space and generates; the GAN generates realistic data",
    "Image quality": "VAE medium to fairly high, tends to be blurry; GAN very high (sharp and realistic)",
    "Training stability": "the VAE trains stably; the GAN's two networks are hard to balance, it often does not "
    "converge, and mode collapse can occur",
    "Vanishing gradients": "fewer for the VAE",
    "Latent smoothness": "the VAE's latent space is very smooth; the GAN's not necessarily",
    "Theory": "the VAE's is clear (variational inference); the GAN's framework depends on the implementation",
    "Loss meaning": "the VAE's loss is interpretable; the GAN's adversarial loss is ambiguous",
    "Sampling speed": "the VAE is fast; the GAN needs a generator pass per sample",
    "Mode coverage": "the VAE is diverse but less refined; the GAN risks mode collapse",
    "Applications": "the VAE for features, anomaly detection, interpolation; the GAN mainly for image generation",
    "Use with supervised learning": "the VAE: possible (semi-supervised VAE); the GAN: limited (constrained GANs "
    "exist)",
    "When to choose": "the VAE for features and latent exploration; the GAN for high-quality synthesis",
    "Requirements": "the VAE when stability and guarantees matter; the GAN when visual quality does",
    "Implementation difficulty": "the VAE fairly easy; the GAN hard (needs tuning)",
    BEYOND: "StyleGAN2 and BigGAN reach images people can hardly tell from real ones; the GAN specialises in "
    "high-quality images (StyleGAN, CycleGAN, Pix2Pix) and carries over less to other tasks; the VAE has many variants "
    "(β-VAE, CVAE, VAE-GAN)",
}
CLAIM, MEASURED, VERDICT = "the article", "measured here (means of the seeds)", "verdict"
SHOWN = "verdict, and what was measured (means of the seeds)"  # the claims table's second column on the page


def vae_gan_verdicts(m: VaeGanMeasurements) -> Table:
    """The article's VAE-vs-GAN claims, each with what this chapter measured and a verdict computed from it:
    'holds', 'holds in part', 'does not hold' or 'not decided' by the seed rule of `compare`, or 'not measured'
    with the reason."""
    not_measured = "not measured: "
    stability_row = _stability(m)
    found = {
        "Purpose": ("–", not_measured + "a definition of each family"),
        "Image quality": _image_quality(m),
        "Training stability": stability_row,
        "Vanishing gradients": _vanishing(m),
        "Latent smoothness": _smoothness(m),
        "Theory": ("–", not_measured + "a claim about theory, not about a run"),
        "Loss meaning": _loss_meaning(m),
        "Sampling speed": _sampling(m),
        "Mode coverage": _coverage(m),
        "Applications": ("two uses are measured in other rows: interpolation, features", not_measured + "a survey"),
        "Use with supervised learning": _supervised(m),
        "When to choose": ("–", "derived, not measured: see 'When to choose which'"),
        "Requirements": (
            _resources(m),
            not_measured + f"advice, which rests on the stability row ({stability_row[1].split(' (')[0]}) and the "
            "image-quality row",
        ),
        "Implementation difficulty": _difficulty(m),
        BEYOND: ("–", not_measured + "models far larger than this chapter's; chapter 5 measures the β-VAE"),
    }
    return table(
        [
            {CLAIM: f"{topic}: {ARTICLE[topic]}", MEASURED: measured, VERDICT: verdict}
            for topic, (measured, verdict) in found.items()
        ]
    )


def claims_table(
    quality: Quality,
    stability_: Stability,
    gradients_: Gradients,
    coverage_: Coverage,
    smooth: Smoothness,
    sampling_ms: Mapping[str, list[float]],
    meaning: Meaning,
    label_accuracy: Mapping[str, list[float]],
    difficulty_: Difficulty,
    requirements_: Requirements,
    dropout: Dropout,
    class_names: Sequence[str],
    seeds: Sequence[int],
) -> Table:
    """The verdict table from the sections' measurements, as the page shows it (each verdict, then what it rests on),
    and the claims of the chapter's summary of it."""
    dropped = {
        seed: ", ".join(class_names[k] for k in missing)
        for seed, missing in zip(seeds, dropout.missing_without, strict=True)
    }
    measured = VaeGanMeasurements(
        fid=quality.fid,
        fid_real=quality.fid_real,
        edges=quality.edges,
        edges_real=quality.edges_real,
        diverged=stability_.diverged,
        change=stability_.change,
        gradient_dip=gradients_.dip,
        tv=coverage_.tv,
        tv_real=coverage_.tv_real,
        missing=coverage_.missing,
        jump=smooth.jump,
        loss_rho=meaning.change,
        loss_p=meaning.p,
        sampling_ms=sampling_ms,
        label_accuracy=label_accuracy,
        lines_of_code=difficulty_.lines_of_code,
        grid_covered=difficulty_.covered,
        grid_steps=difficulty_.grid_steps,
        step_ms=requirements_.step_ms,
        state_mb=requirements_.state_mb,
        step_device=requirements_.device,
        stored_gradient_dip=gradients_.stored_dip,
        saturation=gradients_.saturation,
        dropped_without_dropout=dropped,
    )
    verdicts = vae_gan_verdicts(measured)
    verdict = {row[CLAIM].split(": ", 1)[0]: row[VERDICT] for row in verdicts.rows}
    quality_verdict = verdict["Image quality"]
    claim(
        "closer to the data than the VAE: holds" in quality_verdict
        and "not blurry: holds" in quality_verdict
        and "VAE blurrier than real images: holds" in quality_verdict
        and verdict["Latent smoothness"].startswith("holds")
        and verdict["Use with supervised learning"].startswith("the VAE with a classifier: holds")
        and verdict["Implementation difficulty"].startswith("more code for the GAN: holds")
        and "the VAE covered every class at more learning rates: holds" in verdict["Implementation difficulty"],
        "these of the article's testable claims held here",
    )
    claim(
        verdict["Training stability"].startswith("holds in part")
        and verdict["Loss meaning"].startswith("holds in part"),
        "training stability and the meaning of the loss held in part",
    )
    claim(
        "as close as real images: does not hold" in quality_verdict
        and verdict["Sampling speed"].startswith("does not"),
        "two did not hold: this MLP GAN is not as close as real images, and it does not sample more slowly",
    )
    claim(verdict["Sampling speed"].startswith("does not hold"), "the GAN does not sample more slowly")
    claim(
        verdict["Mode coverage"].startswith("not decided") and "holds" not in verdict["Vanishing gradients"],
        "mode coverage and vanishing gradients are left unsettled",
    )
    shown = [  # two columns, so that the table fits a phone's width
        {CLAIM: row[CLAIM], SHOWN: row[VERDICT] + ("" if row[MEASURED] == "–" else f". Measured: {row[MEASURED]}")}
        for row in verdicts.rows
    ]
    return table(shown)


def _favours(comparison: Comparison, lower: str, higher: str) -> str:
    """Which model a decided comparison favours: `lower` when a - b is decided negative, `higher` when positive."""
    if not comparison.decided:
        return "neither (not decided)"
    return lower if comparison.mean < 0 else higher


def ranked(scores: Mapping[str, Sequence[float]], *, higher_first: bool = False) -> str:
    """The names in order of their mean score (lowest first, or highest), where the comparisons decide it ("A, then
    B, then C"); neighbours the measurements cannot order are named together ("A and B (not told apart), then C")."""
    means = {name: mean_sd(values)[0] for name, values in scores.items()}
    order = sorted(means, key=means.__getitem__, reverse=higher_first)
    groups = [[order[0]]]
    for before, name in zip(order, order[1:], strict=False):
        if compare(scores[name], scores[before]).decided:
            groups.append([name])
        else:
            groups[-1].append(name)
    return ", then ".join(" and ".join(group) + " (not told apart)" * (len(group) > 1) for group in groups)


def smoothest(jump: Mapping[str, Sequence[float]]) -> str:
    """The models in order of their paths' evenness where the comparisons decide it ("the AE, then the VAE, then
    the GAN"); the ones the measurements cannot order are named together."""
    return ranked({f"the {name}": values for name, values in jump.items()})


def when_to_choose(
    quality: Quality,
    stability_: Stability,
    smooth: Smoothness,
    coverage_: Coverage,
    label_accuracy: Mapping[str, list[float]],
    difficulty_: Difficulty,
    requirements_: Requirements,
) -> None:
    """Glue, for each need of the chapter's 'When to choose which' table, the model its measurement favours."""
    few = _label_counts(label_accuracy)[0]
    choices = {
        "quality": _favours(compare(quality.fid["GAN"], quality.fid["VAE"]), "the GAN", "the VAE"),
        "stability": _favours(compare(stability_.change["VAE"], stability_.change["GAN"]), "the VAE", "the GAN"),
        "smoothness": smoothest(smooth.jump),
        "coverage": _favours(compare(coverage_.tv["VAE"], coverage_.tv["GAN"]), "the VAE", "the GAN"),
        "features": ranked(  # chapter 3's AE joins: its codes were measured beside the VAE's and the pixels
            {
                "the AE's codes": label_accuracy[f"AE codes, {few}"],
                "the raw pixels": label_accuracy[f"pixels, {few}"],
                "the VAE's codes": label_accuracy[f"VAE codes, {few}"],
            },
            higher_first=True,
        ),
        "grid": _favours(compare(difficulty_.covered["GAN"], difficulty_.covered["VAE"]), "the VAE", "the GAN"),
        "step": _favours(compare(requirements_.step_ms["VAE"], requirements_.step_ms["GAN"]), "the VAE", "the GAN"),
    }
    for key, choice in choices.items():
        glue(f"choose_{key}", choice)
    claim(choices["smoothness"].startswith("the AE"), "of the three, the autoencoder's paths are the most even")
