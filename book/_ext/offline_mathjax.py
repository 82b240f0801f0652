"""Sphinx extension: ship MathJax with the book when a local copy is given, so pages render offline.

`make book` fetches MathJax 3's pinned tarball from the npm registry into .cache/ (tools/npm_tarball.py: no npm
needed) and points AECOURSE_MATHJAX_DIR at its `es5` folder; without it (`make book MATHJAX=cdn`) the book loads
MathJax from Sphinx's default CDN.
Only the combined TeX/CHTML script and its web fonts are copied (about 1.6 MB).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ConfigError

SCRIPT = "tex-mml-chtml.js"
FONTS = Path("output") / "chtml" / "fonts" / "woff-v2"


def _use_local_mathjax(app: Sphinx, config: Config) -> None:
    source = os.environ.get("AECOURSE_MATHJAX_DIR")
    if not source:
        return
    es5 = Path(source)
    if not (es5 / SCRIPT).is_file() or not (es5 / FONTS).is_dir():
        raise ConfigError(
            f"AECOURSE_MATHJAX_DIR={source} does not hold MathJax 3's es5 build ({SCRIPT} and {FONTS}/). "
            "Unset it to use the CDN, or point it at the es5 folder of the npm package mathjax@3."
        )
    static = Path(app.outdir).parent / ".mathjax-static"
    target = static / "mathjax"
    if target.exists():
        shutil.rmtree(target)
    (target / FONTS).parent.mkdir(parents=True)
    shutil.copy2(es5 / SCRIPT, target / SCRIPT)
    shutil.copytree(es5 / FONTS, target / FONTS)
    config.html_static_path = [*config.html_static_path, str(static)]
    config.mathjax_path = f"mathjax/{SCRIPT}"


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _use_local_mathjax, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
