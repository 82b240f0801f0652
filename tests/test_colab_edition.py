"""The Colab edition (colab/0N_*.ipynb, tools/colab_edition.py; #33, STYLE.md 13): what Colab shows of a chapter
reads as the HTML book does.

Per chapter, the committed edition is what the generator makes of the current chapter notebook; its markdown
carries no raw MyST (no {role}`...`, no ```{ or ::: fence, no `% ` comment, no `(label)=` target); every value the
chapter's prose pastes appears in it, as the HTML shows it; every code cell the HTML hides (and every solution's
code) is folded as a titled form, with the code and outputs it had, less the glue records (their values stand in the
text; a cell run again shows them) and a solution's output (it would give the answer away under the exercise); the
setup cell comes first and open. Then the
renderer on small inputs, one per role and directive. Runs in seconds: nothing is executed.
"""

from __future__ import annotations

import ast
import html
import importlib.util
import itertools
import json
import re
import sys
from pathlib import Path

import pytest

# The generator runs in the book's environment (requirements.txt), not in the package's lower-bounds one.
MarkdownIt = pytest.importorskip(
    "markdown_it", reason="the Colab edition's tool needs the book's requirements"
).MarkdownIt
pytest.importorskip("yaml", reason="the Colab edition's tool needs the book's requirements")

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tools import colab_edition  # noqa: E402
from tools.colab_edition import Book, EditionError, Renderer, Target, edition, exercise_labels  # noqa: E402
from tools.visible_code import is_hidden  # noqa: E402

CHAPTERS = colab_edition.chapters()
GLUE_ROLE = re.compile(r"\{glue(?::text|:md)?\}`([^`]+)`")


@pytest.fixture(scope="module")
def book() -> Book:
    return colab_edition.read_book()


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    return "".join(cell["source"])


def raw_myst(markdown: str) -> list[str]:
    """The MyST that CommonMark leaves as it is, found in the parsed markdown (code spans and code blocks aside): a
    role ({name} before a code span), a directive fence (```{name} or :::), a `% ` comment, a `(label)=` target."""
    found = []
    for token in MarkdownIt("commonmark", {"html": True}).enable("table").parse(markdown):
        if token.type == "fence" and token.info.strip().startswith("{"):
            found.append(f"a directive fence: ```{token.info.strip()}")
        if token.type != "inline":
            continue
        for line in token.content.split("\n"):
            if re.match(r"\s*(:{3,}|%|\([^)\s]+\)=\s*$)", line):
                found.append(f"a colon fence, comment or target: {line.strip()[:60]}")
        for before, after in itertools.pairwise(token.children):
            if (
                before.type == "text"
                and re.search(r"\{[a-z][\w:-]*\}$", before.content)
                and after.type == "code_inline"
            ):
                found.append(f"a role: {before.content[-20:]}`{after.content}`")
    return found


def _shown_text(markdown: str) -> str:
    """What a reader reads: the markdown rendered as CommonMark (tables, raw HTML) with its tags taken off."""
    rendered = MarkdownIt("commonmark", {"html": True}).enable("table").render(markdown)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", rendered)).split())


def _edition_of(chapter: Path) -> Path:
    return ROOT / colab_edition.EDITION / chapter.name


def _in_solution(cells: list[dict]) -> list[bool]:
    """For each cell of a chapter: is it between a solution-start and its solution-end (what the HTML folds)?"""
    inside, flags = False, []
    for cell in cells:
        flags.append(inside)
        if cell["cell_type"] == "markdown":
            for directive in re.findall(r"\{(solution-start|solution-end)\}", _source(cell)):
                inside = directive == "solution-start"
    return flags


# --- the committed edition ---------------------------------------------------------------------------------------


