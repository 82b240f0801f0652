"""Chapter 3's evidence (the variational autoencoder): its short and smoke budgets, the runs of the VAE with the score
of samples they record for chapter 4, the per-image -ELBO terms, the importance-weighted bound (shown in the chapter:
one source with its cell, tests/test_evidence_ch3.py), and every measurement, claim, verdict table and figure the
chapter's hidden cells show, section by section. The chapter teaches the VAE, its loss and its training step in its
own cells (one source with aecourse.models and aecourse.losses); what it only measures is here.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import matplotlib.pyplot as plt
import torch
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from torch import nn

from aecourse import runtime
from aecourse.checkpoints import Trained
from aecourse.checks import check_int
from aecourse.data import CLASS_NAMES, FashionMNIST
from aecourse.evidence.classifier import pretrained_classifier
from aecourse.evidence.figures import latent_scatter, plot_curves, plot_xy
from aecourse.evidence.metrics import active_units, anomaly_auc, frechet_distance, psnr
from aecourse.evidence.report import (
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
from aecourse.inference import batched, decode, encode, fit_gaussian, generate, interpolate, posterior, reconstruct
from aecourse.losses import bce, gaussian_kl, vae_loss
from aecourse.plot import STYLE, finish, image_grid, image_rows
from aecourse.runtime import evaluating

C = TypeVar("C")

# The budgets below the full one (the Config's defaults): a few CPU minutes, and seconds for CI's smoke run.
SHORT = {
    "num_epochs": 15,
    "ae_epochs": 5,
    "epochs_2d": 5,
    "binarized_epochs": 5,
    "anomaly_epochs": 5,
    "seeds": (0,),
    "iwae_images": 100,
    "num_generated": 2_000,
}
SMOKE = {
    "num_epochs": 1,
    "ae_epochs": 1,
    "epochs_2d": 1,
    "binarized_epochs": 1,
    "anomaly_epochs": 1,
    "seeds": (0,),
    "train_size": 2_000,
    "track_samples": 500,
    "iwae_ks": (1, 10, 100),
    "iwae_images": 50,
    "num_generated": 1_000,
}


def at_budget(config: C) -> C:
    """Chapter 3's config at the budget AECOURSE_BUDGET asks for (ch. 3): the full one is the Config's defaults."""
    return runtime.at_budget(config, short=SHORT, smoke=SMOKE)


def judge(data: FashionMNIST) -> nn.Module:
    """The course's small Fashion-MNIST classifier, on the data's device: it judges generated images (ch. 3; chapter
    4 explains it)."""
    return pretrained_classifier(data, data.x_test.device)


def sample_tracker(data: FashionMNIST, num_samples: int) -> Callable[[nn.Module], dict[str, float]]:
    """What the VAE's training records after every epoch (vae_runs): the Fréchet distance of `num_samples` fresh samples
    to as many test images, in the classifier's features (chapter 4 compares its course with a GAN's). The
    classifier is loaded at the first epoch's end, so a chapter that loads its models never pays for it; loading
    draws nothing from the training's random stream."""
    check_int("sample_tracker: num_samples", num_samples, minimum=2)
    loaded: list[nn.Module] = []

    def track_samples(model: nn.Module) -> dict[str, float]:
        if not loaded:
            loaded.append(judge(data))
        samples = generate(model, num_samples, seed=123)
        return {"fid": frechet_distance(data.x_test[:num_samples], samples, loaded[0])}

    return track_samples


def vae_runs(trained_vae: Callable[..., Trained], data: FashionMNIST, config: Any) -> list[Trained]:
    """The article's VAE, one run per seed of `config.seeds`, each `trained_vae(seed, epoch_end=...)` (ch. 3): a run
    that trains also scores `config.track_samples` samples after every epoch (sample_tracker), the record of how its
    samples improve that chapter 4 compares with a GAN's; a loaded run brings that record in its history."""
    track = sample_tracker(data, config.track_samples)  # one classifier for every run
    return [trained_vae(seed, epoch_end=track) for seed in config.seeds]


def _dropdown_table(name: str, rows: Sequence[Mapping[str, Any]]) -> None:
    """A section's evidence as Markdown, for its folded "How we know" block ({glue:md})."""
    glue_markdown(name, table(rows).markdown())


# --- The training step and the training run ------------------------------------------------------------------------


def first_step(logged: Mapping[str, torch.Tensor], model: nn.Module) -> None:
    """What one step on a fresh VAE shows (ch. 3): a reconstruction term near 784 log 2 (every pixel predicted with
    probability one half), a KL term near 0, and a gradient that reached the encoder."""
    claim(
        abs(logged["reconstruction"].item() / 784 - math.log(2)) < 0.05 and logged["kl"].item() < 1.0,
        "a fresh VAE's reconstruction term is near 784 log 2, its KL near 0",
    )
    assert float(model.mu_head.weight.grad.norm()) > 0  # the encoder learns


# A guard against a regression, not a finding: the stored seeds' test -ELBO, 240.66 ± 0.19 nats, plus three sd,
# rounded up (not the observed worst seed, 240.88).
ELBO_BAR = 241.3


