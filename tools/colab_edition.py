"""The Colab edition of the chapters (#33): colab/0N_*.ipynb, made from the executed book/0N_*.ipynb.

Colab renders CommonMark, not MyST, and has no myst-nb to paste glued values. The edition keeps every code cell and
every stored output of the chapter and changes what Colab would show raw:

- markdown: each glue role replaced by its stored text; {term} as the word linked to the HTML book's glossary;
  {numref}/{ref}/{doc} as "Figure 1.2", the section's or the page's title, linked to the HTML book; {cite} as
  author-year linked to the bibliography; admonitions as quoted blocks with a bold title, dropdowns ("How we know")
  as <details>; exercises as "### Exercise 1.2: title" (numbered as the HTML numbers them) with their solution
  folded in <details>; MyST comments (`% ...`, review notes) and `(label)=` targets dropped;
- code cells the HTML hides (remove-input, remove-cell, hide-input, hide-cell tags) and a solution's code cells are
  folded as Colab forms (`cellView: "form"`): a first line `# Title` becomes `#@title Title`, the rest of the code
  is unchanged; the setup cell stays first and open;
- each figure gets its caption, "**Figure 1.2.** ...", in a markdown cell after it; the notebook asks for a GPU.

    python tools/colab_edition.py           # write colab/
    python tools/colab_edition.py --check   # exit 1, naming the files that differ from what it would write

`make book` runs it; the edition is committed (Colab opens notebooks from the repository) and
tests/test_colab_edition.py fails when it is stale. Links point at the published book, the GitHub Pages site of
`repository.url` in _config.yml.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import json
import re
import sys
import unicodedata
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run as a script, `tools` is not on the path

from tools.visible_code import is_hidden  # noqa: E402  (one definition of what the HTML hides)

EDITION = "colab"  # the edition's folder at the repository's root (book/_ext/colab_launch.py points Colab at it)
ROLE_OR_CODE = re.compile(
    r"\{(?P<role>[a-z][\w:-]*)\}(?P<ticks>`+)(?P<content>.+?)(?P=ticks)|(?P<code>(`+).+?\5)", re.S
)
FENCE = re.compile(r"^(?P<indent> *)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>.*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:-]+)\}\s*(?P<argument>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\s*\((?P<label>[^)\s]+)\)=\s*$")
COMMENT = re.compile(r"^\s*%")
HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")
TITLE_LINE = re.compile(r"^#\s+(?P<title>\S.*?)\s*$")  # `# Score both losses on the test set`
ADMONITIONS = {  # MyST's admonitions and the title each shows by default
    **{kind: kind.capitalize() for kind in ("note", "tip", "hint", "important", "warning", "caution", "attention")},
    **{"danger": "Danger", "error": "Error", "seealso": "See also", "admonition": ""},
}


class EditionError(ValueError):
    """The chapters use markup the edition cannot render, or point at something the book does not have."""


@dataclasses.dataclass(frozen=True)
class Target:
    """Where a label points in the HTML book, and what {ref} and {numref} print for it."""

    page: str  # "book/01_autoencoder"
    anchor: str
    text: str  # the section's title, or "Figure 1.2" / "Exercise 1.2"
    number: str | None = None  # "1.2" for numbered figures and exercises


@dataclasses.dataclass
class Book:
    """What the chapters' markup points at, read from the book's sources (_config.yml, _toc.yml, book/)."""

    base: str  # the HTML book: https://<owner>.github.io/<repo>/
    chapters: dict[str, int]  # page -> chapter number ("book/01_autoencoder" -> 1)
    titles: dict[str, str]  # page -> its title, for {doc}
    labels: dict[str, Target]  # sections' (label)=, exercises' :label:, figures' names
    terms: dict[str, str]  # a glossary term, lowercased -> its anchor on the glossary page
    citations: dict[str, str]  # a bibliography key -> "Kingma and Welling, 2014" (author-year, as the HTML)

    def url(self, page: str, anchor: str = "") -> str:
        return f"{self.base}{page}.html" + (f"#{anchor}" if anchor else "")


# --- reading the book ----------------------------------------------------------------------------------------------


def pages_url(repository: str) -> str:
    """The GitHub Pages address of a GitHub repository: https://github.com/o/r -> https://o.github.io/r/."""
    match = re.fullmatch(r"https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?", repository)
    if match is None:
        raise EditionError(f"_config.yml's repository.url {repository!r} is not a https://github.com/<owner>/<repo>")
    return f"https://{match[1].lower()}.github.io/{match[2]}/"


