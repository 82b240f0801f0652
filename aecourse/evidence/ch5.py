"""Chapter 5's evidence (the article's beta-VAE with torchbearer): its short and smoke budgets, what the article's code
does on today's libraries, the check of its shape comments, and every measurement, claim, verdict table and figure
the chapter's hidden cells show, section by section. The chapter builds the conv VAE, the state wrapper, the loss,
the beta-KL callback and the trial in its own cells (one source with aecourse.models and aecourse.tb); what it only
measures is here.
"""

from __future__ import annotations

import copy
import io
import math
import pickle
from collections.abc import Mapping, Sequence
from itertools import pairwise
from typing import TypeVar

import matplotlib.pyplot as plt
import torch
import torchbearer
from matplotlib.figure import Figure
from torch import nn

from aecourse import runtime
from aecourse.checkpoints import Trained
from aecourse.data import FashionMNIST
from aecourse.evidence.metrics import ACTIVE_UNIT_THRESHOLD, active_units
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
    training_table,
)
from aecourse.inference import decode, generate, posterior, reconstruct
from aecourse.losses import gaussian_kl
from aecourse.models import ConvVAE, CroppedConvTranspose2d
from aecourse.plot import STYLE, finish, image_grid, image_rows
from aecourse.runtime import seeded
from aecourse.tb import StateVAE, quiet_trial, tensor_loader

C = TypeVar("C")
Key = tuple[float, int]  # (beta, seed): one model of the sweep
Scores = Mapping[str, float]  # what trial.evaluate returns: test_loss, test_kl, test_distortion

# The budgets below the full one (the Config's defaults): a few CPU minutes, and seconds for CI's smoke run.
SHORT = {"num_epochs": 2, "betas": (1.0, 5.0), "seeds": (0,)}
SMOKE = {"num_epochs": 1, "betas": (1.0, 5.0), "seeds": (0,), "train_size": 1_000}

HALF_A_NAT = 0.5  # the chapter's second count of used dimensions: those whose KL is at least this


def at_budget(config: C) -> C:
    """The chapter's config at the budget AECOURSE_BUDGET asks for (ch. 5): its defaults at the full one."""
    return runtime.at_budget(config, short=SHORT, smoke=SMOKE)


def _rows_evidence(name: str, comparisons: Mapping[str, Comparison], *, unit: str = "seed") -> None:
    """A section's folded "How we know" table, glued as Markdown."""
    glue_markdown(name, table(comparison_rows(comparisons, unit=unit)).markdown())


# --- The article's code on today's libraries ----------------------------------------------------------------------


def magic_with_comment() -> str:
    """Item 1 of the chapter's list: what IPython answers to the article's `%matplotlib inline # comment` line."""
    from IPython import get_ipython
    from IPython.core.error import UsageError

    shell = get_ipython()
    if shell is None:
        return "(outside IPython there is no magic to try)"
    try:
        shell.run_line_magic("matplotlib", "inline # show plots in the notebook")
    except UsageError as err:
        return f"UsageError: {err}"
    return "accepted"


def article_trial(x: torch.Tensor, device: torch.device | str) -> torchbearer.Trial:
    """Item 3 (ch. 5): the article's Trial (a summed MSELoss, metrics=['acc', 'loss']) run for one epoch on `x`, to
    show what 'acc' becomes. Seeded apart, so the chapter's random streams stay as they were; the trial's state
    serves the checkpoint section."""
    with seeded(0):
        model = StateVAE(ConvVAE(10)).to(device)
        optimizer = torch.optim.Adam(model.parameters())
        criterion = nn.MSELoss(reduction="sum")
        trial = quiet_trial(model, optimizer, criterion, metrics=["acc", "loss"], device=device)
        trial.with_train_generator(tensor_loader(x, batch_size=128)).run(1)
    return trial


