"""A notebook's code cell run on its own, for the tests of what a chapter keeps to itself (the measurements of
chapters 3 and 4, chapter 4's verdicts): every import of the notebook, then the cell that defines the names asked
for, are executed in a fresh namespace."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any


def definitions(notebook: Path, *names: str, **elsewhere: Any) -> dict[str, Any]:
    """The namespace of the one code cell of `notebook` that defines every name in `names` at its top level, run
    after every top-level import statement of the notebook's code cells (a cell leans on the notebook's imports).
    `elsewhere` gives what the cell uses from the chapter's other cells (its taught code: the package's, same
    source)."""
    cells = [
        "".join(cell["source"])
        for cell in json.loads(Path(notebook).read_text())["cells"]
        if cell["cell_type"] == "code"
    ]
    trees = [ast.parse(s) for s in cells if not any(line.lstrip().startswith(("%", "!")) for line in s.splitlines())]
    imports = ast.Module([n for t in trees for n in t.body if isinstance(n, (ast.Import, ast.ImportFrom))], [])
    for tree in trees:
        defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
        if set(names) <= defined:
            namespace: dict[str, Any] = dict(elsewhere)
            exec(compile(imports, str(notebook), "exec"), namespace)
            exec(compile(tree, str(notebook), "exec"), namespace)
            return namespace
    raise LookupError(f"{Path(notebook).name} has no code cell that defines all of {', '.join(names)}")