def training_results(vaes: Sequence[Trained]) -> Table:
    """The VAE's test -ELBO over the seeds and the course of its two terms in the first seed's run (ch. 3), glued
    for the prose; the table of the runs' test -ELBO."""
    test_neg_elbo = [entry.history.last["test_loss"] for entry in vaes]
    glue("test_neg_elbo", mean_sd(test_neg_elbo)[0], ".1f")
    glue("test_neg_elbo_seeds", pm(test_neg_elbo, ".1f"))
    glue("test_neg_elbo_seed0", test_neg_elbo[0], ".1f")
    glue("test_kl", mean_sd([mean_sd(e.history["test_kl"][-5:])[0] for e in vaes])[0], ".1f")
    claim(max(test_neg_elbo) <= ELBO_BAR, "the VAE reaches a test -ELBO of at most 241.3 nats")
    history = vaes[0].history
    rec_curve, kl_curve = history["train_reconstruction"], history["train_kl"]
    kl_peak = max(range(len(kl_curve)), key=kl_curve.__getitem__)
    glue("rec_first", rec_curve[0], ".1f")
    glue("rec_last", rec_curve[-1], ".1f")
    glue("kl_first", kl_curve[0], ".1f")
    glue("kl_peak", kl_curve[kl_peak], ".1f")
    glue("kl_peak_epoch", kl_peak + 1)
    glue("kl_last", kl_curve[-1], ".1f")
    claim(rec_curve[-1] < rec_curve[0], "reconstruction term: lower in the last epoch than the first")
    claim(
        kl_curve[0] < kl_curve[-1] < kl_curve[kl_peak]
        and kl_curve[kl_peak] - kl_curve[-1] < (kl_curve[kl_peak] - kl_curve[0]) / 2,
        "KL term: rises to a peak, then falls back less than half",
    )
    rows = [
        {"seed": e.manifest["seed"], "epochs": e.manifest["epochs"], "test -ELBO [nats]": e.history.last["test_loss"]}
        for e in vaes
    ]
    return table(rows, formats={"test -ELBO [nats]": ".1f"})


TERMS = {
    "reconstruction": r"reconstruction term, $-\log p(x \mid z)$ (the BCE)",
    "kl": r"KL term, $\mathrm{KL}(q(z \mid x) \,\|\, p(z))$",
}


def term_figure(history: Any, term: str) -> Figure:
    """One term of the -ELBO (reconstruction or kl), training and test, epoch by epoch (ch. 3)."""
    curves = {"train": history[f"train_{term}"], "test": history[f"test_{term}"]}
    return plot_curves(curves, ylabel="nats per image", title=TERMS[term])


def latent_dimensions(vaes: Sequence[Trained], x_test: torch.Tensor, mu: torch.Tensor, logvar: torch.Tensor) -> Figure:
    """Which of the code's dimensions the VAE uses (ch. 3): each seed's count of active units (Burda et al.'s
    variance of mu_j over the test images above 0.01), and for the first seed (`mu`, `logvar` of its posterior on
    `x_test`) each dimension's variance and KL: drawn as bars, most informative first, and tabled for the folded
    block."""
    active = active_units(mu)
    kl_dims = gaussian_kl(mu, logvar).mean(0)  # the KL of each z_j, averaged over the images
    variance = mu.var(0)
    counts = [int(active_units(posterior(entry.model, x_test)[0]).sum()) for entry in vaes]
    glue("active_units", counts[0])
    glue("active_units_seeds", ", ".join(map(str, counts)))
    glue("inactive_kl", round_outward(float(kl_dims[~active].max()), 3, up=True) if (~active).any() else 0.0, ".3f")
    glue("active_min_kl", float(kl_dims[active].min()), ".2f")  # as the table shows it
    glue("active_max_kl", float(kl_dims[active].max()), ".2f")
    claim(
        all(0 < count < mu.shape[1] for count in counts),
        "every seed's VAE uses some of its 20 dimensions and leaves the rest",
    )
    claim(torch.equal(~active, kl_dims < 0.1), "inactive units are those with a KL near zero")
    order = kl_dims.argsort(descending=True).tolist()
    rows = [
        {"dimension": j, "Var(mu_j)": float(variance[j]), "KL [nats]": float(kl_dims[j]), "active": bool(active[j])}
        for j in order
    ]
    glue_markdown("ch3_dimensions_table", table(rows, formats={"Var(mu_j)": ".3f", "KL [nats]": ".2f"}).markdown())
    return dimensions_figure(kl_dims, variance, active)


