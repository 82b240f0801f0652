"""Every sentence of the book that compares things is bound to a check, by a rule that does not rely on memory (#26).

A prose block (paragraph or list) whose sentences use a comparison word carries, on MyST comment lines right
after it (hidden from readers), one entry per such sentence:
    % checks: <the sentence argument of a claim() call in the same notebook or in its evidence module>
    % asserts: <the test of an assert statement in the same notebook or its evidence module, as ast.unparse writes it>
    % not measured: <why the sentence needs no measurement: a definition, the article's wording, the code's shape>
A sentence glued whole from a verdict ({glue:md}`says_...`, made by aecourse.evidence.report.says) needs no entry: its
words come from the comparison. The test lists every sentence that lacks an entry, and every entry that names a
claim the notebook does not make.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

BOOK = Path(__file__).resolve().parent.parent / "book"
PAGES = sorted([*BOOK.glob("*.ipynb"), *BOOK.glob("*.md")])
COMPARISON = re.compile(
    r"\b(higher|lower|better|worse|more|less|fewer|faster|slower|larger|smaller|sharper|blurrier|smoother|"
    r"than|beats?|outperforms?|exceeds?|below|above|best|worst|improves?|degrades?|rises?|falls?|"
    r"nearer|closer|further|farther|least|highest|lowest|largest|smallest|fastest|slowest)\b",
    re.IGNORECASE,
)
NOT_COMPARING = re.compile(  # phrases that use a comparison word without comparing anything measured
    r"\b(rather than|more precisely|other than|no more than one|at least|more on|"
    r"(the|a|this|these|that)\s+\w+\s+(below|above))\b",
    re.I,
)
ADMONITION = re.compile(r"^(`{3,})\{(note|important|warning|tip|hint|caution|attention|admonition|seealso)\}")
ENTRY = re.compile(r"^%\s*(checks|asserts|not measured):\s*(.+?)\s*$")
VERDICT_GLUE = re.compile(r"\{glue(?::md|:text)?\}`says_[^`]*`")
ROLE = re.compile(r"\{(\w+)(?::\w+)?\}`([^`]*)`")


EVIDENCE = BOOK.parent / "aecourse" / "evidence"


def evidence_module(page: Path) -> Path | None:
    """The module that holds a page's evidence: aecourse/evidence/chN.py for chapter N, else one named as the page."""
    match = re.match(r"0?(\d+)_", page.name)
    path = EVIDENCE / (f"ch{match[1]}.py" if match else f"{page.stem}.py")
    return path if path.is_file() else None


def claims(notebook: dict, module: Path | None = None) -> set[str]:
    """The sentence argument of every claim() call, and the test of every assert, in the notebook's code cells and
    in its evidence module (where its hidden cells' measurements and claims live)."""
    found = set()
    sources = ["".join(cell["source"]) for cell in notebook["cells"] if cell["cell_type"] == "code"]
    for text in sources + ([module.read_text()] if module else []):
        lines = text.splitlines()  # a magic becomes `pass`: an `if` around it stays valid
        source = "\n".join(re.sub(r"^(\s*)[%!].*", r"\1pass", line) for line in lines)
        for node in ast.walk(ast.parse(source)):
            called = getattr(node, "func", None)
            if isinstance(node, ast.Call) and getattr(called, "id", getattr(called, "attr", None)) == "claim":
                if len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                    found.add(node.args[1].value)
            if isinstance(node, ast.Assert):
                found.add("assert " + ast.unparse(node.test))
    return found


def _readable(text: str) -> str:
    """The block as a reader sees its words: verdict sentences and references out, a role's text kept."""
    text = VERDICT_GLUE.sub("", text)

    def role(match: re.Match) -> str:
        kind, body = match.groups()
        if kind in {"term", "sub"}:
            return re.sub(r"\s*<[^>]*>$", "", body)
        return "" if kind in {"cite", "numref", "ref", "eq", "doc"} else "N"  # a glued number reads as a number

    return re.sub(r"`[^`]*`", "C", ROLE.sub(role, text))  # inline code is a name, not prose


