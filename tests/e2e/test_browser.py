"""The app in a real browser (headless Debian chromium via Playwright): Run shows heatmaps, a link reproduces
a run (dynamic strategy included, on a fresh server), bad links warn, Compare renders, a bad model id is an error
message and not a crash. Each test opens its own browser context."""

from __future__ import annotations

import re
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.e2e.harness import (
    EXCEPTION,
    app_server,
    click_run,
    mask_data,
    open_app,
    output_numbers,
    pick,
    runs_started,
    set_text,
    wait_charts,
    wait_idle,
)

SENTENCE = "The weather today is cold, but the coffee is warm and wonderful."
CUSTOM_MODEL = "...or any Hugging Face id / local folder"


def no_exception(page) -> None:
    errors = page.locator(EXCEPTION)
    assert errors.count() == 0, f"the app shows an exception: {errors.first.inner_text()[:500]}"


def widget_label(page, text: str):
    """The sidebar widget labelled exactly ``text``."""
    return page.get_by_test_id("stSidebar").get_by_test_id("stWidgetLabel").filter(
        has_text=re.compile(rf"^{re.escape(text)}$"))


def query(page) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(page.url).query, keep_blank_values=True).items()}


def test_run_shows_heatmaps(app_url, page, screenshot):
    open_app(page, app_url)
    no_exception(page)
    set_text(page, SENTENCE)
    pick(page, "Mask strategy", "Dilated window · static")  # the parameter widgets follow the strategy
    assert widget_label(page, "dilation").is_visible()
    pick(page, "Mask strategy", "Sliding window · static")
    assert widget_label(page, "dilation").count() == 0
    assert widget_label(page, "radius").is_visible()
    click_run(page)
    assert wait_charts(page, 1) >= 1  # the mask heatmap (first tab) at least
    bars = page.locator(".dm-output-bars")  # the output before and after: HTML bars, not a chart
    assert bars.count() == 1 and "Class probabilities" in bars.inner_text(), bars.count()
    no_exception(page)
    numbers = output_numbers(page)
    assert "KL(baseline ‖ masked)" in numbers
    qp = query(page)
    assert qp["v"] == "2" and qp["input"] == "text" and qp["ref"] == SENTENCE
    assert qp["s"] == "sliding_window" and qp["model"] == "minilm"
    # The other chart tabs: a hidden tab's chart is not sent until its tab is opened; then it is drawn, and the
    # tabs opened for this view keep theirs (mask + attention + diff + model view).
    assert page.locator(".st-key-attn_fig, .st-key-diff_fig, .st-key-model_view").count() == 0
    for tab, key in (("Attention weights", "attn_fig"), ("Masked − baseline", "diff_fig"),
                     ("Model view (all layers x heads)", "model_view")):
        page.get_by_role("tab", name=tab, exact=True).click()
        page.wait_for_selector(f".st-key-{key} .main-svg", timeout=60_000)
    assert wait_charts(page, 4) == 4
    page.get_by_role("tab", name="Mask applied", exact=True).click()
    shot = screenshot(page, "playground-sliding-window")
    assert shot.stat().st_size > 10_000


#: The first tokens of the mask heatmap's key axis, as drawn.
KEYS_DRAWN = """() => { const g = document.querySelector('.st-key-mask_fig .js-plotly-plot');
    return g && g.data && g.data[0] ? Array.from(g.data[0].x).slice(0, 3) : []; }"""