def dimensions_figure(kl_dims: torch.Tensor, variance: torch.Tensor, active: torch.Tensor) -> Figure:
    """Each latent dimension's KL (top) and the variance of its mean over the images (bottom, log scale, with the
    active-unit threshold), most informative first, active dimensions dark (latent_dimensions)."""
    order = kl_dims.argsort(descending=True).tolist()
    colours = ["C0" if active[j] else "0.75" for j in order]
    at = range(len(order))
    with plt.rc_context(STYLE):
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(8.0, 5.0), sharex=True)
        top.bar(at, [float(kl_dims[j]) for j in order], color=colours)
        top.set_ylabel("KL [nats]")
        bottom.bar(at, [float(variance[j]) for j in order], color=colours)
        bottom.set_yscale("log")
        bottom.axhline(0.01, color="black", linestyle="--", linewidth=1)
        bottom.set_ylabel(r"Var($\mu_j$)")
        bottom.set_xticks(list(at), [str(j) for j in order])
        bottom.set_xlabel("latent dimension $j$, by its KL")
        handles = [Patch(color="C0", label="active"), Patch(color="0.75", label="inactive")]
        handles.append(Line2D([], [], color="black", linestyle="--", linewidth=1, label="threshold 0.01"))
        top.legend(handles=handles, loc="upper right")
        return finish(fig)


# --- The AE-vs-VAE table, tested -------------------------------------------------------------------------------------

GAP = 2  # white pixels between two images of a panel


def _canvas(rows: Sequence[torch.Tensor], ncol: int) -> torch.Tensor:
    """Rows of 28 x 28 images as one picture, `ncol` to a row, a white gap between neighbours."""
    step = 28 + GAP
    canvas = torch.ones(len(rows) * step - GAP, ncol * step - GAP)
    for r, images in enumerate(rows):
        for c, image in enumerate(images.detach().float().cpu().reshape(-1, 28, 28)[:ncol]):
            canvas[r * step : r * step + 28, c * step : c * step + 28] = image.clamp(0, 1)
    return canvas


def image_panels(panels: Mapping[str, Sequence[tuple[str, torch.Tensor]]], ncol: int) -> Figure:
    """Titled panels of labelled image rows, `ncol` images to a row, at the page's width (the chapter's figures):
    short row labels and the longer description in the panel's title keep the images large enough to read on a
    phone."""
    labels = [label for rows in panels.values() for label, _ in rows]
    label_in = 0.14 * max(map(len, labels)) + 0.2 if any(labels) else 0.0
    cell = (8.0 - label_in) / ncol
    heights = [len(rows) for rows in panels.values()]
    titled = sum(bool(title) for title in panels)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(8.0, cell * sum(heights) + 0.4 * titled + 0.1),
            gridspec_kw={"height_ratios": heights},
            squeeze=False,
        )
        for ax, (title, rows) in zip(axes[:, 0], panels.items(), strict=True):
            ax.imshow(_canvas([images for _, images in rows], ncol).numpy(), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([r * (28 + GAP) + 13.5 for r in range(len(rows))], [label for label, _ in rows])
            ax.tick_params(length=0)
            for spine in ax.spines.values():
                spine.set_visible(False)
            ax.set_title(title)
        return finish(fig, pad=0.3)


def reconstruction_figure(ae: nn.Module, vae: nn.Module, x_test: torch.Tensor, num_images: int = 8) -> Figure:
    """The first test images and their reconstructions by the AE and by the VAE (decoding its mean code) (ch. 3):
    what the PSNR gap between the two looks like."""
    x = x_test[:num_images]
    rows = [("test", x), ("AE", reconstruct(ae, x)), ("VAE", reconstruct(vae, x))]
    return image_panels({"": rows}, num_images)


def reconstruction_comparison(aes: Sequence[Trained], vaes: Sequence[Trained], x_test: torch.Tensor) -> Table:
    """The test PSNR of each AE and VAE, decoding the code of each image (the mean for the VAE), seed by seed
    (ch. 3): the article's training row says the AE, which spends everything on reconstruction, reconstructs
    better."""
    scores = {
        "AE": [psnr(reconstruct(entry.model, x_test), x_test) for entry in aes],
        "VAE": [psnr(reconstruct(entry.model, x_test), x_test) for entry in vaes],
    }
    ae_vs_vae = compare(scores["AE"], scores["VAE"])
    glue("ae_psnr", mean_sd(scores["AE"])[0], ".2f")
    glue("vae_psnr", mean_sd(scores["VAE"])[0], ".2f")
    glue("psnr_gap", ae_vs_vae.mean, ".2f")
    claim(ae_vs_vae.verdict == "higher", "the AE reconstructs better than the VAE")
    _dropdown_table("ch3_psnr_evidence", comparison_rows({"AE's test PSNR minus the VAE's [dB]": ae_vs_vae}))
    return table([{"model": name, "test PSNR [dB]": pm(values)} for name, values in scores.items()])


def _first_of_each_class(y: torch.Tensor) -> dict[int, int]:
    return {c: int((y == c).nonzero()[0]) for c in range(len(CLASS_NAMES))}


PAIRS = ((0, 1), (7, 9), (2, 8))  # (T-shirt, Trouser), (Sneaker, Ankle boot), (Pullover, Bag)


def interpolation_figure(ae: nn.Module, vae: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor) -> Figure:
    """Nine images along the straight line between the codes of the first test image of two classes, for three pairs,
    decoded by the AE and by the VAE (its codes are the means) (ch. 3)."""
    first_of = _first_of_each_class(y_test)
    panels = {}
    for a, b in PAIRS:
        x_pair = x_test[[first_of[a], first_of[b]]]
        rows = []
        for name, model in (("AE", ae), ("VAE", vae)):
            codes = encode(model, x_pair)
            rows.append((name, interpolate(model, codes[0], codes[1], 9)))
        panels[f"{CLASS_NAMES[a].split('/')[0]} → {CLASS_NAMES[b]}"] = rows
    return image_panels(panels, 9)


TS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)  # along the line: 0 and 1 are the two real codes
EXTRAPOLATION_MARGIN = 0.02  # about 2 sd of the noisiest point (0.010)


