"""Sphinx extension: pages that load what a reader uses, and not the rest (measure with tools/page_weight.py).

- templates/layout.html drops Font Awesome's 1.5 MB script from every page (the theme's style sheet draws the same
  icons from Font Awesome's font) and Sphinx's search scripts and index from every page but search.html (the
  theme loads them for search-as-you-type, which the book does not turn on).
- The icon fonts are cut to the icons the book shows: after the build, the codepoints are gathered from the built
  pages (<i class="fa-download">, via the theme's `.fa-download:before` rules), from the style sheets' own icons
  (admonition titles, external links, the "on this page" arrow) and from the theme's scripts (the icons they insert);
  each of the theme's Font Awesome faces is subset to them with fontTools (a few kB instead of 118-156 kB) and
  declared again in _static/icons/icons.css, which pages load after the theme's style sheet, so that its faces win.
- sphinx-design's style sheet and tab script (about 60 kB, which Jupyter Book adds to every page) are left out of a
  page that uses none of its components (no `sd-` class in the page's body): no page of the book uses one today.
"""

from __future__ import annotations

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError
from sphinx.util import logging

TEMPLATES = Path(__file__).resolve().parent / "templates"
ICONS = "icons"  # _static/icons/: the subset fonts and the style sheet that declares them
WEBFONTS = "vendor/fontawesome/webfonts/"  # where the theme keeps Font Awesome's fonts, below _static
_ICON_RULE = re.compile(r"((?:\.fa-[\w-]+:{1,2}before,?)+)\{content:\"([^\"]*)\"\}")  # .fa-x:before{content:"\f019"}
_CSS_ESCAPE = re.compile(r"\\([0-9a-fA-F]{1,6})\s?")
_PRIVATE_USE = re.compile("[\ue000-\uf8ff\U000f0000-\U000ffffd]")
_FONT_FACE = re.compile(r"@font-face\s*\{([^}]*)\}")
_CLASSES = re.compile(r"class=\"([^\"]*)\"")
_ICON_NAME = re.compile(r"\bfa-[a-z0-9-]+")
logger = logging.getLogger(__name__)


_DESIGN_FILES = ("sphinx-design.min.css", "design-tabs.js")
_DESIGN_CLASS = re.compile(r"class=\"([^\"]* )?sd-")


def _drop_unused_design(app: Sphinx, pagename: str, templatename: str, context: dict, doctree: object) -> None:
    if _DESIGN_CLASS.search(context.get("body") or ""):
        return
    for key in ("css_files", "script_files"):
        if context.get(key):
            kept = [f for f in context[key] if str(getattr(f, "filename", f)).rsplit("/", 1)[-1] not in _DESIGN_FILES]
            context[key][:] = kept


def _add_templates(app: Sphinx, config: Config) -> None:
    config.templates_path = [str(TEMPLATES), *config.templates_path]


def _unescape(css: str) -> str:
    return _CSS_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), css)


def used_icons(outdir: Path) -> set[int]:
    """Codepoints of every Font Awesome icon the built book can show: named in a page's or script's classes, or
    written into a style sheet's own rules."""
    static = outdir / "_static"
    sheets = {path: path.read_text(encoding="utf-8") for path in static.rglob("*.css") if ICONS not in path.parts}
    by_name: dict[str, str] = {}
    codepoints: set[int] = set()
    for css in sheets.values():
        for selectors, content in _ICON_RULE.findall(css):
            for name in re.findall(r"\.(fa-[\w-]+):", selectors):
                by_name[name] = _unescape(content)
        own = _unescape(_ICON_RULE.sub("", css))  # what is left: the sheets' own icons (admonitions, links, ...)
        codepoints |= {ord(char) for char in _PRIVATE_USE.findall(own)}
    names: set[str] = set()
    for page in outdir.rglob("*.html"):
        if "_static" not in page.relative_to(outdir).parts:
            for classes in _CLASSES.findall(page.read_text(encoding="utf-8")):
                names |= set(_ICON_NAME.findall(classes))
    for script in static.rglob("*.js"):
        if script.name != "fontawesome.js" and "mathjax" not in script.parts and "explorer" not in script.parts:
            names |= set(_ICON_NAME.findall(script.read_text(encoding="utf-8", errors="replace")))
    codepoints |= {ord(char) for name in names if name in by_name for char in by_name[name]}
    return codepoints


def subset_icon_fonts(outdir: Path) -> list[tuple[str, int, int]]:
    """Subset every Font Awesome face of the theme's style sheets to `used_icons`, write them with the style sheet
    that declares them into _static/icons/, and return (font, its bytes before, after) for each."""
    from fontTools import subset
    from fontTools.ttLib import TTFont

    static = outdir / "_static"
    codepoints = used_icons(outdir)
    target = static / ICONS
    target.mkdir(exist_ok=True)
    faces, sizes = [], []
    for sheet in sorted(static.rglob("*.css")):
        if ICONS in sheet.parts:
            continue
        for body in _FONT_FACE.findall(sheet.read_text(encoding="utf-8")):
            fonts = re.findall(r"url\(([^)]*" + re.escape(WEBFONTS) + r"[^)]*\.ttf)\)", body)
            if not fonts:
                continue
            source = (sheet.parent / fonts[0].strip("'\"")).resolve()
            font = TTFont(source)
            keep = codepoints & set(font.getBestCmap())
            options = subset.Options()
            options.flavor = "woff"  # zlib: woff2 would need brotli, which the book does not install
            options.name_IDs = ["*"]  # keep the copyright and licence records (SIL OFL 1.1)
            subsetter = subset.Subsetter(options)
            subsetter.populate(unicodes=sorted(keep))
            subsetter.subset(font)
            name = source.stem + ".woff"
            subset.save_font(font, str(target / name), options)
            woff2 = source.with_suffix(".woff2")  # what browsers fetched before
            loaded = woff2 if woff2.is_file() else source
            sizes.append((loaded.name, loaded.stat().st_size, (target / name).stat().st_size))
            descriptors = re.sub(r"src\s*:[^;]*(;|$)", "", body).strip().rstrip(";")
            faces.append(f'@font-face{{{descriptors};src:url({name}) format("woff")}}')
    if not faces:
        raise ExtensionError(
            f"lean_pages: no @font-face of the theme's style sheets names a font in _static/{WEBFONTS}; the theme "
            "changed how it ships Font Awesome, and book/_ext/lean_pages.py must follow it."
        )
    head = "/* book/_ext/lean_pages.py: the theme's Font Awesome faces, cut to the icons the book shows. */\n"
    (target / "icons.css").write_text(head + "\n".join(faces) + "\n", encoding="utf-8")
    return sizes


def _after_build(app: Sphinx, exception: Exception | None) -> None:
    if exception is None and app.builder.format == "html":
        for name, before, after in subset_icon_fonts(Path(app.outdir)):
            logger.info(f"lean_pages: {name} cut to the book's icons: {before:,} -> {after:,} bytes")


def setup(app: Sphinx) -> dict[str, object]:
    app.connect("config-inited", _add_templates)
    app.connect("html-page-context", _drop_unused_design)
    app.connect("build-finished", _after_build)
    app.add_css_file(f"{ICONS}/icons.css")
    return {"parallel_read_safe": True, "parallel_write_safe": True}
