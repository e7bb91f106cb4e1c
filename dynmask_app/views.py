"""The Playground's result views: output, strategy card, single-head views (a fragment) and the model view."""

from __future__ import annotations

from typing import Any

import numpy as np
import streamlit as st

from dynmask_app import audio_views, downloads, explain, figure_cache, image_views, session
from dynmask_app.result_cache import ByteLRU
from dynmask_app.state import AppState
from dynmask_core import viz
from dynmask_core.analysis import mask_patterns

CHART_CONFIG = viz.PNG_CONFIG
#: The all-layers tab: its figure is built only while the tab is open (the tabs rerun the fragment on a switch).
MODEL_VIEW_TAB = "Model view (all layers x heads)"

#: Views drawn on the input itself, first among the tabs, per input kind: (title, draw(state, result, layer, head, ns)).
_INPUT_TABS: dict[str, tuple[tuple[str, Any], ...]] = {
    "image": (("On the image", image_views.image_tab),
              ("Rollout", lambda state, result, layer, head, ns: image_views.rollout_tab(state, result, ns))),
    "audio": (("On the sound", audio_views.audio_tab), ("Rollout", audio_views.audio_rollout_tab)),
}


def show_figure(fig: Any, name: str, key: str | None = None) -> None:
    """A plotly figure with the PNG toolbar button named after the view."""
    config = {**CHART_CONFIG, "toImageButtonOptions": {**CHART_CONFIG["toImageButtonOptions"], "filename": name}}
    st.plotly_chart(fig, config=config, key=key, width="stretch")


def head_figures(state: AppState, result: Any, layer: int, head: int, show: str = "masked",
                 max_side: int = viz.MAX_SIDE) -> dict[str, Any]:
    """The mask / attention / difference figures of one layer and head (shared with the HTML export).

    Built once per result and arguments for the whole server (:mod:`dynmask_app.figure_cache`): never mutate them.
    """
    where = f"layer {layer}, head {head}"
    titles = {"mask": f"Mask applied ({where}): {state.label()}", "attention": f"Attention, {show} run ({where})",
              "diff": f"Masked minus baseline attention ({where})"}

    def attention() -> Any:
        masked, base = result.attention[layer, head], result.baseline_attention[layer, head]
        top = float(max(masked.max(), base.max()))
        return viz.attention_figure(masked if show == "masked" else base, result.tokens, titles["attention"],
                                    zmax=top, max_side=max_side)

    builds = {
        "mask": lambda: viz.mask_figure(result.masks[layer, head], result.tokens, titles["mask"], max_side=max_side),
        "attention": attention,
        "diff": lambda: viz.diff_figure(result.attention[layer, head] - result.baseline_attention[layer, head],
                                        result.tokens, titles["diff"], max_side=max_side),
    }
    return {name: figure_cache.figure(state, result, f"head.{name}", (layer, head, show if name == "attention"
                                                                      else None, titles[name], max_side), build)
            for name, build in builds.items()}


def output_figure(state: AppState, result: Any, cache: ByteLRU | None = None) -> Any:
    """The output before and after the mask (None for outputs without a figure); cached like :func:`head_figures`."""
    return figure_cache.figure(state, result, "output", (), lambda: result.baseline_output.figure(result.output),
                               cache)


def model_view_figure(state: AppState, result: Any, layer: int, head: int,
                      cache: ByteLRU | None = None) -> Any:
    """Every layer x head of the masked run, the picked one outlined; cached like :func:`head_figures`."""
    return figure_cache.figure(state, result, "model_view", (layer, head),
                               lambda: viz.model_view_figure(result.attention, highlight=(layer, head)), cache)


def _mask_caption(result: Any, layer: int, head: int, n_patterns: int) -> str:
    m = np.asarray(result.masks[layer, head])
    layers, heads = result.masks.shape[:2]
    same = ("The mask is the same in every layer and head." if n_patterns == 1 else
            f"The mask differs across layers/heads ({n_patterns} distinct patterns among {layers * heads}); "
            f"this is layer {layer}, head {head}.")
    mode = result.plan.apply.mode
    caveat = {"bias": " In bias mode the strategy's blocked keys are only pushed down by beta: they keep a little "
                      "weight (see the attention tab).",
              "naive_multiply": " In naive-multiply mode the strategy's blocked keys are NOT blocked: that is the "
                                "pitfall this mode shows (see the attention tab)."}.get(mode, "")
    return (f"Dark blue = allowed, grey = blocked (the model's own causal/padding mask included). "
            f"{int(m.sum())} of {m.size} entries allowed ({m.mean():.0%}). {same}{caveat}")