def top_class_confidence(images: torch.Tensor, classifier: nn.Module) -> torch.Tensor:
    """The classifier's largest softmax probability for every image, (N,): how sure it is of what it sees."""
    return batched(lambda batch: classifier(batch).softmax(1).amax(1), images)


def _confidence_along_lines(model: nn.Module, x_test: torch.Tensor, ends: torch.Tensor, classifier: nn.Module):
    codes = encode(model, x_test[ends])
    half = len(ends) // 2
    start, end = codes[:half], codes[half:]
    return [float(top_class_confidence(decode(model, torch.lerp(start, end, t)), classifier).mean()) for t in TS]


def extrapolation(
    aes: Sequence[Trained], vaes: Sequence[Trained], x_test: torch.Tensor, classifier: nn.Module
) -> Table:
    """The classifier's mean confidence along 500 straight lines between random pairs of test codes, from t = -1 to
    t = 2, for every seed of each model (ch. 3): the article's interpolation and extrapolation, put to a number. A
    blend of two items should get a less sure answer than either; past the ends the confidence must stay within
    EXTRAPOLATION_MARGIN of its value at the nearer real code."""
    ends = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(5))[:1000].to(x_test.device)
    confidence = {
        "AE": [_confidence_along_lines(e.model, x_test, ends, classifier) for e in aes],
        "VAE": [_confidence_along_lines(e.model, x_test, ends, classifier) for e in vaes],
    }

    def at(t: float) -> dict[str, list[float]]:  # each model's mean confidence at t, one value per seed
        return {name: [c[TS.index(t)] for c in runs] for name, runs in confidence.items()}

    midpoint = {name: compare(at(0.5)[name], at(1.0)[name]) for name in confidence}
    beyond = compare(at(2.0)["VAE"], at(2.0)["AE"])
    claim(
        all(c.verdict == "lower" for c in midpoint.values()),
        "a path's midpoint is less confident than its end, for both",
    )
    claim(
        all(
            mean_sd(at(out)[name])[0] >= mean_sd(at(end)[name])[0] - EXTRAPOLATION_MARGIN
            for out, end in ((-1.0, 0.0), (2.0, 1.0))
            for name in confidence
        ),
        "at t = -1 and 2 the confidence is within the margin of its end",
    )
    largest_sd = max(mean_sd(at(t)[name])[1] for t in (-1.0, 0.0, 1.0, 2.0) for name in confidence)
    claim(EXTRAPOLATION_MARGIN <= 3 * largest_sd, "the margin is no looser than 3 sd of the noisiest point")
    glue("extrapolation_margin", EXTRAPOLATION_MARGIN, ".2f")
    glue("extrapolation_largest_sd", largest_sd, ".3f")
    shown = {name: {t: round(mean_sd(at(t)[name])[0], 3) for t in TS} for name in confidence}  # as the table shows
    for name in confidence:
        for t, key in ((-1.0, "minus"), (0.0, "0"), (0.5, "half"), (1.0, "end"), (2.0, "2")):
            glue(f"confidence_{name.lower()}_{key}", shown[name][t], ".3f")
    change = max(abs(s[out] - s[end]) for s in shown.values() for out, end in ((-1.0, 0.0), (2.0, 1.0)))
    glue("extrapolation_change", change, ".3f")
    past_ends = {
        f"{name}: confidence at t = {out:g} minus at t = {end:g}": compare(at(out)[name], at(end)[name])
        for name in confidence
        for out, end in ((-1.0, 0.0), (2.0, 1.0))
    }
    claim(
        past_ends["VAE: confidence at t = -1 minus at t = 0"].verdict == "higher"
        and past_ends["AE: confidence at t = -1 minus at t = 0"].verdict == "lower",
        "from t = 0 to t = -1 the VAE's confidence rises and the AE's falls",
    )
    rows = {
        "VAE: confidence at t = 0.5 minus at t = 1": midpoint["VAE"],
        "AE: confidence at t = 0.5 minus at t = 1": midpoint["AE"],
        "confidence at t = 2: VAE minus AE": beyond,
    }
    _dropdown_table("ch3_extrapolation_evidence", comparison_rows(rows | past_ends))
    spread = [
        {"t": _t_text(t)} | {name: pm([c[i] for c in runs], ".3f") for name, runs in confidence.items()}
        for i, t in enumerate(TS)
    ]
    _dropdown_table("ch3_extrapolation_spread", spread)
    return table([{"t": _t_text(t)} | {name: shown[name][t] for name in confidence} for t in TS], default=".3f")


def _t_text(t: float) -> str:
    return f"{t:g}".replace("-", "−")  # a minus sign, not a hyphen


