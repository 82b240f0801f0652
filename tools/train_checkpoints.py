"""Train every model of the book at the full budget, then re-execute the notebooks on the load path.

Usage: python tools/train_checkpoints.py [--from-nothing] [book/03_vae.ipynb | classifier ...]
       (`make checkpoints [NB=...] [FROM_NOTHING=1]`; nothing named: the shared classifier, then every chapter)

Each notebook runs twice. First with AECOURSE_RETRAIN=missing: each `trained(...)` call loads its checkpoint when
the manifest matches the chapter's config and otherwise trains the model and stores it at once, so a killed run loses
at most the model in progress and a second run goes on where the first stopped. Progress bars (one per model over
its epochs) go to this terminal. Then the notebook is executed again as a reader's
machine and the tests execute it, loading every model, and saved with those outputs.

`--from-nothing` measures what retraining a chapter costs: its stored checkpoints are first moved aside (to
.cache/checkpoints-before/, nothing is deleted), so that the chapter trains all of its models. The wall time of a
training pass that started with none of the chapter's checkpoints is written to book/retrain_timings.json, which the
intro's time table reads, and each new checkpoint is compared with the one moved aside: identical bytes mean that
the stored model was reproduced exactly.

The classifier that chapters 3 and 4 judge samples with belongs to no chapter: it is trained first, alone, in this
process (`classifier` names it), so that no chapter's time includes it and a whole-book run from nothing retrains it
too.

Everything runs this checkout: its aecourse in this process, and in the notebooks' kernels (their PYTHONPATH starts
here, checked before each starts), so the models are stored in this checkout's aecourse/weights/. Targets are the
chapter notebooks (book/<NN>_*.ipynb) and the shared models, nothing else.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import aecourse  # noqa: E402
from aecourse.checkpoints import (  # noqa: E402
    SHARED_MODELS,
    WEIGHTS_DIR,
    CheckpointError,
    checksums_path,
    load,
    save,
    training_config,  # noqa: E402
)
from aecourse.checks import check_int, check_positive  # noqa: E402
from aecourse.data import FashionMNIST, load_fashion_mnist  # noqa: E402
from aecourse.evidence.classifier import (  # noqa: E402
    CHECKPOINT,
    MIN_ACCURACY,
    ClassifierSettings,
    FashionClassifier,
    initial_classifier,
    pretrained_classifier,
)
from aecourse.runtime import pick_device  # noqa: E402
from aecourse.train import History, guarded_epoch, train_epoch  # noqa: E402
from tools.execute_notebooks import KernelSetupError, execute  # noqa: E402
from tools.stored_checkpoints import manifests, stored_size  # noqa: E402
from tools.time_book import machine  # noqa: E402

RETRAIN_TIMINGS = ROOT / "book" / "retrain_timings.json"
SET_ASIDE = ROOT / ".cache" / "checkpoints-before"
SHARED = SHARED_MODELS  # models no chapter owns (their folder under aecourse/weights/)


def _by_model(root: Path | None = None) -> dict[str, dict]:
    """Every manifest under `root` (all the stored checkpoints), by model and seed ("03_vae/vae-seed0")."""
    return {f"{m['name']}-seed{m['seed']}": m for m in manifests(root or WEIGHTS_DIR)}


def chapters() -> list[Path]:
    """The chapter notebooks, the ones whose models are checkpoints: book/<NN>_*.ipynb."""
    return sorted((ROOT / "book").glob("[0-9]*.ipynb"))


def _target(text: str) -> str | Path | None:
    """A command-line target as a shared model's name or a chapter notebook inside book/; None for anything else
    (another file, a path leading out of book/, a notebook that trains nothing)."""
    if text in SHARED:
        return text
    path = Path(text)
    resolved = (path if path.is_absolute() else Path.cwd() / path).resolve()
    return resolved if resolved in {c.resolve() for c in chapters()} else None


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def _move_back(folder: Path, chapter: str) -> str:
    """The shell command, run from the repository root, that puts set-aside checkpoints back without overwriting
    any that were retrained since."""
    home = _shown(WEIGHTS_DIR / chapter)
    return f"mkdir -p {home} && mv -n {_shown(folder)}/* {home}/"


def _waiting_aside() -> list[str]:
    """Lines about folders under .cache/checkpoints-before/ that hold checkpoints their chapter no longer has: what
    a FROM_NOTHING run that was killed before it retrained them leaves there."""
    lines = []
    for folder in sorted(SET_ASIDE.glob("*-[0-9]*-[0-9]*")) if SET_ASIDE.is_dir() else []:
        chapter = folder.name.rsplit("-", 2)[0]
        missing = sorted(
            p.name for p in folder.glob("*-seed*.*") if p.is_file() and not (WEIGHTS_DIR / chapter / p.name).exists()
        )
        if missing:
            listed = ", ".join(missing[:4]) + (", ..." if len(missing) > 4 else "")
            lines.append(
                f"note: {_shown(folder)} holds {len(missing)} checkpoint file(s) of {chapter} that "
                f"{_shown(WEIGHTS_DIR / chapter)} lacks ({listed}), "
                f"set aside by a FROM_NOTHING run that did not finish. Move them back from the repository root with "
                f"`{_move_back(folder, chapter)}` (or let this run retrain them), then delete {_shown(folder)}."
            )
    return lines


def _set_aside(chapter: str) -> Path | None:
    """Move the chapter's checkpoints to a new folder under .cache/checkpoints-before/; return it (None: none)."""
    source = WEIGHTS_DIR / chapter
    if not source.is_dir() or not any(source.iterdir()):
        return None
    target = SET_ASIDE / f"{chapter}-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(source), str(target))
    print(
        f"    moved the stored checkpoints of {chapter} to {_shown(target)}; they wait there until this run has "
        f"retrained them. If it stops before, move them back: `{_move_back(target, chapter)}`",
        flush=True,
    )
    return target


