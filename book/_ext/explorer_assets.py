"""Sphinx extension: build the latent explorer's assets at every HTML build and ship them with the book.

Runs tools/export_explorer.py (ONNX decoders and their JSON, re-exported only when the weights or the code changed;
onnxruntime-web's wasm build from the npm registry's pinned tarball, fetched once into .cache/), then copies its
output and book/_static/explorer/ (the page's script and style) into _static/explorer/. The script and style are
added to the explorer page only.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

PAGE = "book/explorer"
logger = logging.getLogger(__name__)


def _build_assets(app: Sphinx) -> None:
    if app.builder.format != "html":
        return
    root = Path(app.confdir)
    out = root / ".cache" / "explorer"
    tool = root / "tools" / "export_explorer.py"
    result = subprocess.run([sys.executable, str(tool), "--out", str(out)], capture_output=True, text=True)
    if result.returncode != 0:
        raise ExtensionError(
            f"the latent explorer's assets could not be built; `{Path(sys.executable).name} {tool.relative_to(root)}` "
            f"said:\n{result.stderr.strip()[-3000:]}"
        )
    logger.info(result.stdout.strip())
    app.config.html_static_path = [*app.config.html_static_path, str(out / "static"), str(root / "book" / "_static")]


def _add_page_files(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    if pagename == PAGE:
        app.add_js_file("explorer/explorer.js")
        app.add_css_file("explorer/explorer.css")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _build_assets)
    app.connect("html-page-context", _add_page_files)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