def extrapolation_figure(ae: nn.Module, vae: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor) -> Figure:
    """The line through the codes of the first sneaker (t = 0) and the first ankle boot (t = 1) of the test set,
    continued from t = -1 to t = 2, decoded by the VAE and the AE (ch. 3)."""
    first_of = _first_of_each_class(y_test)
    x_pair = x_test[[first_of[7], first_of[9]]]
    paths = {}
    for name, model in (("VAE", vae), ("AE", ae)):
        codes = encode(model, x_pair)
        paths[name] = torch.cat([decode(model, torch.lerp(codes[:1], codes[1:], t)) for t in TS])
    return image_rows(paths, num_images=len(TS), titles=[f"t = {t:g}" for t in TS])


# --- Generating with an autoencoder ----------------------------------------------------------------------------------

WAYS = ("AE, z ~ N(0, I)", "AE, z ~ fitted Gaussian", "VAE, z ~ N(0, I)")


def generated_images(
    ae: nn.Module, vae: nn.Module, x_train: torch.Tensor, seed: int, num_generated: int
) -> dict[str, torch.Tensor]:
    """`num_generated` images from each way of generating, for one seed's AE and VAE (ch. 3): the AE decoding the
    VAE's prior, the AE decoding a Gaussian fitted to its training codes (sample mean, full covariance), and the VAE
    decoding its prior. Each drawn from `seed`, without touching the caller's random stream."""
    device = x_train.device
    draw = torch.Generator(device).manual_seed(seed)
    fitted = fit_gaussian(encode(ae, x_train))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        from_fitted = fitted.sample((num_generated,)).float().to(device)
    latent_dim = fitted.mean.shape[0]
    return {
        WAYS[0]: decode(ae, torch.randn(num_generated, latent_dim, device=device, generator=draw)),
        WAYS[1]: decode(ae, from_fitted),
        WAYS[2]: generate(vae, num_generated, seed=seed),
    }


PANEL_TITLES = {
    WAYS[0]: r"the AE decoding $z \sim \mathcal{N}(0, I)$",
    WAYS[1]: r"the AE decoding $z$ drawn from a Gaussian fitted to its codes",
    WAYS[2]: r"the VAE decoding $z \sim \mathcal{N}(0, I)$, its prior",
}


def generation_figure(generated: Mapping[str, torch.Tensor]) -> Figure:
    """Sixteen images from each way of generating, in two rows of eight under a title (ch. 3)."""
    return image_panels({PANEL_TITLES[way]: [("", x[:8]), ("", x[8:16])] for way, x in generated.items()}, 8)


def generation_scores(
    generated: Mapping[int, Mapping[str, torch.Tensor]],
    x_test: torch.Tensor,
    reference: torch.Tensor,
    classifier: nn.Module,
) -> Table:
    """Each way of generating scored over the seeds (ch. 3): the classifier's mean top-class confidence and the
    Fréchet distance to the test images in its features, with real training images (`reference`) as the row an
    ideal generator would match; the verdicts the prose states, and the images' contrast (the sd of their pixels)."""
    seeds = list(generated)
    fd = {way: [frechet_distance(x_test, generated[s][way], classifier) for s in seeds] for way in WAYS}
    confidence = {
        way: [float(top_class_confidence(generated[s][way], classifier).mean()) for s in seeds] for way in WAYS
    }
    contrast = {way: [float(generated[s][way].flatten(1).std(1).mean()) for s in seeds] for way in WAYS[1:]}
    prior_fails = compare(fd[WAYS[0]], fd[WAYS[2]])
    repaired = compare(fd[WAYS[0]], fd[WAYS[1]])
    fitted_vs_vae = compare(fd[WAYS[1]], fd[WAYS[2]])
    confidence_gap = compare(confidence[WAYS[1]], confidence[WAYS[2]])
    contrast_gap = compare(contrast[WAYS[1]], contrast[WAYS[2]])
    glue("fd_ae_prior", mean_sd(fd[WAYS[0]])[0], ".0f")
    glue("fd_ae_fitted", mean_sd(fd[WAYS[1]])[0], ".0f")
    glue("fd_vae", mean_sd(fd[WAYS[2]])[0], ".1f")
    glue("contrast_fitted", mean_sd(contrast[WAYS[1]])[0], ".3f")
    glue("contrast_vae", mean_sd(contrast[WAYS[2]])[0], ".3f")
    claim(prior_fails.verdict == "higher", "the AE decoding N(0, I) is far from the data, farther than the VAE")
    claim(
        repaired.verdict == "higher" and repaired.mean > prior_fails.mean / 2,
        "fitting a Gaussian repairs most of the AE's distance to the VAE's",
    )
    claim(fitted_vs_vae.verdict == "not decided", "the fitted AE's Fréchet distance is not told apart from the VAE's")
    claim(confidence_gap.verdict == "lower", "the fitted AE's samples get a lower confidence than the VAE's")
    claim(contrast_gap.verdict == "higher", "the fitted AE's samples have more contrast than the VAE's")
    _dropdown_table(
        "ch3_generation_evidence",
        comparison_rows(
            {
                "Fréchet distance: AE from N(0, I) minus VAE": prior_fails,
                "Fréchet distance: AE from N(0, I) minus fitted AE": repaired,
                "Fréchet distance: fitted AE minus VAE": fitted_vs_vae,
                "confidence: fitted AE minus VAE": confidence_gap,
                "contrast: fitted AE minus VAE": contrast_gap,
            }
        ),
    )
    rows = [
        {
            "images": "real training images",
            "confidence": float(top_class_confidence(reference, classifier).mean()),
            "Fréchet distance": pm([frechet_distance(x_test, reference, classifier)]),
        }
    ]
    rows += [
        {"images": way, "confidence": mean_sd(confidence[way])[0], "Fréchet distance": pm(fd[way], ".1f")}
        for way in WAYS
    ]
    return table(rows, formats={"confidence": ".3f"})