def page_markdown(root: Path, page: str) -> str:
    """A page's markdown: a notebook's markdown cells, or a .md file."""
    if (root / f"{page}.ipynb").is_file():
        cells = json.loads((root / f"{page}.ipynb").read_text(encoding="utf-8"))["cells"]
        return "\n\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return (root / f"{page}.md").read_text(encoding="utf-8")


def closes(line: str, fence: str) -> bool:
    """Whether `line` closes a fence opened with `fence`: a run of the same character, at least as long, alone."""
    match = FENCE.match(line)
    return bool(
        match and not match["info"].strip() and match["fence"][0] == fence[0] and len(match["fence"]) >= len(fence)
    )


def outside_fences(markdown: str) -> Iterator[str]:
    """The lines of `markdown` that are not inside a code fence (directive fences are entered: they hold prose)."""
    code, directives = None, []  # the open code fence; the open directive fences
    for line in markdown.split("\n"):
        match = FENCE.match(line)
        if code is not None:
            code = None if closes(line, code) else code
        elif directives and closes(line, directives[-1]):
            directives.pop()
        elif match and match["info"].strip().startswith("{"):
            directives.append(match["fence"])
        elif match:
            code = match["fence"]
        else:
            yield line


def sphinx_id(text: str) -> str:
    """An id as Sphinx makes it for a glossary term (sphinx.util.nodes.make_id): ASCII letters, digits, . and _,
    other runs as '-'; case kept."""
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^a-zA-Z0-9._]+", "-", " ".join(text.split()))
    return re.sub(r"^[-0-9._]+|-+$", "", text)


def author_year(entry: Any) -> str:
    """A bibliography entry as sphinxcontrib-bibtex's author_year style cites it: 'Bishop, 2006', 'Kingma and
    Welling, 2014', 'Xiao *et al.*, 2017'."""
    last = ["".join(p.last_names).replace("{", "").replace("}", "") for p in entry.persons.get("author", [])]
    names = last[0] if len(last) == 1 else " and ".join(last) if len(last) == 2 else f"{last[0]} *et al.*"
    return f"{names}, {entry.fields.get('year', 'n.d.')}"


def read_book(root: Path = ROOT) -> Book:
    """The book's pages, labels, numbered figures and exercises, glossary terms and citations."""
    from pybtex.database import parse_file  # sphinxcontrib-bibtex's parser

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    pages, chapters = [toc["root"]], {}
    for part in toc.get("parts", [{"chapters": toc.get("chapters", [])}]):
        for entry in part.get("chapters", []):
            pages.append(entry["file"])
            if part.get("numbered"):
                chapters[entry["file"]] = len(chapters) + 1
    book = Book(pages_url(config["repository"]["url"]), chapters, {}, {}, {}, {})
    for page in pages:
        markdown = page_markdown(root, page)
        lines = list(outside_fences(markdown))
        label = None
        for line in lines:
            heading, target = HEADING.match(line), TARGET.match(line)
            if heading and page not in book.titles:
                book.titles[page] = heading["title"]
            if target:
                label = target["label"]
            elif heading and label:
                book.labels[label] = Target(page, label, heading["title"])
                label = None
            elif line.strip():
                label = None
        if page in chapters:
            for k, name in enumerate(exercise_labels(markdown), 1):  # numbered in order, as sphinx-exercise does
                number = f"{chapters[page]}.{k}"
                if name:
                    book.labels[name] = Target(page, name, f"Exercise {number}", number)
            cells = json.loads((root / f"{page}.ipynb").read_text(encoding="utf-8"))["cells"]
            figures = [c["metadata"]["mystnb"]["figure"] for c in cells if "figure" in c["metadata"].get("mystnb", {})]
            for k, figure in enumerate(figures, 1):
                number = f"{chapters[page]}.{k}"
                book.labels[figure["name"]] = Target(page, figure["name"], f"Figure {number}", number)
            for k, name in enumerate(exercise_labels(markdown, "table", "name"), 1):  # Sphinx numbers each captioned
                if name:
                    book.labels[name] = Target(page, name, f"Table {chapters[page]}.{k}", f"{chapters[page]}.{k}")
    glossary = page_markdown(root, "book/glossary")
    block = re.search(r"^```\{glossary\}[^\n]*\n(.*?)^```", glossary, flags=re.M | re.S)
    for line in block[1].split("\n") if block else []:
        if line.strip() and not line[0].isspace() and not OPTION.match(line):
            book.terms[line.strip().lower()] = f"term-{sphinx_id(line.strip())}"
    for bibfile in config.get("bibtex_bibfiles", []):
        for key, entry in parse_file(str(root / bibfile)).entries.items():
            book.citations[key] = author_year(entry)
    return book


