"""The step-by-step lesson and the display switches through AppTest: both languages, the numbers equal the run,
presenter mode and the language ride in the link and hold across a Run."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.i18n import translate
from dynmask_app.page_registry import PAGES
from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from tests import ROOT
from tests.app import pages
from tests.app.pages import ok

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
    assert PageSession("steps", at.session_state).active.lang == lang  # the Run keeps the session's language
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
    assert any("html { font-size" in m.value for m in at.markdown)  # the presenter's large type
    at.button(key="steps.run").click().run()
    at.toggle(key="steps.present").set_value(False).run()
    ok(at)
    assert not any("html { font-size" in m.value for m in at.markdown)  # the sidebar's base CSS stays
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
    (result,) = PageSession("steps", at.session_state).shown.values()
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
    trained(at)  # the server's training queue trains it in the background; the page follows it
    ok(at)
    frame = at.dataframe[0].value
    assert list(frame.iloc[:, 0]) == ["static", "dynamic"] and len(frame) == 2
    assert at.query_params["steps"] == "50" and at.query_params["lang"] == lang
    assert "mlm.cancel" not in [b.key for b in at.button]  # the training has ended: nothing left to cancel


MLM = "pages/5_MLM_lab.py"


def trained(at: AppTest, timeout: float = 240) -> AppTest:
    """Reruns the MLM page until its training has ended (the browser's fragment polls by itself; AppTest does not)."""
    import time

    deadline = time.monotonic() + timeout
    while "mlm.cancel" in [b.key for b in at.button]:
        assert time.monotonic() < deadline, "the training did not end"
        time.sleep(0.5)
        at.run()
    return at


@pytest.fixture
def fresh_queue():
    """The server's training queue, new for the test (results kept from other tests would be returned at once)."""
    from dynmask_app.server import training

    training.queue.clear()
    yield
    training.queue.clear()


@pytest.fixture(scope="module")
def tiny_lab():
    """A real lab result of a few steps of a very small BERT (seconds), to show without training in the page."""
    from dynmask_core.lessons import mlm

    return mlm.run_lab(mlm.LabConfig(steps=4, batch_size=8, hidden_size=32, layers=1, heads=2, intermediate_size=64,
                                     warmup_steps=1, eval_every=2), device="cpu")


@pytest.mark.parametrize("outcome", ["done", "failed", "broken", "cancelled"])
def test_the_mlm_labs_cancel_goes_when_the_training_ends(outcome, tiny_lab, monkeypatch, fresh_queue) -> None:
    import threading

    from dynmask_core.lessons import mlm

    cancelled = threading.Event()

    def run_lab(config, *, progress=None, observe=None, **kwargs):
        progress(0.5, "static: step 2/4")
        if outcome == "failed":
            raise ValueError("no corpus here")
        if outcome == "broken":
            raise RuntimeError("boom")
        if outcome == "cancelled":  # runs until Cancel: the queue's progress callback then stops it
            try:
                while True:
                    progress(0.5, "static: step 2/4")
                    threading.Event().wait(0.01)
            except BaseException:
                cancelled.set()
                raise
        return tiny_lab

    monkeypatch.setattr(mlm, "run_lab", run_lab)
    at = open_page({"steps": "50"}, page=MLM)
    ok(at)
    assert [b.key for b in at.button if b.key == "mlm.train"]
    at.button(key="mlm.train").click().run()
    assert not at.exception, [e.value for e in at.exception]
    if outcome == "cancelled":
        at.button(key="mlm.cancel").click().run()  # this session is the only one waiting: the training stops
        assert cancelled.wait(20)
    trained(at)
    assert not at.exception, [e.value for e in at.exception]
    assert "mlm.cancel" not in [b.key for b in at.button]  # the run is over: its Cancel is gone, and its bar
    assert not at.get("progress")
    errors = [e.value.replace("\\", "") for e in at.error]  # shown literally: markdown punctuation is escaped
    if outcome == "done":
        assert not errors and list(at.dataframe[0].value.iloc[:, 0]) == ["static", "dynamic"]
    elif outcome == "failed":
        assert errors == ["no corpus here"] and not at.dataframe
    elif outcome == "broken":
        assert errors == ["Something went wrong while training: RuntimeError: boom"] and not at.dataframe
    else:
        assert not errors and not at.dataframe


def test_robertas_table_1_shows_the_published_digits(tiny_lab) -> None:
    at = AppTest.from_file(str(ROOT / MLM), default_timeout=180)
    at.session_state["mlm.result"] = tiny_lab  # a run to show, as after Train both
    at.run()
    ok(at)
    run, table1 = (d.value for d in at.dataframe)
    assert len(run.columns) == 5
    assert table1["MNLI-m"].tolist() == ["84.3", "84.3", "84.0"]  # 84.0 as printed, not 84
    assert table1.iloc[:, 1:].map(len).eq(4).all().all()  # every published number with its one decimal
    assert table1["SQuAD 2.0 F1"].tolist() == ["76.3", "78.3", "78.7"]
    assert table1["SST-2"].tolist() == ["92.8", "92.5", "92.9"]


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
