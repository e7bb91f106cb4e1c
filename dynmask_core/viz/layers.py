"""The Altair chart of per-layer metrics (computed in :mod:`dynmask_core.analysis.layers`)."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

from dynmask_core.analysis.layers import METRICS

_AXIS = {"entropy": "entropy (nats)", "allowed": "allowed"}


def layer_chart(table: pd.DataFrame, metric: str, title: str | None = None,
                colors: Mapping[str, str] | None = None) -> alt.Chart:
    """Line chart of one metric per layer, one line per run.

    Args:
        table: Output of :func:`layer_table`.
        metric: ``"entropy"`` or ``"allowed"``.
        title: Chart title (default the metric's description).
        colors: Optional ``{run name: colour}``.

    Returns:
        An Altair ``Chart`` (line + points, tooltips).
    """
    data = table[table["metric"] == metric]
    names = list(dict.fromkeys(data["run"]))
    scale = alt.Scale(domain=names, range=[colors[n] for n in names]) if colors else alt.Scale(domain=names)
    y_scale = alt.Scale(domain=[0, 1]) if metric == "allowed" else alt.Scale(zero=True)
    return (
        alt.Chart(data, title=title or METRICS.get(metric, metric))
        .mark_line(point=True, strokeWidth=3)
        .encode(
            x=alt.X("layer:O", title="layer"),
            y=alt.Y("value:Q", title=_AXIS.get(metric, metric), scale=y_scale,
                    axis=alt.Axis(format=".0%" if metric == "allowed" else ".2f")),
            color=alt.Color("run:N", title=None, scale=scale, legend=alt.Legend(orient="bottom")),
            tooltip=["run", "layer", alt.Tooltip("value:Q", format=".3f")],
        )
        .properties(height=300)
    )
