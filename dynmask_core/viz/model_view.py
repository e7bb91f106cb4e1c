"""The "model view": every layer x head attention matrix at once, as ONE tiled heatmap.

One image instead of L x H plotly subplots keeps the page responsive at 30 layers x 9 heads and 512 tokens:
each matrix is average-pooled to at most ``cell`` x ``cell`` and the tiles are separated by one empty (NaN) line.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynmask_core.messages import N_, Message
from dynmask_core.viz._common import MODEL_VIEW_SIDE, as_array, inert, pool2d, pool_factor, rounded

#: Upper bound on the number of cells of the whole grid (~0.6 MB of JSON as float32).
MAX_GRID_CELLS = 160_000


def model_view_cell(n_tokens: int, n_layers: int, n_heads: int, cell: int = MODEL_VIEW_SIDE,
                    max_cells: int = MAX_GRID_CELLS) -> tuple[int, int]:
    """Pooling block size and resulting tile side for the model view.

    Returns:
        ``(factor, side)``: each matrix is pooled in ``factor x factor`` blocks to ``side x side`` cells.
    """
    budget = max(4, int(math.sqrt(max_cells / max(1, n_layers * n_heads))))
    factor = pool_factor(n_tokens, min(cell, budget))
    return factor, math.ceil(n_tokens / factor)


def model_view_note(n_tokens: int, n_layers: int, n_heads: int, what: str = "attention") -> Message:
    """Caption that says how the grid was downsampled (always says what a tile is); ``what`` is ``"attention"`` or
    ``"pooled attention"`` (a long run's block means)."""
    factor, side = model_view_cell(n_tokens, n_layers, n_heads)
    tile = (Message("each tile is one head's {n}x{n} pooled attention", n=n_tokens) if what == "pooled attention"
            else Message("each tile is one head's {n}x{n} attention", n=n_tokens))
    if factor == 1:
        return Message("{layers} layers (rows) x {heads} heads (columns); {tile}, shown in full.", layers=n_layers,
                       heads=n_heads, tile=tile)
    return Message("{layers} layers (rows) x {heads} heads (columns); {tile}, average-pooled in {f}x{f} blocks to "
                   "{side}x{side} cells for display.", layers=n_layers, heads=n_heads, tile=tile, f=factor, side=side)


def model_view_figure(attention: Any, title: str = N_("Model view: all layers x heads"), zmax: float | None = None,
                      highlight: tuple[int, int] | None = None) -> go.Figure:
    """All ``L x H`` attention matrices tiled into one heatmap.

    Args:
        attention: ``(L, H, Q, K)`` float attention weights.
        title: Figure title.
        zmax: Top of the colour scale; default the 99th percentile of the pooled values (small tiles stay visible).
        highlight: ``(layer, head)`` outlined with a rectangle (the one shown in the single-head views).

    Returns:
        A figure with one ``Heatmap`` trace of shape ``(L*(side+1)-1, H*(side+1)-1)``.
    """
    a = as_array(attention, np.float32)
    n_layers, n_heads, q, k = a.shape
    factor, _ = model_view_cell(max(q, k), n_layers, n_heads)
    pooled = pool2d(a, factor)  # (L, H, q', k')
    sq, sk = pooled.shape[-2:]
    grid = np.full((n_layers * (sq + 1) - 1, n_heads * (sk + 1) - 1), np.nan, dtype=np.float32)
    for layer in range(n_layers):
        for head in range(n_heads):
            r, c = layer * (sq + 1), head * (sk + 1)
            grid[r:r + sq, c:c + sk] = pooled[layer, head]
    finite = grid[np.isfinite(grid)]
    top = float(zmax) if zmax is not None else float(np.percentile(finite, 99)) if finite.size else 1.0
    fig = go.Figure(go.Heatmap(
        z=rounded(grid), zmin=0, zmax=max(top, 1e-6), colorscale="Blues", hoverongaps=False,
        colorbar={"title": {"text": N_("weight")}, "len": 0.5, "thickness": 14},
        hovertemplate=N_("weight %{z:.3f}<extra></extra>"),
    ))
    fig.update_xaxes(tickvals=[h * (sk + 1) + (sk - 1) / 2 for h in range(n_heads)],
                     ticktext=[f"H{h}" for h in range(n_heads)], showgrid=False, zeroline=False, side="top")
    fig.update_yaxes(tickvals=[layer * (sq + 1) + (sq - 1) / 2 for layer in range(n_layers)],
                     ticktext=[f"L{layer}" for layer in range(n_layers)], autorange="reversed",
                     showgrid=False, zeroline=False, scaleanchor="x")
    if highlight is not None:
        layer, head = highlight
        fig.add_shape(type="rect", x0=head * (sk + 1) - 0.5, x1=head * (sk + 1) + sk - 0.5,
                      y0=layer * (sq + 1) - 0.5, y1=layer * (sq + 1) + sq - 0.5,
                      line={"color": "#d62728", "width": 2})
    width_ratio = grid.shape[1] / max(1, grid.shape[0])
    height = int(min(1400, max(320, 60 + 900 / max(width_ratio, 0.6))))
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=height,
                      margin={"l": 10, "r": 10, "t": 70, "b": 10}, plot_bgcolor="white", font={"size": 13})
    return fig