def exercise_labels(markdown: str, kind: str = "exercise", key: str = "label") -> list[str | None]:
    """The label of each exercise of a page, in order (None for one without a :label:); of each table with
    kind="table", key="name"."""
    labels, lines = [], markdown.split("\n")
    for i, line in enumerate(lines):
        match = FENCE.match(line)
        if match and re.match(rf"\{{{kind}\}}", match["info"].strip()):
            options = []
            for option in lines[i + 1 :]:
                if not OPTION.match(option.strip()):
                    break
                options.append(OPTION.match(option.strip()))
            labels.append(next((o["value"].strip() for o in options if o["key"] == key), None))
    return labels


def glued_values(cells: list[dict]) -> dict[str, dict[str, str]]:
    """Every value the notebook glues: name -> {"text/plain": ..., "text/markdown": ...} as its record stores them."""
    values = {}
    for cell in cells:
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if record:
                prefix = record.get("mime_prefix", "")
                values[record["name"]] = {
                    mime[len(prefix) :]: "".join(data) if isinstance(data, list) else data
                    for mime, data in output.get("data", {}).items()
                    if mime.startswith(prefix)
                }
    return values


def plain_text(stored: str, spec: str = "") -> str:
    """A glued text/plain as {glue:text} shows it (myst-nb's rule): the stored repr evaluated, then formatted by
    the role's spec, if any ("x:.3f"; the chapters after #32 store the text and give none)."""
    try:
        value = ast.literal_eval(stored)
    except (SyntaxError, ValueError):
        value = stored
    if not spec:
        return str(value)
    kind = spec[-1]
    value = (
        str(value) if kind == "s" else int(value) if kind in "bcdoxX" else float(value) if kind in "eEfFgGn%" else value
    )
    return format(value, spec)


def escape(text: str) -> str:
    """Plain text (a glued value, as the HTML shows it) safe in CommonMark: markup characters escaped, brackets as
    entities (`\\[` and `\\]` are display-math delimiters to Colab's and Jupyter's MathJax)."""
    text = re.sub(r"([\\`*_<>|$])", r"\\\1", text)
    return text.replace("[", "&#91;").replace("]", "&#93;")


# --- rendering markdown --------------------------------------------------------------------------------------------


