"""Views of an image run: attention and the mask laid over the picture, for a query patch, and attention rollout."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import streamlit as st

from dynmask_app import messages
from dynmask_app.i18n import error_text, t
from dynmask_app.server import figure_cache, runner, uploads
from dynmask_app.views import charts
from dynmask_core.analysis.rollout import on_grid, rollout
from dynmask_core.modalities.image import as_seen
from dynmask_core.viz.image import MASK_SCALE, patch_overlay_figure


def picture_of(state: Any) -> np.ndarray | None:
    """The picture as the model saw it (its processor's resize and crop), so the patches line up."""
    try:
        return as_seen(runner.get_model(state.model), uploads.source_of(state).image)
    except ValueError as err:
        messages.warning(t("The picture is not available here: {error}", error=error_text(err)))
        return None


def picture_getter(state: Any) -> Callable[[], np.ndarray] | None:
    """The picture as a getter that prepares it on first call (figures already built for this input need none),
    or None, with a warning, when this session cannot have it (someone else's upload)."""
    if state.is_upload and state.input_ref not in st.session_state.get(uploads.UPLOADS, {}):
        image = picture_of(state)  # says why
        return None if image is None else (lambda: image)
    memo: dict[str, np.ndarray] = {}

    def picture() -> np.ndarray:
        if "image" not in memo:
            memo["image"] = as_seen(runner.get_model(state.model), uploads.source_of(state).image)
        return memo["image"]

    return picture


def _query(ns: str, result: Any) -> tuple[int, tuple[int, int] | None]:
    """The query position picked (CLS or a patch) and its (row, col) on the grid."""
    rows, cols = result.geometry.grid
    prefix = result.geometry.prefix
    options = list(range(prefix)) + [prefix + i for i in range(rows * cols)]
    cls = t(" (the class token)")
    q = st.selectbox(t("Query: whose attention to show"), options, key=f"{ns}.img_query",
                     format_func=lambda i: result.tokens[i] + (cls if i < prefix else ""),
                     help=t("CLS: what the classification token looked at. A patch rXcY: what that patch looked at."))
    return q, (None if q < prefix else divmod(q - prefix, cols))


def image_tab(state: Any, result: Any, layer: int, head: int, ns: str) -> None:
    """Attention of one query over the picture, masked next to baseline on one scale, and the mask of that query."""
    picture = picture_getter(state)
    if picture is None:
        return
    g = result.geometry
    c1, c2 = st.columns([2, 1])
    with c1:
        q, cell = _query(ns, result)
    opacity = c2.slider(t("Overlay opacity"), 0.0, 1.0, 0.6, 0.05, key=f"{ns}.img_opacity")
    who = result.tokens[q]
    where = f"L{layer} H{head}"
    titles = (t("Masked run: {who} attends to ({where})", who=who, where=where),
              t("Baseline: {who} attends to ({where})", who=who, where=where))
    mask_title = t("Mask applied for {who} ({where})", who=who, where=where)
    words = {"attention": t("attention"), "shown": t("shown"), "allowed": t("allowed"),
             "hidden": t("What the masked run saw (input mask)")}

    def pair() -> tuple[Any, Any]:  # masked and baseline share one colour scale: built together
        masked = on_grid(result.attention[layer, head, q], g.grid, g.prefix)
        base = on_grid(result.baseline_attention[layer, head, q], g.grid, g.prefix)
        top = float(max(masked.max(), base.max()))
        return (patch_overlay_figure(picture(), masked, titles[0], opacity, top, label=words["attention"],
                                     highlight=cell),
                patch_overlay_figure(picture(), base, titles[1], opacity, top, label=words["attention"],
                                     highlight=cell))

    def hidden_figure() -> Any:
        return patch_overlay_figure(picture(), 1.0 - hidden, words["hidden"], 0.85, 1.0, MASK_SCALE, words["shown"])

    def mask_figure() -> Any:
        return patch_overlay_figure(picture(), allowed, mask_title, 0.85, 1.0, MASK_SCALE, words["allowed"], cell)

    try:
        fig_masked, fig_base = figure_cache.figure(state, result, "image.attention",
                                                   (layer, head, q, cell, opacity, titles), pair)
        allowed = on_grid(result.masks[layer, head, q].float(), g.grid, g.prefix)
        hidden = None if result.hidden is None else on_grid(result.hidden.float(), g.grid, g.prefix)
        fig_hidden = None if hidden is None else figure_cache.figure(state, result, "image.hidden", (words["hidden"],),
                                                                     hidden_figure)
        fig_mask = figure_cache.figure(state, result, "image.mask", (layer, head, q, cell, mask_title), mask_figure)
    except ValueError as err:
        messages.warning(t("The picture is not available here: {error}", error=error_text(err)))
        return
    a, b = st.columns(2)
    charts.plotly(fig_masked, "dynmask-image-masked", key="img_masked", where=a)
    charts.plotly(fig_base, "dynmask-image-baseline", key="img_base", where=b)
    cls_share = float(result.attention[layer, head, q, : g.prefix].sum())
    st.caption(t("Brighter = more attention from {who} to that patch (one colour scale for both). {share:.1%} of "
                 "{who}'s attention goes to the class token(s), which the picture cannot show.", who=who,
                 share=cls_share))
    if hidden is not None:
        charts.plotly(fig_hidden, "dynmask-image-hidden", key="img_hidden")
        st.caption(t("Dark patches were hidden from the masked run's input ({n} of {total}): their pixels were set to "
                     "the normalised mean before the model saw them.", n=int(hidden.sum()), total=hidden.size))
    a, b = st.columns(2)
    charts.plotly(fig_mask, "dynmask-image-mask", key="img_mask", where=a)
    b.caption(t("Clear patches: {who} may attend to them; dark patches: blocked. {n} of {total} patches allowed. "
                "Pick another query above to see its row of the mask; the red frame marks the query patch.", who=who,
                n=int(allowed.sum()), total=allowed.size))


def rollout_tab(state: Any, result: Any, layer: int, head: int, ns: str) -> None:
    """Attention rollout from the class token over the picture, masked and baseline."""
    picture = picture_getter(state)
    if picture is None:
        return
    g = result.geometry
    opacity = st.session_state.get(f"{ns}.img_opacity", 0.6)

    def pair() -> tuple[Any, Any]:  # rollout of every layer: computed only when the figures are built
        masked = on_grid(rollout(result.attention)[0], g.grid, g.prefix)
        base = on_grid(rollout(result.baseline_attention)[0], g.grid, g.prefix)
        top = float(max(masked.max(), base.max()))
        return (patch_overlay_figure(picture(), masked, words[0], opacity, top, label=words[2]),
                patch_overlay_figure(picture(), base, words[1], opacity, top, label=words[2]))

    words = (t("Rollout, masked run"), t("Rollout, baseline"), t("rollout"))
    try:
        fig_masked, fig_base = figure_cache.figure(state, result, "image.rollout", (opacity, words), pair)
    except ValueError as err:
        messages.warning(t("The picture is not available here: {error}", error=error_text(err)))
        return
    a, b = st.columns(2)
    charts.plotly(fig_masked, "dynmask-rollout-masked", key="rollout_masked", where=a)
    charts.plotly(fig_base, "dynmask-rollout-baseline", key="rollout_base", where=b)
    st.caption(t("Attention rollout (Abnar & Zuidema 2020): each layer's attention, averaged over heads and mixed "
                 "with the skip connection (0.5 A + 0.5 I), multiplied through all layers; the class token's row, "
                 "shown per patch. It follows attention only, not the values or the MLPs."))
