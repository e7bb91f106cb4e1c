"""Presenter mode on a projector: every chart's text at least 18 px and every token label drawn, at 1024x768 and
1920x1080 (before, heatmap cells stayed ~10 px, axis labels ~11 px and a 14x14 mask dropped every second label)."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from dynmask_app.i18n import translate
from dynmask_app.state import AppState
from dynmask_core.viz.projector import PROJECTOR_PX
from tests.e2e.harness import open_app, runs_started, wait_charts, wait_idle
from tests.e2e.test_browser import no_exception

#: Every drawn text of every chart: [font size in px, the text].
CHART_TEXTS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"] svg text'))
    .filter(t => t.textContent.trim() && t.getBoundingClientRect().width > 0)
    .map(t => [parseFloat(getComputedStyle(t).fontSize), t.textContent])"""


def _small_texts(page) -> list:
    return [t for t in page.evaluate(CHART_TEXTS) if t[0] < PROJECTOR_PX]


@pytest.mark.parametrize("size", [(1024, 768), (1920, 1080)], ids=["1024x768", "1920x1080"])
def test_presenter_charts_read_from_the_back_of_the_room(app_url, new_page, size):
    page = new_page()
    page.set_viewport_size({"width": size[0], "height": size[1]})
    link = AppState(page="playground", present=True, lang="zh")
    open_app(page, f"{app_url}/?{urlencode(link.to_query_params())}")
    since = runs_started(page)
    page.get_by_role("button", name=translate("Run", "zh"), exact=True).click()
    wait_idle(page, since=since)
    no_exception(page)
    wait_charts(page, 1)
    assert _small_texts(page) == []
    tokens = page.evaluate("""() => document.querySelector('[data-testid="stPlotlyChart"] .js-plotly-plot')
                                      .data[0].x.length""")
    drawn = page.locator('[data-testid="stPlotlyChart"]').first.locator(".xtick text").count()
    assert drawn == tokens, "every key's label is drawn"
    # at 1024x768 the four metrics read "77.…", "93.…", "KL（基…", "0…" in a 515 px column between the page margins
    assert page.evaluate(CUT_METRICS) == [], "a metric cut short"
    steps = AppState(page="steps", input_ref="apple banana orange", strategy="causal", present=True)
    open_app(page, f"{app_url}/Step_by_step?{urlencode(steps.to_query_params())}")
    no_exception(page)
    wait_charts(page, 9)
    assert _small_texts(page) == []  # the numbers in the cells too


#: Metric labels, numbers and changes cut short by their box.
CUT_METRICS = """() => Array.from(document.querySelectorAll(
      '[data-testid="stMetricValue"] div, [data-testid="stMetricLabel"] p, [data-testid="stMetricDelta"] div'))
    .filter(e => e.textContent.trim() && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""

#: Texts in the sidebar cut short by their box (an ellipsis or a hidden overflow).
CUT_TEXTS = """() => Array.from(document.querySelectorAll(
      '[data-testid="stSidebar"] span, [data-testid="stSidebar"] p, [data-testid="stSidebar"] label'))
    .filter(e => e.textContent.trim() && e.scrollWidth > e.clientWidth + 1).map(e => e.textContent)"""


@pytest.mark.parametrize("present", [False, True], ids=["normal", "presenter"])
def test_the_sidebar_shows_its_labels_whole(app_url, new_page, present):
    page = new_page()
    page.set_viewport_size({"width": 1024, "height": 768})
    open_app(page, f"{app_url}/?{urlencode(AppState(page='playground', present=present).to_query_params())}")
    no_exception(page)
    assert page.evaluate(CUT_TEXTS) == []
    sidebar = page.get_by_test_id("stSidebar").bounding_box()
    for name in ("English", "简体中文", "Presenter"):
        box = page.get_by_test_id("stSidebar").get_by_text(name, exact=True).first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= sidebar["x"] + sidebar["width"], name
        label = page.get_by_test_id("stSidebar").get_by_text(name, exact=True).first
        assert label.evaluate("e => e.scrollWidth <= e.clientWidth + 1"), f"{name} is cut"


#: Per chart: how many key labels overlap the chart's title.
TITLE_OVERLAPS = """() => Array.from(document.querySelectorAll('[data-testid="stPlotlyChart"]')).map(chart => {
    const title = chart.querySelector('.gtitle'); if (!title) return 0;
    const tb = title.getBoundingClientRect();
    return Array.from(chart.querySelectorAll('.xtick text')).map(t => t.getBoundingClientRect())
      .filter(r => r.top < tb.bottom && r.bottom > tb.top && r.left < tb.right && r.right > tb.left).length; })"""


@pytest.mark.parametrize("present", [False, True], ids=["normal", "presenter"])
def test_the_lesson_chart_titles_clear_the_column_labels(app_url, new_page, present):
    page = new_page()
    page.set_viewport_size({"width": 1024, "height": 768})
    steps = AppState(page="steps", input_ref="apple banana orange", strategy="causal", present=present)
    open_app(page, f"{app_url}/Step_by_step?{urlencode(steps.to_query_params())}")
    no_exception(page)
    wait_charts(page, 9)
    assert set(page.evaluate(TITLE_OVERLAPS)) == {0}
    if present:
        assert _small_texts(page) == []