def test_every_chapter_has_an_edition_and_nothing_else_is_there():
    assert CHAPTERS, "_toc.yml names no numbered chapter"
    editions = sorted(p.name for p in (ROOT / colab_edition.EDITION).glob("*.ipynb"))
    assert editions == sorted(c.name for c in CHAPTERS), "colab/ holds other notebooks than the chapters' editions"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_edition_is_what_the_generator_makes_of_the_chapter(chapter, book):
    made, _ = edition(chapter, book)
    assert _edition_of(chapter).read_text(encoding="utf-8") == made, (
        f"colab/{chapter.name} is stale: run `python tools/colab_edition.py` (make book does) and commit colab/"
    )


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_edition_carries_no_raw_myst(chapter):
    found = [
        f"cell {i}: {what}"
        for i, cell in enumerate(_cells(_edition_of(chapter)))
        if cell["cell_type"] == "markdown"
        for what in raw_myst(_source(cell))
    ]
    assert not found, f"colab/{chapter.name} shows MyST source: {found[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_every_glued_value_of_the_prose_is_in_the_edition(chapter):
    """Each glue role of the chapter's markdown: its stored text, as the HTML shows it, is in what Colab shows."""
    stored = colab_edition.glued_values(_cells(chapter))
    shown = _shown_text("\n\n".join(_source(c) for c in _cells(_edition_of(chapter)) if c["cell_type"] == "markdown"))
    missing = []
    for cell in _cells(chapter):
        for role in GLUE_ROLE.findall(_source(cell)) if cell["cell_type"] == "markdown" else []:
            name, _, spec = role.partition(":")  # a format spec: the chapters before #32
            record = stored.get(name, {})
            if "text/markdown" in record:
                text = _shown_text(record["text/markdown"])
            elif "text/plain" in record:
                try:
                    value = ast.literal_eval(record["text/plain"])
                except (SyntaxError, ValueError):
                    value = record["text/plain"]
                text = format(float(value) if spec[-1:] and spec[-1] in "eEfFgG%" else value, spec)
            else:
                text = ""
            if not text or " ".join(text.split()) not in shown:
                missing.append(f"{role} ({text!r})")
    assert not missing, f"colab/{chapter.name} lacks glued values of its prose: {missing[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_what_the_html_hides_is_folded_with_the_same_code_and_outputs(chapter):
    source_cells = _cells(chapter)
    by_id = {c["id"]: c for c in _cells(_edition_of(chapter)) if c["cell_type"] == "code"}
    problems = []
    for cell, in_solution in zip(source_cells, _in_solution(source_cells), strict=True):
        if cell["cell_type"] != "code":
            continue
        shown = by_id.get(cell["id"])
        if shown is None:
            problems.append(f"{cell['id']}: missing")
            continue
        ignored = "nbval-ignore-output" in shown["metadata"].get("tags", [])
        kept = [o for o in cell["outputs"] if "scrapbook" not in o.get("metadata", {})]
        if in_solution and (shown["outputs"] or not ignored):
            problems.append(f"{cell['id']}: a solution's stored output shows under its exercise")
        elif not in_solution and shown["outputs"] != kept:
            problems.append(f"{cell['id']}: other outputs than the chapter's, or glue records left in")
        elif kept != cell["outputs"] and not ignored:
            problems.append(f"{cell['id']}: its glue records left out, yet the strict pass would compare its outputs")
        code, title = _source(cell), None
        if shown["metadata"].get("cellView") == "form":
            title, _, rest = _source(shown).partition("\n")
            first, _, after_first = code.partition("\n")
            if not re.fullmatch(r"#@title \S.*", title):
                problems.append(f"{cell['id']}: folded without a #@title first line")
            if rest not in (code, after_first) or (rest == after_first and first.lstrip("# ") not in title):
                problems.append(f"{cell['id']}: its code differs from the chapter's")
        elif _source(shown) != code:
            problems.append(f"{cell['id']}: its code differs from the chapter's")
        should_fold = (is_hidden(cell) or in_solution) and not colab_edition.is_setup(cell)
        if should_fold and title is None:
            problems.append(f"{cell['id']}: hidden in the HTML, open on Colab")
        if not should_fold and title is not None:
            problems.append(f"{cell['id']}: shown in the HTML, folded on Colab")
    assert not problems, f"colab/{chapter.name}: {problems[:5]}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_the_setup_cell_comes_first_and_open(chapter):
    cells = _cells(_edition_of(chapter))
    first = next(c for c in cells if c["cell_type"] == "code")
    assert colab_edition.is_setup(first), f"colab/{chapter.name}: the first code cell is not the Colab setup cell"
    assert "cellView" not in first["metadata"], f"colab/{chapter.name}: the setup cell is folded"
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), "the title comes first"