def _compare(chapter: str, before: Path) -> None:
    """Say which new checkpoints of `chapter` have the same bytes as the ones moved aside to `before`."""
    old, new = _by_model(before), _by_model(WEIGHTS_DIR / chapter)
    same = [key for key, m in new.items() if key in old and old[key]["sha256"] == m["sha256"]]
    differ = sorted(key for key in new if key in old and key not in same)
    print(f"    reproduced byte for byte: {len(same)} of {len(old)} stored checkpoints", flush=True)
    if differ:
        stored = [_shown(WEIGHTS_DIR / chapter), _shown(checksums_path(f"{chapter}/x", WEIGHTS_DIR))]
        print(
            f"    different weights: {', '.join(differ)}. The stored ones are in {_shown(before)}; from the repository "
            f"root, `git checkout -- {' '.join(stored)}` restores them (and their manifests' checksums).",
            flush=True,
        )


def _record(chapter: str, seconds: float, trained: list[dict]) -> None:
    """Write the from-nothing training time of `chapter` (or of a shared model) into book/retrain_timings.json,
    other chapters kept."""
    record = json.loads(RETRAIN_TIMINGS.read_text()) if RETRAIN_TIMINGS.is_file() else {"chapters": {}}
    devices = sorted({m["device"].split(":")[0] for m in trained})
    target = chapter if chapter in SHARED else f"book/{chapter}.ipynb"
    record["chapters"][chapter] = {
        "seconds": round(seconds),
        "models": len(trained),
        "also_trained": sorted({m["name"].split("/")[0] for m in trained} - {chapter}),
        "device": ",".join(devices),
        "machine": machine() if devices == ["cpu"] else f"{machine()} + {torch.cuda.get_device_name()}",
        "torch": torch.__version__.split("+")[0],
        "date": datetime.date.today().isoformat(),
        "command": f"make checkpoints NB={target} FROM_NOTHING=1",
    }
    record["chapters"] = dict(sorted(record["chapters"].items()))
    partial = RETRAIN_TIMINGS.with_name(f".{RETRAIN_TIMINGS.name}.partial")  # never a half-written record
    partial.write_text(json.dumps(record, indent=1) + "\n")
    partial.replace(RETRAIN_TIMINGS)
    print(f"    recorded in {RETRAIN_TIMINGS.relative_to(ROOT)}", flush=True)


