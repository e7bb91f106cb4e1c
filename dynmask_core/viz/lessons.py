"""Lesson figures: small matrices with their numbers written in the cells, and the pitfall's rows side by side."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynmask_core.messages import N_
from dynmask_core.viz._common import as_array, inert, inert_template

NEG_INF_TEXT = "−∞"


def numbers_figure(matrix: Any, rows: Sequence[str], cols: Sequence[str], title: str, colorscale: str = "RdBu",
                   decimals: int = 2, symmetric: bool = True, height: int | None = None) -> go.Figure:
    """A heatmap whose cells show their values (``-inf`` written as −∞ and drawn blank).

    Args:
        matrix: ``(R, C)`` numbers.
        rows: Row labels; cols: column labels.
        title: Figure title.
        colorscale: Plotly scale (diverging ``RdBu`` centred on 0 when ``symmetric``: blue above 0, red below, the
            app's one convention).
        decimals: Digits shown in the cells.
        symmetric: Colour range ``[-m, m]`` (signed values) instead of ``[min, max]``.
        height: Pixels; default from the number of rows.
    """
    m = as_array(matrix, np.float64)
    finite = np.isfinite(m)
    shown = np.where(finite, m, np.nan)
    text = np.where(finite, np.vectorize(lambda x: f"{x:.{decimals}f}")(np.where(finite, m, 0.0)), NEG_INF_TEXT)
    top = float(np.nanmax(np.abs(shown))) if finite.any() else 1.0
    zmin, zmax = (-top, top) if symmetric else (float(np.nanmin(shown)) if finite.any() else 0.0, top)
    cols_shown = [inert(c) for c in cols]
    rows_shown = [inert(r) for r in rows]
    fig = go.Figure(go.Heatmap(
        z=np.round(shown, 6).tolist(), x=cols_shown, y=rows_shown, text=text, texttemplate="%{text}",
        textfont={"size": 12 if m.shape[1] <= 12 else 9}, colorscale=colorscale, zmin=zmin, zmax=zmax or 1.0,
        showscale=False, xgap=1, ygap=1,
        hovertemplate="%{y} · %{x}: %{text}<extra></extra>"))
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=height or max(180, 34 * m.shape[0] + 90),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14})
    fig.update_yaxes(autorange="reversed", type="category")
    # the key labels under the matrix, as on every heatmap of the app: on top they ran into the title (turned labels
    # in a narrow column, and more so in presenter mode)
    fig.update_xaxes(type="category", side="bottom", automargin=True)
    return fig


def pitfall_figure(keys: Sequence[str], rows: Mapping[str, Any], title: str) -> go.Figure:
    """Grouped bars: one row of attention weights per way of applying the mask."""
    colors = {"hard": "#1f4e99", "naive_multiply": "#c0392b", "gate_renorm": "#2e8b57", "gate": "#e07b00"}
    fig = go.Figure()
    for name, values in rows.items():
        v = as_array(values, np.float64).reshape(-1)
        fig.add_trace(go.Bar(x=[inert(k) for k in keys], y=np.round(v, 4), name=inert(name),
                             marker_color=colors.get(name),
                             text=[f"{x:.3f}" for x in v], textposition="outside",
                             hovertemplate="%{x}: %{y:.4f}<extra>" + inert_template(name) + "</extra>"))
    fig.update_layout(barmode="group", title={"text": inert(title), "x": 0.0}, height=380, yaxis_range=[0, 1.1],
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14},
                      legend={"orientation": "h", "y": -0.2}, yaxis_title=N_("weight"))
    fig.update_xaxes(type="category")
    return fig
