"""Issue 22 in a real browser: a choice keeps its value across the language and presenter switches (Run after
简体中文 then Presenter showed "op must be one of none, and, or, got 'no second strategy'"), and the step-by-step
quiz shows its token options literally (``3:orange`` showed as ``3``)."""

from __future__ import annotations

from urllib.parse import urlencode

from dynmask_app.i18n import translate
from dynmask_app.state import AppState
from tests.e2e.harness import open_app, runs_started, wait_charts, wait_idle
from tests.e2e.test_browser import no_exception, query


def click(page, locator, timeout: float = 120.0) -> None:
    """Clicks ``locator`` and waits for the rerun it triggers."""
    since = runs_started(page)
    locator.click()
    wait_idle(page, timeout, since=since)


OPTIONS = '[role="radiogroup"] label'  # a radio's options (its own label is a <label> too)


def radio_choices(page) -> dict[str, str]:
    """Each sidebar radio's label -> the option shown as checked ('' when none is)."""
    out = {}
    for radio in page.get_by_test_id("stSidebar").get_by_test_id("stRadio").all():
        label = radio.get_by_test_id("stWidgetLabel").inner_text().strip()
        checked = [o.inner_text().strip() for o in radio.locator(OPTIONS).all() if o.locator("input:checked").count()]
        out[label] = checked[0] if checked else ""
    return out


def test_run_after_chinese_then_presenter(app_url, page, screenshot):
    open_app(page, app_url)
    no_exception(page)
    # the sidebar's radios drawn (a busy server can still be sending them when the first run reads as finished)
    page.get_by_test_id("stSidebar").get_by_test_id("stRadio").nth(1).wait_for(timeout=60_000)
    assert radio_choices(page)["Combine with a second strategy"] == "no second strategy"
    click(page, page.get_by_test_id("stSidebar").get_by_text("简体中文", exact=True))
    no_exception(page)
    after_switch = radio_choices(page)  # checked below, after the Run
    presenter = page.get_by_test_id("stSidebar").get_by_text(translate("Presenter", "zh"), exact=True)
    click(page, presenter)
    click(page, page.get_by_role("button", name=translate("Run", "zh"), exact=True))
    no_exception(page)
    errors = page.get_by_test_id("stAlertContentError")
    assert errors.count() == 0, errors.first.inner_text()
    assert wait_charts(page, 1) >= 1 and page.locator(".st-key-mask_fig .main-svg").count() >= 1  # the heatmap
    # the browser was sent the value's label in the new language: it showed the choice, and sent it back
    assert after_switch[translate("Combine with a second strategy", "zh")] == translate("no second strategy", "zh")
    qp = query(page)
    assert (qp["lang"], qp["present"], qp.get("op", "none")) == ("zh", "true", "none")
    assert radio_choices(page)[translate("Combine with a second strategy", "zh")] == \
        translate("no second strategy", "zh")
    screenshot(page, "switches-zh-presenter-run")


def test_the_quiz_shows_token_options_literally(app_url, page):
    link = AppState(page="steps", input_ref="apple banana orange", strategy="causal")
    open_app(page, f"{app_url}/Step_by_step?{urlencode(link.to_query_params())}")
    no_exception(page)
    quiz = page.get_by_test_id("stRadio").filter(has_text="Which key does the last query")
    quiz.wait_for()
    options = [o.inner_text().strip() for o in quiz.locator(OPTIONS).all()]
    assert options == ["0:[CLS]", "1:apple", "2:banana", "3:orange", "4:[SEP]"], options
    assert "(4:[SEP])" in quiz.get_by_test_id("stWidgetLabel").inner_text()  # the question names the last query
    click(page, quiz.locator(OPTIONS).filter(has_text="3:orange"))
    no_exception(page)
    verdict = page.get_by_test_id("stAlert").filter(has_text="this time").or_(
        page.get_by_test_id("stAlert").filter(has_text="Right:"))
    text = verdict.first.inner_text()
    assert any(tok in text for tok in ("0:[CLS]", "1:apple", "2:banana", "3:orange", "4:[SEP]")), text
    assert "3:orange" in page.get_by_test_id("stMain").inner_text()
