"""The step-by-step lesson and the display switches through AppTest: both languages, the numbers equal the run,
presenter mode and the language ride in the link and hold across a Run."""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.i18n import translate
from dynmask_app.page_registry import PAGES
from dynmask_app.state import AppState
from tests.app import pages
from tests.app.pages import ok

ROOT = Path(__file__).resolve().parents[2]
PAGE = "pages/3_Step_by_step.py"


def open_page(query: dict[str, str] | None = None, page: str = PAGE) -> AppTest:
    return pages.open_page(page, query)


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_lesson_runs_in_both_languages(lang) -> None:
    at = open_page({"page": "steps", "lang": lang})  # a link: it opens with its recipe, in its language
    ok(at)
    assert at.title[0].value == translate(PAGES["steps"].title, lang)
    assert (at.title[0].value == PAGES["steps"].title) == (lang == "en")
    at.button(key="steps.run").click().run()
    ok(at)
    assert at.session_state["steps.active"].lang == lang  # the Run keeps the session's language
    assert at.query_params["lang"] == lang
    (line,) = at.success
    assert line.value.startswith("These are the model's own numbers") == (lang == "en")  # translated in zh
    assert "e-0" in line.value  # the largest difference to the engine, ~1e-7
    assert len(at.get("plotly_chart")) >= 9  # Q, K, V, scores, scaled, mask, masked, weights, output, pitfall
    headers = [h.value for h in at.subheader]
    assert translate("The pitfall: four ways to apply the same mask", lang) in headers


def test_the_lesson_numbers_equal_the_run_for_the_chosen_head(minilm) -> None:
    link = AppState(page="steps", input_ref="apple banana orange", strategy="causal", layer=3, head=5)
    at = open_page(link.to_query_params())
    ok(at)
    diff = float(at.success[0].value.rsplit("difference ", 1)[1].rstrip(").").strip())
    assert diff < 1e-6
    assert at.selectbox(key="steps.lesson_layer").value == 3 and at.selectbox(key="steps.lesson_head").value == 5
    at.selectbox(key="steps.lesson_head").set_value(6).run()
    ok(at)
    assert at.query_params["head"] == "6"  # the view rides in the link


def test_presenter_mode_and_language_switch_at_once() -> None:
    at = open_page({"page": "steps", "present": "true"})
    ok(at)
    assert any("<style>" in m.value and "font-size" in m.value for m in at.markdown)
    at.button(key="steps.run").click().run()
    at.toggle(key="steps.present").set_value(False).run()
    ok(at)
    assert not any("<style>" in m.value for m in at.markdown)
    assert at.query_params["present"] == "false"
    at.get("button_group")[0].set_value("zh").run()  # the language switch
    ok(at)
    assert at.query_params["lang"] == "zh" and at.title[0].value == translate(PAGES["steps"].title, "zh")


def test_a_custom_mask_from_a_link_is_the_lesson_mask() -> None:
    from dynmask_core.masks.custom import encode_matrix

    lower = [[int(k <= q or k == 4) for k in range(5)] for q in range(5)]  # causal, plus everyone sees [SEP]
    link = AppState(page="steps", input_ref="apple banana orange", strategy="custom",
                    params=(("matrix", encode_matrix(lower)),))
    at = open_page(link.to_query_params())
    ok(at)
    assert "largest difference" in at.success[0].value
    (result,) = at.session_state["steps.shown"].values()
    assert result.masks[0, 0].int().tolist() == lower


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_sinks_lesson_in_both_languages(lang) -> None:
    at = open_page({"page": "sinks", "lang": lang}, page="pages/4_Attention_sinks.py")
    ok(at)
    assert (at.title[0].value == PAGES["sinks"].title) == (lang == "en")
    frame = at.dataframe[0].value
    kl = frame.iloc[:, -1].tolist()
    assert kl[0] == "" and float(kl[1]) > 5 and float(kl[2]) < 1  # the window breaks it, the sink brings it back
    answer = translate("yes", lang)
    at.radio(key="sinks.sink_quiz").set_value(answer).run()
    assert at.success, "the sink brings the top-1 back on this prompt: 'yes' is right"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_the_mlm_lab_pictures_masks_and_trains_in_both_languages(lang) -> None:
    at = open_page({"lang": lang, "seed": "3", "epochs": "3", "steps": "50"}, page="pages/5_MLM_lab.py")
    ok(at)
    assert (at.title[0].value == "Static vs dynamic masking in BERT-style pre-training") == (lang == "en")
    assert at.slider(key="mlm.epochs").value == 3 and at.number_input(key="mlm.seed").value == 3  # from the link
    epochs = [h.proto.body for h in at.get("html") if translate("epoch", lang) in h.proto.body]
    assert len([e for e in epochs if "<div" in e]) == 2 * 3  # static and dynamic, three epochs each
    at.button(key="mlm.train").click().run()
    ok(at)
    frame = at.dataframe[0].value
    assert list(frame.iloc[:, 0]) == ["static", "dynamic"] and len(frame) == 2
    assert at.query_params["steps"] == "50" and at.query_params["lang"] == lang


def test_a_bad_link_value_is_a_warning() -> None:
    at = open_page({"steps": "999999"}, page="pages/5_MLM_lab.py")
    assert not at.exception
    assert any("outside" in w.value for w in at.warning)


def test_check_yourself_is_answered_by_the_run() -> None:
    link = AppState(page="steps", input_ref="apple banana orange", strategy="causal")
    at = open_page(link.to_query_params())
    ok(at)
    quiz = next(n for n in at.number_input if n.key.startswith("steps.quiz_cells_"))
    at = quiz.set_value(10).run()  # causal on 5 positions: the 10 cells above the diagonal
    assert at.success[-1].value.startswith("Right: 10 cells")
    quiz = next(n for n in at.number_input if n.key.startswith("steps.quiz_cells_"))
    at = quiz.set_value(3).run()
    assert any(e.value.startswith("Not this time: 10 cells") for e in at.error)