def test_a_run_reruns_the_results_alone(app_url, page, minilm):
    """Run is a rerun of the results area only: the server sends nothing for the sidebar (it did: ~50 of a Run's
    ~100 messages, each also re-rendered by the browser)."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    from dynmask_core.modalities.text import count_tokens

    frames: list[bytes] = []
    page.on("websocket", lambda ws: ws.on("framereceived", lambda data: frames.append(data)))
    open_app(page, app_url)
    set_text(page, SENTENCE)
    # the token count under the text (its own small rerun, in the sidebar) has followed the new text
    page.wait_for_function("""want => { const el = document.querySelector(
        '.st-key-token_count [data-testid="stCaptionContainer"]'); return !!el && el.innerText.trim() === want; }""",
                           arg=f"{count_tokens(minilm, SENTENCE):,} tokens", timeout=60_000)
    wait_idle(page)
    frames.clear()
    click_run(page)
    wait_charts(page, 1)
    msgs = [ForwardMsg.FromString(f) for f in frames if isinstance(f, bytes)]
    roots = [m.metadata.delta_path[0] for m in msgs if m.WhichOneof("type") == "delta"]
    assert roots and set(roots) == {0}, f"deltas per root container (0 main, 1 sidebar): {roots}"
    assert query(page)["ref"] == SENTENCE  # the link follows the Run
    no_exception(page)


def test_a_quick_click_on_run_right_after_typing_runs_the_typed_text(app_url, page):
    """Typing, then a click as quick as a touchpad tap: the browser sends the text's commit and the click in one
    rerun of the sidebar's editor; the Run still happens, on the text just typed."""
    open_app(page, app_url)
    run = page.get_by_role("button", name="Run", exact=True).bounding_box()
    for text, first in (("Zebras quietly graze near the river.", "1:zebra"), ("Violins sing sweetly tonight.",
                                                                               "1:violins")):
        box = page.get_by_role("textbox", name="Text", exact=True)
        box.click()
        page.keyboard.press("Control+A")
        page.keyboard.type(text, delay=5)  # not committed: the field still has the focus
        since = runs_started(page)
        page.mouse.move(run["x"] + run["width"] / 2, run["y"] + run["height"] / 2)
        page.mouse.down()
        page.mouse.up()  # no pause between press and release
        wait_idle(page, since=since)
        page.wait_for_function(f"() => ({KEYS_DRAWN})()[1] === {first!r}", timeout=60_000)
        assert query(page)["ref"] == text
    no_exception(page)


