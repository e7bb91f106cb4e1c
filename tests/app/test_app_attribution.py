"""The Attribution page through AppTest: a link opens and explains, the numbers match the core, the method and target
ride in the link, the Playground's link leaves them out, pruning heads is one click, a bad target is a message."""

from __future__ import annotations

import numpy as np
from streamlit.testing.v1 import AppTest

from dynmask_app.server import keys, resources
from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core import encode_text
from dynmask_core.attribution import attribute
from dynmask_core.masks import MaskPlan
from tests.app import pages
from tests.app.pages import ok

PAGE = "pages/2_Attribution.py"
TEXT = "The film was wonderful, but the ending dragged."


def open_page(query: dict[str, str] | None = None) -> AppTest:
    return pages.open_page(PAGE, query)


def link(**fields) -> dict[str, str]:
    return AppState(page="attribution", input_ref=TEXT, **fields).to_query_params()


def cached_attribution(at: AppTest):

    state = PageSession("attribution", at.session_state).active
    (result,) = PageSession("attribution", at.session_state).shown.values()
    return resources.result_cache().get(keys.attribution_key(state, result.plan))


def test_page_opens_empty_with_the_explain_controls() -> None:
    at = open_page()
    ok(at)
    assert any("Start here" in i.value for i in at.info)
    assert at.selectbox(key="attr.attr_method").value == "ig"
    assert at.text_input(key="attr.attr_target").value == "predicted"


def test_a_link_explains_and_matches_the_core(minilm) -> None:
    at = open_page(link(strategy="sliding_window", params=(("radius", 1),), attr_method="ig", attr_steps=16,
                        attr_target="positive"))
    ok(at)
    attr = cached_attribution(at)
    assert attr is not None and attr.method == "ig" and attr.steps == 16
    expected = attribute(minilm, encode_text(minilm, TEXT), MaskPlan.of("sliding_window", {"radius": 1}), "ig",
                         "positive", 16)
    np.testing.assert_allclose(attr.masked.positions, expected.masked.positions, atol=1e-6)
    np.testing.assert_allclose(attr.baseline.positions, expected.baseline.positions, atol=1e-6)
    assert any("probability of 'positive'" in i.value for i in at.info)
    assert [m.label for m in at.metric][:3] == ["Target, masked model", "Target, unmasked model", "Integration steps"]
    assert at.query_params["method"] == "ig" and at.query_params["target"] == "positive"
    assert at.query_params["steps"] == "16"


def test_method_and_target_ride_only_in_attribution_links() -> None:
    playground = AppState(page="playground", attr_method="rollout").to_query_params()
    assert "method" not in playground and "target" not in playground
    back, warnings = AppState.from_query_params(link(attr_method="occlusion", attr_target="negative"))
    assert warnings == [] and (back.attr_method, back.attr_target) == ("occlusion", "negative")


def test_pruning_switches_off_the_least_important_heads() -> None:
    at = open_page(link(strategy="none", attr_method="saliency"))
    ok(at)
    at.number_input(key="attr.prune_n").set_value(5).run()
    at.button(key="attr.prune").click().run()
    ok(at)
    state = PageSession("attribution", at.session_state).active
    assert state.strategy == "head_gate"
    off = dict(state.params)["off"].split()
    assert len(off) == 5
    assert at.query_params["s"] == "head_gate" and at.query_params["p.off"] == " ".join(off)
    assert at.selectbox(key="attr.s1").value == "head_gate"  # the sidebar shows the new recipe
    # the masked run really has those heads off
    (result,) = PageSession("attribution", at.session_state).shown.values()
    for pair in off:
        layer, head = map(int, pair.split("."))
        assert float(result.attention[layer, head].sum()) == 0.0


def test_a_bad_target_is_a_message_and_the_page_keeps_running() -> None:
    at = open_page(link(attr_target="neutral"))
    assert not at.exception
    assert any("not a class of minilm" in e.value for e in at.error)
    assert at.text_input(key="attr.attr_target").value == "neutral"  # what the user typed is kept
