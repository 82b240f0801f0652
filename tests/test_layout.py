"""The package's layout as the book relies on it: chapter tags in docstrings that say the truth, one home for the
eval/restore idiom and for the KL formula, and notebooks that open the same way."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "aecourse"
NOTEBOOKS = {int(p.name[:2]): p for p in (ROOT / "book").glob("[0-9][0-9]_*.ipynb")}


def _code(notebook: Path) -> str:
    cells = json.loads(notebook.read_text())["cells"]
    return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")


def _chapters(tag: str) -> set[int]:
    chapters: set[int] = set()
    for part in re.split(r",\s*", tag):
        if "-" in part:
            low, high = (int(n) for n in part.split("-"))
            chapters |= set(range(low, high + 1))
        else:
            chapters.add(int(part))
    return chapters


def _tagged_definitions():
    for module in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(module.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_"):
                doc = ast.get_docstring(node) or ""
                for tag in re.findall(r"\(ch\. ([\d,\s-]+)[);:]", doc):
                    yield module.stem, node.name, _chapters(tag)


TAGGED = list(_tagged_definitions())


def test_some_definitions_are_tagged():
    assert len(TAGGED) > 30


@pytest.mark.parametrize(("module", "name", "chapters"), TAGGED, ids=[f"{m}.{n}" for m, n, _ in TAGGED])
def test_chapter_tags_name_chapters_whose_notebook_uses_the_name(module, name, chapters):
    """A docstring's "(ch. N)" must name chapters whose notebooks use the definition by its name, in their cells or
    through their evidence module (aecourse/evidence/chN.py); that module's own definitions must be called from the
    page."""

    def used(chapter: int) -> str:
        evidence = PACKAGE / "evidence" / f"ch{chapter}.py"
        through = evidence.read_text() if evidence.is_file() and module != evidence.stem else ""
        return _code(NOTEBOOKS[chapter]) + "\n" + through

    wrong = [c for c in sorted(chapters) if c not in NOTEBOOKS or not re.search(rf"\b{name}\b", used(c))]
    assert not wrong, f"aecourse.{module}.{name} is tagged with chapter(s) {wrong}, whose notebooks do not use it"


def test_the_eval_restore_idiom_and_the_kl_formula_live_in_one_place_each():
    sources = {p.name: p.read_text() for p in PACKAGE.rglob("*.py")}
    restoring = sorted(name for name, text in sources.items() if "was_training" in text)
    assert restoring == ["runtime.py"], f"the eval/restore idiom is written in {restoring}"
    kl = sorted(
        name for name, text in sources.items() if re.search(r"1 \+ logvar - mu\.pow\(2\) - logvar\.exp\(\)", text)
    )
    assert kl == ["losses.py"], f"the closed-form KL is written in {kl}"


@pytest.mark.parametrize("chapter", sorted(NOTEBOOKS))
def test_every_chapter_opens_the_same_way(chapter):
    """Title; the Colab cell (removed from the HTML); the imports, then one set_seed, the device and the data; then
    the config dataclass, whose defaults are the full budget, put at the budget the switch asks for (`at_budget`),
    before any other code."""
    cells = json.loads(NOTEBOOKS[chapter].read_text())["cells"]
    title = "".join(cells[0]["source"]).splitlines()[0]
    assert cells[0]["cell_type"] == "markdown" and title.startswith("# ") and not re.match(r"# \d", title)
    assert "google.colab" in "".join(cells[1]["source"]) and "remove-cell" in cells[1]["metadata"].get("tags", [])
    code = [c for c in cells[2:] if c["cell_type"] == "code"]
    first, second = ("".join(c["source"]) for c in code[:2])
    starts = ("import ", "from ", " ", ")")
    lines = first.splitlines()
    body = next((i for i, line in enumerate(lines) if line and not line.startswith(starts)), len(lines))
    assert body > 0 and "import" not in "\n".join(lines[body:]), "the first cell opens with all its imports"
    assert "set_seed(" in first and "pick_device(" in first and "load_fashion_mnist(" in first
    assert "class Config" in second and "at_budget(Config())" in second
    code = _code(NOTEBOOKS[chapter])
    assert code.count("set_seed(") == 1, "set_seed is called once per chapter"
    assert "NBVAL" not in code, "nbval markers are cell tags, not comments readers must read past"


def _figure_cells(notebook: Path) -> list[dict]:
    return [
        c
        for c in json.loads(notebook.read_text())["cells"]
        if c["cell_type"] == "code" and any("image/png" in o.get("data", {}) for o in c.get("outputs", []))
    ]


FIGURE_NOTEBOOKS = sorted((ROOT / "book").glob("*.ipynb"))


@pytest.mark.parametrize("notebook", FIGURE_NOTEBOOKS, ids=lambda p: p.stem)
def test_every_figure_is_numbered_captioned_described_and_cited(notebook):
    """Each cell that draws a figure names it, captions it and describes it for screen readers (myst-nb's cell
    metadata mystnb.figure and mystnb.image.alt), and the page's prose cites it with {numref}."""
    cells = json.loads(notebook.read_text())["cells"]
    prose = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    for cell in _figure_cells(notebook):
        meta = cell["metadata"].get("mystnb", {})
        figure, alt = meta.get("figure", {}), meta.get("image", {}).get("alt", "")
        where = f"{notebook.name} cell {cell.get('id')}"
        assert figure.get("name", "").startswith("fig-"), f"{where}: a figure without a name"
        assert len(figure.get("caption", "")) > 30, f"{where}: a figure without a caption"
        assert len(alt) > 20 and not re.fullmatch(r"[0-9a-f./_-]+", alt), f"{where}: no alt text that describes it"
        assert f"{{numref}}`{figure['name']}`" in prose, f"{where}: {figure['name']} is never cited in the prose"
    names = [c["metadata"]["mystnb"]["figure"]["name"] for c in _figure_cells(notebook)]
    assert len(names) == len(set(names)), f"{notebook.name}: two figures share a name"