def article_plot_progress(drawn: list[tuple[int, ...]], key=torchbearer.Y_PRED, num_images: int = 100, nrow: int = 10):
    """The article's plot_progress callback, its calls unchanged but for plt.show: each grid it would show is
    drawn on a figure that is closed at once, and its shape appended to `drawn` (ch. 5, items 6 and 8)."""
    import matplotlib.pyplot as plt
    from torchbearer import callbacks
    from torchvision.utils import make_grid

    @callbacks.on_step_validation
    @callbacks.once_per_epoch
    def callback(state):
        images = state[key]
        image = make_grid(images[:num_images], nrow=nrow, normalize=True)[0, :, :]
        fig = plt.figure()
        plt.imshow(image.detach().cpu().numpy(), cmap="gray")
        plt.close(fig)
        drawn.append(tuple(image.shape))

    return callback


def plot_progress_calls(x: torch.Tensor, device: torch.device | str) -> dict[str, object]:
    """Items 8 and 9 of the chapter's list: when the article's plot_progress draws (never during run() without
    validation data, once at evaluate), the size of the grid it draws, and what torchvision answers to the `range=`
    that torchbearer's own imaging callbacks, which the article does not use, pass to make_grid."""
    import inspect

    from torchbearer.callbacks.imaging import ImagingCallback
    from torchvision.utils import make_grid

    drawn: list[tuple[int, ...]] = []
    with seeded(0):
        model = StateVAE(ConvVAE(10)).to(device)
        optimizer = torch.optim.Adam(model.parameters())
        trial = quiet_trial(model, optimizer, callbacks=[article_plot_progress(drawn)], device=device)
        trial.with_generators(train_generator=tensor_loader(x, batch_size=128))
        trial.with_test_generator(tensor_loader(x, batch_size=128))
        trial.run(2)
        during_run = len(drawn)
        trial.evaluate(data_key=torchbearer.TEST_DATA)
    found: dict[str, object] = {"run": during_run, "evaluate": len(drawn) - during_run}
    found["grid"] = " × ".join(map(str, drawn[-1])) if drawn else "none"
    found["passes range"] = "range=norm_range" in inspect.getsource(ImagingCallback)
    try:
        make_grid(x[:4], normalize=True, range=(0, 1))
        found["range"] = "accepted"
    except TypeError as err:
        found["range"] = f"TypeError: {err}"
    claim(
        (found["run"], found["evaluate"]) == (0, 1),
        "the article's progress plot never draws during run() and draws once at evaluate",
    )
    return found


def data_size(data: FashionMNIST) -> float:
    """Item 11 of the chapter's list: the training and test images as float32, in MB (glued as data_megabytes)."""
    megabytes = (data.x_train.numel() + data.x_test.numel()) * 4 / 1e6
    glue("data_megabytes", megabytes, ".0f")
    return megabytes


def on_today(data: FashionMNIST, x: torch.Tensor, device: torch.device | str, trial: torchbearer.Trial) -> Table:
    """What the article's calls do on the installed libraries (ch. 5, items 1, 3, 8, 9 and 11), one row each: the
    magic line, the progress plot during run() and at evaluate, torchbearer's imaging callbacks, and the metrics
    that metrics=['acc', 'loss'] records (`trial`, from article_trial)."""
    import torchvision

    data_size(data)
    plot = plot_progress_calls(x, device)
    history = trial.state[torchbearer.HISTORY][-1]
    recorded = sorted(k for k in history if not k.startswith("running_") and not k.endswith("_steps"))
    wrong = "range=" if plot["passes range"] else "(no range= any more)"
    rows = [
        ("1", "%matplotlib inline # comment", magic_with_comment()),
        ("3", "metrics=['acc', 'loss']", "records " + ", ".join(recorded) + " (and their running means)"),
        ("8", "plot_progress, during run(2)", f"draws {plot['run']} grids"),
        ("8", "plot_progress, at evaluate()", f"draws {plot['evaluate']} grid of {plot['grid']} pixels"),
        ("9", f"torchbearer's imaging callbacks: {wrong}", str(plot["range"])),
    ]
    versions = f"torchbearer {torchbearer.__version__}, torchvision {torchvision.__version__.split('+')[0]}"
    return table(
        [{"item": item, "the article's code": code, "today": today} for item, code, today in rows],
        caption=f"The article's calls on {versions}",
    )