def blocks(source: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """Prose blocks of a markdown cell with the entries that follow them; code, math, tables, headings, figures and
    exercise statements are left out (their words are not claims of the prose); an admonition's body is prose."""
    found: list[tuple[str, list[tuple[str, str]]]] = []
    lines, entries, fence, open_note = [], [], None, None

    def close() -> None:
        if lines or entries:
            found.append((" ".join(lines), list(entries)))
        lines.clear()
        entries.clear()

    for line in source.splitlines():
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence):
                fence = None
            continue
        if open_note and stripped == open_note:  # the end of an admonition: its body was prose
            close()
            open_note = None
            continue
        if ADMONITION.match(stripped):
            close()
            open_note = re.match(r"`+", stripped).group()
            continue
        if open_note and stripped.startswith(":") and not stripped.startswith(":::"):
            continue  # an option of the admonition (:class:, :label:)
        if stripped.startswith(("```", "$$")):
            close()
            fence = stripped[:3] if stripped.startswith("```") else "$$"
            if stripped.startswith("$$") and stripped.endswith("$$") and len(stripped) > 2:
                fence = None
            continue
        if entry := ENTRY.match(stripped):
            entries.append(entry.groups())
        elif not stripped or stripped.startswith(("#", "|", ":::", "(", "%")):
            if not stripped.startswith("%"):
                if entries or not stripped:
                    close()
        else:
            if entries:  # an entry belongs to the block above it: prose after it starts a new block
                close()
            lines.append(stripped)
    close()
    return found


def comparing(text: str) -> list[str]:
    sentences = re.split(r"(?<=[.!?:;])\s+(?=[-A-Z(*])|\s+-\s+(?=\S)", _readable(text))
    return [s for s in sentences if COMPARISON.search(NOT_COMPARING.sub("", s))]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.stem)
def test_every_comparing_sentence_is_bound_to_a_check(page):
    text = page.read_text()
    notebook = json.loads(text) if page.suffix == ".ipynb" else {"cells": [{"cell_type": "markdown", "source": text}]}
    made = claims(notebook, evidence_module(page))
    unbound, unknown = [], []
    for cell in notebook["cells"]:
        if cell["cell_type"] != "markdown":
            continue
        for text, entries in blocks("".join(cell["source"])):
            sentences = comparing(text)
            if len(entries) < len(sentences):
                unbound += [f"{len(sentences)} sentences, {len(entries)} entries: {s[:110]}" for s in sentences]
            unknown += [f"{kind}: {quote}" for kind, quote in entries if kind == "checks" and quote not in made]
            unknown += [
                f"{kind}: {quote}" for kind, quote in entries if kind == "asserts" and f"assert {quote}" not in made
            ]
    assert not unknown, f"{page.name}: entries that name no claim() / assert of the notebook: {unknown}"
    assert not unbound, f"{page.name}: comparing sentences without '% checks:'/'% not measured:' entries:\n" + (
        "\n".join(unbound)
    )


def test_the_rule_sees_what_it_should():
    """A planted comparison without an entry is caught; one entry per sentence, or a verdict glued whole, passes."""
    prose = "The VAE's samples are sharper than the AE's. The loss rises."
    assert len(comparing(blocks(prose)[0][0])) == 2
    [(text, entries)] = blocks(prose + "\n% checks: a\n% not measured: b")
    assert len(entries) == 2 and len(comparing(text)) == 2
    assert comparing("{glue:md}`says_fd` The encoder is a function.") == []
    assert blocks("A is better.\n% checks: x\n\nB is worse.") == [
        ("A is better.", [("checks", "x")]),
        ("B is worse.", []),
    ]
    assert blocks("```python\nx = a > b  # larger\n```") == []
    # an admonition's body is prose (its options are not); an exercise's statement is a question, left out
    note = "```{note}\n:class: dropdown\nThe GAN is nearer to the data.\n% checks: y\n```\nAfter."
    assert blocks(note) == [("The GAN is nearer to the data.", [("checks", "y")]), ("After.", [])]
    assert blocks("```{exercise} Q\nIs the VAE closer?\n```") == []
    assert len(comparing("The largest error is at d = 2. The code is short.")) == 1