def test_raw_myst_is_found_and_code_is_not():
    markdown = "See {term}`PCA` and `{term}`.\n% a note\n\n```{note}\nx\n```\n\n:::{admonition} A\n:::\n\n(sec)=\n## S"
    assert len(raw_myst(markdown)) == 6, raw_myst(markdown)  # the colon fence twice: it opens and closes
    assert raw_myst("Code: `{term}`x`` and\n\n```python\n% not a comment\n```\n\n$50 \\%$ of it") == []


# --- the renderer on small inputs --------------------------------------------------------------------------------

BASE = "https://o.github.io/r/"


def small_book() -> Book:
    labels = {
        "sec-a": Target("book/01_x", "sec-a", "A section with $x$"),
        "intro-rule": Target("book/intro", "intro-rule", "The rule"),
        "fig-a": Target("book/01_x", "fig-a", "Figure 1.1", "1.1"),
        "ex-a": Target("book/01_x", "ex-a", "Exercise 1.1", "1.1"),
    }
    return Book(
        base=BASE,
        chapters={"book/01_x": 1},
        titles={"book/01_x": "The X", "book/intro": "Intro", "book/glossary": "Glossary"},
        labels=labels,
        terms={"pca": "term-PCA", "kl divergence": "term-KL-divergence"},
        citations={"a2020": "Ab and Cd, 2020", "b2019": "Be *et al.*, 2019"},
    )


def render(markdown: str, glue: dict | None = None) -> str:
    return Renderer(small_book(), "book/01_x", glue or {}).markdown(markdown)


@pytest.mark.parametrize(
    ("markdown", "expected"),
    [
        ("{glue:text}`gap`", "0.48 \\| 0.50"),  # the stored text, its markup escaped
        ("{glue:text}`range`", "&#91;0, 1&#93; \\*x\\*"),  # brackets as entities: \\[ is display math to MathJax
        ("{glue:text}`raw:.3f`", "0.123"),  # a format spec (the chapters before #32)
        ("{glue}`raw`", "0.12345"),
        ("{glue:md}`table`", "**bold**"),
        ("{term}`PCA`", f"[PCA]({BASE}book/glossary.html#term-PCA)"),
        ("{term}`the KL <KL divergence>`", f"[the KL]({BASE}book/glossary.html#term-KL-divergence)"),
        ("{numref}`fig-a`", f"[Figure 1.1]({BASE}book/01_x.html#fig-a)"),
        ("{numref}`Fig. %s <fig-a>`", f"[Fig. 1.1]({BASE}book/01_x.html#fig-a)"),
        ("{ref}`sec-a`", f"[A section with $x$]({BASE}book/01_x.html#sec-a)"),
        ("{ref}`the rule <intro-rule>`", f"[the rule]({BASE}book/intro.html#intro-rule)"),
        ("{ref}`ex-a`", f"[Exercise 1.1]({BASE}book/01_x.html#ex-a)"),
        ("{doc}`intro`", f"[Intro]({BASE}book/intro.html)"),
        ("{doc}`chapter 1 <01_x>`", f"[chapter 1]({BASE}book/01_x.html)"),
        ("{cite}`a2020`", f"[[Ab and Cd, 2020]({BASE}book/bibliography.html#cite-a2020)]"),
        (
            "{cite}`a2020,b2019`",  # sorted as the HTML sorts them
            f"[[Ab and Cd, 2020]({BASE}book/bibliography.html#cite-a2020), "
            f"[Be *et al.*, 2019]({BASE}book/bibliography.html#cite-b2019)]",
        ),
        ("`{term}` in code", "`{term}` in code"),  # a code span is left alone
    ],
)
def test_each_role(markdown, expected):
    glue = {
        "gap": {"text/plain": "'0.48 | 0.50'"},
        "range": {"text/plain": "'[0, 1] *x*'"},
        "raw": {"text/plain": "0.12345"},
        "table": {"text/plain": "<Markdown>", "text/markdown": "**bold**"},
    }
    assert render(markdown, glue) == expected


