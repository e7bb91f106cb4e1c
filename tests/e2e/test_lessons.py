"""The step-by-step lesson in a real browser: tick a cell of the mask and every later step follows."""

from __future__ import annotations

import json
from urllib.parse import urlencode

from dynmask_app.state import AppState
from tests.e2e.harness import open_app, runs_started, wait_charts, wait_idle
from tests.e2e.test_browser import no_exception

CELL = 35  # Streamlit's data editor: header and row height in pixels
SMALL = 75  # a "small" column's width


def weights_row(page, row: int) -> list[float]:
    """Row ``row`` of the attention weights as the browser's plotly figure holds it."""
    return json.loads(page.evaluate("""r => {
        const g = document.querySelector('.st-key-lesson_weights .js-plotly-plot');
        return JSON.stringify(g.data[0].z[r]); }""", row))


def test_ticking_a_mask_cell_recomputes_the_weights(app_url, page, screenshot):
    link = AppState(page="steps", input_ref="apple banana orange", strategy="causal", layer=2, head=3)
    open_app(page, f"{app_url}/Step_by_step?{urlencode(link.to_query_params())}")
    no_exception(page)
    assert "equal the engine's run for layer 2, head 3" in page.get_by_test_id("stAlertContentSuccess").inner_text()
    wait_charts(page, 9)
    before = weights_row(page, 0)
    assert before[0] == 1.0 and before[4] == 0.0  # causal: [CLS] sees only itself
    editor = page.get_by_test_id("stDataFrame").first
    canvas = editor.locator("canvas").first.bounding_box()
    since = runs_started(page)
    # row 0 ([CLS]), last column ([SEP]): let [CLS] look at the end of the sentence
    page.mouse.click(canvas["x"] + canvas["width"] - SMALL / 2, canvas["y"] + CELL + CELL / 2)
    wait_idle(page, since=since, timeout=120)
    no_exception(page)
    assert editor.locator("#glide-cell-5-0").inner_text() == "true"
    assert "You changed the mask" in page.get_by_test_id("stAlertContentInfo").first.inner_text()
    wait_charts(page, 9)
    after = weights_row(page, 0)
    assert after[4] > 0 and after[0] < 1.0 and abs(sum(after) - 1.0) < 1e-3
    screenshot(page, "lesson-steps-edited")
