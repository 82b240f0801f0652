"""Sphinx extension: the "Colab" launch button of a chapter opens the chapter's Colab edition (colab/<page>.ipynb,
written by tools/colab_edition.py), not the book's source notebook, whose markdown Colab would show as raw MyST.

sphinx-book-theme builds the button's URL from the page's path (.../blob/<branch>/book/<page>.ipynb); this handler
runs after it and points the URL at colab/<page>.ipynb. A page with no Colab edition (the intro, the appendices)
loses the Colab button (there is no Binder button: _config.yml says why). The citations' ids are set to
`cite-<key>` (sphinxcontrib-bibtex numbers them otherwise), so that the edition's author-year links land on their
bibliography entry.
"""

from __future__ import annotations

from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config

EDITION = "colab"  # the folder of the Colab edition, at the repository's root
CITE_ID = "cite-{key}"  # tools/colab_edition.py links {cite} to book/bibliography.html#cite-<key>


def _stable_citation_ids(app: Sphinx, config: Config) -> None:
    if not config.bibtex_cite_id:
        config.bibtex_cite_id = CITE_ID


def edition_url(url: str, branch: str, notebook: str) -> str:
    """A Colab launch URL (…/github/<org>/<repo>/blob/<branch>/<path>) with its path replaced by `notebook`."""
    head, marker, _ = url.partition(f"/blob/{branch}/")
    if not marker:
        raise ValueError(f"colab_launch: the theme's Colab URL {url!r} has no '/blob/{branch}/' part")
    return f"{head}{marker}{notebook}"


def _point_colab_at_edition(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    groups = [b for b in context.get("header_buttons", []) if b.get("label") == "launch-buttons"]
    if not groups:
        return
    edition = Path(app.confdir) / EDITION / f"{Path(pagename).name}.ipynb"
    branch = app.config.html_theme_options.get("repository_branch") or "master"  # the theme's default
    for group in groups:
        for button in list(group["buttons"]):
            if button.get("text") != "Colab":
                continue
            if edition.is_file():
                button["url"] = edition_url(button["url"], branch, f"{EDITION}/{edition.name}")
                button["tooltip"] = "Launch on Colab (the chapter's Colab edition)"
            else:
                group["buttons"].remove(button)
        if not group["buttons"]:
            context["header_buttons"].remove(group)


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _stable_citation_ids)
    app.connect("html-page-context", _point_colab_at_edition, priority=600)  # after the theme's (500)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