def test_a_citation_renders_as_a_link_in_brackets():
    html_ = MarkdownIt("commonmark").render(render("As {cite}`a2020` show."))
    assert html_ == f'<p>As [<a href="{BASE}book/bibliography.html#cite-a2020">Ab and Cd, 2020</a>] show.</p>\n'


@pytest.mark.parametrize(
    "markdown",
    [
        "{glue:text}`nowhere`",
        "{term}`no such term`",
        "{ref}`no-label`",
        "{cite}`nobody`",
        "{eq}`x`",
        "```{figure} x\n```",
    ],
)
def test_what_the_book_lacks_stops_the_generator(markdown):
    with pytest.raises(EditionError):
        render(markdown)


def test_comments_and_targets_go_and_a_comment_ends_a_paragraph():
    markdown = "(sec-a)=\n## A section\n\nOne line.\n% checks: a review note\nNext paragraph.\n  % indented note"
    assert render(markdown) == "## A section\n\nOne line.\n\nNext paragraph."


def test_code_fences_are_left_as_they_are():
    markdown = "```python\n%pip install x  # {term}`PCA`\n```"
    assert render(markdown) == markdown


def test_admonitions_become_quoted_blocks_with_a_bold_title():
    assert (
        render("```{note}\nSee {term}`PCA`.\n```") == f"> **Note**\n>\n> See [PCA]({BASE}book/glossary.html#term-PCA)."
    )
    assert render("```{seealso}\nThe rule.\n```") == "> **See also**\n>\n> The rule."
    assert render("```{admonition} Trained models\n:class: tip\nLine one.\n\nLine two.\n```") == (
        "> **Trained models**\n>\n> Line one.\n>\n> Line two."
    )


def test_a_dropdown_with_a_glued_table_becomes_details():
    markdown = (
        "Before.\n\n:::{admonition} How we know\n:class: dropdown\nThree seeds.\n\n"
        "```{glue:md} evidence\n:format: myst\n```\n:::\n\nAfter."
    )
    glue = {"evidence": {"text/plain": "<Markdown>", "text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |"}}
    out = render(markdown, glue)
    assert out == (
        "Before.\n\n<details>\n<summary><b>How we know</b></summary>\n\nThree seeds.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |\n\n</details>\n\nAfter."
    )
    assert "<td>2</td>" in MarkdownIt("commonmark", {"html": True}).enable("table").render(out)  # rendered, not raw


def test_a_table_gets_its_number_and_caption_over_it():
    markdown = ":::{table} What it shows, in $10^{-3}$.\n:name: tab-a\n\n```{glue:md} scores\n:format: myst\n```\n:::"
    glue = {"scores": {"text/plain": "<Markdown>", "text/markdown": "| a | b |\n|---|---|\n| 1 | 2 |"}}
    assert render(markdown + "\n\n" + markdown, glue) == (
        "**Table 1.1.** What it shows, in $10^{-3}$.\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n"
        "**Table 1.2.** What it shows, in $10^{-3}$.\n\n| a | b |\n|---|---|\n| 1 | 2 |"
    )
    assert exercise_labels(markdown, "table", "name") == ["tab-a"]


def test_exercises_are_headed_and_solutions_folded():
    exercise = "```{exercise} Why it works\n:label: ex-a\nShow that $x = 1$.\n```"
    assert render(exercise) == "### Exercise 1.1: Why it works\n\nShow that $x = 1$."
    two = f"{exercise}\n\n```{{exercise}} Unlabelled\nAnd $y$.\n```"  # numbered in order, labelled or not
    assert render(two).endswith("### Exercise 1.2: Unlabelled\n\nAnd $y$.")
    solution = "```{solution} ex-a\n:class: dropdown\nBecause.\n```"
    assert render(solution) == "<details>\n<summary>Solution to Exercise 1.1</summary>\n\nBecause.\n\n</details>"