# --- The model: the article's shape comments against a trace --------------------------------------------------------

# The article's comment after each convolution of its VAE, in order: "# B, 32, 28, 28" and so on.
ARTICLE_SHAPES = (
    ("encoder", "Conv2d(1, 32, 4, 1, 2)", (32, 28, 28)),
    ("encoder", "Conv2d(32, 32, 4, 2, 1)", (32, 14, 14)),
    ("encoder", "Conv2d(32, 64, 4, 2, 1)", (64, 7, 7)),
    ("decoder", "ConvTranspose2d(64, 32, 4, 2, 1)", (64, 14, 14)),
    ("decoder", "ConvTranspose2d(32, 32, 4, 2, 1, 1)", (32, 28, 28)),
    ("decoder", "ConvTranspose2d(32, 1, 4, 1, 2)", (1, 28, 28)),
)


def traced_shapes(vae: nn.Module) -> list[tuple[int, ...]]:
    """The output shape (C, H, W) of every convolution of the conv VAE, from a batch of 28x28 images."""
    shapes = []
    with torch.no_grad():
        for part, h in (("encoder", torch.zeros(2, 1, 28, 28)), ("decoder", torch.zeros(2, 64, 7, 7))):
            for layer in getattr(vae, part):
                h = layer(h)
                if not isinstance(layer, nn.ReLU):
                    shapes.append(tuple(h.shape[1:]))
    return shapes


def _shape(chw: Sequence[int]) -> str:
    return "×".join(map(str, chw))


def shape_comments(vae: nn.Module) -> Table:
    """The article's shape comment on each convolution beside the shape a trace gives (ch. 5, item 6)."""
    shapes = traced_shapes(vae)
    numbers = {"encoder": iter(range(1, 4)), "decoder": iter(range(1, 4))}
    holds = [found == said for (_, _, said), found in zip(ARTICLE_SHAPES, shapes, strict=True)]
    rows = [
        {"layer": f"{part} {next(numbers[part])}", "the article": _shape(said)}
        | {"the trace": f"{_shape(found)} {'✓' if same else '✗'}"}
        for (part, _, said), found, same in zip(ARTICLE_SHAPES, shapes, holds, strict=True)
    ]
    wrong = [i for i, same in enumerate(holds) if not same]
    claim(
        wrong == [0, 3, 4],
        "the article's shape comments on the first convolution, the first transposed convolution and the 14 -> 29 "
        "layer are wrong; the other three hold",
    )
    caption = "The output of each convolution, per image (channels × height × width); ✗: the article's comment is wrong"
    return table(rows, caption=caption)


def same_layer(model: nn.Module, x: torch.Tensor) -> float:
    """The stored model with its 14 -> 29 layer computed as CroppedConvTranspose2d, the form it was trained with,
    against the article's nn.ConvTranspose2d that the chapter teaches: the largest difference between their
    reconstructions of `x` (ch. 5, item 17)."""
    cropped = copy.deepcopy(model)
    stock = cropped.decoder[2]
    layer = CroppedConvTranspose2d(32, 32, 4, 2, 1, 1).to(next(model.parameters()).device)
    layer.load_state_dict(stock.state_dict())
    cropped.decoder[2] = layer
    difference = float((reconstruct(model, x) - reconstruct(cropped, x)).abs().max())
    glue("layer_difference", difference, ".0e")
    claim(
        difference < 1e-4,
        "the stored models give the same reconstructions with the article's layer and with the cropped one, to "
        "float rounding",
    )
    return difference


# --- Training ----------------------------------------------------------------------------------------------------


def training_record(sweep: Mapping[Key, Trained]) -> None:
    """Where and how long each model of the sweep trained, from its manifest (ch. 5), glued for a folded block."""
    seconds = [entry.manifest["training_seconds"] for entry in sweep.values()]
    glue("training_seconds_min", min(seconds), ",.0f")
    glue("training_seconds_max", max(seconds), ",.0f")
    glue("stored_models", len(sweep))
    # recorded by make checkpoints; absent from a model trained here
    claim(
        all(entry.manifest.get("native_bfloat16") for entry in sweep.values()),
        "every stored model trained on a chip that computes natively in the 16-bit format",
    )
    glue_markdown("ch5_training_record", training_table(sweep.values()).markdown())


