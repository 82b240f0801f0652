"""Every technical term is defined where a reader first meets it, in the book's reading order (_toc.yml): either
the first mention links to its glossary entry ({term}`...`), or the page it belongs to defines it in a gloss in
parentheses right after it, and no page before that one uses it (implementation words stay in the appendix)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml", reason="reads _toc.yml: the book's tools (requirements.txt) bring PyYAML")

ROOT = Path(__file__).resolve().parents[1]

# term -> the pattern of its mentions; the first mention must be a {term} link to the glossary entry `term`
GLOSSARY_TERMS = {
    "nat": r"\bnats?\b",
    "MLP": r"\bMLPs?\b",
    "Fréchet distance": r"Fréchet distance",
    "Jensen-Shannon divergence": r"Jensen[-–]Shannon",
    "Spearman rank correlation": r"Spearman|rank correlation",
    "total variation distance": r"total variation",
}
# term -> (pattern, the page that defines it): no earlier page mentions it, and its first mention there is glossed
PAGE_TERMS = {
    "Eckart–Young theorem": (r"Eckart[-–]Young", "book/01_autoencoder"),
    "channels_last": (r"channels_last|channels-last", "book/appendix_benchmarks"),
    "bfloat16": (r"bfloat16|\bbf16\b", "book/appendix_benchmarks"),
    "autocast": (r"autocast", "book/appendix_benchmarks"),
    "oneDNN": (r"oneDNN", "book/appendix_benchmarks"),
}
TERM_ROLE = re.compile(r"\{term\}`([^`<]*?)(?:\s*<([^>`]+)>)?`")


def reading_order(root: Path = ROOT) -> list[str]:
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    pages = [toc["root"]]
    for part in toc.get("parts", []):
        pages += [chapter["file"] for chapter in part["chapters"]]
    return pages


def prose(root: Path, page: str) -> str:
    """A page's Markdown as the reader reads it: the markdown cells of a notebook, without fenced code blocks."""
    path = next(root.glob(page + ".*"))
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text())["cells"]
        text = "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    else:
        text = path.read_text()
    kept, fences = [], []  # open fences: True for a code block (```bash), False for a directive (```{note})
    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            if fences and line.strip() == "```":
                fences.pop()
                continue
            fences.append(not line.lstrip()[3:].startswith("{"))
        if not any(fences):
            kept.append(line)
    return "\n".join(kept)


def glossary_entries(root: Path = ROOT) -> set[str]:
    text = (root / "book" / "glossary.md").read_text()
    block = text.split("```{glossary}", 1)[1].split("\n```", 1)[0]
    return {line.strip().lower() for line in block.splitlines() if line.strip() and not line[0].isspace()}


def problems(root: Path = ROOT) -> list[str]:
    """What the rule finds wrong in the book at `root`: one line per term used before it is defined."""
    pages = [p for p in reading_order(root) if not p.endswith("/glossary")]  # the glossary defines, in any order
    texts = {page: prose(root, page) for page in pages}
    found, entries = [], glossary_entries(root)
    for term, pattern in GLOSSARY_TERMS.items():
        if term.lower() not in entries:
            found.append(f"{term}: no glossary entry")
        first = next(((p, m) for p in pages for m in re.finditer(pattern, texts[p])), None)
        if first is None:
            continue
        page, match = first
        links = [r for r in TERM_ROLE.finditer(texts[page]) if r.start() <= match.start() < r.end()]
        target = links and (links[0][2] or links[0][1]).strip().lower()
        if target != term.lower():
            line = texts[page][: match.start()].count("\n") + 1
            found.append(f"{term}: first used in {page} (prose line {line}) without a {{term}}`{term}` link")
    for term, (pattern, home) in PAGE_TERMS.items():
        for page in pages[: pages.index(home)]:
            if match := re.search(pattern, texts[page]):
                line = texts[page][: match.start()].count("\n") + 1
                found.append(f"{term}: used in {page} (prose line {line}), before {home} defines it")
        match = re.search(pattern, texts[home])
        if match is None or "(" not in texts[home][match.end() : match.end() + 30]:
            found.append(f"{term}: {home} does not gloss it in parentheses at its first use")
    return found


def test_every_listed_term_is_defined_at_its_first_use_in_reading_order():
    assert problems() == []


def test_the_rule_fails_on_a_book_that_uses_a_term_early(tmp_path):
    """A copy of the book with a term moved before its definition, and an implementation word in a chapter."""
    for name in ("_toc.yml", "book"):
        source = ROOT / name
        if source.is_dir():
            (tmp_path / name).mkdir()
            for path in (p for p in source.glob("*.*") if p.is_file()):
                (tmp_path / name / path.name).write_bytes(path.read_bytes())
        else:
            (tmp_path / name).write_bytes(source.read_bytes())
    intro = tmp_path / "book" / "intro.ipynb"
    notebook = json.loads(intro.read_text())
    cell = next(c for c in notebook["cells"] if c["cell_type"] == "markdown")
    cell["source"] = [*cell["source"], "\n\nLosses are in nats; the layers run in bfloat16."]
    intro.write_text(json.dumps(notebook))
    found = problems(tmp_path)
    assert any(line.startswith("nat: first used in book/intro") for line in found), found
    assert any(line.startswith("bfloat16: used in book/intro") for line in found), found


@pytest.mark.parametrize("term", sorted(GLOSSARY_TERMS))
def test_each_glossary_term_is_still_used(term):  # else the rule above checks nothing
    assert any(re.search(GLOSSARY_TERMS[term], prose(ROOT, p)) for p in reading_order() if "glossary" not in p)
