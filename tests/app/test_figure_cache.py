"""The shared figure cache: a second session on the same link builds no figure, a chart tab's figure waits for its
tab to be opened, the cache keeps to its byte budget, and another recipe never gets this one's figure."""

from __future__ import annotations

import dataclasses
from collections import Counter

import plotly.graph_objects as go
import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.server import figure_cache
from dynmask_app.server.figure_cache import figure_cache as new_cache
from dynmask_app.server.figure_cache import figure_size
from dynmask_app.state import AppState
from dynmask_app.views import playground as views
from dynmask_core import encode_text, run, viz
from tests import ROOT

MODEL_VIEW = "Model view (all layers x heads)"


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> Counter:
    """Counts the figures the views build, by builder (the viz functions are wrapped where the views call them)."""
    counts: Counter = Counter()
    for name in ("mask_figure", "attention_figure", "diff_figure", "model_view_figure"):
        original = getattr(viz, name)

        def counted(*args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(*args, **kwargs)

        monkeypatch.setattr(viz, name, counted)
    return counts


def _open(state: AppState, file: str = "app.py") -> AppTest:
    at = AppTest.from_file(str(ROOT / file), default_timeout=120)
    at.query_params.update(state.to_query_params())
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at


def _specs(at: AppTest) -> dict[str, str]:
    return {c.proto.id: c.proto.spec for c in at.get("plotly_chart")}


def _titles(at: AppTest) -> str:
    return " ".join(_specs(at).values())


def _open_tab(at: AppTest, title: str) -> AppTest:
    at.session_state["pg.view_tab"] = title  # what a click on the tab sends
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_a_second_session_on_the_same_link_builds_no_figure(built: Counter) -> None:
    state = AppState(strategy="random_dynamic", params={"p": 0.4}, seed=9101, layer=1, head=2)
    cache = figure_cache.shared()
    first = _open(state)
    assert built == Counter({"mask_figure": 1})  # the open tab's figure only
    _open_tab(first, "Attention weights")
    assert built == Counter({"mask_figure": 1, "attention_figure": 1})
    before, built_before = cache.computed, sum(built.values())
    second = _open(state)
    assert cache.computed == before and sum(built.values()) == built_before  # nothing built for the second session
    _open_tab(second, "Attention weights")
    assert cache.computed == before and sum(built.values()) == built_before
    assert sorted(_specs(second).values()) == sorted(_specs(first).values())  # and it shows the same figures
    second.run()  # a rerun of the same view builds nothing either
    assert cache.computed == before


def test_hidden_tabs_wait_until_opened_and_keep_their_chart_for_the_view(built: Counter) -> None:
    state = AppState(strategy="random_dynamic", params={"p": 0.4}, seed=9106, layer=1, head=2)
    at = _open(state)
    assert at.session_state["pg.view_tab"] == "Mask applied"
    titles = _titles(at)
    assert "Mask applied (layer 1, head 2)" in titles and "Attention, masked run" not in titles
    assert "Masked minus baseline" not in titles and len(at.get("plotly_chart")) == 1  # the mask (output: HTML)
    _open_tab(at, "Attention weights")
    assert "Attention, masked run (layer 1, head 2)" in _titles(at) and "Mask applied" in _titles(at)
    _open_tab(at, "Masked − baseline")  # every tab opened so far keeps its chart: going back shows it at once
    titles = _titles(at)
    assert all(f"{t} (layer 1, head 2)" in titles for t in ("Mask applied", "Attention, masked run",
                                                            "Masked minus baseline attention"))
    assert built == Counter({"mask_figure": 1, "attention_figure": 1, "diff_figure": 1})
    at.selectbox(key="pg.view_head").set_value(3).run()  # another head: the open tab's figure only, for head 3
    titles = _titles(at)
    assert "Masked minus baseline attention (layer 1, head 3)" in titles and "Mask applied" not in titles
    assert "Attention, masked run" not in titles and built["diff_figure"] == 2 and built["mask_figure"] == 1
    _open_tab(at, "Mask applied")
    assert "Mask applied (layer 1, head 3)" in _titles(at) and built["mask_figure"] == 2


def test_another_layer_or_head_builds_only_that_views_figures(built: Counter) -> None:
    state = AppState(strategy="random_dynamic", params={"p": 0.4}, seed=9102, layer=0, head=0)
    cache = figure_cache.shared()
    _open(state)
    before = cache.computed
    built.clear()
    at = _open(dataclasses.replace(state, layer=2, head=5))
    # the mask of layer 2 head 5 (its tab is open); (the output is HTML bars), the other tabs not opened
    assert cache.computed - before == 1
    assert built == Counter({"mask_figure": 1})
    assert "layer 2, head 5" in _titles(at)
    _open_tab(at, "Attention weights")
    assert cache.computed - before == 2 and built["attention_figure"] == 1
    at.radio(key="pg.view_run").set_value("baseline").run()  # the baseline's attention: one more figure
    assert cache.computed - before == 3 and built["attention_figure"] == 2 and built["mask_figure"] == 1
    assert "Attention, baseline run (layer 2, head 5)" in _titles(at)


def test_the_model_view_is_built_only_when_its_tab_is_opened(built: Counter) -> None:
    state = AppState(strategy="random_dynamic", params={"p": 0.3}, seed=9103, layer=1, head=1)
    at = _open(state)
    assert built["model_view_figure"] == 0 and "Model view" not in _titles(at)
    assert at.session_state["pg.view_tab"] == "Mask applied"
    _open_tab(at, MODEL_VIEW)
    assert built["model_view_figure"] == 1 and "Model view" in _titles(at)
    at.selectbox(key="pg.view_head").set_value(4).run()  # the tab stays open over a rerun, for the new head
    assert at.session_state["pg.view_tab"] == MODEL_VIEW and built["model_view_figure"] == 2
    assert "Model view" in _titles(at)
    other = _open(dataclasses.replace(state, head=4))  # another session: the tab opens on the shared figure
    _open_tab(other, MODEL_VIEW)
    assert built["model_view_figure"] == 2 and "Model view" in _titles(other)


def test_the_html_download_builds_its_figures_only_when_asked(built: Counter,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from dynmask_app.views import downloads

    buttons = {}
    monkeypatch.setattr(downloads, "download_button", lambda label, data, file_name, mime, key, help="": buttons.update(
        {key: data}))
    at = _open(AppState(strategy="random_dynamic", params={"p": 0.3}, seed=9105, layer=2, head=1))
    assert not buttons  # the buttons wait for their tab too
    _open_tab(at, "Downloads")
    assert built == Counter({"mask_figure": 1}) and "dl_html" in buttons  # the tabs not opened: not built
    page = buttons["dl_html"]().decode()  # what a click runs, after the script run, outside its thread
    assert built == Counter({"mask_figure": 1, "attention_figure": 1, "diff_figure": 1, "model_view_figure": 1})
    for caption in ("Output before and after", "Mask applied", "Attention weights", "Masked minus baseline",
                    "Model view"):
        assert f"<h2>{caption}</h2>" in page
    assert "layer 2, head 1" in page
    buttons["dl_html"]()  # a second click: the figures are the shared ones
    assert sum(built.values()) == 4


def test_compare_second_session_builds_no_figure(built: Counter) -> None:
    state = AppState(page="compare", strategy="random_dynamic", params={"p": 0.5}, strategy2="sliding_window",
                     seed=9104, layer=1, head=3)
    cache = figure_cache.shared()
    first = _open(state, "pages/1_Compare.py")
    assert built["mask_figure"] == 2 and built["attention_figure"] == 2 and built["diff_figure"] == 1
    before, built_before = cache.computed, sum(built.values())
    second = _open(state, "pages/1_Compare.py")
    assert cache.computed == before and sum(built.values()) == built_before
    assert sorted(_specs(second).values()) == sorted(_specs(first).values())


def _fig(n: int) -> go.Figure:
    return go.Figure(go.Heatmap(z=[[float(i) for i in range(n)]]))


def test_the_cache_stays_within_its_byte_budget_least_recently_used_first() -> None:
    one = figure_size(_fig(200))
    cache = new_cache(int(one * 3.5))
    for key in "abc":
        cache.get_or_compute(key, lambda: _fig(200))
    assert len(cache) == 3 and cache.used <= cache.budget
    cache.get_or_compute("a", lambda: pytest.fail("a is cached"))  # "a" is now the most recently used
    cache.get_or_compute("d", lambda: _fig(200))
    assert "b" not in cache and all(k in cache for k in "acd")  # the least recently used went
    assert cache.used <= cache.budget and cache.computed == 4
    cache.get_or_compute("huge", lambda: _fig(5000))  # larger than the whole budget: returned, not kept
    assert "huge" not in cache and cache.used <= cache.budget and len(cache) == 3


def test_another_recipe_never_gets_this_ones_figure(minilm) -> None:
    state = AppState(strategy="random_dynamic", seed=1)
    other = AppState(strategy="random_dynamic", seed=2)  # same everything, another seed: other numbers
    results = [run(minilm, encode_text(minilm, s.text), s.plan().resolved()) for s in (state, other)]
    assert not results[0].masks.equal(results[1].masks)
    assert figure_cache.result_id(state, results[0]) != figure_cache.result_id(other, results[1])
    figs = [views.head_figures(s, r, 0, 0) for s, r in zip((state, other), results)]
    assert figs[0]["mask"].to_json() != figs[1]["mask"].to_json()


def test_a_recomputed_result_keeps_its_figures(minilm) -> None:
    """A result the result cache dropped and computed again (a new object, the same recipe) gets the same key."""
    state = AppState(strategy="sliding_window")
    result, again = (run(minilm, encode_text(minilm, state.text), state.plan().resolved()) for _ in range(2))
    assert again is not result
    assert figure_cache.result_id(state, again) == figure_cache.result_id(state, result)
