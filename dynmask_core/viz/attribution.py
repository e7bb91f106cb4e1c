"""Attribution figures: coloured tokens, a heatmap over the picture, per-position bars, and head importance.

One diverging colour scale everywhere: blue = the position pushed the target UP, red = it pushed it DOWN, white = 0.
Masked and unmasked share one scale (symmetric around 0) so their colours compare; the difference has its own.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynmask_core.messages import N_, Translate, english
from dynmask_core.viz._common import as_array, inert, inert_template, token_axis
from dynmask_core.viz.image import _base, _display, _grid_lines

DIVERGING = [[0.0, "#b2182b"], [0.25, "#ef8a62"], [0.5, "#f7f7f7"], [0.75, "#67a9cf"], [1.0, "#2166ac"]]
#: Over a picture, 0 is see-through (the picture shows where nothing was attributed).
OVERLAY_DIVERGING = [[0.0, "rgba(178,24,43,1)"], [0.3, "rgba(239,138,98,0.8)"], [0.5, "rgba(247,247,247,0)"],
                     [0.7, "rgba(103,169,207,0.8)"], [1.0, "rgba(33,102,172,1)"]]
_RGB = [(0.0, (178, 24, 43)), (0.25, (239, 138, 98)), (0.5, (247, 247, 247)), (0.75, (103, 169, 207)),
        (1.0, (33, 102, 172))]


def symmetric_scale(*arrays: Any) -> float:
    """The largest absolute value of all ``arrays`` (the shared colour range is [-scale, scale]); 1 when all are 0."""
    top = max((float(np.nanmax(np.abs(as_array(a, np.float64)))) for a in arrays if np.size(a)), default=0.0)
    return top if top > 0 and np.isfinite(top) else 1.0


def diverging_rgb(value: float, scale: float) -> tuple[int, int, int]:
    """The colour of ``value`` on [-scale, scale] (red, white at 0, blue)."""
    x = 0.5 + 0.5 * max(-1.0, min(1.0, float(value) / scale)) if scale else 0.5
    for (x0, c0), (x1, c1) in zip(_RGB, _RGB[1:]):
        if x <= x1:
            t = (x - x0) / (x1 - x0)
            return tuple(int(round(a + (b - a) * t)) for a, b in zip(c0, c1))  # type: ignore[return-value]
    return _RGB[-1][1]


def token_html(tokens: Sequence[str], values: Any, scale: float, title: str = "") -> str:
    """Tokens as coloured chips (the value and position on hover); self-contained HTML, every token escaped."""
    v = as_array(values, np.float64).reshape(-1)
    chips = []
    for i, (token, value) in enumerate(zip(tokens, v)):
        r, g, b = diverging_rgb(value, scale)
        dark = (0.299 * r + 0.587 * g + 0.114 * b) < 140
        text = html.escape(str(token).replace("▁", " ").strip() or "·")
        chips.append(
            f'<span title="{i}: {html.escape(str(token))} = {value:+.4f}" style="background:rgb({r},{g},{b});'
            f'color:{"#fff" if dark else "#111"};padding:2px 5px;margin:2px;border-radius:4px;display:inline-block;'
            f'font-family:ui-monospace,monospace;font-size:15px">{text}</span>')
    head = f'<div style="font-weight:600;margin:6px 0 2px">{html.escape(title)}</div>' if title else ""
    return f'{head}<div style="line-height:2.1">{"".join(chips)}</div>'


def legend_html(scale: float, what: str = "attribution", tr: Translate = english) -> str:
    """A small colour bar: -scale (red) .. 0 (white) .. +scale (blue); its words through ``tr`` (``what`` is
    ``"attribution"`` or ``"target"``)."""
    stops = ", ".join(f"rgb{diverging_rgb(x * scale, scale)} {int((x + 1) * 50)}%" for x in (-1, -0.5, 0, 0.5, 1))
    down = (tr(N_("{value} (pushes the target down)")) if what == "target" else
            tr(N_("{value} (pushes the attribution down)"))).format(value=f"{-scale:+.3g}")
    up = tr(N_("{value} (pushes it up)")).format(value=f"{scale:+.3g}")
    return (f'<div style="display:flex;align-items:center;gap:8px;font-size:13px">'
            f'<span>{html.escape(down)}</span>'
            f'<span style="width:160px;height:12px;background:linear-gradient(90deg, {stops});border-radius:3px">'
            f'</span><span>{html.escape(up)}</span></div>')


def pixel_overlay_figure(image: Any, values: Any, title: str, scale: float, opacity: float = 0.6,
                         grid: tuple[int, int] | None = None, label: str = "attribution") -> go.Figure:
    """A signed map (pixels or patches, any resolution) over the picture, diverging scale on [-scale, scale]."""
    img = _display(image)
    v = as_array(values, np.float64)
    h, w = img.shape[:2]
    rows, cols = v.shape
    fig = _base(img, title)  # _base makes the title inert
    if grid is not None:
        _grid_lines(fig, h, w, grid)
    fig.add_trace(go.Heatmap(
        z=np.round(v, 6), x=[(c + 0.5) * w / cols - 0.5 for c in range(cols)],
        y=[(r + 0.5) * h / rows - 0.5 for r in range(rows)], zmin=-scale, zmax=scale, colorscale=OVERLAY_DIVERGING,
        opacity=float(opacity), zsmooth=False, colorbar={"title": {"text": inert(label)}, "thickness": 14},
        hovertemplate=N_("row %{y:.0f}, column %{x:.0f}") + "<br>" + inert_template(label)
        + " %{z:.4f}<extra></extra>",
    ))
    return fig


def positions_figure(labels: Sequence[str], series: dict[str, Any], title: str,
                     label: str = "attribution") -> go.Figure:
    """Grouped bars: one score per position for each series (masked, unmasked)."""
    colors = {N_("masked"): "#1f4e99", N_("unmasked"): "#e07b00", N_("difference"): "#6a3d9a"}  # names: the legend
    x = token_axis(labels)
    fig = go.Figure()
    for name, values in series.items():
        fig.add_trace(go.Bar(x=x, y=np.round(as_array(values, np.float64).reshape(-1), 6), name=inert(name),
                             marker_color=colors.get(name),
                             hovertemplate="%{x}: %{y:.4f}<extra>" + inert_template(name) + "</extra>"))
    fig.update_layout(barmode="group", title={"text": inert(title), "x": 0.0}, height=360,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14},
                      legend={"orientation": "h", "y": -0.3}, yaxis_title=inert(label))
    fig.update_xaxes(tickangle=-45, type="category")
    return fig


def head_importance_figure(importance: Any, title: str, zmax: float | None = None,
                           off: Sequence[tuple[int, int]] = ()) -> go.Figure:
    """Layers x heads heatmap of head importance (|d target / d gate|); heads switched off are outlined."""
    v = as_array(importance, np.float64)
    layers, heads = v.shape
    fig = go.Figure(go.Heatmap(
        z=np.round(v, 6), x=[f"H{h}" for h in range(heads)], y=[f"L{layer}" for layer in range(layers)],
        colorscale="Viridis", zmin=0.0, zmax=zmax or float(v.max()) or 1.0,
        colorbar={"title": {"text": N_("importance")}, "thickness": 14},
        hovertemplate=N_("layer %{y}, head %{x}: %{z:.4g}<extra></extra>")))
    for layer, head in off:
        if layer < layers and head < heads:
            fig.add_shape(type="rect", x0=head - 0.5, x1=head + 0.5, y0=layer - 0.5, y1=layer + 0.5,
                          line={"color": "#ff2d55", "width": 2})
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=max(260, 26 * layers + 110),
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14})
    fig.update_yaxes(autorange="reversed")
    return fig