def _epochs_of(sweep: Mapping[Key, Trained], beta: float, seeds: Sequence[int], key: str, epoch: int) -> list[float]:
    """One value per seed: the history's `key` at row `epoch` (negative counts from the end)."""
    return [sweep[beta, seed].history.rows[epoch][key] for seed in seeds]


def article_run_history(sweep: Mapping[Key, Trained], beta: float, seeds: Sequence[int]) -> Table:
    """The article's run (the first seed at `beta`) at a few epochs, its every epoch glued for a folded block, and
    what the three runs at that beta did over training: the rate rose and the distortion fell from the first epoch
    to the last; the loss of the last epoch against five epochs before (ch. 5)."""
    main = sweep[beta, seeds[0]].history
    before = max(-len(main.rows), -6)  # five epochs before the last, or the first
    rate = compare(*(_epochs_of(sweep, beta, seeds, "train_kl", i) for i in (-1, 0)))
    distortion = compare(*(_epochs_of(sweep, beta, seeds, "train_distortion", i) for i in (-1, 0)))
    still = compare(*(_epochs_of(sweep, beta, seeds, "train_loss", i) for i in (-1, before)))
    last, earlier = (int(main.rows[i]["epoch"]) for i in (-1, before))
    claim(
        rate.verdict == "higher" and distortion.verdict == "lower",
        "as the beta = 5 models train, the rate rises, the distortion falls",
    )
    claim(still.verdict == "lower", "the training loss of the beta = 5 models still fell over their last epochs")
    for name, key in (("rate", "train_kl"), ("distortion", "train_distortion"), ("loss", "train_loss")):
        glue(f"{name}_first_epoch", main.rows[0][key], ".2f")
        glue(f"{name}_last_epoch", main.rows[-1][key], ".2f")
    glue("loss_epoch_before", main.rows[before]["train_loss"], ".2f")
    glue("epoch_before", earlier)
    glue("epoch_last", last)
    _rows_evidence(
        "ch5_training_evidence",
        {
            "rate, last epoch - first": rate,
            "distortion, last epoch - first": distortion,
            f"training loss, epoch {last} - epoch {earlier}": still,
        },
    )
    rows = [
        {"epoch": int(row["epoch"]), "loss": row["train_loss"], "rate (KL)": row["train_kl"]}
        | {"distortion": row["train_distortion"], "seconds": row["seconds"]}
        for row in main.rows
    ]
    formats = {"loss": ".2f", "rate (KL)": ".2f", "distortion": ".2f", "seconds": ".0f"}
    glue_markdown("ch5_history_full", table(rows, formats=formats).markdown())
    shown = {1, 2, 5, 10, earlier, last}
    return table(
        [{k: v for k, v in row.items() if k != "seconds"} for row in rows if row["epoch"] in shown],
        formats=formats,
        caption=f"The article's run on the training set, epoch by epoch ({len(shown)} of {last} epochs)",
    )


# --- Evaluation ----------------------------------------------------------------------------------------------------