@dataclasses.dataclass
class Renderer:
    """MyST markdown of one chapter to CommonMark (see the module's doc). `solution` is the label of the exercise
    whose solution is open (solution-start ... solution-end spans cells)."""

    book: Book
    page: str
    glue: dict[str, dict[str, str]]
    solution: str | None = None
    solution_parts: int = 0
    untitled: int = 0  # hidden cells without a `# Title` first line (a fallback title was written)
    exercises: int = 0  # the exercises met so far: the next one's number
    tables: int = 0  # the numbered tables ({table} directives) met so far

    def where(self) -> str:
        return f"{self.page}.ipynb"

    def target(self, label: str) -> Target:
        if label not in self.book.labels:
            raise EditionError(f"{self.where()}: no section, figure or exercise of the book is labelled {label!r}")
        return self.book.labels[label]

    def exercise(self, label: str) -> Target:
        target = self.target(label)
        if not target.text.startswith("Exercise"):
            raise EditionError(f"{self.where()}: a solution names {label!r}, which is no exercise")
        return target

    # inline ---------------------------------------------------------------------------------------------------------

    def glued(self, name: str, mime: str = "text/plain") -> str:
        if name not in self.glue or mime not in self.glue[name]:
            raise EditionError(f"{self.where()}: the prose pastes {name!r}, but no cell glues it (as {mime})")
        return self.glue[name][mime]

    def role(self, name: str, content: str) -> str:
        """One MyST role as CommonMark."""
        text, label = _explicit(content)
        if name in ("glue", "glue:text"):
            key, _, spec = content.rpartition(":") if name == "glue:text" and ":" in content else (content, "", "")
            return escape(plain_text(self.glued(key), spec))
        if name == "glue:md":
            return self.inline(self.glued(content.rpartition(":")[0] or content, "text/markdown"))
        if name == "term":
            term = label or text
            if term.lower() not in self.book.terms:
                raise EditionError(f"{self.where()}: {{term}} {term!r} is not in the glossary")
            return f"[{text}]({self.book.url('book/glossary', self.book.terms[term.lower()])})"
        if name in ("ref", "numref"):
            target = self.target(label or text)
            shown = target.text  # the section's title, or "Figure 1.2"
            if label:  # explicit text; {numref}'s may hold %s or {number} for the number
                shown = text.replace("%s", target.number or "").replace("{number}", target.number or "")
            return f"[{shown}]({self.book.url(target.page, target.anchor)})"
        if name == "doc":
            page = _page(self.page, label or text)
            if page not in self.book.titles:
                raise EditionError(f"{self.where()}: {{doc}} points at {page!r}, no page of the book")
            return f"[{text if label else self.book.titles[page]}]({self.book.url(page)})"
        if name in ("cite", "cite:p"):  # author-year in brackets, as the HTML shows them
            keys = [k.strip() for k in content.split(",")]
            missing = [k for k in keys if k not in self.book.citations]
            if missing:
                raise EditionError(f"{self.where()}: {{cite}} of {missing}, not in the bibliography")
            cited = sorted(keys, key=lambda k: self.book.citations[k])
            links = [f"[{self.book.citations[k]}]({self.book.url('book/bibliography', f'cite-{k}')})" for k in cited]
            return "[" + ", ".join(links) + "]"  # not \[ ... \]: MathJax would read display math
        raise EditionError(
            f"{self.where()}: the role {{{name}}} has no Colab rendering; add one to {Path(__file__).name}"
        )

    def inline(self, text: str) -> str:
        """Roles in running text replaced; code spans left as they are."""
        return ROLE_OR_CODE.sub(lambda m: m["code"] or self.role(m["role"], m["content"]), text)

    # blocks ---------------------------------------------------------------------------------------------------------

    def markdown(self, source: str) -> str:
        """A markdown cell's source as CommonMark; a solution open at its end stays open for the next cells."""
        parts: list[tuple[str | None, list[str]]] = [(self.solution, [])]
        for kind, payload in self.blocks(source):
            if kind == "directive" and payload["name"] == "solution-start":
                self.solution, self.solution_parts = payload["argument"], 0
                parts.append((self.solution, []))
            elif kind == "directive" and payload["name"] == "solution-end":
                self.solution = None
                parts.append((None, []))
            else:
                parts[-1][1].append(self.block(kind, payload))
        rendered = []
        for solution, chunks in parts:
            body = tidy("\n\n".join(chunks))
            if body and solution:
                summary = f"Solution to {self.exercise(solution).text}"
                self.solution_parts += 1
                rendered.append(details(summary + " (continued)" * (self.solution_parts > 1), body))
            elif body:
                rendered.append(body)
        return "\n\n".join(rendered)

    def blocks(self, source: str) -> Iterator[tuple[str, Any]]:
        """A markdown source as ("text", lines) / ("code", lines) / ("directive", {...}) blocks."""
        lines, i, text = source.split("\n"), 0, []
        while i < len(lines):
            line, match = lines[i], FENCE.match(lines[i])
            if match:
                end = _closing(lines, i, match["fence"])
                if text:
                    yield "text", text
                    text = []
                info, indent = match["info"].strip(), match["indent"]
                body = [b[len(indent) :] if b.startswith(indent) else b.lstrip() for b in lines[i + 1 : end]]
                directive = DIRECTIVE.match(info)
                if directive:
                    options = {}
                    while body and OPTION.match(body[0]):
                        option = OPTION.match(body.pop(0))
                        options[option["key"]] = option["value"].strip()
                    yield (
                        "directive",
                        {
                            "name": directive["name"],
                            "argument": directive["argument"].strip(),
                            "options": options,
                            "body": "\n".join(body),
                            "indent": indent,
                        },
                    )
                else:
                    yield "code", lines[i : end + 1]
                i = end + 1
                continue
            if COMMENT.match(line):
                text.append("")  # a MyST comment ends a paragraph
            elif not TARGET.match(line):
                text.append(line)
            i += 1
        if text:
            yield "text", text

    def block(self, kind: str, payload: Any) -> str:
        if kind == "text":
            return self.inline("\n".join(payload))
        if kind == "code":
            return "\n".join(payload)
        return _indent(self.directive(payload), payload["indent"])

    def directive(self, d: dict) -> str:
        """One directive block as CommonMark."""
        name, argument, options, body = d["name"], d["argument"], d["options"], d["body"]
        classes = options.get("class", "").split()
        if name in ADMONITIONS:
            title = self.inline(argument) if argument else ADMONITIONS[name]
            content = self.markdown_nested(body)
            return details(title, content, bold=True) if "dropdown" in classes else quoted(title, content)
        if name == "exercise":
            self.exercises += 1
            number = f"{self.book.chapters[self.page]}.{self.exercises}"
            return f"### Exercise {number}: {self.inline(argument)}\n\n{self.markdown_nested(body)}"
        if name == "table":  # its number and caption over it, as the HTML shows them
            self.tables += 1
            number = f"{self.book.chapters[self.page]}.{self.tables}"
            return f"**Table {number}.** {self.inline(argument)}\n\n{self.markdown_nested(body)}"
        if name == "solution":
            return details(f"Solution to {self.exercise(argument).text}", self.markdown_nested(body))
        if name in ("glue:md", "glue"):
            return self.markdown_nested(self.glued(argument, "text/markdown" if name == "glue:md" else "text/plain"))
        raise EditionError(f"{self.where()}: the directive {{{name}}} has no Colab rendering; add one to this tool")

    def markdown_nested(self, source: str) -> str:
        """A directive's body: rendered like a cell, inside the current solution state."""
        outer = self.solution
        self.solution = None
        try:
            return self.markdown(source)
        finally:
            self.solution = outer