def train_classifier(model: FashionClassifier, data: FashionMNIST, settings: ClassifierSettings) -> History:
    """Train the classifier in place with chapter 1's loop, seeded, with the learning rate halved after every epoch;
    guarded as `fit` is (aecourse.train.guarded_epoch)."""
    check_positive("train_classifier: settings.lr", settings.lr)
    check_int("train_classifier: settings.num_epochs", settings.num_epochs, minimum=0)
    check_int("train_classifier: settings.batch_size", settings.batch_size, minimum=1)
    check_int("train_classifier: settings.seed", settings.seed)
    device = next(model.parameters()).device
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)

    def cross_entropy(model: nn.Module, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(model(x_train[idx]), y_train[idx])

    # train_epoch batches the rows of the tensor it is given: here the images' indices, so that each batch's labels
    # come with its images (the same batches, in the same order, as batches of the images themselves)
    indices = torch.arange(len(x_train), device=device)
    history = History()
    for epoch in range(settings.num_epochs):
        for group in optimizer.param_groups:
            group["lr"] = settings.lr * 0.5**epoch
        shuffle = torch.Generator().manual_seed(settings.seed + epoch)  # a new order each epoch
        start = time.perf_counter()
        train = guarded_epoch(
            epoch + 1,
            model,
            [optimizer],
            lambda shuffle=shuffle: train_epoch(
                model, optimizer, cross_entropy, indices, batch_size=settings.batch_size, generator=shuffle
            ),
            history,
        )
        history.rows.append(
            {"epoch": float(epoch + 1), "train_loss": train["loss"], "seconds": time.perf_counter() - start}
        )
    return history


def store_classifier(
    data: FashionMNIST,
    device: torch.device | str,
    *,
    settings: ClassifierSettings | None = None,
    root: Path | None = None,
    min_accuracy: float = MIN_ACCURACY,
) -> FashionClassifier:
    """The shared classifier, checked as the chapters load it (`pretrained_classifier`); trained from its seed and
    stored first when its checkpoint is missing, stale or damaged."""
    settings = settings or ClassifierSettings()
    config = training_config(settings)
    try:
        load(initial_classifier(settings, device), CHECKPOINT, settings.seed, expect=config, root=root)
    except CheckpointError:
        model = initial_classifier(settings, device)
        with torch.random.fork_rng(devices=[]):
            history = train_classifier(model, data, settings)
        save(model, CHECKPOINT, settings.seed, config=config, history=history, device=str(device), root=root)
    return pretrained_classifier(data, device, settings=settings, root=root, min_accuracy=min_accuracy)


def _train_shared(name: str) -> float:
    """Load the shared model `name`, training and storing it first when its checkpoint is missing or stale; return
    the wall seconds, data loading included (as in a chapter's)."""
    if name != "classifier":  # SHARED names what this function can train
        raise ValueError(f"no shared model called {name!r}; the shared models are: {', '.join(SHARED)}")
    started = time.perf_counter()
    device = pick_device()
    store_classifier(load_fashion_mnist(device=device), device)
    return time.perf_counter() - started


def _passes(target: str | Path) -> list[tuple[str, Callable[[], float], bool]]:
    """What training `target` takes: (what it is, a call returning its wall seconds, whether it is the pass that
    trains); a notebook is executed twice, training then loading, a shared model is trained in this process."""
    if isinstance(target, str):
        return [("training it if missing or stale, alone", lambda: _train_shared(target), True)]
    notebook = target
    training = {"AECOURSE_BUDGET": "full", "AECOURSE_RETRAIN": "missing"}
    return [
        # No time limit per cell: one cell trains all of a chapter's models (hours on a CPU).
        (
            "training what is missing or stale",
            lambda: execute(notebook, timeout=None, env=training, save=False),
            True,
        ),
        (
            "executing on the load path and saving the outputs",
            lambda: execute(
                notebook, timeout=None, env={"AECOURSE_BUDGET": "full", "AECOURSE_RETRAIN": "0"}, save=True
            ),
            False,
        ),
    ]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--from-nothing", action="store_true", help="move each chapter's checkpoints aside first")
    parser.add_argument("targets", nargs="*", help=f"notebooks, or a shared model: {', '.join(SHARED)}")
    args = parser.parse_args(argv)
    here, checkout = Path(aecourse.__file__).resolve().parent, Path(__file__).resolve().parents[1]
    if here != checkout / "aecourse":  # it would train into that copy's weights
        print(
            f"this tool imported aecourse from {here}, not from its checkout {checkout}; run it as a script, "
            f"`python {checkout / 'tools' / 'train_checkpoints.py'}` (or `make checkpoints` there).",
            file=sys.stderr,
        )
        return 2
    found = {text: _target(text) for text in args.targets}
    refused = [text for text, target in found.items() if target is None]
    if refused:
        names = ", ".join(_shown(c) for c in chapters())
        print(
            f"not a chapter notebook or a shared model: {', '.join(refused)}. Name chapter notebooks ({names}) or a "
            f"shared model ({', '.join(SHARED)}), or nothing for the whole book.",
            file=sys.stderr,
        )
        return 2
    targets: list[str | Path] = [t for t in found.values() if t is not None] or [*SHARED, *chapters()]
    for line in _waiting_aside():
        print(line, file=sys.stderr, flush=True)
    started = time.perf_counter()
    failed = []
    for target in targets:
        chapter = target if isinstance(target, str) else target.stem
        shown = target if isinstance(target, str) else _shown(target)
        aside = _set_aside(chapter) if args.from_nothing else None
        before = _by_model()
        from_nothing = not any(key.startswith(f"{chapter}/") for key in before)
        for what, run, trains in _passes(target):
            print(f"=== {shown}: {what}", flush=True)
            try:
                seconds = run()
            except KernelSetupError as exc:  # the kernels run another checkout: no target can run right
                print(f"FAILED {shown} ({what}):\n{exc}", file=sys.stderr, flush=True)
                return 1
            except Exception as exc:  # noqa: BLE001 - the checkpoints stored so far stay; the next target still runs
                print(f"FAILED {shown} ({what}):\n{str(exc)[-3000:]}", file=sys.stderr, flush=True)
                failed.append(str(shown))
                break
            print(f"    {seconds:.0f} s", flush=True)
            if not trains:
                continue
            trained = [m for key, m in _by_model().items() if before.get(key) != m]  # new or rewritten manifests
            print(f"    trained {len(trained)} models in this pass", flush=True)
            if from_nothing and trained:
                _record(chapter, seconds, trained)
            if aside is not None:
                _compare(chapter, aside)
    for line in _waiting_aside():
        print(line, file=sys.stderr, flush=True)
    by_chapter: dict[str, float] = {}
    for manifest in manifests():
        group = manifest["name"].split("/")[0]
        by_chapter[group] = by_chapter.get(group, 0.0) + manifest["training_seconds"]
    print("\ntraining seconds stored in the manifests, by notebook:")
    for group, seconds in sorted(by_chapter.items()):
        print(f"{seconds:9.0f} s  {group}")
    size = stored_size()
    print(f"checkpoints: {size:,} bytes ({size / 2**20:.1f} MiB); this run took {time.perf_counter() - started:.0f} s")
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
