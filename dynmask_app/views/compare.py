"""The Compare page's views: two strategies on one input, same colour scales, their difference, per-layer charts."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import messages, session
from dynmask_app.i18n import t, translator
from dynmask_app.server import figure_cache
from dynmask_app.state import AppState
from dynmask_app.views import charts
from dynmask_app.views import code as code_views
from dynmask_app.views.explain import strategy_card
from dynmask_core import viz
from dynmask_core.analysis import layer_table

#: Four heatmaps share the page: above 256 tokens each is pooled so the page stays under ~5 MB.
COMPARE_MAX_SIDE = 256
COLORS = {"baseline": "#7f8c9b", "A": "#1f4e99", "B": "#e07b00"}


def names(state: AppState) -> dict[str, str]:
    """Display names of the two sides, e.g. ``A: sliding_window`` and ``B: random_dynamic(p=0.5)``."""
    return {"a": f"A: {state.label('a')}", "b": f"B: {state.label('b')}"}


def redraw_button(state: AppState) -> None:
    """New seed for the dynamic side(s): the static side keeps its (cached) result."""
    if not state.uses_seed():
        st.caption(t("Neither strategy uses the seed: every run gives the same masks."))
        return
    c1, c2 = st.columns([1, 3])
    c1.button(t("Re-draw (new seed)"), key="cmp.redraw", type="primary", on_click=_redraw,
              help=t("Draws a new seed: random strategies change their pattern, static ones stay put."))
    c2.markdown(t("Seed used: **{seed}**. Static strategies ignore it; press Re-draw and watch which pattern "
                  "changes.", seed=state.seed))


def _redraw() -> None:
    """Button callback (runs before the page): the recipe's seed is cleared, so the run draws a new one (and puts
    it in the URL); a seed typed in the sidebar is cleared too, so the next Run does not bring the old one back."""
    session.replace_active("compare", seed=None)
    st.session_state["cmp.seed"] = None
    session.need_whole_page()  # the sidebar's seed field is redrawn empty, and the editor's draft follows


def compare_views(state: AppState, a: Any, b: Any) -> None:
    """Everything below the sidebar once both sides have run."""
    label = names(state)
    redraw_button(state)
    c1, c2 = st.columns(2)
    for col, side, result in ((c1, "a", a), (c2, "b", b)):
        with col:
            st.markdown(f"#### {messages.plain(label[side])}")  # the label carries link-supplied parameters
            st.markdown(messages.plain(t(result.output.line(result.metrics))))
            strategy_card(state, side)
    st.caption(messages.plain(t("Baseline (no extra mask): {headline}.", headline=t(a.baseline_output.headline()))))
    side_by_side(state, a, b)
    st.subheader(t("Per layer"))
    baseline = t("baseline")  # the runs' names, as the charts' legends show them
    table = layer_table({baseline: (a.baseline_attention, a.baseline_masks), "A": (a.attention, a.masks),
                         "B": (b.attention, b.masks)})
    colors = {baseline: COLORS["baseline"], "A": COLORS["A"], "B": COLORS["B"]}
    c1, c2 = st.columns(2)
    charts.altair(viz.layer_chart(table, "entropy", colors=colors, tr=translator()), where=c1)
    charts.altair(viz.layer_chart(table[table["run"] != baseline], "allowed", colors=colors, tr=translator()),
                  where=c2)
    st.caption(t("Entropy: how spread out each query's attention is (log of the number of keys if uniform); masks "
                 "that block keys usually lower it. Allowed: the share of query-key pairs the mask lets through in "
                 "that layer (the model's own causal mask included)."))


@st.fragment
def side_by_side(state: AppState, a: Any, b: Any) -> None:
    """Layer/head pickers, then masks, attention (one shared scale) and B minus A; reruns alone."""
    layers, heads = a.attention.shape[:2]
    for key, value, count in (("cmp.view_layer", state.layer, layers), ("cmp.view_head", state.head, heads)):
        if st.session_state.get(key) is None or st.session_state[key] >= count:
            st.session_state[key] = min(value, count - 1)
    c1, c2, _ = st.columns([1, 1, 2])
    layer = c1.selectbox(t("Layer"), list(range(layers)), key="cmp.view_layer")
    head = c2.selectbox(t("Head"), list(range(heads)), key="cmp.view_head")
    session.set_view("compare", layer, head)
    label = names(state)
    q = len(a.tokens)
    where = f"L{layer} H{head}"
    ids = {"a": figure_cache.result_id(state, a), "b": figure_cache.result_id(state, b)}
    c1, c2 = st.columns(2)
    for col, side, result in ((c1, "a", a), (c2, "b", b)):
        with col:
            charts.plotly(_mask(state, result, label[side], where, layer, head), f"dynmask-compare-mask-{side}",
                        key=f"mask_{side}")
            # One colour scale for both sides: the figure depends on the other side's result too.
            charts.plotly(_attention(state, result, label[side], where, layer, head, a, b, ids),
                        f"dynmask-compare-attn-{side}", key=f"attn_{side}")
            code_views.code_expander(state, result, side, label[side])  # this side's run as code, when opened
    st.caption(t("Both attention maps use one colour scale (0 to the larger maximum), so equal colours mean equal "
                 "weights."))
    title = t("Attention B minus A ({where})", where=where)
    diff = figure_cache.figure(state, b, "compare.diff", (ids["a"], layer, head, title, COMPARE_MAX_SIDE),
                               lambda: viz.diff_figure(b.attention[layer, head] - a.attention[layer, head], a.tokens,
                                                       title, max_side=COMPARE_MAX_SIDE))
    charts.plotly(diff, "dynmask-compare-diff", key="diff_ab")
    st.caption(t("Blue: B gives this key more weight than A; red: less."))
    note = viz.pooling_note(q, viz.pool_factor(q, COMPARE_MAX_SIDE), "matrices")
    if note:
        st.caption(t(note))


def _mask(state: AppState, result: Any, name: str, where: str, layer: int, head: int) -> Any:
    """One side's mask (cached for every session, see :mod:`dynmask_app.server.figure_cache`)."""
    title = t("Mask, {name} ({where})", name=name, where=where)
    return figure_cache.figure(state, result, "compare.mask", (layer, head, title, COMPARE_MAX_SIDE),
                               lambda: viz.mask_figure(result.masks[layer, head], result.tokens, title,
                                                       max_side=COMPARE_MAX_SIDE))


def _attention(state: AppState, result: Any, name: str, where: str, layer: int, head: int, a: Any, b: Any,
               ids: dict[str, str]) -> Any:
    """One side's attention on the scale shared with the other side (so both results are in its key)."""
    title = t("Attention, {name} ({where})", name=name, where=where)

    def build() -> Any:
        top = float(max(a.attention[layer, head].max(), b.attention[layer, head].max()))
        return viz.attention_figure(result.attention[layer, head], result.tokens, title, zmax=top,
                                    max_side=COMPARE_MAX_SIDE)

    return figure_cache.figure(state, result, "compare.attention", (ids["a"], ids["b"], layer, head, title,
                                                                    COMPARE_MAX_SIDE), build)
