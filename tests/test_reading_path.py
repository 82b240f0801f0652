"""The reader's path holds the lesson; the evidence sits one click away (#32, STYLE.md 6, 12 and 13).

Per chapter: the code a reader sees stays short (at most 250 lines, no cell over 30) and opens with the imports and
the data (at most 20 lines); the hidden evidence cells are short calls into the chapter's module (at most 150 lines,
no cell over 30), each titled by its first line (`# ...`, the title Colab shows on the folded cell); a glued value is
stored as the text the page shows, so its role in the prose carries no format of its own; and the running prose
carries few statistics (each "±" and each "decided" outside tables, folded blocks, math and code), which belong in
the tables, the figures and the folded "How we know" blocks.

Lines are counted as the before-stop hook counts them: the non-blank source lines of the code cells, an exercise's
solution code included on the visible side (the book shows it in a dropdown a reader opens).
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools.visible_code import is_hidden, visible_notebook  # noqa: E402

CHAPTERS = sorted((ROOT / "book").glob("[0-9][0-9]_*.ipynb"))
VISIBLE_LINES, VISIBLE_CELL, FIRST_CELL = 250, 30, 20
HIDDEN_LINES, HIDDEN_CELL = 150, 30
INLINE_STATISTICS = 5
GLUE_ROLE = re.compile(r"\{glue(?::text|:md)?\}`([^`]*)`")


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _lines(cell: dict) -> int:
    return sum(1 for line in "".join(cell["source"]).splitlines() if line.strip())


def _code(path: Path) -> list[dict]:
    return [c for c in _cells(path) if c["cell_type"] == "code" and "".join(c["source"]).strip()]


def _is_setup(cell: dict) -> bool:
    """The Colab setup cell: removed from the HTML, first and open on Colab."""
    return "google.colab" in "".join(cell["source"]) and "remove-cell" in cell["metadata"].get("tags", [])


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_visible_code_is_short(chapter):
    lines = [_lines(c) for c in _code(chapter) if not is_hidden(c)]
    print(f"{chapter.stem}: {sum(lines)} visible code lines in {len(lines)} cells, the longest {max(lines)}")
    assert sum(lines) <= VISIBLE_LINES, f"{chapter.name}: {sum(lines)} visible code lines (at most {VISIBLE_LINES})"
    assert max(lines) <= VISIBLE_CELL, f"{chapter.name}: a visible cell of {max(lines)} lines (at most {VISIBLE_CELL})"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_first_visible_cell_is_the_imports_and_the_data(chapter):
    first = next(c for c in _code(chapter) if not is_hidden(c))
    source = "".join(first["source"])
    assert _lines(first) <= FIRST_CELL, f"{chapter.name}: the first visible cell has {_lines(first)} lines"
    assert "import " in source and "load_fashion_mnist(" in source, f"{chapter.name}: {source[:200]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_hidden_evidence_is_short_calls_each_with_a_title(chapter):
    hidden = [c for c in _code(chapter) if is_hidden(c) and not _is_setup(c)]
    lines = [_lines(c) for c in hidden]
    print(f"{chapter.stem}: {sum(lines)} hidden code lines in {len(lines)} cells, the longest {max(lines, default=0)}")
    assert sum(lines) <= HIDDEN_LINES, f"{chapter.name}: {sum(lines)} hidden code lines (at most {HIDDEN_LINES})"
    assert max(lines, default=0) <= HIDDEN_CELL, f"{chapter.name}: a hidden cell of {max(lines)} lines"
    untitled = [c.get("id") for c in hidden if not re.match(r"# \S", "".join(c["source"]).lstrip())]
    assert not untitled, f"{chapter.name}: hidden cells whose first line is no `# title` comment: {untitled}"


@pytest.mark.parametrize("page", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_a_glued_value_carries_no_format_in_the_prose(page):
    """glue(name, value, fmt) stores the text the page shows; a role's own format would print another one."""
    formatted = [
        role
        for cell in _cells(page)
        if cell["cell_type"] == "markdown"
        for role in GLUE_ROLE.findall("".join(cell["source"]))
        if ":" in role.split("::")[-1]
    ]
    assert not formatted, f"{page.name}: glue roles with a format spec: {formatted}"


def _glued(path: Path) -> dict[str, str]:
    """Every glued value of a notebook, as the text its record stores."""
    values = {}
    for cell in _code(path):
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                data = output["data"]
                text = data.get(record["mime_prefix"] + "text/markdown") or data[record["mime_prefix"] + "text/plain"]
                values[record["name"]] = ast.literal_eval(text) if text[:1] in "'\"" else text
    return values


def running_prose(markdown: str) -> str:
    """A markdown cell as running paragraphs: fenced blocks and directives (code, math, admonitions, exercises,
    folded blocks), tables, display math and MyST comments taken out."""
    kept, fence = [], None
    for line in markdown.splitlines():
        stripped = line.strip()
        if fence:
            if stripped == fence:
                fence = None
            continue
        opening = re.match(r"(`{3,}|:{3,})", stripped)
        if opening and not stripped.endswith(opening.group(1)) or stripped in ("$$",):
            fence = opening.group(1) if opening else "$$"
            continue
        if stripped.startswith(("|", "%")) or (stripped.startswith("$$") and stripped.endswith("$$")):
            continue
        kept.append(line)
    return re.sub(r"\$[^$]*\$", "", "\n".join(kept))


def inline_statistics(path: Path) -> int:
    """Each "±" and each "decided" in a chapter's running prose, with its glued values put in."""
    glued = _glued(path)
    count = 0
    for cell in _cells(path):
        if cell["cell_type"] != "markdown":
            continue
        text = GLUE_ROLE.sub(lambda m: glued.get(m.group(1), ""), running_prose("".join(cell["source"])))
        count += text.count("±") + len(re.findall(r"\bdecided\b", text, flags=re.I))
    return count


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_running_prose_carries_few_statistics(chapter):
    count = inline_statistics(chapter)
    print(f"{chapter.stem}: {count} inline statistics")
    assert count <= INLINE_STATISTICS, f"{chapter.name}: {count} '±' or 'decided' in running prose"


def test_the_rules_see_what_they_should(tmp_path):
    """A folded block, a table and math are left out of the running prose; a glued '±' in a sentence counts."""
    prose = "A ± B decided.\n\n:::{admonition} How we know\n:class: dropdown\n± decided\n:::\n| a ± b |\n$x \\pm y$"
    assert running_prose(prose).count("±") == 1
    notebook = {
        "cells": [
            {"cell_type": "markdown", "metadata": {}, "source": "The gap is {glue:text}`gap`, not decided."},
            {
                "cell_type": "code",
                "metadata": {"tags": ["remove-input"]},
                "source": "# Glue the gap\nglue('gap', ...)",
                "outputs": [
                    {
                        "output_type": "display_data",
                        "metadata": {"scrapbook": {"name": "gap", "mime_prefix": "application/papermill.record/"}},
                        "data": {"application/papermill.record/text/plain": "'1.0 ± 0.2'"},
                    }
                ],
            },
            {"cell_type": "code", "metadata": {}, "source": "x = 1", "outputs": []},
        ],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "01_demo.ipynb"
    path.write_text(json.dumps(notebook))
    assert inline_statistics(path) == 2
    assert [c["source"] for c in visible_notebook(path)["cells"]] == ["x = 1"]
