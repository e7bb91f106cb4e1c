"""Per layer and head summaries of a long run's attention (what a capture budget keeps for every head): one
``layers x heads`` heatmap for the masked run beside one for the baseline, on one colour scale.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dynmask_core.messages import N_
from dynmask_core.viz._common import as_array, inert

#: Summary name -> (what it is, colour bar title, hover format).
STAT_TEXT = {
    "entropy": (N_("Entropy of each row's weights, averaged over the queries (nats; 0 = all on one key)"), N_("nats"),
                ".3f"),
    "distance": (N_("Mean attention distance |query - key|, weighted by the weights (tokens)"), N_("tokens"), ".1f"),
    "sink": (N_("Share of attention on the first token (the attention sink)"), N_("share"), ".3f"),
    "allowed": (N_("Fraction of query-key pairs the masks allowed (the density)"), N_("fraction"), ".3f"),
}
#: The hover line of each format of :data:`STAT_TEXT`.
_HOVER = {".3f": N_("layer %{y}, head %{x}: %{z:.3f}<extra></extra>"),
          ".1f": N_("layer %{y}, head %{x}: %{z:.1f}<extra></extra>")}


def head_stats_figure(masked: Any, baseline: Any, stat: str, highlight: tuple[int, int] | None = None
                      ) -> go.Figure:
    """Two ``layers x heads`` heatmaps of one summary, masked run and baseline, on one colour scale.

    Args:
        masked, baseline: ``(L, H)`` values of summary ``stat`` (see :data:`STAT_TEXT`).
        stat: Which summary (titles and hover).
        highlight: ``(layer, head)`` outlined in both, or None.
    """
    title, unit, fmt = STAT_TEXT[stat]
    m, b = as_array(masked, np.float64), as_array(baseline, np.float64)
    layers, heads = m.shape
    top = float(max(np.nanmax(m), np.nanmax(b), 1e-9))
    fig = make_subplots(rows=1, cols=2, subplot_titles=(N_("masked run"), N_("baseline (no extra mask)")),
                        horizontal_spacing=0.08)
    x, y = [f"H{h}" for h in range(heads)], [f"L{layer}" for layer in range(layers)]
    for col, values in ((1, m), (2, b)):
        fig.add_trace(go.Heatmap(z=np.round(values, 4), x=x, y=y, zmin=0.0, zmax=top, colorscale="Viridis",
                                 showscale=col == 2, colorbar={"title": {"text": unit}, "thickness": 14},
                                 hovertemplate=_HOVER[fmt]),
                      row=1, col=col)
        if highlight is not None and highlight[0] < layers and highlight[1] < heads:
            fig.add_shape(type="rect", x0=highlight[1] - 0.5, x1=highlight[1] + 0.5, y0=highlight[0] - 0.5,
                          y1=highlight[0] + 0.5, line={"color": "#ff2d55", "width": 2}, row=1, col=col)
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=max(300, 18 * layers + 130),
                      margin={"l": 10, "r": 10, "t": 80, "b": 10}, font={"size": 14})
    fig.update_yaxes(autorange="reversed")
    return fig