def _explicit(content: str) -> tuple[str, str | None]:
    """A role's content as (text, label): `text <label>`, or `label` alone as (label, None)."""
    match = re.fullmatch(r"(.*?)\s*<([^<>]+)>", content, flags=re.S)
    return (match[1], match[2]) if match else (content, None)


def _page(current: str, reference: str) -> str:
    """A {doc} reference, relative to the current page's folder (or from the book's root with a leading /)."""
    if reference.startswith("/"):
        return reference.lstrip("/")
    return str(Path(current).parent / reference).replace("\\", "/")


def _closing(lines: list[str], start: int, fence: str) -> int:
    """The line that closes the fence opened at `start`."""
    end = next((end for end in range(start + 1, len(lines)) if closes(lines[end], fence)), None)
    return len(lines) if end is None else end  # unclosed: to the end, as CommonMark and MyST read it


def _indent(text: str, indent: str) -> str:
    return "\n".join(indent + line if line else line for line in text.split("\n")) if indent else text


def tidy(text: str) -> str:
    """No runs of blank lines, no blank lines at the ends."""
    return re.sub(r"\n(?:[ \t]*\n){2,}", "\n\n", text).strip("\n")


def quoted(title: str, body: str) -> str:
    """An admonition as a quoted block with a bold title."""
    lines = [f"**{title}**", "", *body.split("\n")] if body else [f"**{title}**"]
    return "\n".join(f"> {line}" if line.strip() else ">" for line in lines)


