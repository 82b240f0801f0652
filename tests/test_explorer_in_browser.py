"""The latent explorer page (book/explorer.md) in headless Chromium, served over HTTP from the built book.

The browser's decoders (ONNX in onnxruntime-web) must draw what torch draws for the same z: the test moves a
slider, drags the 2-D point, switches beta and starts from a test image, reads the canvas and compares it with
the torch decoder of the same weights (tools/export_explorer.py's `load_models`), to within 1 grey level of 255.
It prints the median time from a move to its image drawn (goal: 16 ms, one frame), and fails on any console
error. Every slider's label names the dimension it moves, counted from 0 as in the chapters (z_4 moves z[4]).
Opened from file://, the page must say how to serve it. Skipped without Chromium or a built book.
"""

from __future__ import annotations

import importlib.util
import json
import re
import statistics
import sys
from pathlib import Path
from urllib.parse import urljoin

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
PAGE = HTML / "book" / "explorer.html"
ASSETS = HTML / "_static" / "explorer" / "models"
SCREENSHOTS = ROOT / "_build" / "screenshots"
MAX_GREY_LEVEL_DIFF = 1  # of 0..255, after rounding: float differences between runtimes may flip one rounding
NUM_TIMED_MOVES = 25
FRAME_MS = 16.0  # the goal: a move's image drawn within one frame at 60 Hz


pytestmark = [
    pytest.mark.skipif(not PAGE.is_file(), reason="the book is not built (run `make book`)"),
]


@pytest.fixture(scope="module")
def models():
    """The torch models behind the built page, by the name the manifest gives them."""
    spec = importlib.util.spec_from_file_location("export_explorer", ROOT / "tools" / "export_explorer.py")
    tool = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = tool  # its dataclasses look their module up there
    spec.loader.exec_module(tool)
    loaded = tool.load_models(ROOT / ".cache" / "explorer")
    stamp = ASSETS / "fingerprint.txt"
    if not stamp.is_file() or stamp.read_text().strip() != tool.fingerprint(loaded):
        pytest.fail("the built explorer is stale (its decoders are not the current models): run `make book` again")
    return dict(tool._named_models(loaded))


WAIT_FOR_DRAWS = """
const [id, atLeast, done] = arguments;
const started = Date.now();
(function wait() {
  const api = window.aecourseExplorer;
  const explorer = api && api.explorers[id];
  if (api && api.failure) { done({error: api.failure}); return; }
  if (explorer && explorer.failure) { done({error: explorer.failure}); return; }
  if (explorer && explorer.draws >= atLeast && !explorer.busy && explorer.pendingSince === null) {
    done({draws: explorer.draws, model: explorer.model.name, z: Array.from(explorer.drawnZ)});
  } else if (Date.now() - started > 60000) { done({error: 'no image drawn within 60 s'});
  } else { setTimeout(wait, 20); }
})();
"""

CANVAS_GREYS = """
const canvas = document.querySelector('[data-explorer="' + arguments[0] + '"] canvas.ae-output');
const data = canvas.getContext('2d').getImageData(0, 0, 28, 28).data;
return Array.from({length: 784}, (_, i) => data[4 * i]);
"""

SET_SLIDER = """
const [id, dim, value] = arguments;
const input = document.querySelector('[data-explorer="' + id + '"] input[data-dim="' + dim + '"]');
input.value = String(value);
input.dispatchEvent(new Event('input', {bubbles: true}));
"""


def _wait(browser, explorer_id: str, at_least: int) -> dict:
    state = browser.execute_async_script(WAIT_FOR_DRAWS, explorer_id, at_least)
    assert "error" not in state, f"{explorer_id}: {state['error']}"
    return state


def _draws(browser, explorer_id: str) -> int:
    return browser.execute_script("return window.aecourseExplorer.explorers[arguments[0]].draws", explorer_id)


def _max_grey_diff(browser, explorer_id: str, state: dict, models: dict) -> int:
    """Max |browser - torch| over the 784 grey levels (0..255) of the image drawn for the state's z."""
    browser_greys = torch.tensor(browser.execute_script(CANVAS_GREYS, explorer_id))
    model = models[state["model"]]
    z = torch.tensor([state["z"]], dtype=torch.float32)
    with torch.no_grad():
        x_hat = model.decode(z).reshape(784).clamp(0, 1)
    torch_greys = (x_hat * 255).round().to(torch.int64)
    return int((browser_greys - torch_greys).abs().max())