@pytest.mark.parametrize("notebook", sorted((ROOT / "book").glob("*.ipynb")), ids=lambda p: p.stem)
def test_stored_outputs_carry_no_warning_or_traceback(notebook):
    """The stored outputs are what the book shows: a warning or a traceback in them is printed on the page (a
    cell that demonstrates an error prints its message to stdout, on purpose)."""
    for cell in json.loads(notebook.read_text())["cells"]:
        for output in cell.get("outputs", []):
            noisy = output["output_type"] == "error" or output.get("name") == "stderr"
            text = "".join(output.get("text", "")) or output.get("evalue", "")
            assert not noisy, f"{notebook.name}, cell {cell.get('id')}: {output['output_type']} output: {text[:300]}"


def test_package_imports_only_run_downward():
    """The package's modules form layers: no module imports (at its top or inside a function) one that imports it
    back, directly or through others, so each can be read knowing only what is below it; and the core never imports
    the evidence (aecourse.evidence), which sits on top of it."""
    from graphlib import CycleError, TopologicalSorter

    def name(path: Path) -> str:
        return ".".join(path.relative_to(PACKAGE).with_suffix("").parts)

    modules = {name(p): p for p in PACKAGE.rglob("*.py") if p.name != "__init__.py"}
    graph = {}
    for module, path in modules.items():
        imported = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("aecourse."):
                target = node.module.removeprefix("aecourse.")
                found = [f"{target}.{a.name}" for a in node.names if f"{target}.{a.name}" in modules]
                imported |= set(found) or {target}
            elif isinstance(node, ast.ImportFrom) and node.module == "aecourse":
                imported |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.Import):
                imported |= {a.name.removeprefix("aecourse.") for a in node.names if a.name.startswith("aecourse.")}
        graph[module] = (imported & set(modules)) - {module}
    try:
        order = list(TopologicalSorter(graph).static_order())
    except CycleError as exc:
        pytest.fail(f"aecourse modules import each other in a cycle: {exc.args[1]}")
    assert set(order) >= set(graph) and graph["checks"] == set(), "checks.py is the bottom layer: it imports no module"
    upward = {m: sorted(i for i in imported if i.startswith("evidence.")) for m, imported in graph.items()}
    upward = {m: i for m, i in upward.items() if i and not m.startswith("evidence.")}
    assert not upward, f"core modules import the evidence above them: {upward}"


def test_the_core_package_stays_small():
    """The core (models, losses, training, data, checkpoints and their helpers: aecourse/*.py) reads in one sitting;
    each chapter's evidence lives in aecourse/evidence/ (#32)."""
    lines = sum(len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.glob("*.py"))
    print(f"core package: {lines} lines")
    assert lines < 3000
