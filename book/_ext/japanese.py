"""Sphinx extension: the Japanese the book quotes from its source article, marked and findable.

- Marked: every run of Japanese text in a page (kana, kanji, Japanese punctuation, with any Latin letters or
  digits glued to it, as in "KL散逸" or "PCAの非線形版") becomes <span lang="ja">, so that browsers pick Japanese
  glyph forms and fonts and screen readers switch voice. Code, math and raw HTML are left alone. The book ships no
  Japanese font: the pages show it in the reader's system fonts (README, "Japanese text").
- Findable: Sphinx's English search splits text into words at spaces and punctuation, and Japanese has neither, so
  "潜在空間" was one word and a search for 潜在 found nothing. The search language below is Sphinx's English one
  (same stemmer and stop words), except that a run of Japanese is indexed as its characters and its overlapping
  pairs of characters (潜, 在, 空, 間, 潜在, 在空, 空間), and a query's Japanese is cut the same way and every pair
  must match: any two or more consecutive characters of the page's Japanese find it.
"""

from __future__ import annotations

import re

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.search.en import SearchEnglish
from sphinx.transforms.post_transforms import SphinxPostTransform

# Characters of Japanese words: the iteration marks 々〆〇, hiragana, katakana (with ー), CJK ideographs and their
# compatibility forms, half-width katakana. Written as \u escapes, so the same class serves Python and JavaScript.
WORD_CHARS = r"\u3005-\u3007\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
# Japanese punctuation and full-width forms (、。「」（）): part of a run of Japanese text, not of its words.
PUNCTUATION = r"\u3000-\u3004\u3008-\u303f\uff01-\uff65"
_OTHER_WORD_CHAR = rf"[^\W{WORD_CHARS}]"  # a letter, digit or _ of another script, e.g. the "KL" of "KL散逸"
_JAPANESE_RUN = re.compile(rf"{_OTHER_WORD_CHAR}*(?:[{WORD_CHARS}{PUNCTUATION}]+{_OTHER_WORD_CHAR}*)+")
_PIECES = re.compile(rf"[{WORD_CHARS}]+|[^{WORD_CHARS}]+")
_WORD_CHAR = re.compile(rf"[{WORD_CHARS}]")


def japanese_terms(run: str) -> list[str]:
    """A run of Japanese word characters as the index holds it: its characters and its overlapping pairs."""
    return [*run, *(run[i : i + 2] for i in range(len(run) - 1))]


def query_terms(run: str) -> list[str]:
    """A run of Japanese in a query, as it is looked up: its overlapping pairs (the character if it is alone)."""
    return [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]


class SearchEnglishWithJapanese(SearchEnglish):
    """Sphinx's English search, plus the Japanese runs cut into characters and pairs (see the module's doc)."""

    js_splitter_code = (
        """
/* book/_ext/japanese.py: words as Sphinx's default splitQuery finds them, but a run of Japanese inside one becomes
   its overlapping pairs of characters (the character, if alone), all of which a page must hold. */
var splitQuery = (query) => query
  .split(/[^\\p{Letter}\\p{Number}_\\p{Emoji_Presentation}]+/gu)
  .filter((term) => term)
  .flatMap((term) => term.match(/[WORD]+|[^WORD]+/gu))
  .flatMap((piece) => {
    if (!/[WORD]/u.test(piece) || piece.length === 1) return [piece];
    return Array.from({ length: piece.length - 1 }, (_, i) => piece.slice(i, i + 2));
  });
"""
    ).replace("WORD", WORD_CHARS)

    def split(self, input: str) -> list[str]:
        words = []
        for word in super().split(input):
            if not _WORD_CHAR.search(word):
                words.append(word)
                continue
            for piece in _PIECES.findall(word):  # "KL散逸" -> "KL", and the Japanese run's characters and pairs
                words.extend(japanese_terms(piece) if _WORD_CHAR.match(piece) else [piece])
        return words

    def stem(self, word: str) -> str:
        return word if _WORD_CHAR.search(word) else super().stem(word)

    def word_filter(self, word: str) -> bool:
        # Sphinx drops words of one or two characters that begin with hiragana (particles); a query's pairs may
        # begin with one, so the Japanese pieces are all kept.
        return bool(_WORD_CHAR.match(word)) or super().word_filter(word)


class MarkJapanese(SphinxPostTransform):
    """Wrap each run of Japanese text in an inline node with the class language-ja, which docutils' HTML writer
    turns into lang="ja" (and drops as a class)."""

    default_priority = 900
    formats = ("html",)
    _SKIP = (nodes.FixedTextElement, nodes.literal, nodes.math, nodes.raw, nodes.comment, nodes.system_message)

    def run(self, **kwargs: object) -> None:
        for text in list(self.document.findall(nodes.Text)):
            if not _JAPANESE_RUN.search(text) or self._skipped(text):
                continue
            pieces, last = [], 0
            for match in _JAPANESE_RUN.finditer(text):
                if match.start() > last:
                    pieces.append(nodes.Text(text[last : match.start()]))
                pieces.append(nodes.inline(match.group(), match.group(), classes=["language-ja"]))
                last = match.end()
            if last < len(text):
                pieces.append(nodes.Text(text[last:]))
            text.parent.replace(text, pieces)

    def _skipped(self, text: nodes.Text) -> bool:
        node = text.parent
        while node is not None:
            if isinstance(node, self._SKIP) or any(c.startswith("language-") for c in node.get("classes", ())):
                return True
            node = node.parent
        return False


def setup(app: Sphinx) -> dict[str, object]:
    app.add_search_language(SearchEnglishWithJapanese)
    app.add_post_transform(MarkJapanese)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
