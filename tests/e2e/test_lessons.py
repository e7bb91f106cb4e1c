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


#: Each dataframe's glide grid: how wide its content is against the room it has (a cut-off table scrolls sideways).
TABLE_FIT = """() => Array.from(document.querySelectorAll('[data-testid="stDataFrame"]')).map(d => {
    const s = d.querySelector('.dvn-scroller'), r = d.getBoundingClientRect();
    return {scroll: s.scrollWidth, client: s.clientWidth, right: r.right, window: window.innerWidth}; })"""


def test_the_mlm_labs_tables_fit_and_cancel_goes_when_training_ends(app_url, page, screenshot):
    open_app(page, f"{app_url}/MLM_lab?steps=50&seed=0")
    no_exception(page)
    since = runs_started(page)
    page.get_by_role("button", name="Train both", exact=True).click()
    wait_idle(page, since=since, timeout=300)
    # the server's training queue trains in the background and the page follows it (a fragment polls every 2 s):
    # 50 steps each of a tiny BERT, half a minute on 2 busy cores; when it ends the page reruns and Cancel goes
    page.get_by_role("button", name="Cancel", exact=True).wait_for(state="detached", timeout=300_000)
    wait_idle(page, timeout=60)
    no_exception(page)
    assert page.get_by_role("button", name="Cancel", exact=True).count() == 0  # the training has ended
    assert page.get_by_test_id("stProgress").count() == 0
    frames = page.get_by_test_id("stDataFrame")
    frames.nth(1).locator("#glide-cell-2-2").wait_for(state="attached")
    assert frames.nth(1).locator("#glide-cell-2-2").inner_text() == "84.0"  # RoBERTa's MNLI-m, dynamic, as printed
    for width, height in ((1400, 1000), (1024, 768)):
        page.set_viewport_size({"width": width, "height": height})
        page.wait_for_timeout(1000)
        fits = page.evaluate(TABLE_FIT)
        assert len(fits) == 2, fits
        for fit in fits:  # every column in view: nothing to scroll to, and the table inside the window
            assert fit["scroll"] <= fit["client"] and fit["right"] <= fit["window"], (width, fits)
    page.set_viewport_size({"width": 1400, "height": 1000})
    screenshot(page, "mlm-lab-trained")


def _missing_page_box(page, lang: str = "en"):
    text = "There is no page" if lang == "en" else "本应用中没有页面"
    box = page.get_by_test_id("stAlert").filter(has_text=text)
    box.first.wait_for()
    assert box.count() == 1
    return box.first.inner_text()


def test_a_mistyped_address_or_page_says_the_page_does_not_exist(app_url, new_page, screenshot):
    page = new_page()
    open_app(page, f"{app_url}/Atribution")
    no_exception(page)
    text = _missing_page_box(page)
    assert "'/Atribution'" in text and "Attribution (/Attribution)" in text, text
    assert "Lesson: static vs dynamic MLM masking (/MLM_lab)" in text and "Playground (/)" in text, text
    screenshot(page, "missing-page")

    page = new_page()
    open_app(page, f"{app_url}/Atribution?lang=zh")  # in the link's language
    text = _missing_page_box(page, "zh")
    assert "'/Atribution'" in text and "归因 (/Attribution)" in text, text

    page = new_page()
    open_app(page, f"{app_url}/?page=atribution")
    no_exception(page)
    text = _missing_page_box(page)
    assert "page='atribution'" in text and "Attribution (page=attribution)" in text, text
    assert page.get_by_test_id("stAlert").filter(has_text="Unknown page").count() == 0  # said once
