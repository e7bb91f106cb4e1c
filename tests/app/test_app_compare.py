"""The Compare page through AppTest: loads, runs both sides, Re-draw changes only the dynamic side, links."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core import encode_text, run
from tests import ROOT
from tests.app import pages
from tests.app.pages import no_exception as ok

PAGE = "pages/1_Compare.py"


def open_page(query: dict[str, str] | None = None) -> AppTest:
    return pages.open_page(PAGE, query, timeout=120)


def sides(at: AppTest):
    shown = PageSession("compare", at.session_state).shown
    assert len(shown) == 2
    a, b = (handle.resolve() for handle in shown.values())
    return a, b


def test_compare_page_loads_with_empty_state() -> None:
    at = open_page()
    ok(at)
    assert any("Nothing to compare yet" in i.value for i in at.info)
    assert at.selectbox(key="cmp.s1").value == "sliding_window"
    assert at.selectbox(key="cmp.s2").value == "random_dynamic"


def test_run_shows_both_sides_difference_and_layer_charts() -> None:
    at = open_page()
    at.button(key="cmp.run").click().run()
    ok(at)
    assert not at.error
    plots = at.get("plotly_chart")
    assert len(plots) == 5  # 2 masks, 2 attention maps, B minus A
    specs = " ".join(p.proto.spec for p in plots)
    assert "B minus A" in specs and "A: sliding_window" in specs and "B: random_dynamic" in specs
    assert len(at.get("arrow_vega_lite_chart")) == 2 or len(at.get("vega_lite_chart")) == 2
    a, b = sides(at)
    assert a.plan.terms[0].strategy == "sliding_window" and b.plan.terms[0].strategy == "random_dynamic"


def test_redraw_changes_the_dynamic_side_only() -> None:
    at = open_page()
    at.button(key="cmp.run").click().run()
    a1, b1 = sides(at)
    seed1 = at.query_params["seed"]
    at.button(key="cmp.redraw").click().run()
    ok(at)
    a2, b2 = sides(at)
    assert at.query_params["seed"] != seed1 and b2.seed != b1.seed
    assert bool((a1.masks == a2.masks).all()) and a1.metrics == a2.metrics  # static: stays put
    assert not bool((b1.masks == b2.masks).all())  # dynamic: a new pattern


def test_link_restores_both_sides_with_the_same_numbers(minilm) -> None:
    state = AppState(page="compare", strategy="causal", strategy2="kmeans", params2={"clusters": 4}, seed=99,
                     layer=3, head=1, input_ref="The cat sat on the mat. Then the dog chased it out of the house.")
    at = open_page(state.to_query_params())
    ok(at)
    assert not at.warning
    assert (at.selectbox(key="cmp.s1").value, at.selectbox(key="cmp.s2").value) == ("causal", "kmeans")
    assert at.selectbox(key="cmp.view_layer").value == 3
    a, b = sides(at)
    prepared = encode_text(minilm, state.text)
    assert a.metrics == run(minilm, prepared, state.plan("a")).metrics
    assert b.metrics == run(minilm, prepared, state.plan("b")).metrics


def test_compare_link_opened_on_the_playground_switches_page() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(AppState.default("compare").to_query_params())
    at.run()
    ok(at)
    assert any("Compare two strategies" in t.value for t in at.title)


def test_invalid_compare_link_warns() -> None:
    at = open_page({"page": "compare", "s2": "nonsense", "p.radius": "9999"})
    ok(at)
    text = " ".join(w.value for w in at.warning)
    assert "nonsense" in text and "9999" in text
    assert at.selectbox(key="cmp.s2").value == "random_dynamic"


def test_compare_reached_from_the_playground() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    at.switch_page("pages/1_Compare.py").run()
    ok(at)
    assert any("Compare two strategies" in t.value for t in at.title)
    at.button(key="cmp.run").click().run()
    ok(at)
    assert len(at.get("plotly_chart")) == 5