#: Per drawn chart: the margins the figure asked for, those plotly drew it in, and whether every tick label lies inside
#: the chart. Plotly draws a figure in its margins, measures labels, colour bar and legend, and when they need more
#: room draws everything again in wider ones; the figures ask for enough room, so the browser draws each once.
CHART_FIT = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(g => {
    const box = g.querySelector('.main-svg').getBoundingClientRect(), s = g._fullLayout._size, m = g.layout.margin;
    const inside = Array.from(g.querySelectorAll('.xtick text, .ytick text')).every(t => {
        const r = t.getBoundingClientRect();
        return r.left >= box.left - 1 && r.right <= box.right + 1 && r.top >= box.top - 1 && r.bottom <= box.bottom + 1;
    });
    return {title: (g.layout.title && g.layout.title.text) || '', asked: [m.l, m.r, m.t, m.b],
            drawn: [s.l, s.r, s.t, s.b], inside};
})"""


def test_charts_are_drawn_once_in_the_room_they_ask_for(app_url, page):
    open_app(page, app_url)
    set_text(page, "Internationalization requires extraordinarily comprehensive documentation, 国际化 too.")
    click_run(page)
    wait_charts(page, 1)
    for tab, key in (("Attention weights", "attn_fig"), ("Masked − baseline", "diff_fig")):
        page.get_by_role("tab", name=tab, exact=True).click()
        page.wait_for_selector(f".st-key-{key} .main-svg", timeout=60_000)
    charts = page.evaluate(CHART_FIT)
    assert len(charts) == 3, charts  # the mask, the attention, the difference
    for chart in charts:
        assert chart["drawn"] == chart["asked"], chart  # no label, colour bar or legend needed wider margins
        assert chart["inside"], chart
    no_exception(page)


@pytest.mark.parametrize("strategy", ["Random (dynamic) · dynamic"], ids=["random_dynamic"])
def test_link_reproduces_the_run_on_a_fresh_server(app_url, new_page, strategy):
    first = new_page()
    open_app(first, app_url)
    set_text(first, SENTENCE)
    pick(first, "Mask strategy", strategy)
    click_run(first)
    wait_charts(first, 1)
    no_exception(first)
    numbers = output_numbers(first)
    bars = first.locator(".dm-output-bars").inner_text()
    mask = mask_data(first)
    link = first.url
    qp = query(first)
    assert qp["s"] == "random_dynamic" and qp.get("seed") == numbers["seed"], (qp, numbers)

    # A fresh server process: nothing cached, so the numbers are recomputed from the link alone.
    with app_server(timeout=90) as other_url:
        second = new_page()
        open_app(second, other_url + link[len(app_url):])
        wait_charts(second, 1)
        no_exception(second)
        assert output_numbers(second) == numbers
        assert second.locator(".dm-output-bars").inner_text() == bars
        assert mask_data(second) == mask  # the same random pattern, drawn again from the seed
        assert query(second)["seed"] == numbers["seed"]


def test_bad_link_parameter_warns(app_url, page, screenshot):
    open_app(page, app_url + "/?v=1&s=sliding_window&p.radius=-5")
    wait_charts(page, 1)
    no_exception(page)
    alert = page.get_by_test_id("stAlert").filter(has_text="radius")
    assert alert.count() >= 1
    text = alert.first.inner_text()
    assert "-5" in text and "default" in text, text
    assert page.get_by_role("spinbutton", name="radius").input_value() == "2"
    screenshot(page, "bad-link-warning")


def test_compare_page_renders(app_url, page, screenshot):
    open_app(page, app_url + "/Compare")
    no_exception(page)
    assert page.get_by_role("heading", name="Compare two strategies").count() == 1
    set_text(page, SENTENCE)
    click_run(page)
    assert wait_charts(page, 5) >= 5  # mask + attention for A and B, and B minus A
    page.wait_for_selector('[data-testid="stVegaLiteChart"]')
    assert page.get_by_test_id("stVegaLiteChart").count() >= 2  # per-layer entropy / allowed
    no_exception(page)
    assert query(page)["page"] == "compare"
    seed = query(page)["seed"]
    since = runs_started(page)
    page.get_by_role("button", name="Re-draw (new seed)").click()
    wait_idle(page, since=since)
    wait_charts(page, 5)
    no_exception(page)
    assert query(page)["seed"] != seed
    screenshot(page, "compare")


def test_unknown_model_is_an_error_not_a_crash(app_url, page, screenshot):
    open_app(page, app_url)
    field = page.get_by_role("textbox", name=CUSTOM_MODEL, exact=True)
    field.fill("no-such-org/no-such-model")
    since = runs_started(page)
    field.press("Enter")
    wait_idle(page, since=since)
    error = page.get_by_test_id("stAlert").filter(has_text="no-such-org/no-such-model")
    error.first.wait_for()
    no_exception(page)
    click_run(page)
    assert error.count() == 1  # one message, in one place (not repeated under the Run button)
    no_exception(page)
    screenshot(page, "unknown-model")
    # The app keeps working: back to the bundled model, Run, results.
    field.fill("")
    since = runs_started(page)
    field.press("Enter")
    wait_idle(page, since=since)
    click_run(page)
    assert wait_charts(page, 1) >= 1 and page.locator(".dm-output-bars").count() == 1
    no_exception(page)
    assert query(page)["model"] == "minilm"


def test_link_values_never_render_as_links_or_images(app_url, page, screenshot):
    """A link may carry anything: echoed in messages, it shows as text, never as a live link or a remote image."""
    from urllib.parse import urlencode

    hostile = {"v": "2", "s": "[click](https://evil.example/x)", "model": "![img](https://evil.example/p.png)",
               "layers": ",".join(map(str, range(4096))), **{f"p.k{i}": "1" for i in range(300)},
               "mode": "https://evil.example/y", "seed": ":red[www.evil.example] $x^2$"}
    open_app(page, app_url + "/?" + urlencode(hostile))
    no_exception(page)
    alerts = page.get_by_test_id("stAlert")
    alerts.first.wait_for()
    assert 1 <= alerts.count() <= 6, alerts.count()  # summarised, not one box per bad key
    assert alerts.locator("a").count() == 0 and alerts.locator("img").count() == 0
    assert page.locator("img[src*='evil.example']").count() == 0
    assert page.locator(".katex").count() == 0  # no math rendered from the link either
    text = " ".join(alerts.all_inner_texts()).replace("\u2060", "")  # word joiners break autolinks, unseen
    assert "[click](https://evil.example/x)" in text and "![img](https://evil.example/p.png)" in text
    assert all(len(t) < 800 for t in alerts.all_inner_texts())
    screenshot(page, "hostile-link")
