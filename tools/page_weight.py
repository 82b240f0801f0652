"""Bytes each page of the built book makes a reader download, measured in headless Chromium.

Usage: python tools/page_weight.py [--html _build/html] [--json OUT] [--compare BEFORE.json] [PAGE ...]

Serves the built book on loopback without compression (as `python -m http.server -d _build/html` does), opens
each page in a fresh browser (an empty cache) at 1366 px, waits until MathJax has typeset and nothing more is
fetched, scrolls to the end so that every image is asked for, and sums the bodies of everything the page fetched:
the HTML itself, scripts, style sheets, fonts (only those a page's text uses are fetched), images, and other files
(the explorer's decoders and WebAssembly runtime, JSON). The figures are the browser's own (Resource Timing), not
a guess from what the HTML names. PAGE is a path below the book, e.g. book/03_vae.html; the default is every page.
`--json` keeps the figures, `--compare` prints them beside an earlier run's.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
KINDS = ("html", "js", "css", "font", "image", "other")
_SUFFIXES = {
    "js": {".js", ".mjs"},
    "css": {".css"},
    "font": {".woff", ".woff2", ".ttf", ".otf", ".eot"},
    "image": {".png", ".jpg", ".jpeg", ".gif", ".svg", ".webp", ".ico"},
}

RESOURCES = """
const nav = performance.getEntriesByType('navigation')[0];
return {
  document: nav ? nav.encodedBodySize : 0,
  resources: performance.getEntriesByType('resource').map(e => [e.name, e.encodedBodySize]),
};
"""

SETTLE = """
const done = arguments[arguments.length - 1];
performance.setResourceTimingBufferSize(10000);
const started = Date.now();
const typeset = window.MathJax && MathJax.startup && MathJax.startup.promise ? MathJax.startup.promise : null;
Promise.all([typeset, document.fonts.ready].filter(p => p)).catch(() => {}).then(() => {
  let count = -1, since = Date.now();
  (function wait() {
    const now = performance.getEntriesByType('resource').length;
    if (now !== count) { count = now; since = Date.now(); }
    if (Date.now() - since > 1500 || Date.now() - started > 60000) done(count);
    else setTimeout(wait, 100);
  })();
});
"""


def kind(url: str) -> str:
    suffix = Path(urlparse(url).path).suffix.lower()
    return next((name for name, suffixes in _SUFFIXES.items() if suffix in suffixes), "other")


def pages(html: Path) -> list[str]:
    """Every page of the built book, as paths below it (Sphinx's search and index pages included), but for pages
    that only redirect to another (the book's root index.html)."""
    return sorted(
        p.relative_to(html).as_posix()
        for p in html.rglob("*.html")
        if "_static" not in p.parts and 'http-equiv="Refresh"' not in p.read_text(encoding="utf-8")[:2000]
    )


def _browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not binary or not driver:
        raise SystemExit("page_weight: needs Chromium and ChromeDriver (apt-get install chromium chromium-driver).")
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,1000",
    ):
        options.add_argument(flag)
    browser = webdriver.Chrome(service=Service(driver), options=options)
    browser.set_script_timeout(120)
    return browser


def measure(url: str) -> dict[str, int]:
    """Bytes by kind that the page at `url` fetches, opened in a fresh browser (nothing cached)."""
    browser = _browser()
    try:
        browser.get(url)
        browser.execute_async_script(SETTLE)
        height = browser.execute_script("return document.documentElement.scrollHeight")
        for y in range(0, height + 1000, 800):  # every image comes into view, lazy or not
            browser.execute_script("window.scrollTo(0, arguments[0])", y)
        browser.execute_async_script(SETTLE)
        facts = browser.execute_script(RESOURCES)
    finally:
        browser.quit()
    sizes = dict.fromkeys(KINDS, 0)
    sizes["html"] = facts["document"]
    seen = set()
    for name, size in facts["resources"]:
        if name not in seen and not name.startswith("data:"):
            seen.add(name)
            sizes[kind(name)] += size
    sizes["total"] = sum(sizes[k] for k in KINDS)
    return sizes


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass


def measure_book(html: Path, names: list[str]) -> dict[str, dict[str, int]]:
    handler = functools.partial(_QuietHandler, directory=str(html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    root = f"http://127.0.0.1:{httpd.server_address[1]}/"
    try:
        return {name: measure(urljoin(root, name)) for name in names}
    finally:
        httpd.shutdown()


def _kb(size: int) -> str:
    return f"{size / 1000:,.0f}"


def report(weights: dict[str, dict[str, int]], before: dict[str, dict[str, int]] | None = None) -> str:
    """A table in kB (1000 bytes); with `before`, each page's earlier total and the change."""
    head = ["page", *KINDS, "total"] + (["before", "change"] if before else [])
    rows = [head]
    for name, sizes in weights.items():
        row = [name, *(_kb(sizes[k]) for k in KINDS), _kb(sizes["total"])]
        if before:
            old = before.get(name, {}).get("total")
            row += ["–", "–"] if old is None else [_kb(old), f"{(sizes['total'] - old) / old:+.0%}"]
        rows.append(row)
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    lines = [
        "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        for row in rows
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n(kB = 1000 bytes, bodies as served without compression)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("pages", nargs="*", help="pages below the book, e.g. book/03_vae.html (default: all)")
    parser.add_argument("--html", type=Path, default=ROOT / "_build" / "html", help="the built book")
    parser.add_argument("--json", type=Path, help="write the figures to this file")
    parser.add_argument("--compare", type=Path, help="an earlier run's --json, printed beside this one")
    args = parser.parse_args(argv)
    if not (args.html / "index.html").is_file():
        print(f"page_weight: no built book in {args.html}; run `make book` first.", file=sys.stderr)
        return 2
    names = args.pages or pages(args.html)
    missing = [name for name in names if not (args.html / name).is_file()]
    if missing:
        print(f"page_weight: no such page in {args.html}: {', '.join(missing)}", file=sys.stderr)
        return 2
    start = time.perf_counter()
    weights = measure_book(args.html, names)
    before = json.loads(args.compare.read_text()) if args.compare else None
    print(report(weights, before))
    print(f"({len(names)} pages in {time.perf_counter() - start:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(weights, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
