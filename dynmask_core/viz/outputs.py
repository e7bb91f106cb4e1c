"""The model's output before and after masking: class probabilities or the top-5 next tokens.

Which one a run gets is decided by its task output (:mod:`dynmask_core.analysis.outputs`), not here."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dynmask_core.viz._common import roomy_margins, widest

BASELINE_COLOR = "#7f8c9b"  # grey: no extra mask
MASKED_COLOR = "#1f4e99"  # blue: with the mask


def sentiment_figure(baseline: Mapping[str, float], masked: Mapping[str, float],
                     title: str = "Class probabilities: baseline vs masked") -> go.Figure:
    """Grouped bars of the class probabilities of both runs.

    Args:
        baseline: ``{label: probability}`` without the extra mask.
        masked: ``{label: probability}`` with it.
        title: Figure title.

    Returns:
        A figure with two ``Bar`` traces (baseline, masked).
    """
    labels = list(baseline)
    size = 14
    # room for the percent ticks and the axis title (left), the class names and the legend under them (bottom)
    margin = roomy_margins(left=widest(["100%"], size) + 16 + 2.2 * size, bottom=90, right=0)
    return go.Figure([  # the layout given at once: validated once (update_layout etc. afterwards cost ~4x)
        go.Bar(name="baseline (no extra mask)", x=labels, y=[baseline[n] for n in labels], marker_color=BASELINE_COLOR,
               text=[f"{baseline[n]:.1%}" for n in labels], textposition="outside"),
        go.Bar(name="masked", x=labels, y=[masked.get(n, 0.0) for n in labels], marker_color=MASKED_COLOR,
               text=[f"{masked.get(n, 0.0):.1%}" for n in labels], textposition="outside"),
    ], layout={"barmode": "group", "title": {"text": title, "x": 0.0}, "height": 360, "font": {"size": 14},
               "xaxis": {"automargin": True},
               "yaxis": {"range": [0, 1.12], "tickformat": ".0%", "title": {"text": "probability"}, "automargin": True},
               "legend": {"orientation": "h", "y": -0.15}, "margin": margin})


def _show(token: str) -> str:
    text = token.replace("\n", "⏎")
    return f"'{text}'" if text.strip() != text or not text else text


def next_token_figure(baseline: Sequence[Mapping[str, Any]], masked: Sequence[Mapping[str, Any]],
                      title: str = "Next token: top 5 before and after") -> go.Figure:
    """Two horizontal bar charts of the top-5 next tokens (baseline left, masked right).

    Args:
        baseline: ``[{"token": str, "prob": float}, ...]`` without the extra mask, most likely first.
        masked: The same with the mask.
        title: Figure title.

    Returns:
        A figure with two ``Bar`` traces in two subplots.
    """
    size = 14
    names_of = [[f"{i + 1}. {_show(str(r['token']))}" for i, r in enumerate(rows)] for rows in (baseline, masked)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=("baseline (no extra mask)", "masked"),
                        horizontal_spacing=0.18)
    for col, (rows, names, color) in enumerate(((baseline, names_of[0], BASELINE_COLOR),
                                                (masked, names_of[1], MASKED_COLOR)), start=1):
        probs = [float(r["prob"]) for r in rows]
        fig.add_trace(go.Bar(x=probs, y=names, orientation="h", marker_color=color, showlegend=False,
                             text=[f"{p:.1%}" for p in probs], textposition="outside"), row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col, automargin=True)
        fig.update_xaxes(range=[0, 1.15], tickformat=".0%", row=1, col=col)
    fig.update_layout(title={"text": title, "x": 0.0}, height=340, font={"size": size},
                      margin=roomy_margins(left=widest(names_of[0], size) + 6, bottom=1.6 * size, right=0, top=80))
    return fig