def mean_code_vs_sample(
    scores: Mapping[Key, Scores],
    sampled: Sequence[Scores],
    sweep: Mapping[Key, Trained],
    beta: float,
    seeds: Sequence[int],
) -> Table:
    """The article's evaluate (z = mu, `scores`) against the objective (z drawn from q(z|x), `sampled`, one entry per
    seed) for the models at `beta`, and both against each model's last training epoch (ch. 5, item 7); the table
    shows the article's run, the first seed."""
    at_mean = [scores[beta, seed] for seed in seeds]
    train_distortion = [sweep[beta, seed].history.rows[-1]["train_distortion"] for seed in seeds]
    claim(
        all(
            abs(s["test_loss"] - s["test_distortion"] - beta * s["test_kl"]) < 1e-3 * s["test_loss"]
            for s in [*at_mean, *sampled]
        ),
        "the test loss is distortion + beta * KL",
    )
    claim(
        all(abs(s["test_kl"] - m["test_kl"]) < 1e-4 * m["test_kl"] for s, m in zip(sampled, at_mean, strict=True)),
        "the KL term is the same at the mean code and at a sampled z",
    )
    gap = compare([s["test_loss"] for s in sampled], [m["test_loss"] for m in at_mean])
    claim(
        gap.verdict == "higher",
        "the loss at the mean code is lower than the objective at a sampled z, over the three seeds",
    )
    claim(
        all(
            abs(t - s["test_distortion"]) < abs(t - m["test_distortion"])
            for t, s, m in zip(train_distortion, sampled, at_mean, strict=True)
        ),
        "in every beta = 5 model the last training epoch's distortion is nearer the test distortion at a sampled z "
        "than at the mean code",
    )
    glue("loss_at_mean", at_mean[0]["test_loss"], ".2f")
    glue("loss_sampled", sampled[0]["test_loss"], ".2f")
    glue("distortion_at_mean", at_mean[0]["test_distortion"], ".2f")
    glue("distortion_sampled", sampled[0]["test_distortion"], ".2f")
    glue("train_distortion_last", train_distortion[0], ".2f")
    _rows_evidence("ch5_evaluation_evidence", {"test loss, sampled z - mean code": gap})
    names = {"test_loss": "loss", "test_kl": "rate (KL)", "test_distortion": "distortion"}
    return table(
        [
            {"z": "μ, the mean code (evaluate)"} | {names[k]: v for k, v in at_mean[0].items()},
            {"z": "drawn from q(z|x) (the objective)"} | {names[k]: v for k, v in sampled[0].items()},
        ],
        formats=dict.fromkeys(names.values(), ".2f"),
        caption=f"The article's run on the 10,000 test images, per image (β = {beta:g})",
    )


def recorded_loss(main: Trained) -> float:
    """The article's evaluate at the end of training, as the run's manifest recorded it (ch. 5)."""
    value = main.history.rows[-1]["test_loss"]
    glue("loss_recorded", value, ".2f")
    return value


# --- Checkpoints ---------------------------------------------------------------------------------------------------


def trial_state_refused(trial: torchbearer.Trial) -> None:
    """A torchbearer trial's state_dict, as its checkpointers save it, loaded with torch.load as a reader would type
    it: refused, since weights_only=True is torch's default (ch. 5); then with weights_only=False, which unpickles."""
    buffer = io.BytesIO()
    torch.save(trial.state_dict(), buffer)
    try:
        buffer.seek(0)
        torch.load(buffer)
        refused = "loads"
    except pickle.UnpicklingError:
        refused = "UnpicklingError: weights_only=True is the default"
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    claim(refused != "loads", "torch.load refuses a torchbearer checkpoint by default")
    print(f"torch {torch.__version__.split('+')[0]}")
    print(f"torch.load(checkpoint)\n  -> {refused}")
    keys = ", ".join(sorted(map(str, loaded)))
    print(f"torch.load(checkpoint, weights_only=False)\n  -> a {type(loaded).__name__}: {keys}")


# --- Figures -------------------------------------------------------------------------------------------------------


def reconstructions(model: nn.Module, x: torch.Tensor) -> Figure:
    """Ten test images and their reconstructions at the mean code, five to a row, so that a phone shows them (ch. 5)."""
    x_hat = reconstruct(model, x[:10])
    rows = {"x": x[:5], "x_hat": x_hat[:5], "x ": x[5:10], "x_hat ": x_hat[5:10]}  # labels repeat: keys differ
    return image_rows(rows, num_images=5, scale=1.3)


def samples(model: nn.Module) -> Figure:
    """Sixty-four images decoded from z ~ N(0, I) (ch. 5)."""
    return image_grid(generate(model, 64, seed=1), nrow=8, size=4.5)


UnitStats = tuple[torch.Tensor, torch.Tensor]  # which dimensions are active, and the KL of each (nats)


