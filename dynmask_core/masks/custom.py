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
  read as labels there. Any other cell that is not 0 or 1 is an error that names it. One separator throughout: a
  cell such as ``0;1`` in a comma file is refused rather than read as a label.
- **NPY** (``.npy``, NumPy's ``np.save``): a 2-D array of bool, integers or floats, each 0 or 1. The header is
  checked here (size, dtype, shape against ``MAX_MATRIX_SIDE``) before any cell is read; pickled objects are never
  loaded.

Whatever the bytes, a bad file is one ``ValueError`` line that says what is wrong and what to do.
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import re
import textwrap
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
from dynmask_core.masks.code import CodeContext, CodePiece, bool_rows
from dynmask_core.masks.static import full
from dynmask_core.messages import shown

__all__ = ["MATRIX", "MAX_FILE_BYTES", "MAX_MATRIX_SIDE", "custom", "decode_matrix", "encode_matrix",
           "parse_matrix_file"]

MAX_FILE_BYTES = 1 << 20  # a 64 x 64 CSV with long token labels is far below this
NPY_MAGIC = b"\x93NUMPY"
NPY_MAX_HEADER = 4096  # np.save writes 128 bytes for a 2-D array; numpy's own limit is 10000
ZIP_MAGIC = b"PK\x03\x04"  # np.savez writes a zip archive
CSV_SUFFIXES = (".csv", ".tsv", ".txt")

MATRIX = Param("matrix", "matrix", "", "the (queries x keys) 0/1 matrix, 1 = may attend, as '<rows>x<cols>:<hex>' "
               f"(at most {MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE}; empty: no matrix yet, every key allowed)")


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


def parse_matrix_file(data: bytes, name: str) -> Tensor:
    """Reads a CSV or NPY file of 0/1 cells into a ``(rows, cols)`` bool matrix (True = may attend).

    Every refusal is one ``ValueError`` line that names the file (by the user's file name, never a path) and says
    what to do; no other exception escapes, whatever the bytes.

    Args:
        data: The file's bytes.
        name: Its file name; ``.npy`` (or NumPy's magic bytes) is read as NPY, ``.csv``/``.tsv``/``.txt`` as CSV.

    Raises:
        ValueError: an empty or too large file, an unknown kind of file; for CSV: not UTF-8 text, control characters
            (a binary file), more rows than fit, a cell csv cannot read, mixed separators, a ragged row; for NPY: a
            header that is not NumPy's (or over ``NPY_MAX_HEADER`` bytes), an ``.npz`` archive, Python objects, a
            structured or non-numeric dtype, fewer bytes than the header promises; for both: a matrix that is not
            2-D, empty or larger than ``MAX_MATRIX_SIDE`` on a side, or a cell that is not 0 or 1 (the first one is
            named, 1-based, counted in the data without the labels).
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


# NPY: the header is read and checked here, before any cell is, so numpy never sees a file it would refuse with
# its own words (which can advise allow_pickle=True, never right for an upload) or allocate a claimed shape.


def _read_npy(data: bytes, label: str) -> Tensor:
    """An ``np.save`` file of one 2-D 0/1 array, read without pickles and without trusting its header."""
    if data.startswith(ZIP_MAGIC):
        raise ValueError(f"{label} is an .npz archive (several arrays); save one 2-D array with np.save to a .npy file")
    stream = io.BytesIO(data)
    shape, fortran, dtype = _npy_header(stream, data, label)
    _check_npy_dtype(dtype, label)
    _check_npy_shape(shape, label)
    return _zero_one(_npy_cells(data[stream.tell():], shape, fortran, dtype, label), label)


def _npy_header(stream: io.BytesIO, data: bytes, label: str) -> tuple[tuple[Any, ...], bool, Any]:
    """``(shape, fortran_order, dtype)`` from an NPY header of format 1.0 or 2.0 (the ones ``np.save`` writes for
    plain arrays); the stream is left at the first cell."""
    import numpy as np

    fmt = np.lib.format
    unreadable = ValueError(f"{label} is not a NumPy .npy array (its header cannot be read); save one 2-D array of "
                            "0/1 cells with np.save")
    try:
        version = fmt.read_magic(stream)
    except Exception:  # noqa: BLE001 (numpy's words differ by version; the user needs one line)
        raise unreadable from None
    if version == (3, 0):  # np.save writes it only for field names outside latin-1: never a plain 0/1 array
        raise ValueError(f"{label} is a .npy file of format 3.0, which is not read here; save one 2-D array of "
                         "bool, integers or floats with np.save")
    if version not in ((1, 0), (2, 0)):
        raise unreadable
    length_bytes = 2 if version == (1, 0) else 4  # the header's length follows the magic and the version
    declared = int.from_bytes(data[8:8 + length_bytes], "little")
    if declared > NPY_MAX_HEADER:
        raise ValueError(f"{label} has a {declared}-byte .npy header; np.save writes about 128 bytes for a 2-D "
                         "array, so this is not a plain array: save one 2-D array of 0/1 cells with np.save")
    read = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
    try:
        return read(stream, max_header_size=NPY_MAX_HEADER)
    except Exception:  # noqa: BLE001 (a bad dict, shape or dtype in the header: numpy's many kinds of refusal)
        raise unreadable from None


def _check_npy_dtype(dtype: Any, label: str) -> None:
    """Only plain bool, integer and float cells: objects would need unpickling, which is never done here."""
    if dtype.hasobject:
        raise ValueError(f"{label} holds Python objects, which cannot be read safely (they would need unpickling); "
                         "save a plain 2-D array of bool, integers or floats, each 0 or 1")
    if dtype.names is not None or dtype.kind not in "biuf":
        raise ValueError(f"{label} has cells of type {shown(dtype, 40)}; it needs bool, integers or floats, "
                         "each 0 or 1")


def _check_npy_shape(shape: tuple[Any, ...], label: str) -> None:
    """The header's shape, before anything is allocated for it (it may claim far more cells than the file holds)."""
    if len(shape) > 8 or any(not 0 <= d <= 10**9 for d in shape):  # would make a message of thousands of digits
        raise ValueError(f"{label} claims the shape {shown(list(shape), 40)}; it needs a 2-D array of at most "
                         f"{MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE} cells")
    check_matrix_shape(tuple(shape), label)


def _npy_cells(body: bytes, shape: tuple[int, int], fortran: bool, dtype: Any, label: str) -> Any:
    """The cells after the header, as an array of ``shape`` (Fortran order as ``np.save`` wrote it)."""
    import numpy as np

    count = shape[0] * shape[1]
    need = count * dtype.itemsize
    if len(body) < need:
        raise ValueError(f"{label} is cut short: its header promises {need} bytes of cells, {len(body)} follow; "
                         "save the array again with np.save")
    return np.frombuffer(body, dtype=dtype, count=count).reshape(shape, order="F" if fortran else "C")


def _zero_one(array: Any, label: str) -> Tensor:
    """The array as a bool tensor, or the first cell that is not 0 or 1 named."""
    import numpy as np

    values = array.view(np.uint8) if array.dtype == np.bool_ else array  # a bool byte of 2 is not a 0/1 cell
    bad = np.argwhere(~((values == 0) | (values == 1)))
    if len(bad):
        r, c = (int(x) for x in bad[0])
        raise ValueError(f"{label}: row {r + 1}, column {c + 1} is {values[r, c].item()!r}; every cell must be 0 or 1")
    return torch.from_numpy(np.ascontiguousarray(values != 0))


# CSV

_TRUE = {"1", "true"}
_FALSE = {"0", "false"}
_SEPARATORS = (",", ";", "\t")
# C0 control characters other than tab, line feed and carriage return, and a byte-order mark past the start: text
# editors and spreadsheets do not write them, so a file holding one is binary (NUL bytes, an image renamed .csv) or
# files joined together; read on, a stray character would turn a 0/1 cell into a label and shift the matrix
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufeff]")


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
    """A CSV of 0/1 cells, with optional labels (see the module's docstring)."""
    rows = _csv_rows(_csv_lines(data, label), label)
    header, label_col = _labels(rows)
    body = rows[1:] if header else rows
    if not body:
        raise ValueError(f"{label} has a header row but no data rows")
    if label_col:
        body = [row[1:] for row in body]
    _check_rectangle(body, 2 if header else 1, label_col, label)
    check_matrix_shape((len(body), len(body[0])), label)
    return _csv_cells(body, label)


