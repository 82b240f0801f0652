"""The code a chapter teaches is the code that runs: the model classes, losses and training steps shown in the
chapters are, character for character, the package's definitions (one source, two views), the chapters run their own
cells' definitions (they do not import those names), and each chapter shows what it teaches, in visible cells.

Rule: every top-level class or function that a chapter's code cell defines under a name the package also defines
must equal the package's definition. So a chapter cannot show one thing while the package trains with another, and
an edit on either side fails here until the other follows.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BOOK = ROOT / "book"
HIDDEN = {"remove-cell", "remove-input", "hide-input", "hide-cell"}

# What each chapter builds in front of the reader (the rest of the package is imported).
TAUGHT = {
    "01_autoencoder": ["Autoencoder", "reconstruction_loss", "train_epoch"],
    "02_denoising_autoencoder": [
        "add_gaussian_noise",
        "add_masking_noise",
        "DenoisingAutoencoder",
        "denoising_loss",
        "ConvDenoisingAutoencoder",
    ],
    "03_vae": ["reparameterize", "VAE", "gaussian_kl", "vae_loss", "vae_batch_loss"],
    "04_vae_vs_gan": [
        "Generator",
        "Discriminator",
        "discriminator_loss",
        "generator_loss",
        "gan_step",
        "gan_optimizers",
        "gan_steps",
    ],
    "05_beta_vae_torchbearer": ["ConvVAE", "StateVAE", "squared_error", "beta_kl"],
}


def _package_definitions() -> dict[str, tuple[str, str]]:
    """name -> (module, source text) of every top-level class and function of the package."""
    found: dict[str, tuple[str, str]] = {}
    for module in sorted((ROOT / "aecourse").glob("*.py")):
        text = module.read_text()
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                assert node.name not in found, f"{node.name} is defined in two modules: {found[node.name][0]}, {module}"
                found[node.name] = (module.name, ast.get_source_segment(text, node, padded=False))
    return found


def _code(source: str) -> str:
    """A cell's source as Python: IPython's magics and shell lines blanked (their line count kept)."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines())


def _cells(chapter: str) -> list[dict]:
    return json.loads((BOOK / f"{chapter}.ipynb").read_text())["cells"]


def _definitions(chapter: str) -> dict[str, tuple[str, set[str]]]:
    """name -> (source text, the cell's tags) of every top-level class and function the chapter's cells define."""
    found = {}
    for cell in _cells(chapter):
        if cell["cell_type"] != "code":
            continue
        text = _code("".join(cell["source"]))
        for node in ast.parse(text).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)):
                found[node.name] = (ast.get_source_segment(text, node), set(cell["metadata"].get("tags", [])))
    return found


PACKAGE = _package_definitions()
CHAPTERS = sorted(p.stem for p in BOOK.glob("[0-9][0-9]_*.ipynb"))
SHARED = [(chapter, name) for chapter in CHAPTERS for name in _definitions(chapter) if name in PACKAGE]


def test_every_taught_name_is_checked():
    assert {(c, n) for c, names in TAUGHT.items() for n in names} <= set(SHARED)


@pytest.mark.parametrize(("chapter", "name"), SHARED, ids=[f"{c}:{n}" for c, n in SHARED])
def test_a_definition_shown_in_a_chapter_is_the_packages(chapter, name):
    shown, _ = _definitions(chapter)[name]
    module, source = PACKAGE[name]
    assert shown == source, (
        f"{chapter} shows a {name} that differs from aecourse/{module}'s: the chapter's cell and the package are one "
        "source. Make them the same (the package's copy sits between `# fmt: off` and `# fmt: on`, at 75 columns)."
    )


@pytest.mark.parametrize("chapter", sorted(TAUGHT))
def test_a_chapter_shows_what_it_teaches_and_runs_its_own_cells(chapter):
    definitions = _definitions(chapter)
    for name in TAUGHT[chapter]:
        assert name in definitions, f"{chapter} no longer shows {name}"
        assert not definitions[name][1] & HIDDEN, f"{chapter} hides the cell that defines {name}"
    imported = set()
    for cell in _cells(chapter):
        if cell["cell_type"] == "code":
            for node in ast.walk(ast.parse(_code("".join(cell["source"])))):
                if isinstance(node, ast.ImportFrom):
                    imported |= {alias.asname or alias.name for alias in node.names}
    overlap = imported & set(TAUGHT[chapter])
    assert not overlap, f"{chapter} imports {sorted(overlap)}: it must run the definitions its cells show"


def test_the_shown_definitions_are_marked_as_one_source_in_the_package():
    """Each taught definition sits in a `# fmt: off` region (ruff formats the package at 120 columns; the book's cells,
    and so these definitions, at 75)."""
    for chapter, names in TAUGHT.items():
        for name in names:
            module, source = PACKAGE[name]
            text = (ROOT / "aecourse" / module).read_text()
            regions = re.findall(r"# fmt: off\n(.*?)# fmt: on\n", text, re.S)
            assert any(source in region for region in regions), f"{name} ({chapter}) is not in a fmt: off region"
