"""Sphinx extension: pages that fit a phone. A display equation wider than the screen scrolls sideways inside its
own box, with a shadow at the edge that still hides some of it, so that a reader sees there is more (long inline
formulas are written as display math in the chapters: an inline formula cannot scroll or break). A value pasted
from the run (glue) reads as the prose around it, not in myst-nb's bold.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).resolve().parent / "static"


def _add_static_path(app: Sphinx) -> None:
    if str(STATIC) not in app.config.html_static_path:
        app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("page_fit.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