def test_a_solution_that_spans_cells_is_folded_in_each(tmp_path):
    """solution-start ... code cells ... solution-end: the prose in <details>, the code cells folded."""

    def markdown(text):
        return {"cell_type": "markdown", "id": f"m{len(cells)}", "metadata": {}, "source": text}

    def code(text, tags=()):
        cell = {"cell_type": "code", "id": f"c{len(cells)}", "metadata": {"tags": list(tags)}, "source": text}
        return cell | {"execution_count": 1, "outputs": []}

    cells = []
    cells.append(markdown("# The X\n\nOpening."))
    cells.append(code('import sys\nif "google.colab" in sys.modules:\n    pass', ["remove-cell"]))
    cells.append(code("x = 1"))
    cells.append(code("# Score the model\nscore = 2", ["remove-input"]))
    cells.append(code("untitled = 3", ["remove-input"]))
    fig = code("draw()", ["hide-input"])
    fig["metadata"]["mystnb"] = {"figure": {"name": "fig-a", "caption": "A curve, $y = x$."}}
    cells.append(fig)
    cells.append(markdown("```{exercise} Why\n:label: ex-a\nSay why.\n```"))
    cells.append(markdown("```{solution-start} ex-a\n:class: dropdown\n```\nBecause."))
    cells.append(code("assert x == 1"))
    cells.append(markdown("```{solution-end}\n```"))
    notebook = {"cells": cells, "metadata": {"kernelspec": {"name": "python3"}}, "nbformat": 4, "nbformat_minor": 5}
    path = tmp_path / "01_x.ipynb"
    path.write_text(json.dumps(notebook), encoding="utf-8")

    text, counts = edition(path, small_book())
    out = json.loads(text)
    sources = [_source(c) for c in out["cells"]]
    assert sources[0].startswith("# The X\n\n> **The Colab edition** of chapter 1") and sources[0].endswith("Opening.")
    assert sources[1] == _source(cells[1]) and "cellView" not in out["cells"][1]["metadata"]  # setup: first, open
    assert sources[2] == "x = 1" and "cellView" not in out["cells"][2]["metadata"]
    assert sources[3] == "#@title Score the model\nscore = 2"
    assert sources[4] == "#@title Hidden in the HTML book: the chapter's bookkeeping\nuntitled = 3"
    assert sources[5] == "#@title Draw Figure 1.1\ndraw()"
    assert sources[6] == "**Figure 1.1.** A curve, $y = x$."
    assert sources[7] == "### Exercise 1.1: Why\n\nSay why."
    assert sources[8] == "<details>\n<summary>Solution to Exercise 1.1</summary>\n\nBecause.\n\n</details>"
    assert sources[9] == "#@title Solution to Exercise 1.1\nassert x == 1"
    assert len(sources) == 10, "the solution-end cell, empty once rendered, is dropped"
    assert all(out["cells"][i]["metadata"]["cellView"] == "form" for i in (3, 4, 5, 9))
    assert out["metadata"]["accelerator"] == "GPU"
    assert counts == {"folded": 4, "untitled": 2}
    assert edition(path, small_book())[0] == text, "the same input gives the same bytes"


def test_the_html_book_is_the_github_pages_site_of_the_repository():
    assert colab_edition.pages_url("https://github.com/aecourse/aecourse") == "https://aecourse.github.io/aecourse/"
    assert colab_edition.sphinx_id("Fréchet distance") == "Frechet-distance"  # as Sphinx ids the glossary's terms


def test_the_launch_button_opens_the_edition():
    spec = importlib.util.spec_from_file_location("colab_launch", ROOT / "book" / "_ext" / "colab_launch.py")
    launch = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(launch)
    theme = "https://colab.research.google.com/github/o/r/blob/main/./book/01_x.ipynb"
    assert launch.edition_url(theme, "main", "colab/01_x.ipynb") == (
        "https://colab.research.google.com/github/o/r/blob/main/colab/01_x.ipynb"
    )
    assert launch.EDITION == colab_edition.EDITION
