"""The ``custom`` strategy: a (Q, K) 0/1 matrix the user draws or uploads, ``1`` = the query may attend to the key.

The matrix rides in the recipe as the ``matrix`` parameter (a :class:`~dynmask_core.masks.base.Param` of type
``"matrix"``) in its compact text form ``"<rows>x<cols>:<hex>"`` (:func:`encode_matrix`): the cells row by row, four
per hex digit, the first cell in the digit's highest bit, the last digit padded with 0 bits. It has no commas, so it
fits a link's query string and ``--param matrix=...``; equal matrices give equal strings. At most
``MAX_MATRIX_SIDE`` x ``MAX_MATRIX_SIDE`` (64 x 64) cells fit: larger matrices are refused, and uploading larger ones
is not supported in this build.

``matrix=""`` (the default) means no matrix was given yet: every key is allowed, as with ``none`` (only the model's
own masks apply), so the strategy can be picked before a matrix is drawn.

Files (:func:`parse_matrix_file`):

- **CSV** (``.csv``, ``.tsv``, ``.txt``): one row per query, one cell per key, separated by commas (or semicolons, tabs,
  or spaces). Cells are ``0``/``1`` (``0.0``/``1.0`` and ``true``/``false`` are read too). Labels (token names) are
  optional: the first row is a header when one of its cells after the first is not a number, and the first column
  holds labels when one of its cells below the first row is not a number. An empty first cell (pandas' ``to_csv``
  writes one above its index), or text in the first cell only, marks both, so numeric labels such as ``0,1,2`` are
  read as labels there. Any other cell that is not 0 or 1 is an error that names it.
- **NPY** (``.npy``, NumPy's ``np.save``): a 2-D array of bool, integers or floats, each 0 or 1.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import torch
from torch import Tensor

from dynmask_core.masks.base import (
    MAX_MATRIX_SIDE,
    MaskContext,
    MaskMod,
    Param,
    check_matrix_shape,
    decode_matrix,
    encode_matrix,
    index_strategy,
    named,
)
from dynmask_core.masks.static import full
from dynmask_core.messages import shown

__all__ = ["MATRIX", "MAX_FILE_BYTES", "MAX_MATRIX_SIDE", "custom", "decode_matrix", "encode_matrix",
           "parse_matrix_file"]

MAX_FILE_BYTES = 1 << 20  # a 64 x 64 CSV with long token labels is far below this
NPY_MAGIC = b"\x93NUMPY"
CSV_SUFFIXES = (".csv", ".tsv", ".txt")

MATRIX = Param("matrix", "matrix", "", "the (queries x keys) 0/1 matrix, 1 = may attend, as '<rows>x<cols>:<hex>' "
               f"(at most {MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE}; empty: no matrix yet, every key allowed)")


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


def parse_matrix_file(data: bytes, name: str) -> Tensor:
    """Reads a CSV or NPY file of 0/1 cells into a ``(rows, cols)`` bool matrix (True = may attend).

    Args:
        data: The file's bytes.
        name: Its file name; ``.npy`` (or NumPy's magic bytes) is read as NPY, ``.csv``/``.tsv``/``.txt`` as CSV.

    Raises:
        ValueError: an empty or too large file, an unknown kind of file, a ragged CSV, a matrix that is not 2-D,
            empty or larger than ``MAX_MATRIX_SIDE`` on a side, or a cell that is not 0 or 1 (the first one is named,
            1-based, counted in the data without the labels).
    """
    label = shown(name, 60)
    if not data:
        raise ValueError(f"{label} is empty: it needs one row per query and one column per key, 0 or 1 in each")
    if len(data) > MAX_FILE_BYTES:
        raise ValueError(f"{label} is {len(data)} bytes; a matrix file may have at most {MAX_FILE_BYTES} bytes "
                         f"(at most {MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE} cells are supported)")
    lower = str(name).lower()
    if data.startswith(NPY_MAGIC) or lower.endswith(".npy"):
        return _read_npy(data, label)
    if lower.endswith(CSV_SUFFIXES):
        return _read_csv(data, label)
    raise ValueError(f"{label}: upload a .csv or a .npy file of 0/1 cells")


def _read_npy(data: bytes, label: str) -> Tensor:
    import numpy as np

    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except Exception as err:  # noqa: BLE001 (numpy raises many kinds; the user needs one line)
        raise ValueError(f"{label} is not a NumPy .npy array that can be read safely ({str(err)[:120]})") from None
    if not isinstance(array, np.ndarray):
        raise ValueError(f"{label} holds several arrays; save one 2-D array with np.save")
    check_matrix_shape(tuple(array.shape), label)
    if array.dtype == np.bool_:
        return torch.from_numpy(array.copy())
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)):
        raise ValueError(f"{label} has cells of type {array.dtype}; it needs bool, integers or floats, each 0 or 1")
    bad = np.argwhere(~((array == 0) | (array == 1)))
    if len(bad):
        r, c = (int(x) for x in bad[0])
        raise ValueError(f"{label}: row {r + 1}, column {c + 1} is {array[r, c]!r}; every cell must be 0 or 1")
    return torch.from_numpy(array != 0)


_TRUE = {"1", "true"}
_FALSE = {"0", "false"}


def _cell(text: str) -> float | None:
    """The number a cell holds (true/false as 1/0), or None when it is not a number (a label)."""
    t = text.strip().lower()
    if t in _TRUE:
        return 1.0
    if t in _FALSE:
        return 0.0
    try:
        return float(t)
    except ValueError:
        return None


def _labels(rows: list[list[str]]) -> tuple[bool, bool]:
    """(the first row is a header, the first column holds labels): see the module's docstring."""
    first = rows[0][0] if rows[0] else ""
    header = any(_cell(c) is None for c in rows[0][1:])
    label_col = any(row and _cell(row[0]) is None for row in rows[1:])
    if not first.strip():  # pandas' to_csv: an empty corner above the index
        return True, True
    if _cell(first) is None and not header and not label_col:  # text only in the corner
        return len(rows) > 1, True
    return header, label_col


def _read_csv(data: bytes, label: str) -> Tensor:
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ValueError(f"{label} is not UTF-8 text; save the CSV as UTF-8") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{label} is empty: it needs one row per query and one column per key, 0 or 1 in each")
    delimiter = next((d for d in (",", ";", "\t") if d in text), None)
    if delimiter is None:
        rows = [line.split() for line in lines]
    else:
        rows = [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]
    header, label_col = _labels(rows)
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{label} has a header row but no data rows")
    if label_col:
        body = [row[1:] for row in body]
    width = len(body[0])
    first_line = 2 if header else 1
    for n, row in enumerate(body):
        if len(row) != width:
            raise ValueError(f"{label} is ragged: line {first_line + n} has {len(row)} cells, line {first_line} has "
                             f"{width}{' (after its label)' if label_col else ''}; every row needs one cell per key")
    check_matrix_shape((len(body), width), label)
    cells = [[_cell(c) for c in row] for row in body]
    for r, row in enumerate(cells):
        for c, value in enumerate(row):
            if value is None or math.isnan(value) or value not in (0.0, 1.0):
                raise ValueError(f"{label}: row {r + 1}, column {c + 1} is {shown(body[r][c], 20)}; "
                                 "every cell must be 0 or 1")
    return torch.tensor(cells, dtype=torch.float32) != 0


# ----------------------------------------------------------------------------------------------------------------
# The mask
# ----------------------------------------------------------------------------------------------------------------


@lru_cache(maxsize=32)
def _decoded(text: str) -> Tensor:
    return decode_matrix(text)


def custom(matrix: Tensor | str) -> MaskMod:
    """An index function reading a user-given matrix: key j is allowed for query i iff ``matrix[i, j]`` is 1.

    Positions outside the matrix are blocked (FlexAttention pads its blocks past the end).

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(custom("5x5:8629688"), 5, 5)))
    ■□□□□
    ■■□□□
    ■□■□□
    ■□■■□
    ■□□□■
    """
    m = decode_matrix(matrix) if isinstance(matrix, str) else torch.as_tensor(matrix).bool()
    rows, cols = m.shape
    digest = hashlib.sha1(encode_matrix(m).encode()).hexdigest()[:8]

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        inside = (q_idx >= 0) & (q_idx < rows) & (kv_idx >= 0) & (kv_idx < cols)
        return m[q_idx.clamp(0, rows - 1), kv_idx.clamp(0, cols - 1)] & inside

    return named(mask, f"custom_{rows}x{cols}_{digest}")


def _custom_mask_mod(params: Mapping[str, Any], ctx: MaskContext) -> MaskMod:
    text = params["matrix"]
    if not text:
        return full()
    m = _decoded(text)
    rows, cols = m.shape
    need = (ctx.q_offset + ctx.q_len, ctx.k_len)
    if (rows, cols) != need:
        where = (f"{need[0]} queries x {need[1]} keys" if ctx.q_offset == 0 else
                 f"{ctx.q_len} queries after {ctx.q_offset} cached positions x {need[1]} keys")
        raise ValueError(f"custom: the matrix is {rows}x{cols}, but this input has {where}: draw (or upload) a "
                         f"{need[0]}x{need[1]} matrix for this input's number of positions, one row per query and "
                         f"one column per key (or change the input to {rows} tokens)")
    return custom(m.to(ctx.device))


index_strategy(
    _custom_mask_mod,
    id="custom", kind="static", title="Custom matrix",
    summary="Your own (queries x keys) 0/1 matrix, drawn or uploaded (CSV/NPY): 1 = may attend.",
    reference="user-defined",
    params=(MATRIX,),
    note=f"The matrix must have one row and one column per position of the input. At most "
         f"{MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE} fits in a link (larger uploads are not supported in this build). "
         "Without a matrix every key is allowed, as with none. A row of zeros leaves that query with nothing to "
         "attend to: its output is 0.",
)

