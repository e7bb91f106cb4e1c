"""Heatmaps of one ``(Q, K)`` matrix: the mask applied, attention weights, and masked minus baseline.

Rows are queries (the token that attends), columns are keys (the token attended to); query 0 is at the top.
Matrices longer than ``max_side`` are average-pooled for display (see :func:`~dynmask_core.viz.pooling_note`);
``block`` > 1 says a matrix comes already pooled in ``block x block`` blocks (a run's capture budget kept only those).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynmask_core.messages import N_
from dynmask_core.viz._common import (
    MAX_SIDE,
    as_array,
    inert,
    pool2d,
    pool_factor,
    pooled_axis,
    roomy_margins,
    rounded,
    token_axis,
    widest,
)

ALLOWED_COLOR = "#1f4e99"  # dark blue: may attend
BLOCKED_COLOR = "#e4e7ec"  # light grey: blocked
ATTENTION_SCALE = "Blues"
DIFF_SCALE = "RdBu"  # the app's one convention (as attribution): blue = more / up, red = less / down
_FONT = {"size": 14}


#: Tick labels of the key axis are turned by this many degrees.
_TICK_ANGLE = -60


def _colorbar_width(colorbar: dict) -> float:
    """Room the colour bar takes right of the plot: its gap from the plot (2% of the width), the bar, its tick labels
    and its title (each line)."""
    texts = [str(v) for v in colorbar.get("ticktext", ["0.000"])]
    title = str(colorbar.get("title", {}).get("text", ""))
    labels = widest(texts, _FONT["size"]) + 10
    return 20 + colorbar.get("thickness", 30) + max(labels, widest(title.split("<br>"), _FONT["size"]))


def _figure(trace: go.Heatmap, title: str, n: int, height: int | None) -> go.Figure:
    """The heatmap ``trace`` with its title, size and token axes, built in one call (plotly validates a layout given
    to the constructor once; ``update_layout`` / ``update_xaxes`` afterwards validate it again, call by call).

    Margins are estimated from the labels (:func:`~dynmask_core.viz._common.roomy_margins`): the browser draws the
    figure once instead of twice."""
    side = height or int(min(720, max(360, 140 + 18 * n)))
    axis = {"type": "category", "showgrid": False, "automargin": True}
    size = _FONT["size"]
    turned = math.sin(math.radians(abs(_TICK_ANGLE)))
    keys_depth = widest(trace.x or (), size) * turned + size * math.cos(math.radians(_TICK_ANGLE))
    axis_title = 2.2 * size  # the title's line and its gap from the tick labels
    margin = roomy_margins(left=widest(trace.y or (), size) + 6 + axis_title, bottom=keys_depth + 6 + axis_title,
                           right=_colorbar_width(trace.colorbar.to_plotly_json()))
    return go.Figure(trace, layout={
        "title": {"text": inert(title), "x": 0.0, "xanchor": "left"}, "height": side,
        "margin": margin, "font": _FONT, "plot_bgcolor": "white",
        "xaxis": {"title": {"text": N_("key (attended to)")}, "tickangle": _TICK_ANGLE, "side": "bottom", **axis},
        "yaxis": {"title": {"text": N_("query (attending)")}, "autorange": "reversed", **axis}})


def _axes(tokens: Sequence[str], n_q: int, n_k: int, factor: int, block: int = 1,
          window: tuple[int, int] | None = None) -> tuple[list[str], list[str]]:
    labels = pooled_axis(token_axis(tokens), block)
    if window is not None:  # rows and keys from these positions on (a zoomed window)
        queries, keys = labels[window[0]:window[0] + n_q], labels[window[1]:window[1] + n_k]
        return pooled_axis(queries, factor), pooled_axis(keys, factor)
    keys = labels[-n_k:] if len(labels) >= n_k else [str(i) for i in range(n_k)]
    queries = labels[-n_q:] if len(labels) >= n_q else [str(i) for i in range(n_q)]
    return pooled_axis(queries, factor), pooled_axis(keys, factor)


def mask_figure(mask: Any, tokens: Sequence[str], title: str = N_("Mask applied"), max_side: int = MAX_SIDE,
                height: int | None = None, block: int = 1, window: tuple[int, int] | None = None) -> go.Figure:
    """The boolean mask as two colours: allowed (dark blue) and blocked (light grey).

    Args:
        mask: ``(Q, K)`` bool, True = the query may attend to the key.
        tokens: Token labels (length >= K); shown as ``"pos:token"``.
        title: Figure title.
        max_side: Larger matrices are pooled; cells then show the *fraction* allowed.
        height: Pixel height (default grows with Q).
        block: ``mask`` is already pooled in blocks of this many tokens: the fraction allowed in each.
        window: ``(first query, first key)``: the matrix is a window of a longer one, starting at these positions.

    Returns:
        A figure with one ``Heatmap`` trace.
    """
    m = as_array(mask, np.float32) if block > 1 else as_array(mask).astype(bool)
    q, k = m.shape
    factor = pool_factor(max(q, k), max_side)
    y, x = _axes(tokens, q, k, factor, block, window)
    if factor == 1 and block == 1:
        z = m.astype(np.uint8)
        scale = [[0.0, BLOCKED_COLOR], [0.5, BLOCKED_COLOR], [0.5, ALLOWED_COLOR], [1.0, ALLOWED_COLOR]]
        colorbar = {"tickvals": [0.25, 0.75], "ticktext": [N_("blocked"), N_("allowed")], "len": 0.4, "thickness": 14}
        hover = N_("query %{y}<br>key %{x}<br>allowed (1) or blocked (0): %{z}<extra></extra>")
    else:
        z = rounded(pool2d(m, factor), 2)
        scale = [[0.0, BLOCKED_COLOR], [1.0, ALLOWED_COLOR]]
        colorbar = {"title": {"text": N_("fraction<br>allowed")}, "len": 0.6, "thickness": 14}
        hover = N_("queries %{y}<br>keys %{x}<br>allowed: %{z:.0%}<extra></extra>")
    trace = go.Heatmap(z=z, x=x, y=y, zmin=0, zmax=1, colorscale=scale, colorbar=colorbar, xgap=0 if q > 40 else 1,
                       ygap=0 if q > 40 else 1, hovertemplate=hover)
    return _figure(trace, title, min(q, max_side), height)


def attention_figure(attention: Any, tokens: Sequence[str], title: str = N_("Attention weights"),
                     zmax: float | None = None, max_side: int = MAX_SIDE, height: int | None = None,
                     block: int = 1, window: tuple[int, int] | None = None) -> go.Figure:
    """Attention probabilities of one layer and head.

    Args:
        attention: ``(Q, K)`` float, rows sum to 1 (or 0 for fully blocked rows).
        tokens: Token labels (length >= K).
        title: Figure title.
        zmax: Top of the colour scale (share it between figures you compare); default the matrix maximum.
        max_side: Larger matrices are average-pooled for display.
        height: Pixel height.
        block: ``attention`` is already pooled in blocks of this many tokens (block means).
        window: ``(first query, first key)``: the matrix is a window of a longer one, starting at these positions.

    Returns:
        A figure with one ``Heatmap`` trace, colour scale from 0.
    """
    a = as_array(attention, np.float32)
    q, k = a.shape
    factor = pool_factor(max(q, k), max_side)
    y, x = _axes(tokens, q, k, factor, block, window)
    z = rounded(pool2d(a, factor))
    top = float(zmax) if zmax is not None else float(np.nanmax(z)) if z.size else 1.0
    trace = go.Heatmap(z=z, x=x, y=y, zmin=0, zmax=max(top, 1e-6), colorscale=ATTENTION_SCALE,
                       colorbar={"title": {"text": N_("weight")}, "len": 0.6, "thickness": 14},
                       hovertemplate=N_("query %{y}<br>key %{x}<br>weight %{z:.3f}<extra></extra>"))
    return _figure(trace, title, min(q, max_side), height)


def diff_figure(diff: Any, tokens: Sequence[str], title: str = N_("Masked minus baseline attention"),
                limit: float | None = None, max_side: int = MAX_SIDE, height: int | None = None,
                block: int = 1, window: tuple[int, int] | None = None) -> go.Figure:
    """A signed difference on a diverging scale centred on 0 (blue = more weight, red = less).

    Args:
        diff: ``(Q, K)`` float, e.g. masked attention minus baseline attention.
        tokens: Token labels (length >= K).
        title: Figure title.
        limit: Symmetric colour range ``[-limit, limit]``; default the largest absolute value.
        max_side: Larger matrices are average-pooled for display.
        height: Pixel height.
        block: ``diff`` is already pooled in blocks of this many tokens (block means).
        window: ``(first query, first key)``: the matrix is a window of a longer one, starting at these positions.

    Returns:
        A figure with one ``Heatmap`` trace with ``zmid=0``.
    """
    d = as_array(diff, np.float32)
    q, k = d.shape
    factor = pool_factor(max(q, k), max_side)
    y, x = _axes(tokens, q, k, factor, block, window)
    z = rounded(pool2d(d, factor))
    lim = float(limit) if limit is not None else float(np.nanmax(np.abs(z))) if z.size else 1.0
    lim = max(lim, 1e-3)
    trace = go.Heatmap(z=z, x=x, y=y, zmid=0, zmin=-lim, zmax=lim, colorscale=DIFF_SCALE,
                       colorbar={"title": {"text": N_("change")}, "len": 0.6, "thickness": 14},
                       hovertemplate=N_("query %{y}<br>key %{x}<br>change %{z:+.3f}<extra></extra>"))
    return _figure(trace, title, min(q, max_side), height)