def _csv_lines(data: bytes, label: str) -> list[str]:
    """The file's non-blank lines: UTF-8 text (a BOM is dropped), no control characters, not more rows than fit."""
    try:
        text = data.decode("utf-8").lstrip("\ufeff")  # one BOM or more (some tools add one on every save)
    except UnicodeDecodeError:
        raise ValueError(f"{label} is not UTF-8 text; save the CSV as UTF-8") from None
    control = _CONTROL.search(text)
    if control:
        raise ValueError(f"{label} holds the character U+{ord(control.group()):04X}, which CSV text does not have "
                         "(a binary file?); save the matrix as CSV text of 0/1 cells, or with np.save as .npy")
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{label} is empty: it needs one row per query and one column per key, 0 or 1 in each")
    if len(lines) > MAX_MATRIX_SIDE + 1:  # one header row at most; refused before any line is split
        raise ValueError(f"{label} has {len(lines)} rows; at most {MAX_MATRIX_SIDE} rows of cells (and a header "
                         f"row) are supported: use a shorter input")
    return lines


def _csv_rows(lines: list[str], label: str) -> list[list[str]]:
    """The lines split into stripped cells at the first of , ; tab that occurs (else at whitespace)."""
    text = "\n".join(lines)
    delimiter = next((d for d in _SEPARATORS if d in text), None)
    if delimiter is None:
        rows = [line.split() for line in lines]
    else:
        try:
            rows = [[c.strip() for c in row] for row in csv.reader(lines, delimiter=delimiter)]
        except csv.Error:  # a cell over csv's field limit (a quote never closed, or one huge cell)
            raise ValueError(f"{label} is not CSV that can be read: a quote is never closed or a cell is far too "
                             "long; save the matrix as plain CSV, one row per query, 0 or 1 in each cell") from None
    _check_one_separator(rows, delimiter, label)
    return rows


