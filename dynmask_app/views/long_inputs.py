"""The Playground's views of a run past the model's usual 512 tokens.

Such a run keeps, within the server's capture budget, per layer and head summaries (entropy, distance, sink,
density) and block-pooled maps of the weights and masks (see :mod:`dynmask_core.capture`), not every weight. The
heatmaps then show block means and say so; *Zoom* computes a window of one layer and head's rows at full resolution
on demand (:func:`dynmask_core.engine.attention_window`: the same passes, stopped after that layer) and sends only
the window asked for, never the whole matrix.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.editor.widgets import choice
from dynmask_app.i18n import error_text, t, translate
from dynmask_app.server import figure_cache, keys, resources, runner
from dynmask_app.server.result_cache import ByteLRU
from dynmask_app.state import AppState
from dynmask_app.views import charts
from dynmask_core import viz
from dynmask_core.capture import STATS, full_capture_bytes
from dynmask_core.messages import N_

#: Zoom window sides (query rows x keys shown at full resolution).
ZOOM_SIDES = (64, 128, 256)
_ZOOM_SHOW = {"masked": N_("masked attention"), "baseline": N_("baseline attention"), "diff": N_("masked − baseline"),
              "mask": N_("mask applied")}
_STAT_NAMES = {"entropy": N_("entropy"), "distance": N_("distance"), "sink": N_("first-token share"),
               "allowed": N_("density")}


def capture_note(result: Any) -> str:
    """What a budgeted run kept, against what capturing every weight would have taken."""
    layers, heads, q, k = result.shape
    s = result.summary
    kept = (s.nbytes + result.baseline_summary.nbytes) / 2**20
    full = full_capture_bytes(layers, heads, q, k) / 2**30
    return t("{q} tokens: past the usual 512, this run kept per-head summaries and {b}x{b}-token pooled maps "
             "({kept:.1f} MB for both passes) instead of every weight ({full:.1f} GB). The heatmaps show block means; "
             "*Zoom* shows any window of rows at full resolution.", q=f"{q:,}", b=s.block, kept=kept, full=full)


def mask_caption(result: Any, layer: int, head: int) -> str:
    """The mask tab's caption for pooled masks."""
    s = result.summary
    allowed = float(s.stat("allowed")[layer, head])
    return t("Each cell is a {b}x{b} block of tokens; dark blue = all of it allowed, grey = all blocked, in between "
             "the fraction allowed (the model's own causal/padding mask included). Layer {layer}, head {head} allows "
             "{allowed:.2%} of the query-key pairs.", b=s.block, layer=layer, head=head, allowed=allowed)


def model_view_figure(state: AppState, result: Any, layer: int, head: int, cache: ByteLRU | None = None) -> Any:
    """Every layer x head of the masked run from its pooled maps, the picked one outlined."""
    return figure_cache.figure(state, result, "pooled.model_view", (layer, head),
                               lambda: viz.model_view_figure(result.summary.pooled, highlight=(layer, head)), cache)


def summaries_tab(state: AppState, result: Any, layer: int, head: int, ns: str) -> None:
    """Per layer and head summaries, masked beside baseline: what the budget kept of every head."""
    stat = choice("radio", t("Summary"), STATS, horizontal=True, key=f"{ns}.long_stat",
                  label_of=lambda name, lang: translate(_STAT_NAMES[name], lang), fallback=STATS[0])
    s, b = result.summary, result.baseline_summary
    fig = figure_cache.figure(state, result, "pooled.stats", (stat, layer, head),
                              lambda: viz.head_stats_figure(s.stat(stat), b.stat(stat), stat, (layer, head)))
    charts.plotly(fig, "dynmask-head-summaries", key="long_stats")
    st.caption(t("Exact values, from every weight of every head (not from the pooled maps). The red box is the "
                 "layer and head picked above."))