def unit_stats(sweep: Mapping[Key, Trained], x: torch.Tensor) -> dict[Key, UnitStats]:
    """For every model: which latent dimensions are active units and the KL of each, averaged over `x` (ch. 5)."""
    stats = {}
    for key, entry in sweep.items():
        mu, logvar = posterior(entry.model, x)  # one pass over the test set
        stats[key] = (active_units(mu), gaussian_kl(mu, logvar).mean(0))
    return stats


def traversal(model: nn.Module, x: torch.Tensor, stats: UnitStats) -> Figure:
    """Rows of decodings from the mean code of x[0], one latent dimension moved from -3 to 3 per row, the costliest
    dimension first, each row labelled with its KL in nats, or "inactive" (ch. 5). Seven columns and short labels
    keep the figure narrow, so that its labels stay legible on a phone."""
    active, kl_dims = stats
    mu, _ = posterior(model, x[:1])
    values = torch.linspace(-3, 3, 7)
    rows = {}
    for i in kl_dims.argsort(descending=True).tolist():
        z = mu.repeat(len(values), 1)  # (7, latent_dim)
        z[:, i] = values.to(z.device)
        rows[f"z{i} {kl_dims[i]:.2f}" if active[i] else f"z{i} inactive"] = decode(model, z)
    return image_rows(rows, num_images=len(values), titles=[f"{v:g}" for v in values.tolist()], scale=0.8)


# --- Active units and the dimensions that carry half a nat ----------------------------------------------------------


def _counts(stats: Mapping[Key, UnitStats], beta: float, seeds: Sequence[int], *, active: bool) -> list[int]:
    """Per seed at `beta`: the active units, or the dimensions whose KL is at least half a nat."""
    return [int(stats[beta, s][0].sum() if active else (stats[beta, s][1] >= HALF_A_NAT).sum()) for s in seeds]


def units_table(stats: Mapping[Key, UnitStats], betas: Sequence[float], seeds: Sequence[int], beta: float) -> Table:
    """The first seed's model of each beta: its active units, its dimensions carrying half a nat, the KL of each
    dimension; the counts of every seed; and the verdicts that compare the counts at `beta` with beta = 1 (ch. 5)."""
    first = {b: stats[b, seeds[0]] for b in betas}
    for b in (1.0, beta):
        glue(f"active_beta_{b:g}", _counts(stats, b, seeds[:1], active=True)[0])
        glue(f"active_counts_beta_{b:g}", ", ".join(map(str, _counts(stats, b, seeds, active=True))))
        glue(f"informative_counts_beta_{b:g}", ", ".join(map(str, _counts(stats, b, seeds, active=False))))
    active_b, kl_b = first[beta]
    # NaN when no unit is active (a short run can end so)
    glue("weakest_active_beta_5", float(kl_b[active_b].min()) if bool(active_b.any()) else math.nan, ".2f")
    inactive_max = max((float(k[~a].max()) for a, k in stats.values() if not a.all()), default=math.nan)
    active_min = min((float(k[a].min()) for a, k in stats.values() if a.any()), default=math.nan)
    # rounded away from the bounds the sentences state ("no more than", "as little as")
    glue("kl_inactive_max", round_outward(inactive_max, 4, up=True), ".4f")
    glue("kl_active_min", round_outward(active_min, 4, up=False), ".4f")
    glue("active_threshold", ACTIVE_UNIT_THRESHOLD, "g")
    glue("active_min_kl", ACTIVE_UNIT_THRESHOLD / 2, "g")  # KL_j >= Var(mu_j) / 2: the least an active unit pays
    claim(  # no bar: the two groups of dimensions, against each other
        inactive_max < active_min,
        "every inactive dimension of the sweep carries fewer nats than every active one",
    )
    verdicts = {
        "active units, β = 5 - β = 1": compare(
            _counts(stats, beta, seeds, active=True), _counts(stats, 1.0, seeds, active=True)
        ),
        "dimensions with KL ≥ 0.5 nats, β = 5 - β = 1": compare(
            _counts(stats, beta, seeds, active=False), _counts(stats, 1.0, seeds, active=False)
        ),
        "β = 5: active units - dimensions with KL ≥ 0.5 nats": compare(
            _counts(stats, beta, seeds, active=True), _counts(stats, beta, seeds, active=False)
        ),
    }
    claim(
        verdicts["active units, β = 5 - β = 1"].verdict == "lower",
        "the beta = 5 models have fewer active units than the beta = 1 models",
    )
    _rows_evidence("ch5_units_evidence", verdicts)
    return table(
        [
            {"β": f"{b:g}", "active units": int(a.sum())}
            | {"KL ≥ ½ nat, per seed": ", ".join(map(str, _counts(stats, b, seeds, active=False)))}
            | {"KL of each dimension [nats]": " ".join(f"{v:.2f}" for v in k.sort(descending=True)[0].tolist())}
            for b, (a, k) in first.items()
        ],
        caption="The latent dimensions on the test set: the first seed's model of each β (the count of dimensions "
        "with KL ≥ ½ nat for every seed's)",
    )


