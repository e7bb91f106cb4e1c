"""Shared helpers of the figure builders: inert text, unique token labels, average pooling, array conversion.

Everything here is NumPy only: the builders take tensors or arrays and never import torch or Streamlit.

Plotly draws a subset of HTML in every text it renders (titles, axis and tick labels, legends, hover labels,
colour bar titles): ``<a href>`` becomes a live link, ``<b>`` bold, ``<br>`` a new line. A token, a label, a model id
or a target read from a link or a file reaches those texts, so each builder passes every text it did not write itself
through :func:`inert` (and :func:`inert_template` where the text sits inside a ``hovertemplate``): one path, at the
builder's door. Plotly turns the entities back into the characters, so the text reads exactly as given.
"""

from __future__ import annotations

import html
import math
import unicodedata
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from dynmask_core._arrays import as_array  # noqa: F401  (re-exported for the figure builders)
from dynmask_core.messages import N_, Message

#: Largest side of a single heatmap sent to the browser (a 512 x 512 float32 matrix is ~1.8 MB of JSON).
MAX_SIDE = 512
#: Largest side of one small multiple in the model view before it is average-pooled.
MODEL_VIEW_SIDE = 48

PNG_CONFIG: dict[str, Any] = {
    "displaylogo": False,
    "toImageButtonOptions": {"format": "png", "filename": "dynmask", "scale": 2},
}


def inert(text: Any) -> str:
    """``text`` for a plotly title, label, legend or tick: its markup characters as entities, so it shows literally.

    >>> inert('<a href="https://evil.example/">log in</a> & more')
    '&lt;a href="https://evil.example/"&gt;log in&lt;/a&gt; &amp; more'
    """
    return html.escape(str(text), quote=False)  # plotly knows &lt; &gt; &amp; (not &quot;): quotes stay as they are


def inert_template(text: Any) -> str:
    """``text`` for the inside of a plotly ``hovertemplate``: :func:`inert`, and ``%`` as an entity so that a value
    holding ``%{x}`` is not filled in by plotly.

    >>> inert_template("<b>%{x}</b>")
    '&lt;b&gt;&#37;{x}&lt;/b&gt;'
    """
    return inert(text).replace("%", "&#37;")


def token_axis(tokens: Sequence[str]) -> list[str]:
    """Unique axis labels: the position prefixed, ``["0:[CLS]", "1:the", ...]`` (plotly merges equal categories);
    each token made :func:`inert`."""
    return [f"{i}:{inert(t)}" for i, t in enumerate(tokens)]


def pool_factor(n: int, max_side: int) -> int:
    """Block size so that ``n`` positions fit in ``max_side`` cells (1 = no pooling)."""
    return max(1, math.ceil(n / max(1, max_side)))


def pool2d(matrix: np.ndarray, factor: int) -> np.ndarray:
    """Average-pools the last two axes in ``factor x factor`` blocks (edge blocks average what they hold).

    Args:
        matrix: ``(..., Q, K)`` numbers or booleans.
        factor: Block size; 1 returns the matrix as float32.

    Returns:
        ``(..., ceil(Q/factor), ceil(K/factor))`` float32.
    """
    m = np.asarray(matrix, dtype=np.float32)
    if factor <= 1:
        return m
    *lead, q, k = m.shape
    qp, kp = math.ceil(q / factor) * factor, math.ceil(k / factor) * factor
    padded = np.full((*lead, qp, kp), np.nan, dtype=np.float32)
    padded[..., :q, :k] = m
    blocks = padded.reshape(*lead, qp // factor, factor, kp // factor, factor)
    with np.errstate(invalid="ignore"):
        return np.nanmean(blocks, axis=(-3, -1)).astype(np.float32)


def pooled_axis(labels: Sequence[str], factor: int) -> list[str]:
    """Axis labels of pooled blocks: ``"0:[CLS]"`` unpooled, ``"0-3"`` (positions) when pooled."""
    if factor <= 1:
        return list(labels)
    n = len(labels)
    return [f"{i}-{min(i + factor, n) - 1}" for i in range(0, n, factor)]


def pooling_note(n: int, factor: int, what: str = "matrix") -> Message | str:
    """Caption text that says a matrix (or ``"matrices"``) was downsampled for display (empty when it was not)."""
    if factor <= 1:
        return ""
    template = (N_("{n} tokens: the matrices are average-pooled in {f}x{f} blocks for display ({c}x{c} cells). "
                   "Downloads hold the full data.") if what == "matrices" else
                N_("{n} tokens: the matrix is average-pooled in {f}x{f} blocks for display ({c}x{c} cells). "
                   "Downloads hold the full data."))
    return Message(template, n=n, f=factor, c=math.ceil(n / factor))


def rounded(matrix: np.ndarray, decimals: int = 3) -> np.ndarray:
    """float32 rounded for display (hover shows 3 decimals; smaller JSON when sent as text)."""
    return np.round(np.asarray(matrix, dtype=np.float32), decimals)


def text_width(text: str, size: float) -> float:
    """Estimated pixel width of ``text`` in a sans-serif font of ``size`` px: an East Asian wide character counts one
    em, any other 0.62 em (above the average Latin glyph, so that a margin built on it errs on the roomy side)."""
    return sum(size if unicodedata.east_asian_width(c) in "WF" else 0.62 * size for c in text)


def widest(labels: Iterable[str], size: float) -> float:
    """The estimated width of the widest of ``labels`` (0 for none)."""
    return max((text_width(str(label), size) for label in labels), default=0.0)


def roomy_margins(*, left: float = 0.0, bottom: float = 0.0, right: float = 0.0, top: float = 50.0,
                  pad: float = 10.0) -> dict[str, int]:
    """A plotly ``layout.margin`` that already holds what the axes, colour bar and legend will need.

    Plotly's ``automargin`` (and a colour bar or a legend) first draws a figure in its given margins, measures the
    labels, then draws it all again in wider ones: in the browser, that second pass costs about as much as the
    first. A margin that already fits skips it, and ``automargin`` stays on, so an estimate that falls short still
    shows every label (with the second pass).
    """
    return {"l": round(left + pad), "r": round(right + pad), "t": round(top), "b": round(bottom + pad)}