def details(summary: str, body: str, *, bold: bool = False) -> str:
    """A folded block. Colab, like CommonMark, renders markdown inside an HTML block after a blank line."""
    summary = f"<b>{summary}</b>" if bold else summary
    return f"<details>\n<summary>{summary}</summary>\n\n{body}\n\n</details>"


# --- the notebook --------------------------------------------------------------------------------------------------


def is_setup(cell: dict) -> bool:
    """The Colab setup cell (removed from the HTML; first and open on Colab), as tests/test_reading_path.py says."""
    return "google.colab" in "".join(cell["source"]) and "remove-cell" in cell["metadata"].get("tags", [])


def lines(text: str) -> list[str]:
    """A cell's source as a notebook stores it: lines, each with its newline but the last."""
    return text.splitlines(keepends=True)


def folded(cell: dict, title: str) -> dict:
    """A code cell as a Colab form titled `title` (its code hidden, its outputs shown)."""
    source = "".join(cell["source"])
    return {**cell, "metadata": {**cell["metadata"], "cellView": "form"}, "source": lines(f"#@title {title}\n{source}")}


def without_records(cell: dict) -> dict:
    """A code cell without the glue records of its stored run: their values already stand in the text, and a reader
    who runs the cell sees them again (aecourse's glue shows `name: text`). The cell's other outputs stay; the strict
    pass then leaves its outputs alone here (nbval-ignore-output), as the chapter's own strict pass compares them."""
    outputs = cell.get("outputs", [])
    kept = [output for output in outputs if "scrapbook" not in output.get("metadata", {})]
    if len(kept) == len(outputs):
        return cell
    tags = sorted({*cell["metadata"].get("tags", []), "nbval-ignore-output"})
    return {**cell, "outputs": kept, "metadata": {**cell["metadata"], "tags": tags}}


def code_cell(cell: dict, renderer: Renderer, figure_number: str | None) -> dict:
    """A code cell as Colab shows it, without its glue records: folded when the HTML hides it (tags) or folds it (a
    solution's code, whose stored output is left out: the reader runs it after trying), titled by its first line
    `# Title` (a fallback title where it has none), otherwise as it is; the setup cell stays open."""
    hidden = is_hidden(cell) and not is_setup(cell)
    cell = without_records(cell)
    if not hidden and not renderer.solution:
        return cell
    first, _, rest = "".join(cell["source"]).partition("\n")
    title = TITLE_LINE.match(first) if hidden else None
    if title:
        cell = {**cell, "source": lines(rest)}
    elif hidden:
        renderer.untitled += 1
    name = title["title"] if title else None
    if renderer.solution:  # its output would give the answer away under the exercise: it appears when run
        tags = [*cell["metadata"].get("tags", []), "nbval-ignore-output"]
        cell = {
            **cell,
            "outputs": [],
            "execution_count": None,
            "metadata": {**cell["metadata"], "tags": sorted(set(tags))},
        }
        name = f"Solution to {renderer.exercise(renderer.solution).text}" + (f": {name}" if name else "")
    elif name is None:
        name = f"Draw Figure {figure_number}" if figure_number else "Hidden in the HTML book: the chapter's bookkeeping"
    return folded(cell, name)


