"""Issue 22, item 7 in a real browser: in Chinese mode no English sentence is left on a page, results and sidebar,
charts included. Each page is opened with ``lang=zh`` (a text, a picture and a recording on the Playground, then
Compare, Attribution and the three lessons), run where it has a Run button, every tab of the results opened; then
all the visible text of the main area and of the sidebar, the SVG text of every chart and every chart's hover
templates and trace names are searched with the rule of :mod:`tests.english` (the text of ``code`` elements, values
and commands, is taken out first). A failure prints each English sentence and where it was.

The check is not blind: on the English pages it finds 56 to 68 English sentences a page (Playground with a text, a
picture, a recording; Compare; Attribution), e.g. ``main: 'In words: The top prediction stayed the same; KL'``,
``sidebar: 'AND: both must allow'``, ``chart svg: 'key (attended to'`` (the heatmap's axis title) and ``chart
hover: 'query   key   weight'``; :func:`test_the_check_sees_english_in_english` keeps proving it.
"""

from __future__ import annotations

from urllib.parse import urlencode

import pytest

from dynmask_app.i18n import translate
from dynmask_app.page_registry import PAGES, url_path
from dynmask_app.state import AppState
from dynmask_app.views.mlm import DEFAULT_TEXT as MLM_TEXT
from tests.e2e.harness import open_app, runs_started, wait_idle
from tests.e2e.test_browser import no_exception
from tests.english import chart_text, literals, offenders

#: Everything a student can read: the main area's and the sidebar's text, each chart's SVG text, its traces' names
#: and hover templates (shown on hover). ``code`` elements and text set in a monospace font (values: tokens, ids,
#: commands) are hidden while the text is read, then shown again.
TEXTS = """() => {
  const areas = ['stMain', 'stSidebar'].map(id => document.querySelector(`[data-testid="${id}"]`)).filter(Boolean);
  const mono = e => e.tagName === 'CODE' || /monospace/.test(getComputedStyle(e).fontFamily);
  const values = areas.flatMap(a => Array.from(a.querySelectorAll('*')))
    .filter(e => mono(e) && !(e.parentElement && mono(e.parentElement)));
  const shown = values.map(e => e.style.display);
  values.forEach(e => { e.style.display = 'none'; });  // the values out of the text read below
  const text = id => { const el = document.querySelector(`[data-testid="${id}"]`); return el ? el.innerText : ''; };
  const out = {main: text('stMain'), sidebar: text('stSidebar')};
  values.forEach((e, i) => { e.style.display = shown[i]; });
  const charts = Array.from(document.querySelectorAll('.js-plotly-plot'));
  out.svg = Array.from(document.querySelectorAll('[data-testid="stMain"] svg text, [data-testid="stSidebar"] svg text'))
    .map(t => t.textContent).filter(s => s && s.trim());
  out.hover = charts.flatMap(g => (g.data || []).flatMap(d => [d.name || '', d.hovertemplate || '']));
  return out;
}"""

#: ``(name, page id, recipe fields of the link)``.
CASES = [
    ("playground-text", "playground", {}),
    ("playground-image", "playground", {"input_kind": "image", "input_ref": "shapes-star", "model": "shapes_vit"}),
    ("playground-audio", "playground", {"input_kind": "audio", "input_ref": "kw-yes", "model": "keywords_audio"}),
    ("compare", "compare", {}),
    ("attribution", "attribution", {"attr_steps": 8}),
    ("steps", "steps", {}),
    ("sinks", "sinks", {}),
]


def _link(app_url: str, page_id: str, lang: str = "zh", **fields) -> str:
    state = AppState(page=page_id, lang=lang, **{**PAGES[page_id].defaults, **fields})
    return f"{app_url}/{url_path(PAGES[page_id].file)}?{urlencode(state.to_query_params())}"


def _click(page, locator, timeout: float = 300.0) -> None:
    since = runs_started(page)
    locator.click()
    wait_idle(page, timeout, since=since)


def _run_and_open_tabs(page, lang: str) -> None:
    """Run (where the page has a Run button), then open every tab of the results, so each one's charts are drawn."""
    run = page.get_by_role("button", name=translate("Run", lang), exact=True)
    if run.count():
        _click(page, run)
    no_exception(page)
    tabs = page.get_by_test_id("stMain").get_by_role("tab")
    for i in range(tabs.count()):
        _click(page, tabs.nth(i))
        page.wait_for_timeout(500)  # plotly.js draws its SVG after the run ends
    no_exception(page)
    page.wait_for_timeout(1500)


def english_on(page, inputs: list[str]) -> list[str]:
    """The English sentences on the page (``where: sentence (in: line)``), once its literals are out."""
    found = page.evaluate(TEXTS)
    allowed = literals(inputs)
    items = [("main", found["main"]), ("sidebar", found["sidebar"])]
    items += [("chart svg", s) for s in found["svg"]]
    items += [("chart hover", chart_text(h)) for h in found["hover"] if h]
    return offenders(items, allowed)


def _inputs(page_id: str, fields: dict) -> list[str]:
    state = AppState(page=page_id, **{**PAGES[page_id].defaults, **fields})
    return [state.input_ref] if state.input_kind == "text" else []


@pytest.mark.parametrize(("name", "page_id", "fields"), CASES, ids=[c[0] for c in CASES])
def test_no_english_sentence_in_chinese(app_url, new_page, screenshot, name, page_id, fields):
    page = new_page()
    open_app(page, _link(app_url, page_id, **fields), timeout=300)
    no_exception(page)
    _run_and_open_tabs(page, "zh")
    found = english_on(page, _inputs(page_id, fields))
    if found:
        screenshot(page, f"chinese-{name}")
    assert not found, f"{name}: English left in Chinese mode:\n" + "\n".join(found)


def test_the_mlm_lab_has_no_english_sentence_in_chinese(app_url, new_page):
    page = new_page()
    open_app(page, f"{app_url}/{url_path('pages/5_MLM_lab.py')}?lang=zh&seed=3&epochs=3&steps=50", timeout=300)
    no_exception(page)
    page.wait_for_timeout(1000)
    found = english_on(page, [MLM_TEXT])
    assert not found, "mlm: English left in Chinese mode:\n" + "\n".join(found)


def test_link_warnings_and_the_missing_page_are_chinese(app_url, new_page):
    page = new_page()
    open_app(page, f"{app_url}/?page=playground&lang=zh&s=nosuch&model=&v=9&zzz=1", timeout=300)
    no_exception(page)
    assert page.get_by_test_id("stAlertContentWarning").count() >= 3  # the link's problems, one by one
    found = english_on(page, _inputs("playground", {}))
    page = new_page()
    open_app(page, f"{app_url}/?page=nosuch&lang=zh", timeout=300)
    no_exception(page)
    assert "nosuch" in page.get_by_test_id("stMain").inner_text()
    found += english_on(page, _inputs("playground", {}))
    assert not found, "English left in Chinese mode:\n" + "\n".join(found)


def test_the_check_sees_english_in_english(app_url, new_page):
    """The same check on the English Playground finds English everywhere: it is not blind."""
    page = new_page()
    open_app(page, _link(app_url, "playground", lang="en"), timeout=300)
    _run_and_open_tabs(page, "en")
    found = english_on(page, _inputs("playground", {}))
    assert len(found) > 20, found
    wheres = {f.split(":")[0] for f in found}
    assert {"main", "sidebar", "chart svg", "chart hover"} <= wheres, wheres
