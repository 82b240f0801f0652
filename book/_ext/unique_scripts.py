"""Sphinx extension: drop repeated <script> entries from each page.

sphinx-thebe and sphinx-togglebutton add their inline configuration (`const THEBE_JS_URL = ...`) once more per
page in this Jupyter Book stack; the second `const` is a JavaScript error in every page's console
("Identifier 'THEBE_JS_URL' has already been declared"). Keep the first of each script.
"""

from __future__ import annotations

from sphinx.application import Sphinx


def _key(script: object) -> tuple[str, tuple[tuple[str, str], ...]]:
    filename = str(getattr(script, "filename", script) or "")  # inline scripts come as None or ""
    attributes = getattr(script, "attributes", {}) or {}
    return filename, tuple(sorted((str(k), str(v)) for k, v in attributes.items()))


def _drop_repeats(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    unique = []
    for script in scripts:
        key = _key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("html-page-context", _drop_repeats, priority=999)  # after every other handler has added its own
    return {"parallel_read_safe": True, "parallel_write_safe": True}