# --- The sweep: rate against distortion ----------------------------------------------------------------------------


def _per_beta(scores: Mapping[Key, Scores], betas: Sequence[float], seeds: Sequence[int], key: str) -> dict:
    return {b: [scores[b, s][key] for s in seeds] for b in betas}


def sweep_table(
    scores: Mapping[Key, Scores], stats: Mapping[Key, UnitStats], betas: Sequence[float], seeds: Sequence[int]
) -> Table:
    """Rate, distortion and active units of each beta over the seeds, the distortion paid per nat saved between
    consecutive betas, and the verdicts of every step up in beta (ch. 5)."""
    rate = _per_beta(scores, betas, seeds, "test_kl")
    distortion = _per_beta(scores, betas, seeds, "test_distortion")
    steps = list(pairwise(betas))
    rate_steps = {f"rate, β = {b2:g} - β = {b1:g}": compare(rate[b2], rate[b1]) for b1, b2 in steps}
    distortion_steps = {
        f"distortion, β = {b2:g} - β = {b1:g}": compare(distortion[b2], distortion[b1]) for b1, b2 in steps
    }
    claim(all(c.verdict == "lower" for c in rate_steps.values()), "the rate falls at every step up in beta")
    claim(
        all(c.verdict == "higher" for c in distortion_steps.values()), "the distortion rises at every step up in beta"
    )
    means = {b: (mean_sd(rate[b])[0], mean_sd(distortion[b])[0]) for b in betas}
    # distortion paid per nat saved, between consecutive betas (from the means over the seeds: a description)
    slopes = {(b1, b2): (means[b2][1] - means[b1][1]) / (means[b1][0] - means[b2][0]) for b1, b2 in steps}
    claim(list(slopes.values()) == sorted(slopes.values()), "the distortion paid per nat saved grows with beta")
    within = [b1 <= slope <= b2 for (b1, b2), slope in slopes.items()]
    glue("rd_within", sum(within))
    glue("rd_steps", len(within))
    outside = [
        f"from β = {b1:g} to {b2:g}" for ((b1, b2), _), inside in zip(slopes.items(), within, strict=True) if not inside
    ]
    glue("rd_outside", " and ".join(outside) if outside else "none")
    if slopes:
        glue("rd_slope_first", next(iter(slopes.values())), ".2f")
        glue("rd_slope_last", list(slopes.values())[-1], ".2f")
    for b in (1.0, 5.0):
        if b in means:
            glue(f"rate_beta_{b:g}", means[b][0], "#.3g")  # as the sweep's table shows them
            glue(f"distortion_beta_{b:g}", means[b][1], ".2f")
    _rows_evidence("ch5_sweep_evidence", rate_steps | distortion_steps)
    previous = {b2: slopes[b1, b2] for b1, b2 in steps}
    full = [
        {"β": f"{b:g}", "rate [nats]": pm(rate[b]), "distortion": pm(distortion[b])}
        | {"active units": pm([int(stats[b, s][0].sum()) for s in seeds], ".1f")}
        | {"distortion per nat saved": f"{previous[b]:.2f}" if b in previous else ""}
        for b in betas
    ]
    glue_markdown("ch5_sweep_full", table(full).markdown())
    return table(
        [
            {"β": f"{b:g}", "rate [nats]": f"{means[b][0]:#.3g}", "distortion": f"{means[b][1]:.2f}"}
            | {"price per nat": f"{previous[b]:.2f}" if b in previous else ""}
            for b in betas
        ],
        caption=f"The sweep on the test set, means of {len(seeds)} seeds: the distortion paid per nat of rate saved "
        "since the β before",
    )