def _console_errors(browser) -> list[str]:
    return [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]


@pytest.fixture(scope="module")
def page(server, browser):
    url = urljoin(server, "book/explorer.html")
    for visit in (1, 2):  # the first visit stores the theme's colour mode (as in test_book_in_browser)
        if visit == 2:
            browser.get_log("browser")  # drop what the first visit logged
        browser.get(url)
        for explorer_id in ("vae-2d", "vae-20d", "beta-vae"):
            _wait(browser, explorer_id, 1)
    return browser


@pytest.mark.parametrize("explorer_id", ["vae-20d", "beta-vae"])
def test_slider_moves_draw_the_torch_image(page, models, capsys, explorer_id):
    sliders = page.execute_script("return window.aecourseExplorer.explorers[arguments[0]].model.sliders", explorer_id)
    top = sliders[0]
    worst = 0
    timings_before = page.execute_script(
        "return window.aecourseExplorer.explorers[arguments[0]].timings.length", explorer_id
    )
    values = torch.linspace(top["min"], top["max"], NUM_TIMED_MOVES).tolist()
    for i, value in enumerate(values):
        dim = sliders[i % len(sliders)]["dim"] if i % 5 == 4 else top["dim"]  # now and then another slider
        draws = _draws(page, explorer_id)
        page.execute_script(SET_SLIDER, explorer_id, dim, round(value, 2))
        state = _wait(page, explorer_id, draws + 1)
        assert state["z"][dim] == pytest.approx(round(value, 2), abs=1e-6)
        worst = max(worst, _max_grey_diff(page, explorer_id, state, models))
    timings = page.execute_script("return window.aecourseExplorer.explorers[arguments[0]].timings", explorer_id)
    timings = timings[timings_before:]
    median = statistics.median(timings)
    with capsys.disabled():
        print(
            f"\nexplorer {explorer_id} ({state['model']}): slider move -> image drawn, median {median:.2f} ms over "
            f"{len(timings)} moves (min {min(timings):.2f}, max {max(timings):.2f}; goal {FRAME_MS:.0f} ms); "
            f"max |browser - torch| = {worst} grey levels of 255"
        )
    assert worst <= MAX_GREY_LEVEL_DIFF
    assert len(timings) == NUM_TIMED_MOVES
    assert median < 10 * FRAME_MS, "decoding became far slower than a frame; see the printed timings"


SLIDER_LABELS = """
return [...document.querySelectorAll('[data-explorer="' + arguments[0] + '"] label.ae-slider')].map(label => ({
  shown: label.querySelector('.ae-dim').textContent.trim(),
  spoken: label.querySelector('input').getAttribute('aria-label'),
  slider: label.querySelector('input').dataset.dim,
  min: Number(label.querySelector('input').min),
  max: Number(label.querySelector('input').max),
}));
"""


@pytest.mark.parametrize("explorer_id", ["vae-20d", "beta-vae"])
def test_slider_labels_name_the_dimension_they_move(page, explorer_id):
    """Dimensions are counted from 0, as in the chapters: the slider labelled z_j (shown "z" with a subscript j,
    spoken "dimension j") moves z[j] and nothing else, for every slider of every model."""
    root = f'[data-explorer="{explorer_id}"]'
    switch = page.find_elements("css selector", f"{root} .ae-switch button")
    for index in range(max(1, len(switch))):
        if switch:
            draws = _draws(page, explorer_id)
            page.find_element("css selector", f'{root} .ae-switch button[data-index="{index}"]').click()
            _wait(page, explorer_id, draws + 1)
        labels = page.execute_script(SLIDER_LABELS, explorer_id)
        assert labels, f"{explorer_id}: no sliders"
        for label in labels:
            shown = re.fullmatch(r"z(\d+)", label["shown"])
            spoken = re.fullmatch(r"dimension (\d+) \(z(\d+)\)", label["spoken"] or "")
            assert shown and spoken, f"{explorer_id}: slider labels {label['shown']!r}, {label['spoken']!r}"
            j = int(shown.group(1))
            assert int(spoken.group(1)) == int(spoken.group(2)) == j, label
            before = _wait(page, explorer_id, 1)["z"]
            value = label["max"] if before[j] < (label["min"] + label["max"]) / 2 else label["min"]
            draws = _draws(page, explorer_id)
            page.execute_script(SET_SLIDER, explorer_id, label["slider"], value)
            after = _wait(page, explorer_id, draws + 1)["z"]
            moved = [i for i, (a, b) in enumerate(zip(before, after, strict=True)) if a != b]
            assert moved == [j], f"{explorer_id}: the slider labelled z{j} moved z{moved} (0-based indices)"
    if switch:  # leave the first model on, as the page starts (the next tests expect it)
        draws = _draws(page, explorer_id)
        page.find_element("css selector", f'{root} .ae-switch button[data-index="0"]').click()
        _wait(page, explorer_id, draws + 1)


