"""The Altair chart of per-layer metrics (computed in :mod:`dynmask_core.analysis.layers`)."""

from __future__ import annotations

from collections.abc import Mapping

import altair as alt
import pandas as pd

from dynmask_core.analysis.layers import METRICS
from dynmask_core.messages import N_, Translate, english

_AXIS = {"entropy": N_("entropy (nats)"), "allowed": N_("allowed")}


def layer_chart(table: pd.DataFrame, metric: str, title: str | None = None,
                colors: Mapping[str, str] | None = None, tr: Translate = english) -> alt.Chart:
    """Line chart of one metric per layer, one line per run.

    Args:
        table: Output of :func:`layer_table`.
        metric: ``"entropy"`` or ``"allowed"``.
        title: Chart title (default the metric's description).
        colors: Optional ``{run name: colour}``.
        tr: The page's translator of the titles (the run names are the table's: a page names them itself).

    Returns:
        An Altair ``Chart`` (line + points, tooltips).
    """
    data = table[table["metric"] == metric]
    names = list(dict.fromkeys(data["run"]))
    scale = alt.Scale(domain=names, range=[colors[n] for n in names]) if colors else alt.Scale(domain=names)
    y_scale = alt.Scale(domain=[0, 1]) if metric == "allowed" else alt.Scale(zero=True)
    return (
        alt.Chart(data, title=tr(title or METRICS.get(metric, metric)))
        .mark_line(point=True, strokeWidth=3)
        .encode(
            x=alt.X("layer:O", title=tr(N_("layer"))),
            y=alt.Y("value:Q", title=tr(_AXIS.get(metric, metric)), scale=y_scale,
                    axis=alt.Axis(format=".0%" if metric == "allowed" else ".2f")),
            color=alt.Color("run:N", title=None, scale=scale, legend=alt.Legend(orient="bottom")),
            tooltip=[alt.Tooltip("run:N", title=tr(N_("run"))), alt.Tooltip("layer:O", title=tr(N_("layer"))),
                     alt.Tooltip("value:Q", format=".3f", title=tr(N_("value")))],
        )
        .properties(height=300)
    )
