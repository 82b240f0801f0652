"""The code a reader of the HTML book sees, alone: each chapter's code cells that the book shows (no remove-* or
hide-* tag; an exercise's solution code included, which the book shows in a dropdown), in order, in a notebook of
their own. `make test` runs these notebooks in a fresh kernel on the load path and on the smoke training path: a
reader who copies the page's code must be able to run it, so a visible cell may never lean on a hidden one (hidden
cells may use what visible cells define).

    python tools/visible_code.py book/01_autoencoder.ipynb ... --out .cache/visible
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HIDDEN = frozenset({"remove-cell", "remove-input", "hide-input", "hide-cell"})


def is_hidden(cell: dict) -> bool:
    """True for a code cell the HTML book removes or folds away by a tag."""
    return bool(HIDDEN & set(cell.get("metadata", {}).get("tags", [])))


def visible_cells(notebook: dict) -> list[dict]:
    """The code cells a reader sees, in order, without outputs (they are to be run, not compared)."""
    return [
        {
            "cell_type": "code",
            "execution_count": None,
            "id": cell.get("id", f"cell-{number}"),
            "metadata": {},
            "outputs": [],
            "source": cell["source"],
        }
        for number, cell in enumerate(notebook["cells"])
        if cell["cell_type"] == "code" and not is_hidden(cell) and "".join(cell["source"]).strip()
    ]


def visible_notebook(path: Path) -> dict:
    """A notebook of `path`'s visible code cells, with its kernel and language metadata."""
    notebook = json.loads(Path(path).read_text(encoding="utf-8"))
    cells = visible_cells(notebook)
    if not cells:
        raise ValueError(f"{path} shows no code cell: nothing to run.")
    return {
        "cells": cells,
        "metadata": {k: v for k, v in notebook["metadata"].items() if k in ("kernelspec", "language_info")},
        "nbformat": notebook["nbformat"],
        "nbformat_minor": notebook["nbformat_minor"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True, help="the folder the visible-code notebooks go to")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    for old in args.out.glob("*.ipynb"):
        old.unlink()
    for path in args.notebooks:
        if not path.is_file():
            print(f"visible_code: {path} is not a notebook file.", file=sys.stderr)
            return 2
        target = args.out / path.name
        target.write_text(json.dumps(visible_notebook(path), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        print(f"{target}: {len(visible_notebook(path)['cells'])} visible code cells of {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
