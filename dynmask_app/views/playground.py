"""The Playground's result views: output, strategy card, single-head views (a fragment) and the model view."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import streamlit as st

from dynmask_app import kinds, session
from dynmask_app.editor.widgets import choice
from dynmask_app.i18n import LANGS, current, t, translate, translator, using
from dynmask_app.server import figure_cache
from dynmask_app.server.result_cache import ByteLRU
from dynmask_app.state import AppState
from dynmask_app.views import charts, downloads, explain
from dynmask_app.views import code as code_views
from dynmask_app.views import long_inputs as long_views
from dynmask_core import viz
from dynmask_core.analysis import mask_patterns
from dynmask_core.messages import N_

#: The single-head figures of :func:`head_figures`, in tab order.
HEAD_VIEWS = ("mask", "attention", "diff")
#: The all-layers tab.
MODEL_VIEW_TAB = N_("Model view (all layers x heads)")
#: The chart tabs of :func:`single_head_views`: view name -> tab title (the mask tab first: open by default).
#: A chart is built and sent only once its tab has been opened for the view shown (see :func:`_views_to_draw`).
CHART_TABS = {"mask": N_("Mask applied"), "attention": N_("Attention weights"), "diff": N_("Masked − baseline"),
              "model_view": MODEL_VIEW_TAB}
#: The tabs a run past 512 tokens adds (pooled maps: a window at full resolution, and every head's summaries).
LONG_TABS = {"zoom": N_("Zoom (full resolution)"), "summaries": N_("Per-head summaries")}
#: The tab with the run's mask as code (:mod:`dynmask_app.views.code`), before the Downloads tab.
CODE_TAB = N_("Code")
#: The "Attention of" choices, in a language.
_RUN_SHOWN = {"masked": lambda lang: translate("the masked run", lang),
              "baseline": lambda lang: translate("the baseline run (no extra mask)", lang)}



def head_figures(state: AppState, result: Any, layer: int, head: int, show: str = "masked",
                 max_side: int = viz.MAX_SIDE, names: Iterable[str] = HEAD_VIEWS,
                 cache: ByteLRU | None = None) -> dict[str, Any]:
    """The mask / attention / difference figures of one layer and head (shared with the HTML export), only those in
    ``names`` (each is built only when asked for: a Run shows one). A long run's come from its pooled maps.

    Built once per result and arguments for the whole server (:mod:`dynmask_app.server.figure_cache`): never mutate
    them.
    ``cache``: as in :func:`dynmask_app.server.figure_cache.figure` (a deferred download passes the one it captured).
    """
    mask, masked, base, block = _matrices(result, layer, head)
    where = (t("layer {layer}, head {head}, {b}x{b} blocks", layer=layer, head=head, b=block) if block > 1 else
             t("layer {layer}, head {head}", layer=layer, head=head))
    titles = {"mask": t("Mask applied ({where}): {label}", where=where, label=state.label()),
              "attention": (t("Attention, masked run ({where})", where=where) if show == "masked" else
                            t("Attention, baseline run ({where})", where=where)),
              "diff": t("Masked minus baseline attention ({where})", where=where)}

    def attention() -> Any:
        top = float(max(masked.max(), base.max()))
        return viz.attention_figure(masked if show == "masked" else base, result.tokens, titles["attention"],
                                    zmax=top, max_side=max_side, block=block)

    builds = {
        "mask": lambda: viz.mask_figure(mask, result.tokens, titles["mask"], max_side=max_side, block=block),
        "attention": attention,
        "diff": lambda: viz.diff_figure(masked - base, result.tokens, titles["diff"], max_side=max_side, block=block),
    }
    return {name: figure_cache.figure(state, result, f"head.{name}", (layer, head, show if name == "attention"
                                                                      else None, titles[name], max_side),
                                      builds[name], cache)
            for name in HEAD_VIEWS if name in names}


def _matrices(result: Any, layer: int, head: int) -> tuple[Any, Any, Any, int]:
    """``(mask, masked attention, baseline attention, block)`` of one layer and head: every cell, or for a long run
    (a capture budget) its ``block x block`` means."""
    if result.budgeted:
        s, b = result.summary, result.baseline_summary
        return s.pooled_allowed[layer, head], s.pooled[layer, head], b.pooled[layer, head], s.block
    return result.masks[layer, head], result.attention[layer, head], result.baseline_attention[layer, head], 1


def output_figure(state: AppState, result: Any, cache: ByteLRU | None = None) -> Any:
    """The output before and after the mask (None for outputs without a figure); cached like :func:`head_figures`."""
    return figure_cache.figure(state, result, "output", (),
                               lambda: viz.output_figure(result.baseline_output, result.output), cache)


def model_view_figure(state: AppState, result: Any, layer: int, head: int,
                      cache: ByteLRU | None = None) -> Any:
    """Every layer x head of the masked run, the picked one outlined; cached like :func:`head_figures`."""
    return figure_cache.figure(state, result, "model_view", (layer, head),
                               lambda: viz.model_view_figure(result.attention, highlight=(layer, head)), cache)


def _mask_caption(result: Any, layer: int, head: int, n_patterns: int) -> str:
    m = np.asarray(result.masks[layer, head])
    layers, heads = result.masks.shape[:2]
    same = (t("The mask is the same in every layer and head.") if n_patterns == 1 else
            t("The mask differs across layers/heads ({n} distinct patterns among {total}); this is layer {layer}, "
              "head {head}.", n=n_patterns, total=layers * heads, layer=layer, head=head))
    mode = result.plan.apply.mode
    caveat = {"bias": t(" In bias mode the strategy's blocked keys are only pushed down by beta: they keep a little "
                        "weight (see the attention tab)."),
              "naive_multiply": t(" In naive-multiply mode the strategy's blocked keys are NOT blocked: that is the "
                                  "pitfall this mode shows (see the attention tab).")}.get(mode, "")
    return t("Dark blue = allowed, grey = blocked (the model's own causal/padding mask included). {n} of {total} "
             "entries allowed ({share:.0%}). {same}{caveat}", n=int(m.sum()), total=m.size, share=m.mean(), same=same,
             caveat=caveat)


def result_views(state: AppState, result: Any) -> None:
    """Everything below the sidebar once a run exists."""
    explain.output_metrics(result)
    bars = viz.output_bars_html(result.baseline_output, result.output,  # plain HTML: no chart to lay out per Run
                                tr=translator())
    if bars is not None:
        st.html(bars)
    explain.answers_note(state, result)
    explain.run_facts(state, result)
    st.subheader(t("The strategy"))
    explain.strategy_card(state)
    st.subheader(t("Inside the model"))
    masks = result.summary.pooled_allowed if result.budgeted else result.masks
    single_head_views(state, result, figure_cache.figure(state, result, "mask_patterns", (),
                                                         lambda: mask_patterns(masks)))


def _downloads(state: AppState, result: Any, layer: int, head: int, show: str) -> None:
    """The Downloads tab; the HTML export's figures are built (or fetched) only when it is asked for."""
    cache = figure_cache.shared()  # the deferred HTML download runs outside this script's thread
    lang = current()  # ...and so outside this session: its words are in the language captured here

    def shown() -> list[tuple[str, Any]]:
        with using(lang):
            output = output_figure(state, result, cache)
            figs = head_figures(state, result, layer, head, show, cache=cache)
            model_view = (long_views.model_view_figure if result.budgeted else model_view_figure)
            names = ((t("Mask applied (pooled)"), t("Attention weights (pooled)"), t("Masked minus baseline (pooled)"),
                      t("Model view (pooled)")) if result.budgeted else
                     (t("Mask applied"), t("Attention weights"), t("Masked minus baseline"), t("Model view")))
            return ([(t("Output before and after"), output)] if output is not None else []) + [
                (names[0], figs["mask"]), (names[1], figs["attention"]), (names[2], figs["diff"]),
                (names[3], model_view(state, result, layer, head, cache))]

    downloads.download_panel(state, result, layer, head, shown)


