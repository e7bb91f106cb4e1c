"""Choice widgets keep their value (the id, never a shown label) across any sequence of language and presenter
switches (issue 22, item 1), and options built from tokens are shown literally (item 2).

Streamlit hears a selectbox or radio back from the browser as the *label* it shows. AppTest sends the label of the
widget's current value in this run's language, which a browser does not: a browser keeps the label it was last
sent (on first draw, or with ``set_value``) or the one clicked, and sends that with every rerun. :class:`Browser`
makes AppTest send what a browser would, so a label left over from the other language reaches the app as it does
in a classroom ("op must be one of none, and, or, got 'no second strategy'" after 简体中文, then Presenter, then Run).
"""

from __future__ import annotations

from typing import Any

import pytest
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1.element_tree import ElementTree, InitialValue, Radio, Selectbox

from dynmask_app.editor.widgets import strategy_ids
from dynmask_app.i18n import translate
from dynmask_app.messages import plain
from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core.attribution.methods import METHODS
from dynmask_core.masks import MODES
from dynmask_core.modalities import KINDS
from dynmask_core.models import PRESETS
from dynmask_core.recipe.recipe import COMPOSE_OPS
from dynmask_core.samples import TEXT_EXAMPLES
from tests.app import pages
from tests.app.pages import ok

#: The ids each choice widget may hold, by the last part of its key (a new string-valued choice must be added here).
IDS: dict[str, tuple[Any, ...]] = {
    "op": COMPOSE_OPS, "kind": KINDS, "s1": tuple(strategy_ids()), "s2": tuple(strategy_ids()), "mode": tuple(MODES),
    "attr_method": tuple(METHODS), "model": tuple(PRESETS), "example": (None, *TEXT_EXAMPLES),
    "sink_quiz": (None, "yes", "no"), "view_run": ("masked", "baseline"),
}

#: Sequences of display switches: ``zh``/``en`` click the language, ``present`` flips Presenter mode.
SEQUENCES = [("zh", "present"), ("zh", "en"), ("present", "zh", "present", "en", "zh")]


