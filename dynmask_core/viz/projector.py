"""Charts for the back of the room: every text at least ``size`` px and every category label drawn.

Presenter mode enlarges the page's text with CSS, but a chart's text is drawn by plotly (or Vega) at the sizes its
figure names: heatmap cells, tick labels and colour bars stayed at 10-14 px, and plotly drops every second category
label when they crowd. :func:`projector_figure` returns a copy of a built figure (figures are cached and shared:
never changed in place) with every font at least ``size`` px, ``dtick=1`` on category axes so that each label is
drawn, and a height that gives each category row room for its label. :func:`projector_chart` does the same for an
Altair chart.
"""

from __future__ import annotations

from typing import Any

import plotly.graph_objects as go

#: The smallest text a student at the back of a classroom reads from a projected 1024 x 768 picture.
PROJECTOR_PX = 18
_ROW_GAP = 6  # px between two category labels


def _bigger(font: Any, size: int) -> dict[str, Any]:
    current = getattr(font, "size", None) if font is not None else None
    return {"size": max(int(current or 0), size)}


def _category_rows(fig: go.Figure) -> int:
    """The most categories any y axis of a heatmap or horizontal bar shows (0 when none)."""
    rows = 0
    for trace in fig.data:
        y = getattr(trace, "y", None)  # an Image trace has none
        labelled = y is not None and len(y) and isinstance(y[0], str)
        if labelled and (trace.type == "heatmap" or getattr(trace, "orientation", None) == "h"):
            rows = max(rows, len(y))
    return rows


def _is_category(axis: Any, values: list[Any]) -> bool:
    return axis.type == "category" or (bool(values) and all(isinstance(v, str) for v in values))


def projector_figure(fig: go.Figure, size: int = PROJECTOR_PX) -> go.Figure:
    """A copy of ``fig`` for a projector: fonts at least ``size`` px, every category label drawn, rows tall enough.

    >>> f = projector_figure(go.Figure(go.Heatmap(z=[[1, 2]], x=["a", "b"], y=["q"]), layout={"font": {"size": 11}}))
    >>> f.layout.font.size, f.layout.xaxis.dtick, f.data[0].colorbar.tickfont.size
    (18, 1, 18)
    """
    out = go.Figure(fig)
    layout = out.layout
    out.update_layout(font=_bigger(layout.font, size), hoverlabel={"font": _bigger(layout.hoverlabel.font, size)},
                      legend={"font": _bigger(layout.legend.font, size)},
                      title={"font": _bigger(layout.title.font, round(size * 1.2))})
    out.update_annotations(font_size=size)  # subplot titles
    xs = {k: [] for k in layout if k.startswith("xaxis")} or {"xaxis": []}
    ys = {k: [] for k in layout if k.startswith("yaxis")} or {"yaxis": []}
    for trace in out.data:
        x_name = "xaxis" + (getattr(trace, "xaxis", None) or "x")[1:]
        y_name = "yaxis" + (getattr(trace, "yaxis", None) or "y")[1:]
        xs.setdefault(x_name, []).extend(list(trace.x) if getattr(trace, "x", None) is not None else [])
        ys.setdefault(y_name, []).extend(list(trace.y) if getattr(trace, "y", None) is not None else [])
        if hasattr(trace, "colorbar"):
            trace.colorbar.tickfont = _bigger(trace.colorbar.tickfont, size)
            trace.colorbar.title.font = _bigger(trace.colorbar.title.font, size)
        if hasattr(trace, "textfont") and (getattr(trace, "text", None) is not None
                                           or getattr(trace, "texttemplate", None)):
            trace.textfont = _bigger(trace.textfont, size)
    for names in (xs, ys):
        for name, values in names.items():
            axis = layout[name]
            update: dict[str, Any] = {"tickfont": _bigger(axis.tickfont, size),
                                      "title": {"font": _bigger(axis.title.font, size)}}
            if _is_category(axis, values):
                update.update(tickmode="linear", dtick=1)  # every label: plotly skips crowded categories otherwise
            layout[name].update(update)
    rows = _category_rows(out)
    if rows:
        margin = layout.margin
        need = rows * (size + _ROW_GAP) + int(margin.t or 80) + int(margin.b or 80) + 4 * size
        out.update_layout(height=max(int(layout.height or 0), need))
    return out


def projector_chart(chart: Any, size: int = PROJECTOR_PX) -> Any:
    """An Altair chart with its axis, legend and title text at least ``size`` px."""
    return (chart.configure_axis(labelFontSize=size, titleFontSize=size)
            .configure_legend(labelFontSize=size, titleFontSize=size, symbolSize=size * 10)
            .configure_title(fontSize=round(size * 1.2)))