def rate_distortion_figure(scores: Mapping[Key, Scores], betas: Sequence[float], seeds: Sequence[int]) -> Figure:
    """Rate against distortion on the test set, one labelled point per beta at the mean of the seeds (ch. 5)."""
    rate = [mean_sd([scores[b, s]["test_kl"] for s in seeds])[0] for b in betas]
    distortion = [mean_sd([scores[b, s]["test_distortion"] for s in seeds])[0] for b in betas]
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(6.0, 4.0))
        ax.plot(rate, distortion, marker="o", linestyle=":")
        for r, d, b in zip(rate, distortion, betas, strict=True):
            ax.annotate(f"$\\beta = {b:g}$", (r, d), textcoords="offset points", xytext=(8, 4), ha="left")
        ax.margins(x=0.15, y=0.1)
        ax.set_xlabel(r"rate: $\mathrm{KL}(q(z \mid x)\,\|\,p(z))$ [nats]")
        ax.set_ylabel(r"distortion: $\|x - \hat{x}\|^2$")
        ax.grid(alpha=0.3)
        return finish(fig)


# --- Exercise: beta = 0 -----------------------------------------------------------------------------------------------


def spread_and_sigma(model: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    """The variance of the means over the images of `x`, averaged over the dimensions, and the mean sigma."""
    mu, logvar = posterior(model, x)
    return float(mu.var(0).mean()), float((0.5 * logvar).exp().mean())


def beta_zero_evidence(
    initial: nn.Module, beta_0: nn.Module, rates: Mapping[float, float], rate_init: float, x: torch.Tensor
) -> None:
    """The solution of the beta = 0 exercise, bound to its numbers: with beta = 0 the means spread apart while sigma
    does not shrink, and most of the rate is the means' distance from 0; with beta = 5 the rate stays under a nat
    (ch. 5). `rates` holds the rate after the short run at beta = 0 and 5, `initial` is the untrained model."""
    spread_init, sigma_init = spread_and_sigma(initial, x)
    spread_0, sigma_0 = spread_and_sigma(beta_0, x)
    glue("spread_init", spread_init, ".3f")
    glue("spread_beta_0", spread_0, ".2f")
    glue("sigma_init", sigma_init, ".2f")
    glue("sigma_beta_0", sigma_0, ".2f")
    claim(
        spread_0 > 10 * spread_init and sigma_0 >= sigma_init,
        "with beta = 0 the means spread apart while sigma does not shrink",
    )
    # half the means' mean square, summed over the dimensions, is the part of the rate the means make (the rest is
    # sigma's distance from 1); it splits exactly into their offset from 0 and their spread across the images
    mu_0, _ = posterior(beta_0, x)
    offset = 0.5 * float(mu_0.mean(0).pow(2).sum())
    spread = 0.5 * float(mu_0.var(0, correction=0).sum())
    shown = {name: round(value) for name, value in (("total", rates[0.0]), ("offset", offset), ("spread", spread))}
    glue("rate_beta_0", shown["total"])
    glue("rate_offset_0", shown["offset"])
    glue("rate_spread_0", shown["spread"])
    glue("rate_sigma_0", shown["total"] - shown["offset"] - shown["spread"])  # the shown parts add up
    claim(offset > rates[0.0] / 2, "with beta = 0 most of the rate is the means' offset from 0")
    claim(
        rate_init < 1 and rates[0.0] > 10 and rates[0.0] > 10 * rate_init,
        "with beta = 0 the rate rises from under one nat to tens of nats",
    )
    claim(rates[5.0] < 1, "with beta = 5 the rate stays below one nat")