# --- The 2-D VAE ---------------------------------------------------------------------------------------------------


def vae_2d_results(vae_2d: Trained, vae_20d: Trained, epochs_2d: int) -> None:
    """The 2-D VAE's test -ELBO against the 20-D VAE's after as many epochs, seed 0 of each (ch. 3): what a code of
    two numbers costs, glued."""
    neg_elbo_2d = vae_2d.history.last["test_loss"]
    neg_elbo_20d_at = vae_20d.history["test_loss"][epochs_2d - 1]
    glue("neg_elbo_2d", neg_elbo_2d, ".1f")
    glue("neg_elbo_20d_at", neg_elbo_20d_at, ".1f")
    glue("elbo_2d_gap", neg_elbo_2d - neg_elbo_20d_at, ".1f")
    claim(neg_elbo_2d > neg_elbo_20d_at, "the 2-D VAE's test -ELBO is above the 20-D VAE's at the same epoch")


def latent_figure(model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor) -> Figure:
    """The means of q(z|x) of the test images under the 2-D VAE, coloured by class (ch. 3)."""
    return latent_scatter(encode(model, x_test), y_test, CLASS_NAMES, title="2-D VAE: mu of the test images")


NUM_PER_SIDE = 15


def latent_grid(num_per_side: int = NUM_PER_SIDE) -> tuple[torch.Tensor, list[float]]:
    """Codes (num_per_side**2, 2) at the prior's quantiles 0.05 ... 0.95 along each axis, so that every cell holds
    the same prior mass (Fig. 4 of Kingma & Welling 2014); rows run from the largest z_2 down, columns along z_1.
    Returns the codes and the values along an axis."""
    values = torch.distributions.Normal(0.0, 1.0).icdf(torch.linspace(0.05, 0.95, num_per_side))
    grid = torch.cartesian_prod(values.flip(0), values).flip(1)  # (z_1, z_2)
    return grid, values.tolist()


def manifold_figure(model: nn.Module) -> Figure:
    """The 2-D VAE's decoder over its latent plane, one image per cell of `latent_grid` (ch. 3)."""
    grid, values = latent_grid()
    device = next(model.parameters()).device
    return image_grid(
        decode(model, grid.to(device)),
        nrow=NUM_PER_SIDE,
        size=7.5,
        axes=("$z_1$", values, "$z_2$", values[::-1]),  # top row: largest z_2
    )


def manifold_counts(model: nn.Module, classifier: nn.Module) -> Table:
    """How many cells of the decoded plane the classifier is sure about (probability above one half), and how many
    decode to a nearly black image (mean pixel below 0.05) (ch. 3)."""
    grid, values = latent_grid()
    assert torch.equal(grid[:NUM_PER_SIDE, 0], torch.tensor(values))  # z_1 along a row
    assert torch.equal(grid[::NUM_PER_SIDE, 1], torch.tensor(values[::-1]))  # z_2 down the rows
    images = decode(model, grid.to(next(model.parameters()).device))
    confident = top_class_confidence(images, classifier) > 0.5
    dark = images.flatten(1).mean(1) < 0.05
    glue("map_confident", float(confident.float().mean()) * 100, ".0f")
    glue("map_dark", int(dark.sum()))
    glue("map_cells", len(grid))
    claim(0 < int(dark.sum()) < len(grid) / 4, "some cells of the plane, under a quarter, decode to nearly black")
    return table(
        [
            {
                "cells": len(grid),
                "classifier confidence > 0.5": int(confident.sum()),
                "nearly black (mean pixel < 0.05)": int(dark.sum()),
            }
        ]
    )


# --- How tight is the bound? -------------------------------------------------------------------------------------


def bce_floor(entropy_floor: float, vaes: Sequence[Trained]) -> None:
    """The floor of the BCE on grey levels, and how far above it the VAE's test -ELBO lies (ch. 3), glued."""
    glue("entropy_floor", entropy_floor, ".1f")
    glue("above_floor", mean_sd([e.history.last["test_loss"] for e in vaes])[0] - entropy_floor, ".1f")


def binarized_result(binary_neg_elbo: float) -> None:
    """The binarized VAE's -ELBO on the binarized test images (ch. 3), glued: it bounds a true negative
    log-likelihood, unlike the grey-level numbers."""
    glue("binary_neg_elbo", binary_neg_elbo, ".1f")