def _check_one_separator(rows: list[list[str]], delimiter: str | None, label: str) -> None:
    """Refuses a cell such as ``0;1`` in a comma file: numbers joined by another separator, which would otherwise be
    read as a label and shift the matrix silently (a label such as ``;`` or ``a;b`` is not refused)."""
    for n, row in enumerate(rows):
        for cell in row:
            for sep in (*_SEPARATORS, None):
                parts = cell.split(sep)
                if sep != delimiter and len(parts) > 1 and all(_cell(p) is not None for p in parts):
                    raise ValueError(f"{label} mixes separators: row {n + 1} has the cell {shown(cell, 20)}; "
                                     "separate every cell with the same one of comma, semicolon or tab")


def _check_rectangle(body: list[list[str]], first_line: int, label_col: bool, label: str) -> None:
    """Every row as wide as the first."""
    width = len(body[0])
    for n, row in enumerate(body):
        if len(row) != width:
            raise ValueError(f"{label} is ragged: line {first_line + n} has {len(row)} cells, line {first_line} has "
                             f"{width}{' (after its label)' if label_col else ''}; every row needs one cell per key")


def _csv_cells(body: list[list[str]], label: str) -> Tensor:
    """The cells as a bool tensor, or the first one that is not 0 or 1 named."""
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


def _custom_code(params: Mapping[str, Any], c: CodeContext) -> CodePiece:
    name = f"custom{c.suffix}"
    flex = "Yes: any 0/1 matrix is an index function (a lookup); tiles it leaves empty are skipped."
    text = params["matrix"]
    if not text:
        return CodePiece("index", name, f'''
            def {name}(b, h, q_idx, kv_idx):
                """Custom matrix: none was given, so every key is allowed (as with none)."""
                return (q_idx - kv_idx) == (q_idx - kv_idx)
        ''', flex=flex)
    m = _decoded(text)
    rows, cols = m.shape
    const = f"CUSTOM_MATRIX{c.suffix}"
    header = (f"# The custom matrix ({rows} queries x {cols} keys): 1 = the query (row) may attend to the key "
              f"(column).\n{const} = torch.tensor({bool_rows(m.int().tolist())}, dtype=torch.bool)\n\n")
    return CodePiece("index", name, header + textwrap.dedent(f'''
        def {name}(b, h, q_idx, kv_idx):
            """Custom matrix: key j is allowed for query i iff {const}[i, j] is 1; positions outside the
            {rows} x {cols} matrix are blocked."""
            inside = (q_idx >= 0) & (q_idx < {rows}) & (kv_idx >= 0) & (kv_idx < {cols})
            return {const}[q_idx.clamp(0, {rows - 1}), kv_idx.clamp(0, {cols - 1})] & inside
    '''), constants=(const,), flex=flex)


index_strategy(
    _custom_mask_mod,
    code=_custom_code,
    id="custom", kind="static", title="Custom matrix",
    summary="Your own (queries x keys) 0/1 matrix, drawn or uploaded (CSV/NPY): 1 = may attend.",
    reference="user-defined",
    params=(MATRIX,),
    note=f"The matrix must have one row and one column per position of the input. At most "
         f"{MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE} fits in a link (larger uploads are not supported in this build). "
         "Without a matrix every key is allowed, as with none. A row of zeros leaves that query with nothing to "
         "attend to: its output is 0.",
)