class Browser:
    """The label a browser holds for each selectbox and radio, sent instead of AppTest's own with every rerun."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.held: dict[str, str] = {}
        original = ElementTree.get_widget_states
        browser = self

        def get_widget_states(tree: ElementTree) -> Any:
            states = original(tree)
            sent = {w.id: w for w in states.widgets}
            for node in tree:
                if not isinstance(node, (Radio, Selectbox)) or node.id not in sent:
                    continue
                if not isinstance(node._value, InitialValue):  # the user picked it now: the label clicked
                    browser.held[node.id] = sent[node.id].string_value
                elif node.id in browser.held:
                    sent[node.id].string_value = browser.held[node.id]
            return states

        monkeypatch.setattr(ElementTree, "get_widget_states", get_widget_states)

    def saw(self, at: AppTest) -> AppTest:
        """After a run: what the server sent (``set_value``), or the shown value of a widget drawn the first time."""
        for node in [*at.radio, *at.selectbox]:
            proto = node.proto
            if proto.set_value and proto.HasField("raw_value"):
                self.held[node.id] = proto.raw_value
            elif node.id not in self.held and node.index is not None:
                self.held[node.id] = node.options[node.index]
        return at


def run(browser: Browser, at: AppTest) -> AppTest:
    return browser.saw(at.run())


def switch(browser: Browser, at: AppTest, ns: str, step: str) -> AppTest:
    if step == "present":
        toggle = at.toggle(key=f"{ns}.present")
        toggle.set_value(not toggle.value)
    else:
        at.get("button_group")[0].set_value(step)  # the language switch
    return run(browser, at)


def choices_hold_ids(at: AppTest) -> None:
    """No error, and every selectbox and radio holds one of its ids."""
    ok(at)
    for node in [*at.radio, *at.selectbox]:
        value, part = node.value, node.key.rsplit(".", 1)[-1]
        if isinstance(value, int) and not isinstance(value, bool):
            assert 0 <= value < len(node.options), (node.key, value)
        elif part.startswith("quiz_"):
            continue  # its ids are the tokens: see test_the_quiz_options_show_the_tokens_literally
        else:
            assert part in IDS, f"{node.key}: a choice widget the test does not know; add its ids to IDS"
            assert value in IDS[part], (node.key, value)


def open_page(browser: Browser, file: str, query: dict[str, str] | None = None) -> AppTest:
    at = pages.open_page(file, query)
    return browser.saw(at)


@pytest.mark.parametrize("sequence", SEQUENCES, ids="-".join)
def test_playground_choices_survive_display_switches_and_run(monkeypatch, sequence) -> None:
    browser = Browser(monkeypatch)
    at = open_page(browser, "app.py")
    at.selectbox(key="pg.s1").set_value("topk")  # a recipe away from every default
    run(browser, at)
    at.radio(key="pg.op").set_value("and")
    run(browser, at)
    at.selectbox(key="pg.s2").set_value("causal")
    at.selectbox(key="pg.mode").set_value("bias")
    run(browser, at)
    choices_hold_ids(at)
    for step in sequence:
        at = switch(browser, at, "pg", step)
        choices_hold_ids(at)
    at.button(key="pg.run").click()
    at = run(browser, at)
    choices_hold_ids(at)
    state = PageSession("playground", at.session_state).active
    assert (state.strategy, state.op, state.strategy2, state.mode) == ("topk", "and", "causal", "bias")
    assert state.lang == next((step for step in reversed(sequence) if step != "present"), "en")
    assert state.present == (sequence.count("present") % 2 == 1)
    assert at.get("plotly_chart"), "the run shows its heatmap"
    at = switch(browser, at, "pg", "en" if state.lang == "zh" else "zh")  # a switch after a Run: still the same
    at.button(key="pg.run").click()
    at = run(browser, at)
    choices_hold_ids(at)
    state = PageSession("playground", at.session_state).active
    assert state.op == "and" and state.strategy == "topk"


@pytest.mark.parametrize("sequence", SEQUENCES[:2], ids="-".join)
def test_compare_choices_survive_display_switches_and_run(monkeypatch, sequence) -> None:
    browser = Browser(monkeypatch)
    at = open_page(browser, "pages/1_Compare.py")
    at.selectbox(key="cmp.s1").set_value("causal")
    at.selectbox(key="cmp.s2").set_value("topk")
    at = run(browser, at)
    for step in sequence:
        at = switch(browser, at, "cmp", step)
        choices_hold_ids(at)
    at.button(key="cmp.run").click()
    at = run(browser, at)
    choices_hold_ids(at)
    state = PageSession("compare", at.session_state).active
    assert (state.strategy, state.strategy2) == ("causal", "topk")
    assert len(at.get("plotly_chart")) == 5  # 2 masks, 2 attention maps, B minus A


def test_attribution_method_survives_display_switches(monkeypatch) -> None:
    browser = Browser(monkeypatch)
    at = open_page(browser, "pages/2_Attribution.py")
    at.selectbox(key="attr.attr_method").set_value("saliency")
    at = run(browser, at)
    for step in ("zh", "present", "en", "present"):
        at = switch(browser, at, "attr", step)
        choices_hold_ids(at)  # the method's help caption is looked up by its id: a label was a KeyError
        assert at.selectbox(key="attr.attr_method").value == "saliency"
    values, _ = PageSession("attribution", at.session_state).draft
    assert values["attr_method"] == "saliency" and values["op"] == "none"


def test_sinks_quiz_answer_survives_display_switches(monkeypatch) -> None:
    browser = Browser(monkeypatch)
    at = open_page(browser, "pages/4_Attention_sinks.py", {"page": "sinks"})
    ok(at)
    at.radio(key="sinks.sink_quiz").set_value("yes")
    at = run(browser, at)
    assert at.success, "the sink brings the top-1 back on this prompt: 'yes' is right"
    for step in ("zh", "present", "en"):
        at = switch(browser, at, "sinks", step)
        choices_hold_ids(at)
        assert at.radio(key="sinks.sink_quiz").value == "yes"  # the answer, not its label, and not lost
        assert at.success
    assert at.radio(key="sinks.sink_quiz").options == [translate("yes", "en"), translate("no", "en")]


def test_the_quiz_options_show_the_tokens_literally(monkeypatch) -> None:
    """Radio options and labels are markdown: ``3:orange`` would show as ``3`` (``:orange`` is a directive)."""
    browser = Browser(monkeypatch)
    link = AppState(page="steps", input_ref="apple banana orange", strategy="causal")
    at = open_page(browser, "pages/3_Step_by_step.py", link.to_query_params())
    ok(at)
    (quiz,) = [r for r in at.radio if r.key.startswith("steps.quiz_")]
    tokens = ["0:[CLS]", "1:apple", "2:banana", "3:orange", "4:[SEP]"]
    assert quiz.options == [plain(tok) for tok in tokens]
    assert "3\\:orange" in quiz.options and "3:orange" not in quiz.options
    assert plain("4:[SEP]") in quiz.label  # the last query, in the question
    quiz.set_value("3:orange")  # the value is the token itself
    at = run(browser, at)
    assert not at.exception
    (quiz,) = [r for r in at.radio if r.key.startswith("steps.quiz_")]
    assert quiz.value == "3:orange"
    verdict = [*at.success, *at.error][-1].value  # Right / Not this time, naming the key the head prefers
    assert any(plain(tok) in verdict for tok in tokens), verdict
    at = switch(browser, at, "steps", "zh")
    at = switch(browser, at, "steps", "present")
    (quiz,) = [r for r in at.radio if r.key.startswith("steps.quiz_")]
    assert quiz.value == "3:orange"
    pitfall = at.selectbox(key="steps.pitfall_row")
    assert pitfall.options == tokens  # selectbox options are plain text: shown as they are, never escaped


def test_metric_labels_show_the_models_words_literally() -> None:
    """A class label or a token in a metric label (markdown) is escaped; the fixed labels stay as they are."""
    import torch

    from dynmask_app.views.explain import metric_label
    from dynmask_core.analysis.outputs import Classification

    base = Classification(torch.tensor([0.9, 0.1]), ("3:orange", "*x*"))
    masked = Classification(torch.tensor([0.2, 0.8]), ("3:orange", "*x*"))
    labels = [metric_label(card) for card in base.cards(masked, base.compare(masked))]
    assert labels[:3] == ["With the mask: \\*x\\*", "Baseline: 3\\:orange", "KL(baseline ‖ masked)"]