def _counted(bound: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """The door check that the chapter's iwae_bound leaves out of its lesson: k and chunk are counts >= 1."""

    @functools.wraps(bound)
    def checked(model: nn.Module, x: torch.Tensor, k: int, chunk: int = 256) -> torch.Tensor:
        check_int("iwae_bound: k is a number of importance samples and", k, minimum=1)
        check_int("iwae_bound: chunk", chunk, minimum=1)
        return bound(model, x, k, chunk)

    return checked


# The definition below is shown in the chapter, at the book's 75 columns: the chapter's cell and this one are one
# source (tests/test_evidence_ch3.py).
# fmt: off
@_counted  # k and chunk are counts >= 1
@torch.no_grad()  # a measurement: no gradients to keep
def iwae_bound(model, x, k, chunk=256):
    """log (1/k) sum_i p(x|z_i) p(z_i) / q(z_i|x) with z_i ~ q(z|x), per
    image (Burda et al. 2016): k = 1 is the ELBO, and the bound rises
    towards log p(x) with k. The codes are drawn `chunk` at a time."""
    mu, logvar = model.encode(x)  # q(z|x): (B, latent_dim) each
    q = torch.distributions.Normal(mu, torch.exp(0.5 * logvar))
    prior = torch.distributions.Normal(0.0, 1.0)  # p(z), per dimension
    log_w = []  # log p(x|z) + log p(z) - log q(z|x) of each code
    for start in range(0, k, chunk):
        z = q.sample((min(chunk, k - start),))  # (n, B, latent_dim)
        x_logits = model.decoder(z).flatten(0, 1)  # (n * B, 784)
        x_n = x.flatten(1).repeat(len(z), 1)  # x for each of the n codes
        log_px = -bce(x_logits, x_n, per_image=True, logits=True)
        log_pz_q = (prior.log_prob(z) - q.log_prob(z)).sum(-1)  # (n, B)
        log_w.append(log_px.view(len(z), -1) + log_pz_q)
    return torch.logsumexp(torch.cat(log_w), dim=0) - math.log(k)
# fmt: on


def importance_weighted_curve(
    model: nn.Module, x: torch.Tensor, ks: Sequence[int], *, batch_size: int = 100, seed: int = 0
) -> dict[int, float]:
    """The mean importance-weighted bound (nats per image) for each number of samples k (iwae_measurement): k = 1 is
    the ELBO, and the values rise towards log p(x) as k grows. Seeded, so repeatable."""
    for k in ks:
        check_int("importance_weighted_curve: k", k, minimum=1)
    with evaluating(model, seed=seed):
        return {k: float(batched(lambda batch, k=k: iwae_bound(model, batch, k), x, batch_size).mean()) for k in ks}


def iwae_measurement(
    vae: nn.Module,
    vae_binary: nn.Module,
    x_test: torch.Tensor,
    x_test_binary: torch.Tensor,
    ks: Sequence[int],
    num_images: int,
) -> tuple[dict[str, dict[int, float]], Table]:
    """The importance-weighted bound of both VAEs (grey levels, binarized) on the same fixed subset of the test set
    (ch. 3), and what k samples recover of the binarized model's gap, set against the KL its encoder pays."""
    subset = torch.randperm(len(x_test), generator=torch.Generator().manual_seed(0))[:num_images].to(x_test.device)
    ks = list(ks)
    curves = {
        "grey levels (BCE)": importance_weighted_curve(vae, x_test[subset], ks),
        "binarized": importance_weighted_curve(vae_binary, x_test_binary[subset], ks),
    }
    mu, logvar = posterior(vae_binary, x_test_binary[subset])
    kl_subset = float(gaussian_kl(mu, logvar).sum(1).mean())
    gap = curves["binarized"][ks[-1]] - curves["binarized"][1]
    glue("iwae_images", num_images)
    glue("iwae_gap", gap, ".1f")
    glue("iwae_k", ks[-1])
    glue("kl_subset", kl_subset, ".1f")
    glue("neg_log_px", -curves["binarized"][ks[-1]], ".1f")
    glue("iwae_gap_share", 100 * round(gap, 1) / round(kl_subset, 1), ".0f")  # of the two numbers the text shows
    # true in expectation (Jensen): a check of the code, not a finding; one estimate on a few images may miss
    claim(
        all(curve[k] >= curve[1] for curve in curves.values() for k in ks),
        "the estimate is not below the ELBO at any k",
    )
    tenfold = [k for k in ks if k in (1, 10, 100, 1000)]
    claim(
        all(
            curve[b] - curve[a] > curve[c] - curve[b] > 0
            for curve in curves.values()
            for a, b, c in zip(tenfold, tenfold[1:], tenfold[2:], strict=False)
        ),
        "the bound rises with k, by less for each tenfold increase",
    )
    # one seed, one draw of the images: no spread to set a bar from, so the bar is the sentence's own word, "a
    # fraction": under half the KL
    claim(0 < gap < kl_subset / 2, "the gap recovered is under half the KL term")
    shown = table(
        [{"k": k} | {name: -curve[k] for name, curve in curves.items()} for k in ks],
        formats={name: ".2f" for name in curves},
    )
    return curves, shown


def iwae_figure(curves: Mapping[str, Mapping[int, float]]) -> Figure:
    """L_k - ELBO against k (log scale), for both VAEs (ch. 3)."""
    return plot_xy(
        {name: (list(curve), [curve[k] - curve[1] for k in curve]) for name, curve in curves.items()},
        xlabel="number of importance samples $k$",
        ylabel=r"$\mathcal{L}_k - \mathrm{ELBO}$ [nats per image]",
        logx=True,
        title=r"$\mathcal{L}_k - \mathrm{ELBO}$ as $k$ grows",
    )


# --- Anomaly detection -------------------------------------------------------------------------------------------


def elbo_per_image(model: nn.Module, x: torch.Tensor, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """The two terms of the -ELBO of every image, each (N,): -log p(x|z) at one seeded z per image, and
    KL(q(z|x) || p(z)). A VAE's anomaly scores."""
    if len(x) == 0:
        raise ValueError("elbo_per_image got an empty set of images.")
    reconstruction, kl = [], []
    with evaluating(model, seed=seed):
        for i in range(0, len(x), 1000):
            batch = x[i : i + 1000]
            x_logits, mu, logvar = model(batch)
            _, batch_reconstruction, batch_kl = vae_loss(x_logits, batch, mu, logvar)
            reconstruction.append(batch_reconstruction)
            kl.append(batch_kl)
    return torch.cat(reconstruction), torch.cat(kl)


# Guards against a regression: the stored seeds' mean - 3 sd, rounded down to the third decimal
AUC_BARS = {
    "AE: reconstruction error": 0.937,
    "VAE: -ELBO": 0.825,
    "VAE: reconstruction term": 0.811,
    "VAE: KL term": 0.797,
    "VAE: reconstruction error of decode(mu)": 0.932,
}


def _squared_error(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return (reconstruct(model, x) - x).pow(2).flatten(1).sum(1)  # (N, ...) -> (N,)


def anomaly_detection(
    ae_normal: Sequence[Trained], vae_normal: Sequence[Trained], x_test: torch.Tensor, is_anomaly: torch.Tensor
) -> Table:
    """Each anomaly score's ROC AUC at telling the held-out class from the others, for the AE and VAE trained without
    it, seed by seed (ch. 3): the article's "KL term or reconstruction error"."""
    aucs: dict[str, list[float]] = {name: [] for name in AUC_BARS}
    for ae_entry, vae_entry in zip(ae_normal, vae_normal, strict=True):
        reconstruction_term, kl_term = elbo_per_image(vae_entry.model, x_test)
        scores = {
            "AE: reconstruction error": _squared_error(ae_entry.model, x_test),
            "VAE: -ELBO": reconstruction_term + kl_term,
            "VAE: reconstruction term": reconstruction_term,
            "VAE: KL term": kl_term,
            "VAE: reconstruction error of decode(mu)": _squared_error(vae_entry.model, x_test),
        }
        for name, score in scores.items():
            aucs[name].append(anomaly_auc(score, is_anomaly))
    ae = aucs["AE: reconstruction error"]
    ae_vs_elbo = compare(ae, aucs["VAE: -ELBO"])
    same_score = compare(ae, aucs["VAE: reconstruction error of decode(mu)"])
    above_chance = {name: compare(values, [0.5]) for name, values in aucs.items()}
    glue("auc_ae", mean_sd(ae)[0], ".3f")
    glue("auc_elbo", mean_sd(aucs["VAE: -ELBO"])[0], ".3f")
    glue("auc_kl", mean_sd(aucs["VAE: KL term"])[0], ".3f")
    glue("auc_same_score", mean_sd(aucs["VAE: reconstruction error of decode(mu)"])[0], ".3f")
    claim(
        all(c.verdict == "higher" for c in above_chance.values()),
        "every score detects the held-out class above chance",
    )
    claim(
        not any(compare(v, ae).verdict == "higher" for name, v in aucs.items() if name.startswith("VAE")),
        "no VAE score detects the held-out class better than the AE's error",
    )
    claim(ae_vs_elbo.verdict == "higher", "the AE's error beats the VAE's -ELBO as an anomaly score")
    claim(same_score.verdict == "not decided", "scored the same way, the AE and the VAE are not told apart")
    claim(
        all(min(aucs[name]) >= bar for name, bar in AUC_BARS.items()),
        "each AUC stays above its seeds' mean - 3 sd",
    )
    floors = {name: mean_sd(aucs[name])[0] - 3 * mean_sd(aucs[name])[1] for name in AUC_BARS}
    claim(
        all(0 <= floors[name] - bar < 1e-3 for name, bar in AUC_BARS.items()),
        "each bar is its seeds' mean - 3 sd, rounded down",
    )
    comparisons: dict[str, Comparison] = {f"{name} minus chance (0.5)": c for name, c in above_chance.items()}
    comparisons["AE's error minus the VAE's -ELBO"] = ae_vs_elbo
    comparisons["AE's error minus the VAE's error of decode(mu)"] = same_score
    _dropdown_table("ch3_anomaly_evidence", comparison_rows(comparisons))
    return table([{"score": name, "ROC AUC": pm(values, ".3f")} for name, values in aucs.items()])