def _views_to_draw(ns: str, view: tuple, opened: Iterable[str]) -> set[str]:
    """The chart tabs to draw for ``view`` (result, layer, head, run shown): the one open now and those opened before
    for this same view (their charts stay in the page, so going back to a tab shows it at once). A Run or another
    layer, head or run shown starts again from the open tab: the hidden tabs' figures are neither built nor sent
    (nor drawn by the browser) until opened."""
    key = f"{ns}.view_drawn"
    before, drawn = st.session_state.get(key, (None, ()))
    names = (set(drawn) if before == view else set()) | set(opened)
    st.session_state[key] = (view, tuple(sorted(names)))
    return names


def _keep_open_tab(key: str, titles: list[str]) -> None:
    """The open tab, held as its title in the language it was opened in, is held in this session's language."""
    held = st.session_state.get(key)
    if isinstance(held, str):
        for title in titles:
            if held != t(title) and any(held == translate(title, lang) for lang in LANGS):
                st.session_state[key] = t(title)
                return


@st.fragment
def single_head_views(state: AppState, result: Any, n_patterns: int) -> None:
    """Layer/head pickers (kept in the URL) and the mask / attention / difference tabs; reruns alone."""
    page, ns = state.page, session.ns_of(state.page)
    layers, heads = result.shape[:2]
    budgeted = result.budgeted
    fitted = session.fit_view(state.layer, state.head, layers, heads)
    for key, value, count in ((f"{ns}.view_layer", fitted[0], layers), (f"{ns}.view_head", fitted[1], heads)):
        if st.session_state.get(key) is None or st.session_state[key] >= count:
            st.session_state[key] = value
    c1, c2, c3 = st.columns([1, 1, 2])
    layer = c1.selectbox(t("Layer"), list(range(layers)), key=f"{ns}.view_layer")
    head = c2.selectbox(t("Head"), list(range(heads)), key=f"{ns}.view_head")
    with c3:
        show = choice("radio", t("Attention of"), ["masked", "baseline"], horizontal=True, key=f"{ns}.view_run",
                      label_of=lambda s, lang: _RUN_SHOWN[s](lang), fallback="masked")
    session.set_view(page, layer, head)
    state = session.active(page) or state
    q = len(result.tokens)
    note = long_views.capture_note(result) if budgeted else viz.pooling_note(q, viz.pool_factor(q, viz.MAX_SIDE))
    extra = [(title, kinds.view(name)) for title, name in kinds.kind_views(result.kind).input_tabs]
    long_tabs = LONG_TABS if budgeted else {}
    # Stateful tabs (key + on_change): a switch reruns this fragment alone, and the open tab is known, so a chart
    # tab's figure is built (or fetched) and sent only once its tab is opened. The key keeps the open tab over reruns.
    # (A tab is told by its position; its title is in the session's language: the open tab keeps open when the
    # language changes.)
    titles = [title for title, _ in extra] + [*CHART_TABS.values(), *long_tabs.values(), CODE_TAB,
                                              N_("Downloads")]
    _keep_open_tab(f"{ns}.view_tab", titles)
    tabs = st.tabs([t(title) for title in titles], key=f"{ns}.view_tab", on_change="rerun")
    for tab, (_, draw) in zip(tabs, extra):
        with tab:
            draw(state, result, layer, head, ns)
    chart_tabs = dict(zip(CHART_TABS, tabs[len(extra):]))
    drawn = _views_to_draw(ns, (figure_cache.result_id(state, result), layer, head, show),
                           [name for name, tab in chart_tabs.items() if tab.open])
    figs = head_figures(state, result, layer, head, show, names=drawn)
    with chart_tabs["mask"]:
        st.caption(long_views.mask_caption(result, layer, head) if budgeted
                   else _mask_caption(result, layer, head, n_patterns))
        if "mask" in figs:
            charts.plotly(figs["mask"], f"dynmask-mask-L{layer}-H{head}", key="mask_fig")
    with chart_tabs["attention"]:
        st.caption(t("Each row is one query token; its weights over the keys sum to 1 (0 if nothing is allowed). "
                     "Masked and baseline share one colour scale."))
        if "attention" in figs:
            charts.plotly(figs["attention"], f"dynmask-attention-L{layer}-H{head}", key="attn_fig")
    with chart_tabs["diff"]:
        st.caption(t("Blue: the mask gave this key more weight than the baseline did; red: less. White: no change."))
        if "diff" in figs:
            charts.plotly(figs["diff"], f"dynmask-diff-L{layer}-H{head}", key="diff_fig")
    with chart_tabs["model_view"]:
        if budgeted:
            blocks = -(-q // result.summary.block)
            st.caption(t(viz.model_view_note(blocks, layers, heads, "pooled attention"))
                       + t(" Each of its cells is a {b}x{b} block of tokens. Masked run; the red box is the layer/head "
                           "picked above.", b=result.summary.block))
        else:
            st.caption(t(viz.model_view_note(q, layers, heads)) + t(" Masked run; the red box is the layer/head picked "
                                                                    "above."))
        if "model_view" in drawn:
            figure = (long_views.model_view_figure if budgeted else model_view_figure)(state, result, layer, head)
            charts.plotly(figure, "dynmask-model-view", key="model_view")
    for name, tab in zip(long_tabs, tabs[len(extra) + len(CHART_TABS):]):
        with tab:
            if tab.open:  # a window is computed, and the summaries drawn, only in their own tab
                (long_views.zoom_tab if name == "zoom" else long_views.summaries_tab)(state, result, layer, head, ns)
    if note:
        st.caption(t(note))
    with tabs[-2]:
        if tabs[-2].open:  # the run's mask as code: written only once its tab is opened
            code_views.code_view(state, result)
    with tabs[-1]:
        if tabs[-1].open:  # the buttons too wait for their tab
            _downloads(state, result, layer, head, show)