def test_dragging_the_2d_point(page, models, capsys):
    from selenium.webdriver.common.action_chains import ActionChains

    target = page.find_element("css selector", '[data-explorer="vae-2d"] canvas.ae-map')
    page.execute_script("arguments[0].scrollIntoView({block: 'center'})", target)
    before = _wait(page, "vae-2d", 1)
    ActionChains(page).move_to_element_with_offset(target, -60, 40).click_and_hold().pause(0.1).perform()
    state = _wait(page, "vae-2d", before["draws"] + 1)
    start = state["z"]
    ActionChains(page).move_by_offset(50, -40).pause(0.1).move_by_offset(50, -40).pause(0.1).release().perform()
    state = _wait(page, "vae-2d", state["draws"] + 1)
    [[x0, x1], [y0, y1]] = page.execute_script("return window.aecourseExplorer.explorers['vae-2d'].model.ranges")
    size = page.execute_script("return window.aecourseExplorer.explorers['vae-2d'].size")
    # 100 px right and 80 px up on a map of `size` px: z moves by that fraction of each range
    assert state["z"][0] - start[0] == pytest.approx(100 / size * (x1 - x0), abs=0.05)
    assert state["z"][1] - start[1] == pytest.approx(80 / size * (y1 - y0), abs=0.05)
    worst = _max_grey_diff(page, "vae-2d", state, models)
    with capsys.disabled():
        print(f"\nexplorer, 2-D VAE: dragged to z = {state['z']}; max |browser - torch| = {worst} grey levels")
    assert worst <= MAX_GREY_LEVEL_DIFF


def test_beta_switch_and_start_from_a_test_image(page, models):
    manifest = json.loads((ASSETS / "manifest.json").read_text())
    beta_models = manifest["explorers"][2]["models"]
    root = '[data-explorer="beta-vae"]'
    example = 2
    draws = _draws(page, "beta-vae")
    page.find_elements("css selector", f"{root} .ae-examples button")[example].click()
    state = _wait(page, "beta-vae", draws + 1)
    assert state["z"] == pytest.approx(beta_models[0]["examples"][example]["mu"], abs=1e-5)
    for index in (len(beta_models) - 1, 1):
        draws = _draws(page, "beta-vae")
        page.find_element("css selector", f'{root} .ae-switch button[data-index="{index}"]').click()
        state = _wait(page, "beta-vae", draws + 1)
        model = beta_models[index]
        assert state["model"] == model["name"]
        assert state["z"] == pytest.approx(model["examples"][example]["mu"], abs=1e-5)  # the same image's mu
        assert _max_grey_diff(page, "beta-vae", state, models) <= MAX_GREY_LEVEL_DIFF
        slider = model["sliders"][0]
        page.execute_script(SET_SLIDER, "beta-vae", slider["dim"], slider["max"])
        state = _wait(page, "beta-vae", state["draws"] + 1)
        assert _max_grey_diff(page, "beta-vae", state, models) <= MAX_GREY_LEVEL_DIFF


def test_no_console_errors_and_screenshot(page):
    errors = _console_errors(page)
    assert not errors, f"console errors on the explorer page: {errors}"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    height = page.execute_script("return document.documentElement.scrollHeight")
    page.set_window_size(1280, min(max(height, 800), 16000))
    page.save_screenshot(str(SCREENSHOTS / "explorer_in_use.png"))
    page.set_window_size(1280, 1000)


def test_file_url_says_how_to_serve_the_book(browser):
    browser.get(PAGE.as_uri())
    messages = browser.execute_script(
        "return [...document.querySelectorAll('.ae-explorer')].map(e => e.querySelector('.ae-message')?.innerText)"
    )
    assert len(messages) == 3
    for message in messages:
        assert message and "python -m http.server -d _build/html" in message, messages
        assert "http://localhost:8000/book/explorer.html" in message
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SCREENSHOTS / "explorer_from_file_url.png"))