def result_views(state: AppState, result: Any) -> None:
    """Everything below the sidebar once a run exists."""
    explain.output_metrics(result)
    fig = output_figure(state, result)
    if fig is not None:
        show_figure(fig, "dynmask-output", key="output_fig")
    explain.run_facts(state, result)
    st.subheader("The strategy")
    explain.strategy_card(state)
    st.subheader("Inside the model")
    single_head_views(state, result, figure_cache.figure(state, result, "mask_patterns", (),
                                                         lambda: mask_patterns(result.masks)))


@st.fragment
def single_head_views(state: AppState, result: Any, n_patterns: int) -> None:
    """Layer/head pickers (kept in the URL) and the mask / attention / difference tabs; reruns alone."""
    page, ns = state.page, session.ns_of(state.page)
    layers, heads = result.attention.shape[:2]
    for key, value, count in ((f"{ns}.view_layer", state.layer, layers), (f"{ns}.view_head", state.head, heads)):
        if st.session_state.get(key) is None or st.session_state[key] >= count:
            st.session_state[key] = min(value, count - 1)
    c1, c2, c3 = st.columns([1, 1, 2])
    layer = c1.selectbox("Layer", list(range(layers)), key=f"{ns}.view_layer")
    head = c2.selectbox("Head", list(range(heads)), key=f"{ns}.view_head")
    show = c3.radio("Attention of", ["masked", "baseline"], horizontal=True, key=f"{ns}.view_run",
                    format_func=lambda s: "the masked run" if s == "masked" else "the baseline run (no extra mask)")
    session.set_view(page, layer, head)
    state = session.active(page) or state
    figs = head_figures(state, result, layer, head, show)
    q = len(result.tokens)
    note = viz.pooling_note(q, viz.pool_factor(q, viz.MAX_SIDE))
    extra = _INPUT_TABS.get(result.kind, ())
    # Stateful tabs (key + on_change): a switch reruns this fragment alone, and the open tab is known, so the
    # all-layers figure is built (or fetched) only while its tab is open. The key keeps the open tab over reruns.
    tabs = st.tabs([title for title, _ in extra] + ["Mask applied", "Attention weights", "Masked − baseline",
                                                   MODEL_VIEW_TAB, "Downloads"],
                   key=f"{ns}.view_tab", on_change="rerun")
    for tab, (_, draw) in zip(tabs, extra):
        with tab:
            draw(state, result, layer, head, ns)
    tab_mask, tab_attn, tab_diff, tab_model, tab_dl = tabs[len(extra):]
    with tab_mask:
        st.caption(_mask_caption(result, layer, head, n_patterns))
        show_figure(figs["mask"], f"dynmask-mask-L{layer}-H{head}", key="mask_fig")
    with tab_attn:
        st.caption("Each row is one query token; its weights over the keys sum to 1 (0 if nothing is allowed). "
                   "Masked and baseline share one colour scale.")
        show_figure(figs["attention"], f"dynmask-attention-L{layer}-H{head}", key="attn_fig")
    with tab_diff:
        st.caption("Red: the mask gave this key more weight than the baseline did; blue: less. White: no change.")
        show_figure(figs["diff"], f"dynmask-diff-L{layer}-H{head}", key="diff_fig")
    with tab_model:
        st.caption(viz.model_view_note(q, layers, heads) + " Masked run; the red box is the layer/head picked above.")
        if tab_model.open:
            show_figure(model_view_figure(state, result, layer, head), "dynmask-model-view", key="model_view")
    if note:
        st.caption(note)
    cache = figure_cache.shared()  # the deferred HTML download runs outside this script's thread

    def shown() -> list[tuple[str, Any]]:
        output = output_figure(state, result, cache)
        return ([("Output before and after", output)] if output is not None else []) + [
            ("Mask applied", figs["mask"]), ("Attention weights", figs["attention"]),
            ("Masked minus baseline", figs["diff"]), ("Model view", model_view_figure(state, result, layer, head,
                                                                                     cache))]

    with tab_dl:
        downloads.download_panel(state, result, layer, head, shown)
