"""Every text a student reads is Chinese in Chinese mode (issue 22, item 7), checked through AppTest: each page is
opened with ``lang=zh``, run, and every text element (markdown, captions, metrics, alerts, buttons, widget labels,
options and help, tabs, expanders, HTML blocks, table headers, and the words of every chart) is searched for English
sentences by the one rule of :mod:`tests.english`. The real-browser twin is ``tests/e2e/test_chinese.py``."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_app.views.mlm import DEFAULT_TEXT as MLM_TEXT
from tests.app import pages
from tests.app.pages import no_exception
from tests.english import chart_text, literals, offenders

#: ``(name, page file, page id, link values besides page and lang)``: a Playground per kind of input, then every page.
CASES = [
    ("playground-text", "app.py", "playground", {}),
    ("playground-image", "app.py", "playground", {"input": "image", "ref": "shapes-star", "model": "shapes_vit"}),
    ("playground-audio", "app.py", "playground", {"input": "audio", "ref": "kw-yes", "model": "keywords_audio"}),
    ("compare", "pages/1_Compare.py", "compare", {}),
    ("attribution", "pages/2_Attribution.py", "attribution", {"steps": "8"}),
    ("steps", "pages/3_Step_by_step.py", "steps", {}),
    ("sinks", "pages/4_Attention_sinks.py", "sinks", {}),
]
#: The keys of a chart spec that hold words: titles, names, hover templates, a legend's domain (its run names).
_CHART_WORDS = ("text", "title", "name", "hovertemplate", "domain")
_MARKUP = re.compile(r"`[^`]*`|<[^>]*>")  # code spans and HTML tags: values and markup, not words


def _words(text: Any) -> str:
    return _MARKUP.sub(" ", str(text or "").replace("\\", ""))  # markdown's escapes (messages.plain) out


def _chart_words(spec: Any, path: str = "") -> Iterator[tuple[str, str]]:
    """The words of a plotly or Vega-Lite spec: titles, axis and legend titles, trace names, annotations, colour bar
    words and hover templates (never its data: values, tick labels and datasets)."""
    if isinstance(spec, dict):
        for key, value in spec.items():
            if key in ("data", "datasets", "x", "y", "z", "customdata", "values", "tickvals", "ticktext") \
                    and not (key == "ticktext" and "colorbar" in path):
                if key == "data" and isinstance(value, list):  # plotly traces: their names and hover words
                    for i, trace in enumerate(value):
                        if isinstance(trace, dict):
                            yield from _chart_words({k: v for k, v in trace.items()
                                                     if k in ("name", "hovertemplate", "colorbar")}, f"{path}.data{i}")
                continue
            yield from _chart_words(value, f"{path}.{key}")
    elif isinstance(spec, list):
        for i, value in enumerate(spec):
            yield from _chart_words(value, f"{path}[{i}]")
    elif isinstance(spec, str) and (re.sub(r"\[\d+\]$", "", path.rsplit(".", 1)[-1]) in _CHART_WORDS
                                    or "ticktext" in path):
        yield path, chart_text(spec)


def texts(at: AppTest) -> Iterator[tuple[str, str]]:
    """``(where, text)`` for every text element of the page (sidebar included)."""
    for kind in ("title", "header", "subheader", "markdown", "caption", "info", "warning", "error", "success"):
        for element in getattr(at, kind):
            if kind == "markdown" and str(element.value).lstrip().startswith("<style>"):
                continue  # the page's CSS
            yield kind, _words(element.value)
    for metric in at.metric:
        yield "metric", f"{_words(metric.label)} / {metric.value} / {metric.proto.delta}"
    for kind in ("button", "selectbox", "radio", "toggle", "text_input", "text_area", "number_input", "slider",
                 "multiselect", "checkbox", "tabs", "expander"):
        for element in at.get(kind) if kind in ("button",) else getattr(at, kind):
            yield kind, _words(getattr(element, "label", ""))
            yield f"{kind} help", _words(getattr(element.proto, "help", ""))
            yield f"{kind} placeholder", _words(getattr(element.proto, "placeholder", ""))
            for option in getattr(element.proto, "options", ()):
                yield f"{kind} option", _words(option)
    for element in at.get("download_button"):
        yield "download button", _words(element.proto.label)
    for element in at.get("html"):
        yield "html", re.sub(r"<[^>]*>", "\n", element.proto.body)
    for frame in at.dataframe:
        yield "table header", " | ".join(map(str, frame.value.columns))
    for kind in ("plotly_chart", "vega_lite_chart"):
        for chart in at.get(kind):
            for where, words in _chart_words(json.loads(chart.proto.spec)):
                yield f"{kind}{where}", words


def _open(file: str, page: str, extra: dict[str, str]) -> AppTest:
    at = pages.open_page(file, {"page": page, "lang": "zh", **extra})  # a link: its recipe, in Chinese
    no_exception(at)
    run = [b for b in at.button if b.key and b.key.endswith(".run")]
    if run:
        run[0].click().run()
        no_exception(at)
    return at


def _inputs(page: str, at: AppTest) -> list[str]:
    """The page's input text (shown literally: the text area, the lesson's words, the tokens)."""
    state = PageSession(page, at.session_state).active or AppState.default(page)
    return [state.input_ref]


@pytest.mark.parametrize(("name", "file", "page", "extra"), CASES, ids=[c[0] for c in CASES])
def test_the_page_has_no_english_sentence_in_chinese(name, file, page, extra) -> None:
    at = _open(file, page, extra)
    assert not at.error, [e.value for e in at.error]
    found = offenders(texts(at), literals(_inputs(page, at)))
    assert not found, f"{name}: English left in Chinese mode:\n" + "\n".join(found)


def test_the_mlm_lab_has_no_english_sentence_in_chinese() -> None:
    at = pages.open_page("pages/5_MLM_lab.py", {"lang": "zh", "seed": "3", "epochs": "3", "steps": "50"})
    no_exception(at)
    found = offenders(texts(at), literals([MLM_TEXT]))
    assert not found, "mlm: English left in Chinese mode:\n" + "\n".join(found)


def test_link_warnings_and_the_missing_page_message_are_chinese() -> None:
    at = pages.open_page("app.py", {"page": "playground", "lang": "zh", "s": "nosuch", "model": "", "v": "9",
                                    "zzz": "1", "layers": "0,99"})
    no_exception(at)
    assert len(at.warning) >= 3, [w.value for w in at.warning]  # the link's problems, one by one
    found = offenders(texts(at), literals(_inputs("playground", at)))
    assert not found, "\n".join(found)
    at = pages.open_page("app.py", {"page": "nosuch", "lang": "zh"})
    no_exception(at)
    assert any("nosuch" in w.value for w in at.warning)
    found = offenders(texts(at), literals(_inputs("playground", at)))
    assert not found, "\n".join(found)


def test_the_rule_finds_english() -> None:
    """The same pages in English are full of English sentences: the rule is not blind."""
    at = pages.open_page("app.py", {"page": "playground", "lang": "en"})
    at.button(key="pg.run").click().run()
    found = offenders(texts(at), literals(_inputs("playground", at)))
    assert len(found) > 20 and any("In words" in f for f in found), found[:5]