def _window_inputs(n: int, ns: str) -> tuple[int, int, int, str]:
    """The zoom's side, first query, first key and what to show, from its widgets."""
    c1, c2, c3, c4 = st.columns([1, 1, 1, 2])
    with c1:
        side = choice("select", t("Window"), ZOOM_SIDES, index=1, key=f"{ns}.zoom_side",
                      label_of=lambda v, lang: translate("{n} x {n} tokens", lang).format(n=v))
    side = min(int(side), n)
    q0 = int(c2.number_input(t("First query"), 0, max(0, n - 1), step=side, key=f"{ns}.zoom_q"))
    follow = c4.toggle(t("Keys around the queries (the diagonal)"), value=True, key=f"{ns}.zoom_follow")
    if follow:
        k0 = max(0, min(q0 - side // 2, n - side))
        c3.number_input(t("First key"), value=k0, disabled=True, help=t("Follows the first query (the diagonal): turn "
                                                                        "the switch off to move the keys on their "
                                                                        "own."))
    else:
        k0 = int(c3.number_input(t("First key"), 0, max(0, n - 1), step=side, key=f"{ns}.zoom_k"))
    show = choice("radio", t("Show"), list(_ZOOM_SHOW), horizontal=True, key=f"{ns}.zoom_show",
                  label_of=lambda name, lang: translate(_ZOOM_SHOW[name], lang), fallback="masked")
    return side, q0, k0, show


def zoom_tab(state: AppState, result: Any, layer: int, head: int, ns: str) -> None:
    """A window of one layer and head at full resolution, computed when asked (or found in the shared cache)."""
    n = len(result.tokens)
    side, q0, k0, show = _window_inputs(n, ns)
    rows = (q0, min(q0 + side, n))
    key = keys.window_key(state, result.plan, layer, head, rows)
    st.caption(t("Rows {r0}–{r1}, keys {k0}–{k1} of layer {layer}, head {head}: {cells} cells sent, of the {n} x {n} "
                 "matrix. Computing a window reruns both passes up to layer {layer} (the same input, mask and seed: "
                 "the same weights) and keeps only these rows.", r0=rows[0], r1=rows[1] - 1, k0=k0,
                 k1=min(k0 + side, n) - 1, layer=layer, head=head, cells=f"{(rows[1] - rows[0]) * min(side, n - k0):,}",
                 n=f"{n:,}"))
    slot = st.empty()
    if key not in resources.result_cache() \
            and not slot.button(t("Compute rows {r0}–{r1} at full resolution", r0=rows[0], r1=rows[1] - 1),
                                key=f"{ns}.zoom_go"):
        return
    slot.empty()
    try:
        with st.spinner(t("Both passes up to layer {layer}, keeping rows {r0}–{r1}...", layer=layer, r0=rows[0],
                          r1=rows[1] - 1)):
            window = runner.window_recipe(state, result.plan, layer, head, rows)
    except ValueError as err:
        messages.error(error_text(err))
        return
    cols = slice(k0, min(k0 + side, n))
    title = t("Layer {layer}, head {head}, rows {r0}–{r1}: {what} (full resolution)", layer=layer, head=head,
              r0=rows[0], r1=rows[1] - 1, what=t(_ZOOM_SHOW[show]))

    def build() -> Any:
        at = (rows[0], k0)
        if show == "mask":
            return viz.mask_figure(window.masks[:, cols], result.tokens, title, window=at)
        if show == "diff":
            return viz.diff_figure(window.attention[:, cols] - window.baseline_attention[:, cols], result.tokens,
                                   title, window=at)
        top = float(max(window.attention[:, cols].max(), window.baseline_attention[:, cols].max()))
        values = window.attention if show == "masked" else window.baseline_attention
        return viz.attention_figure(values[:, cols], result.tokens, title, zmax=top, window=at)

    fig = figure_cache.figure(state, result, "zoom", (layer, head, rows, k0, side, show), build)
    charts.plotly(fig, "dynmask-zoom", key="zoom_fig")
    outside = 1 - float(window.attention[:, cols].sum() / max(float(window.attention.sum()), 1e-12))
    st.caption(t("Computed in {s:.1f} s. {outside:.1%} of these rows' masked weight falls on keys outside the "
                 "columns shown.", s=window.seconds, outside=outside))
