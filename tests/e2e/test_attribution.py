"""The Attribution page in a real browser: a link explains a sentence with coloured tokens and the honesty numbers,
a picture gets its overlays, a long computation shows progress and Cancel stops it, and pruning is one click."""

from __future__ import annotations

from urllib.parse import urlencode

from dynmask_app.state import AppState
from tests.e2e.harness import open_app, runs_started, wait_charts, wait_idle
from tests.e2e.test_browser import no_exception, query

TEXT = "The film was wonderful, but the ending dragged."


def attribution_url(app_url: str, **fields) -> str:
    fields.setdefault("input_ref", TEXT)
    return f"{app_url}/Attribution?{urlencode(AppState(page='attribution', **fields).to_query_params())}"


def test_a_link_shows_coloured_tokens_and_the_convergence_delta(app_url, page, screenshot):
    open_app(page, attribution_url(app_url, strategy="sliding_window", params=(("radius", 1),), attr_steps=128))
    no_exception(page)
    main = page.get_by_test_id("stMain")
    assert main.get_by_text("probability of 'positive'", exact=False).count() >= 1
    labels = [m.inner_text() for m in page.get_by_test_id("stMetricLabel").all()]
    assert "Convergence delta (masked)" in labels and "Integration steps" in labels
    chips = main.locator("span[title]")
    assert chips.count() == 3 * 12  # masked, unmasked, difference rows of the 12 tokens
    assert "wonderful = " in chips.nth(4).get_attribute("title")  # the value on hover
    wait_charts(page, 2)
    assert main.get_by_text("Which heads the prediction leans on").count() == 1
    assert query(page)["method"] == "ig" and query(page)["steps"] == "128"
    screenshot(page, "attribution-text")


def test_a_picture_gets_its_overlays(app_url, page, screenshot):
    open_app(page, attribution_url(app_url, input_kind="image", input_ref="shapes-star", model="shapes_vit",
                                   strategy="sliding_window", params=(("radius", 3),), attr_method="occlusion"))
    no_exception(page)
    wait_charts(page, 5)  # three overlays and two head charts
    overlays = page.get_by_test_id("stPlotlyChart").locator("svg image")
    assert overlays.count() >= 3, "masked, unmasked and difference over the picture"
    screenshot(page, "attribution-image")


def test_cancel_stops_a_long_attribution_and_it_can_restart(app_url, page):
    # 512 steps of attention attribution over 6 layers: seconds of work, long enough to press Cancel
    page.goto(attribution_url(app_url, attr_method="attention_attribution", attr_steps=512),
              wait_until="domcontentloaded")
    cancel = page.get_by_role("button", name="Cancel", exact=True)
    cancel.wait_for(timeout=60_000)
    page.get_by_test_id("stProgress").first.wait_for(timeout=30_000)  # the bar is drawn with the button
    since = runs_started(page)
    cancel.click()
    wait_idle(page, since=since, timeout=120)
    no_exception(page)
    assert page.get_by_text("The attribution was cancelled", exact=False).count() == 1
    assert page.get_by_test_id("stMetricLabel").count() == 0  # nothing half-done is shown
    restart = page.get_by_role("button", name="Compute the attribution", exact=True)
    assert restart.count() == 1


def test_pruning_heads_is_one_click(app_url, page):
    open_app(page, attribution_url(app_url, strategy="none", attr_method="saliency"))
    no_exception(page)
    since = runs_started(page)
    page.get_by_role("button", name="Switch off the 12 least important heads", exact=False).click()
    wait_idle(page, since=since, timeout=120)
    no_exception(page)
    q = query(page)
    assert q["s"] == "head_gate" and len(q["p.off"].split()) == 12
    sidebar = page.get_by_test_id("stSidebar")
    assert "Whole heads are switched off" in sidebar.inner_text()  # the strategy's summary under its picker
    assert sidebar.get_by_label("off", exact=True).input_value() == q["p.off"]


def test_a_link_value_in_a_chart_title_stays_text(app_url, page):
    # a target from a link reaches the info box and the title of "Scores per position": both show it as written
    hostile = 'similar:<a href="https://evil.example/">Session expired: log in</a>'
    open_app(page, attribution_url(app_url, attr_method="saliency", attr_target=hostile))
    no_exception(page)
    wait_charts(page, 2)
    assert page.locator('a[href*="evil.example"]').count() == 0, "no live link anywhere on the page"
    titles = " ".join(page.locator(".gtitle").all_text_contents())
    assert '<a href="https://evil.example/">Session expired: log in</a>' in titles  # the text, literally