def edition(path: Path, book: Book | None = None) -> tuple[str, dict[str, int]]:
    """The Colab edition of the chapter notebook at `path`, as the text of its .ipynb, and counts of what it folded."""
    book = book or read_book()
    notebook = json.loads(path.read_text(encoding="utf-8"))
    page = f"book/{path.stem}"
    if page not in book.chapters:
        raise EditionError(f"{path.name} is not a numbered chapter of _toc.yml")
    number = book.chapters[page]
    renderer = Renderer(book, page, glued_values(notebook["cells"]))
    figures = iter(range(1, 1000))
    cells, folded_cells = [], 0
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "markdown":
            source = renderer.markdown("".join(cell["source"]))
            if index == 0:
                source = _introduced(source, book, page, number)
            if source:
                cells.append({**cell, "source": lines(source)})
            continue
        if cell["cell_type"] != "code":
            cells.append(cell)
            continue
        figure = cell["metadata"].get("mystnb", {}).get("figure")
        figure_number = f"{number}.{next(figures)}" if figure else None
        cells.append(code_cell(cell, renderer, figure_number))
        folded_cells += "cellView" in cells[-1]["metadata"]
        if figure:
            caption = renderer.inline(figure.get("caption", "")).strip()
            cells.append(
                {
                    "cell_type": "markdown",
                    "id": f"{cell.get('id', index)}-caption"[-64:],
                    "metadata": {},
                    "source": lines(f"**Figure {figure_number}.** {caption}"),
                }
            )
    if renderer.solution:
        raise EditionError(f"{path.name}: the solution of {renderer.solution!r} is never closed (solution-end)")
    metadata = {
        **notebook["metadata"],
        "accelerator": "GPU",  # Colab opens the notebook on a GPU runtime
        "colab": {"gpuType": "T4", "provenance": [], "toc_visible": True},
    }
    text = json.dumps({**notebook, "cells": cells, "metadata": metadata}, indent=1, ensure_ascii=False, sort_keys=True)
    return text + "\n", {"folded": folded_cells, "untitled": renderer.untitled}


def _introduced(source: str, book: Book, page: str, number: int) -> str:
    """The chapter's first cell, with a note under its title: what this notebook is, and where the HTML page is."""
    title, _, rest = source.partition("\n")
    if not HEADING.match(title):
        raise EditionError(f"{page}.ipynb: the first cell does not open with the chapter's title")
    note = (
        f"> **The Colab edition** of chapter {number} of [the course]({book.base}) "
        f"([this page in the HTML book]({book.url(page)})): the same code and the same stored results. Run the cells "
        "in order; the first installs `aecourse` with its trained models, which the chapter loads, so a CPU runtime "
        "is enough (a GPU runtime pays off when you retrain: `%env AECOURSE_RETRAIN=1` before the imports). The cells "
        "the book hides are folded here (**Show code** opens one), and each exercise's solution is folded under it."
    )
    return f"{title}\n\n{note}\n\n{rest.strip()}"


def chapters(root: Path = ROOT) -> list[Path]:
    """The chapter notebooks the edition is made from: the numbered chapters of _toc.yml."""
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    numbered = [e["file"] for p in toc.get("parts", []) if p.get("numbered") for e in p.get("chapters", [])]
    return [root / f"{page}.ipynb" for page in numbered]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 if colab/ differs from its sources")
    args = parser.parse_args(argv)
    book, out = read_book(), ROOT / EDITION
    wanted, failed = {}, {}
    for path in chapters():
        try:
            wanted[out / path.name], counts = edition(path, book)
        except EditionError as error:  # the other chapters are still made; the run fails at the end
            failed[out / path.name] = str(error)
            continue
        if counts["untitled"]:
            print(f"{path.name}: {counts['untitled']} hidden cells have no `# Title` first line (a fallback title)")
    stale = sorted(set(out.glob("*.ipynb")) - set(wanted) - set(failed))
    differ = [p for p, text in wanted.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    for message in failed.values():
        print(f"colab_edition: {message}", file=sys.stderr)
    if args.check:
        for p in differ:
            print(
                f"{p.relative_to(ROOT)} differs from what {Path(__file__).name} makes of its chapter", file=sys.stderr
            )
        for p in stale:
            print(f"{p.relative_to(ROOT)} is the edition of no chapter of _toc.yml", file=sys.stderr)
        if differ or stale:
            print("Run `python tools/colab_edition.py` (or `make book`) and commit colab/.", file=sys.stderr)
        return 1 if differ or stale or failed else 0
    out.mkdir(exist_ok=True)
    for p in differ:
        p.write_text(wanted[p], encoding="utf-8")
    for p in stale:
        p.unlink()
    print(f"colab/: {len(differ)} written, {len(stale)} removed, {len(wanted) - len(differ)} unchanged")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
