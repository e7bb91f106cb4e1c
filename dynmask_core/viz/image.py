"""Figures over an image: the picture with its patch grid, and per-patch values (attention, a mask) laid over it."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go

from dynmask_core.messages import N_
from dynmask_core.viz._common import as_array, inert, inert_template

#: Attention over a picture: each stop lighter (CIE L* 32 -> 99, dark red to pale yellow) and more opaque than the one
#: before, from fully clear at 0, so "brighter = more attention" holds and a patch nothing attends shows the picture
#: as it is (the figure's opacity, the page's slider, scales it all).
OVERLAY_SCALE = [[0.0, "rgba(150,20,40,0.0)"], [0.2, "rgba(215,48,39,0.35)"], [0.4, "rgba(244,109,67,0.55)"],
                 [0.6, "rgba(253,174,97,0.7)"], [0.8, "rgba(254,224,144,0.8)"], [1.0, "rgba(255,255,191,0.9)"]]
MASK_SCALE = [[0.0, "rgba(20,20,20,0.85)"], [1.0, "rgba(31,78,153,0.15)"]]  # blocked dark, allowed clear
DISPLAY_SIDE = 448  # pictures are shown at about this many pixels on their long side


def _display(image: Any) -> np.ndarray:
    """The picture as ``(H, W, 3)`` uint8, scaled (nearest) so its long side is about ``DISPLAY_SIDE``."""
    img = as_array(image)
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=-1)
    img = img[..., :3].astype(np.uint8)
    h, w = img.shape[:2]
    scale = DISPLAY_SIDE / max(h, w)
    if abs(scale - 1) > 0.05:
        ys = np.clip((np.arange(int(round(h * scale))) / scale).astype(int), 0, h - 1)
        xs = np.clip((np.arange(int(round(w * scale))) / scale).astype(int), 0, w - 1)
        img = img[ys][:, xs]
    return img


def _image_uri(img: np.ndarray) -> str:
    """The picture as a JPEG data URI (tens of kB in the page instead of every pixel as a number)."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=88)
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _base(img: np.ndarray, title: str) -> go.Figure:
    h, w = img.shape[:2]
    fig = go.Figure(go.Image(source=_image_uri(img), hoverinfo="skip"))
    fig.update_layout(title={"text": inert(title), "x": 0.0}, height=int(h * 1.0) + 70, width=None,
                      margin={"l": 10, "r": 10, "t": 50, "b": 10}, font={"size": 14})
    fig.update_xaxes(visible=False, range=[-0.5, w - 0.5])
    fig.update_yaxes(visible=False, range=[h - 0.5, -0.5], scaleanchor="x")
    return fig


def _grid_lines(fig: go.Figure, h: int, w: int, grid: tuple[int, int]) -> None:
    rows, cols = grid
    for r in range(1, rows):
        fig.add_shape(type="line", x0=-0.5, x1=w - 0.5, y0=r * h / rows - 0.5, y1=r * h / rows - 0.5,
                      line={"color": "rgba(255,255,255,0.55)", "width": 1})
    for c in range(1, cols):
        fig.add_shape(type="line", y0=-0.5, y1=h - 0.5, x0=c * w / cols - 0.5, x1=c * w / cols - 0.5,
                      line={"color": "rgba(255,255,255,0.55)", "width": 1})


def patch_grid_figure(image: Any, grid: tuple[int, int], title: str = N_("The input and its patches"),
                      highlight: tuple[int, int] | None = None) -> go.Figure:
    """The picture as the model sees it (resized to its input size) with the patch grid drawn on it.

    Args:
        image: ``(H, W, 3)`` uint8.
        grid: ``(rows, cols)`` of patches.
        title: Figure title.
        highlight: ``(row, col)`` of a patch to outline (the chosen query), or None.
    """
    img = _display(image)
    fig = _base(img, title)
    h, w = img.shape[:2]
    _grid_lines(fig, h, w, grid)
    if highlight is not None:
        rows, cols = grid
        r, c = highlight
        fig.add_shape(type="rect", x0=c * w / cols - 0.5, x1=(c + 1) * w / cols - 0.5, y0=r * h / rows - 0.5,
                      y1=(r + 1) * h / rows - 0.5, line={"color": "#ff2d55", "width": 3})
    return fig


def patch_overlay_figure(image: Any, values: Any, title: str, opacity: float = 0.6, zmax: float | None = None,
                         colorscale: Any = OVERLAY_SCALE, label: str = "attention",
                         highlight: tuple[int, int] | None = None) -> go.Figure:
    """Per-patch values laid over the picture (one cell per patch, no smoothing: what each patch got).

    Args:
        image: ``(H, W, 3)`` uint8, the picture.
        values: ``(rows, cols)`` numbers, one per patch.
        title: Figure title.
        opacity: Of the overlay (0 = only the picture, 1 = only the values).
        zmax: Top of the colour scale (share it between figures that are compared); default the maximum.
        colorscale: Plotly colour scale.
        label: Colour bar title and hover name.
        highlight: ``(row, col)`` of the query patch to outline, or None.
    """
    img = _display(image)
    v = as_array(values, np.float64)
    rows, cols = v.shape
    fig = patch_grid_figure(img, (rows, cols), title, highlight)
    h, w = img.shape[:2]
    top = float(v.max()) if zmax is None else float(zmax)
    where = np.dstack(np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij"))  # (rows, cols, 2)
    fig.add_trace(go.Heatmap(
        z=np.round(v, 5), x=[(c + 0.5) * w / cols - 0.5 for c in range(cols)],
        y=[(r + 0.5) * h / rows - 0.5 for r in range(rows)], zmin=0.0, zmax=top or 1.0, colorscale=colorscale,
        opacity=float(opacity), zsmooth=False, customdata=where,
        colorbar={"title": {"text": inert(label)}, "thickness": 14},
        hovertemplate=N_("patch row %{customdata[0]}, column %{customdata[1]}") + "<br>" + inert_template(label)
        + " %{z:.4f}<extra></extra>",
    ))
    return fig
