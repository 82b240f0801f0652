"""Sphinx extension: space the columns of the tables that notebook cells print (aecourse.evidence.report.Table).

The theme styles rendered pandas frames but not a plain <table> in a myst-nb cell output, whose cells then touch.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx

STATIC = Path(__file__).resolve().parent / "static"


def _add_static_path(app: Sphinx) -> None:
    app.config.html_static_path.append(str(STATIC))


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("builder-inited", _add_static_path)
    app.add_css_file("output_tables.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
