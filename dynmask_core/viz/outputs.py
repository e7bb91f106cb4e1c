"""The model's output before and after masking: class probabilities or the top-5 next tokens.

Each comes two ways: a plotly figure (the HTML export, the command line) and plain HTML bars (the app's page: the
values as text, no chart library to lay out: a Run draws them in a few milliseconds, where the plotly figure cost
the browser ~0.06 s per Run, bench/app_latency.py). Which one a run gets is decided by its task output
(:mod:`dynmask_core.analysis.outputs`), not here."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dynmask_core.messages import N_, Translate, english
from dynmask_core.viz._common import inert, roomy_margins, widest

BASELINE_COLOR = "#7f8c9b"  # grey: no extra mask
MASKED_COLOR = "#1f4e99"  # blue: with the mask
BASELINE_NAME = N_("baseline (no extra mask)")
MASKED_NAME = N_("masked")
#: At most this many classes are drawn as bars (the most probable in either run); the rest are summed in one line.
MAX_CLASS_BARS = 12
_TRACK = "#eef1f5"


def sentiment_figure(baseline: Mapping[str, float], masked: Mapping[str, float],
                     title: str = N_("Class probabilities: baseline vs masked")) -> go.Figure:
    """Grouped bars of the class probabilities of both runs.

    Args:
        baseline: ``{label: probability}`` without the extra mask.
        masked: ``{label: probability}`` with it.
        title: Figure title.

    Returns:
        A figure with two ``Bar`` traces (baseline, masked).
    """
    names = list(baseline)
    labels = [inert(n) for n in names]
    size = 14
    # room for the percent ticks and the axis title (left), the class names and the legend under them (bottom)
    margin = roomy_margins(left=widest(["100%"], size) + 16 + 2.2 * size, bottom=90, right=0)
    return go.Figure([  # the layout given at once: validated once (update_layout etc. afterwards cost ~4x)
        go.Bar(name=BASELINE_NAME, x=labels, y=[baseline[n] for n in names], marker_color=BASELINE_COLOR,
               text=[f"{baseline[n]:.1%}" for n in names], textposition="outside"),
        go.Bar(name=MASKED_NAME, x=labels, y=[masked.get(n, 0.0) for n in names], marker_color=MASKED_COLOR,
               text=[f"{masked.get(n, 0.0):.1%}" for n in names], textposition="outside"),
    ], layout={"barmode": "group", "title": {"text": inert(title), "x": 0.0}, "height": 360, "font": {"size": 14},
               "xaxis": {"automargin": True},
               "yaxis": {"range": [0, 1.12], "tickformat": ".0%", "title": {"text": N_("probability")},
                         "automargin": True},
               "legend": {"orientation": "h", "y": -0.15}, "margin": margin})


def _show(token: str) -> str:
    text = token.replace("\n", "⏎")
    return f"'{text}'" if text.strip() != text or not text else text


def next_token_figure(baseline: Sequence[Mapping[str, Any]], masked: Sequence[Mapping[str, Any]],
                      title: str = N_("Next token: top 5 before and after")) -> go.Figure:
    """Two horizontal bar charts of the top-5 next tokens (baseline left, masked right).

    Args:
        baseline: ``[{"token": str, "prob": float}, ...]`` without the extra mask, most likely first.
        masked: The same with the mask.
        title: Figure title.

    Returns:
        A figure with two ``Bar`` traces in two subplots.
    """
    size = 14
    names_of = [[f"{i + 1}. {inert(_show(str(r['token'])))}" for i, r in enumerate(rows)]
                for rows in (baseline, masked)]
    fig = make_subplots(rows=1, cols=2, subplot_titles=(BASELINE_NAME, MASKED_NAME),
                        horizontal_spacing=0.18)
    for col, (rows, names, color) in enumerate(((baseline, names_of[0], BASELINE_COLOR),
                                                (masked, names_of[1], MASKED_COLOR)), start=1):
        probs = [float(r["prob"]) for r in rows]
        fig.add_trace(go.Bar(x=probs, y=names, orientation="h", marker_color=color, showlegend=False,
                             text=[f"{p:.1%}" for p in probs], textposition="outside"), row=1, col=col)
        fig.update_yaxes(autorange="reversed", row=1, col=col, automargin=True)
        fig.update_xaxes(range=[0, 1.15], tickformat=".0%", row=1, col=col)
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=340, font={"size": size},
                      margin=roomy_margins(left=widest(names_of[0], size) + 6, bottom=1.6 * size, right=0, top=80))
    return fig


def _bar(prob: float, color: str, label: str, strong: bool = False) -> str:
    """One bar of a probability (its track is 100 %) and the value beside it."""
    width = min(100.0, max(0.0, 100.0 * float(prob)))
    weight = "font-weight:600;" if strong else ""
    return (f'<div style="background:{_TRACK};height:0.95em;border-radius:2px" role="img" '
            f'aria-label="{html.escape(label)}: {prob:.1%}"><div style="width:{width:.2f}%;height:100%;'
            f'background:{color};border-radius:2px"></div></div>'
            f'<span style="{weight}font-variant-numeric:tabular-nums;text-align:right">{prob:.1%}</span>')


def _legend(tr: Translate = english) -> str:
    swatch = '<span style="display:inline-block;width:0.8em;height:0.8em;background:{};margin:0 0.3em 0 1em"></span>'
    return (f'<div style="font-size:0.85em;margin-top:0.4em">{swatch.format(BASELINE_COLOR)}'
            f'{html.escape(tr(BASELINE_NAME))}{swatch.format(MASKED_COLOR)}{html.escape(tr(MASKED_NAME))}</div>')


def _figure_html(title: str, body: str, kind: str) -> str:
    return (f'<figure class="dm-output-bars dm-output-{kind}" aria-label="{html.escape(title)}" '
            f'style="margin:0.5em 0 1em 0;max-width:46em">'
            f'<figcaption style="font-weight:600;margin-bottom:0.5em">{html.escape(title)}</figcaption>{body}</figure>')


def class_bars_html(baseline: Mapping[str, float], masked: Mapping[str, float],
                    title: str = N_("Class probabilities: baseline vs masked"), limit: int = MAX_CLASS_BARS,
                    tr: Translate = english) -> str:
    """The class probabilities of both runs as HTML bars: per class, the baseline bar (grey) over the masked one
    (blue), each with its value. Labels are escaped (a Hub model names its own classes).

    Args:
        baseline: ``{label: probability}`` without the extra mask (its order is kept).
        masked: ``{label: probability}`` with it.
        title: The caption.
        limit: More classes than this: only the ``limit`` most probable in either run are drawn, in the model's
            order, and one line sums the others.
        tr: The page's translator of the words (the title included); default English.

    Returns:
        An HTML ``<figure>`` with inline styles only (no script, no class the page must define).
    """
    labels = list(baseline)
    shown = labels
    if len(labels) > limit:
        top = set(sorted(labels, key=lambda n: -max(baseline[n], masked.get(n, 0.0)))[:limit])
        shown = [n for n in labels if n in top]
    rows = []
    for name in shown:
        b, m = float(baseline[name]), float(masked.get(name, 0.0))
        label = html.escape(str(name))
        rows.append(f'<span style="grid-row:span 2;overflow-wrap:anywhere">{label}</span>'
                    f'{_bar(b, BASELINE_COLOR, f"{name}, {tr(BASELINE_NAME)}")}'
                    f'{_bar(m, MASKED_COLOR, f"{name}, {tr(MASKED_NAME)}", strong=True)}'
                    '<span style="grid-column:1/-1;height:0.35em"></span>')
    rest = ""
    if len(shown) < len(labels):
        others = [n for n in labels if n not in set(shown)]
        said = tr("{n} other classes: {b} baseline, {m} masked together.").format(
            n=len(others), b=f"{sum(baseline[n] for n in others):.1%}",
            m=f"{sum(masked.get(n, 0.0) for n in others):.1%}")
        rest = f'<div style="font-size:0.85em;opacity:0.8">{html.escape(said)}</div>'
    grid = ('<div style="display:grid;grid-template-columns:minmax(4em,max-content) minmax(6em,1fr) 4.2em;'
            f'column-gap:0.6em;row-gap:2px;align-items:center">{"".join(rows)}</div>')
    return _figure_html(tr(title), grid + rest + _legend(tr), "classes")


def next_token_bars_html(baseline: Sequence[Mapping[str, Any]], masked: Sequence[Mapping[str, Any]],
                         title: str = N_("Next token: top 5 before and after"), tr: Translate = english) -> str:
    """The top-5 next tokens of both runs as HTML bars, side by side (baseline left, masked right); a token of the
    masked list that is not in the baseline's top 5 is marked *new*. Tokens are escaped and their spaces shown.

    Args:
        baseline: ``[{"token": str, "prob": float}, ...]`` without the extra mask, most likely first.
        masked: The same with the mask.
        title: The caption.
        tr: The page's translator of the words (the title included); default English.

    Returns:
        An HTML ``<figure>`` with inline styles only.
    """
    before = {str(r["token"]) for r in baseline}
    columns = []
    for rows, name, color in ((baseline, tr(BASELINE_NAME), BASELINE_COLOR), (masked, tr(MASKED_NAME), MASKED_COLOR)):
        cells = []
        for i, row in enumerate(rows):
            token = str(row["token"])
            new = (f' <span style="font-size:0.75em;color:#b3261e">{html.escape(tr("new"))}</span>'
                   if rows is masked and token not in before else "")
            cells.append(f'<span style="font-variant-numeric:tabular-nums">{i + 1}.</span>'
                         f'<code style="white-space:pre;overflow-wrap:anywhere">{html.escape(_show(token))}</code>'
                         f'{_bar(float(row["prob"]), color, f"{_show(token)}, {name}", strong=i == 0)}'
                         f'<span>{new}</span>')
        columns.append(f'<div><div style="color:{color};font-weight:600;margin-bottom:0.3em">{html.escape(name)}</div>'
                       '<div style="display:grid;grid-template-columns:1.6em minmax(3em,max-content) minmax(4em,1fr) '
                       f'4.2em 2.2em;column-gap:0.5em;row-gap:4px;align-items:center">{"".join(cells)}</div></div>')
    body = ('<div style="display:grid;grid-template-columns:repeat(auto-fit,minmax(18em,1fr));column-gap:2em;'
            f'row-gap:1em">{"".join(columns)}</div>')
    return _figure_html(tr(title), body, "next-token")


def output_figure(baseline: Any, masked: Any) -> Any:
    """The plotly figure of both runs' outputs (the HTML export), or None for a task with nothing to draw (an
    embedding). ``baseline`` and ``masked`` are :class:`~dynmask_core.analysis.outputs.TaskOutput` of one task."""
    if baseline.task == "classification":
        return sentiment_figure(baseline.summary()["probs"], masked.summary()["probs"])
    if baseline.task == "next_token":
        return next_token_figure(baseline.summary()["top5"], masked.summary()["top5"])
    return None


def output_bars_html(baseline: Any, masked: Any, tr: Translate = english) -> str | None:
    """The same as plain HTML bars (what the app's page shows, its words through ``tr``), or None for a task with
    nothing to draw."""
    if baseline.task == "classification":
        return class_bars_html(baseline.summary()["probs"], masked.summary()["probs"], tr=tr)
    if baseline.task == "next_token":
        return next_token_bars_html(baseline.summary()["top5"], masked.summary()["top5"], tr=tr)
    return None
