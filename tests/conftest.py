"""What tests share: the built book served on loopback and headless Chromium (the browser tests); the full budget
and a recorder of what an evidence module glues (the evidence modules' tests)."""

from __future__ import annotations

import functools
import http.server
import shutil
import threading
from pathlib import Path

import pytest

HTML = Path(__file__).resolve().parents[1] / "_build" / "html"


def chromium() -> tuple[str, str] | None:
    """The Chromium binary and its driver, or None where they are not installed."""
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class names it so
        pass


@pytest.fixture(scope="module")
def server():
    """Serve _build/html on a free loopback port, as `python -m http.server -d _build/html` would."""
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, its console log kept, at the desktop width the book's layout checks assume (1366 px)."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service

    if chromium() is None:
        pytest.skip("Chromium not installed (apt-get install chromium chromium-driver)")
    browser_path, driver_path = chromium()
    options = webdriver.ChromeOptions()
    options.binary_location = browser_path
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--window-size=1366,1000",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.set_script_timeout(120)
    yield driver
    driver.quit()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """Data looked for in a private tmp_path/"debian" folder (which a test fills or leaves absent), no
    $AECOURSE_DATA, a private cache: tests/test_advice.py and tests/test_probes.py decide where the data is.
    (tests/test_data.py has its own, with no Debian folder at all.)"""
    from aecourse import data

    monkeypatch.setattr(data, "DEBIAN_DIR", tmp_path / "debian")
    monkeypatch.delenv("AECOURSE_DATA", raising=False)
    monkeypatch.setenv("AECOURSE_CACHE", str(tmp_path / "cache"))
    return tmp_path


@pytest.fixture
def full_budget(monkeypatch):
    """The claims bind at the full budget (the book's), whatever the shell running the tests says."""
    from aecourse.runtime import BUDGET_ENV, RETRAIN_ENV

    monkeypatch.delenv(BUDGET_ENV, raising=False)
    monkeypatch.delenv(RETRAIN_ENV, raising=False)


@pytest.fixture
def glue_recorder(monkeypatch):
    """record(module): from then on, what `module` glues lands in the returned dict, name -> the text the page shows."""
    from aecourse.evidence.report import glued_text

    def record(module) -> dict[str, str]:
        values: dict[str, str] = {}

        def keep(name: str, value, fmt: str | None = None, *, markdown: bool = False) -> None:
            values[name] = glued_text(value, fmt)

        monkeypatch.setattr(module, "glue", keep)
        monkeypatch.setattr(module, "glue_markdown", lambda name, text: keep(name, text))
        return values

    return record
