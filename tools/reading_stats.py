"""How each built chapter page reads, counted on the HTML a reader gets (`make book` first): the inline statistics
of its running paragraphs (each "±" and each "decided" in a paragraph or list item outside tables, folded blocks,
figures, math and code: what #32 asks to keep at 5 or fewer), and the code lines a reader sees at once and behind
a fold.

    python tools/reading_stats.py [_build/html]
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from bs4 import BeautifulSoup

FOLDED = ("dropdown", "toggle", "toggle-hidden", "tag_remove-input", "tag_hide-input", "tag_hide-cell", "solution")


def _folded_or_apart(tag) -> bool:
    """True for a tag inside a table, a folded block, a figure, math or code."""
    for parent in [tag, *tag.parents]:
        if parent.name in ("table", "details", "figure", "pre", "code", "math", "script"):
            return True
        classes = parent.get("class") or []
        if any(c in FOLDED for c in classes):
            return True
    return False


def inline_statistics(html: str) -> int:
    """Each "±" and each "decided" in the page's running paragraphs and list items."""
    soup = BeautifulSoup(html, "html.parser")
    article = soup.find("article") or soup
    for hidden in article.select("span.math, .MathJax, script"):
        hidden.decompose()
    count = 0
    for block in article.find_all(["p", "li"]):
        if _folded_or_apart(block) or block.find_parent(["p", "li"]) is not None:
            continue
        text = block.get_text(" ")
        count += text.count("±") + len(re.findall(r"\bdecided\b", text, flags=re.I))
    return count


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "_build/html") / "book"
    pages = sorted(root.glob("0[1-5]_*.html"))
    if not pages:
        print(f"reading_stats: no chapter pages under {root}; run `make book` first.", file=sys.stderr)
        return 2
    for page in pages:
        print(f"{page.stem}: {inline_statistics(page.read_text(encoding='utf-8'))} inline statistics")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
