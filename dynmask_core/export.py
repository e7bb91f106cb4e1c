"""Byte builders for downloads: NPY, CSV, JSON and a self-contained offline HTML report.

Pure functions (no Streamlit): the app hands their bytes to ``st.download_button``; the CLI can write them to files.
"""

from __future__ import annotations

import csv
import html
import io
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from dynmask_core._arrays import as_array
from dynmask_core.modalities import modality

#: Characters a download's file name keeps; anything else (slashes, colons, quotes, spaces, controls) becomes "_".
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_FILE_NAME = 120


def safe_file_name(name: str, limit: int = MAX_FILE_NAME) -> str:
    """A download's file name built from values a link carries (a model id, a strategy): only letters, digits,
    ``.``, ``_`` and ``-``, no ``..``, no leading dot, at most ``limit`` characters with the extension kept.

    >>> safe_file_name("dynmask-../../etc/passwd<b>-s0.json")
    'dynmask-._._etc_passwd_b_-s0.json'
    >>> safe_file_name(".hidden:evil")
    'hidden_evil'
    >>> len(safe_file_name("x" * 500 + ".html")), safe_file_name("x" * 500 + ".html")[-5:]
    (120, '.html')
    """
    cleaned = re.sub(r"\.{2,}", ".", _NAME_UNSAFE.sub("_", str(name))).lstrip("._-") or "dynmask"
    if len(cleaned) <= limit:
        return cleaned
    stem, dot, ext = cleaned.rpartition(".")
    ext = dot + ext if dot and len(ext) <= 8 else ""
    return (stem if ext else cleaned)[: limit - len(ext)] + ext


def npy_bytes(array: Any) -> bytes:
    """``np.save`` of ``array`` (a tensor or array) into bytes; load back with ``np.load(io.BytesIO(b))``."""
    buf = io.BytesIO()
    np.save(buf, as_array(array), allow_pickle=False)
    return buf.getvalue()


def csv_bytes(matrix: Any, tokens: Sequence[str], decimals: int | None = 6) -> bytes:
    """One ``(Q, K)`` matrix as CSV: header ``query \\ key`` then the key labels; one row per query.

    Labels are ``"pos:token"`` so equal tokens stay distinct. Booleans are written as 0/1.

    Args:
        matrix: ``(Q, K)`` numbers or booleans.
        tokens: Token labels (the last Q label the rows, the last K the columns).
        decimals: Rounding of floats (None = full precision).
    """
    m = as_array(matrix)
    if m.ndim != 2:
        raise ValueError(f"csv_bytes needs a (Q, K) matrix, got shape {tuple(m.shape)}")
    q, k = m.shape
    labels = [f"{i}:{t}" for i, t in enumerate(tokens)]
    labels = labels if len(labels) >= max(q, k) else [str(i) for i in range(max(q, k))]
    if m.dtype == bool:
        m = m.astype(np.uint8)
    elif decimals is not None and np.issubdtype(m.dtype, np.floating):
        m = np.round(m.astype(np.float64), decimals)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["query \\ key", *labels[-k:]])
    for label, row in zip(labels[-q:], m.tolist(), strict=True):
        writer.writerow([label, *row])
    return buf.getvalue().encode("utf-8")


def _jsonable(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if hasattr(x, "item") and getattr(x, "ndim", 1) == 0:
        return _jsonable(x.item())
    return x


def json_bytes(data: Mapping[str, Any]) -> bytes:
    """Pretty JSON (UTF-8) of a run summary such as ``RunResult.to_dict()``; NaN/inf become null."""
    return json.dumps(_jsonable(data), indent=2, ensure_ascii=False).encode("utf-8")


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:2rem auto;max-width:1100px;color:#1b1f24}
h1{font-size:1.6rem} h2{font-size:1.2rem;margin-top:2rem} table{border-collapse:collapse;margin:.5rem 0}
td,th{border:1px solid #d0d7de;padding:.3rem .6rem;text-align:left;vertical-align:top}
th{background:#f4f6f8} .note{color:#57606a} pre{background:#f6f8fa;padding:1rem;overflow:auto;font-size:.8rem}
"""


def _table(numbers: Mapping[str, Any]) -> str:
    rows = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>" for k, v in numbers.items()
    )
    return f"<table>{rows}</table>"


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.6g}"
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(_jsonable(v), ensure_ascii=False)
    return str(v)


def html_report(title: str, figures: Sequence[tuple[str, Any]], numbers: Mapping[str, Any],
                notes: Sequence[str] = (), run: Mapping[str, Any] | None = None) -> bytes:
    """A single offline HTML file: plotly.js inlined once, then each figure, the numbers and the run JSON.

    Args:
        title: Page heading.
        figures: ``[(caption, plotly Figure)]`` in display order.
        numbers: ``{name: value}`` shown as a table (metrics, seed, model, strategy...).
        notes: Extra paragraphs (e.g. "pooled for display").
        run: Optional JSON-ready run summary, embedded in a ``<pre>`` block.

    Returns:
        UTF-8 HTML bytes that open without network access.
    """
    parts = [f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1>", _table(numbers)]
    parts += [f"<p class='note'>{html.escape(n)}</p>" for n in notes if n]
    first = True
    for caption, fig in figures:
        parts.append(f"<h2>{html.escape(caption)}</h2>")
        parts.append(fig.to_html(full_html=False, include_plotlyjs=bool(first),
                                 config={"displaylogo": False, "responsive": True}))
        first = False
    if run is not None:
        parts.append("<h2>Run (JSON)</h2><pre>" + html.escape(json_bytes(run).decode("utf-8")) + "</pre>")
    parts.append("<p class='note'>Made with dynmask. Plotly.js is embedded: this file works offline.</p></body></html>")
    return "".join(parts).encode("utf-8")


def tokens_csv_bytes(tokens: Sequence[str]) -> bytes:
    """The position labels as CSV: ``position,token``."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["position", "token"])
    writer.writerows(enumerate(tokens))
    return buf.getvalue().encode("utf-8")


RUN_FILES = ("run.json", "masks.npy", "attention.npy", "baseline_attention.npy", "mask_code.py")


def write_run(folder: Any, result: Any, input_record: Mapping[str, Any] | None = None,
              code: str | None = None) -> tuple[str, ...]:
    """Writes a run to ``folder``: ``run.json`` (the summary, with ``input``, ``mode``, ``layers`` and ``heads`` at
    the top level), ``masks.npy`` (bool (L, H, Q, K)), ``attention.npy`` and ``baseline_attention.npy`` (float32),
    and, when ``code`` is given, ``mask_code.py``: the run's mask as one self-contained Python file (see
    :mod:`dynmask_core.mask_code`: ``apply(model)``, ``mask_from_scores(scores, layer)``, and ``mask_mod`` /
    ``mask_mods`` for index strategies). A run with a capture budget writes :func:`budgeted_run_files` instead of the
    three arrays.

    Returns:
        The names of the files written.
    """
    from pathlib import Path

    out = Path(folder)
    record: dict[str, Any] = result.to_dict()
    record["input"] = dict(input_record or {"kind": result.kind})
    record["mode"] = result.plan.apply.mode
    record["layers"] = record["strategy"]["layers"]
    record["heads"] = record["strategy"]["heads"]
    (out / "run.json").write_bytes(json_bytes(record))
    written: tuple[str, ...]
    if getattr(result, "summary", None) is not None:
        files = budgeted_run_files(result)
        for name, data in files.items():
            (out / name).write_bytes(data)
        written = ("run.json", *files)
    else:
        (out / "masks.npy").write_bytes(npy_bytes(as_array(result.masks, bool)))
        (out / "attention.npy").write_bytes(npy_bytes(as_array(result.attention, np.float32)))
        (out / "baseline_attention.npy").write_bytes(npy_bytes(as_array(result.baseline_attention, np.float32)))
        written = RUN_FILES[:4]
    if code is not None:
        (out / "mask_code.py").write_text(code, encoding="utf-8")
        written += ("mask_code.py",)
    return written


def budgeted_run_files(result: Any) -> dict[str, bytes]:
    """The arrays of a run with a capture budget, for the masked run and (``baseline_``) the baseline:
    ``stats.npy`` (float32 (L, H, 4): entropy, distance, sink, allowed; see :mod:`dynmask_core.capture`),
    ``pooled_attention.npy`` and ``pooled_masks.npy`` (float32 (L, H, ceil(Q/b), ceil(K/b)): the mean weight and the
    allowed fraction of each ``b x b`` block, ``b`` = ``run.json``'s ``capture.block``), and for each (layer, head)
    kept in full, ``attention_L{l}_H{h}.npy`` (float32 (Q, K)) and ``masks_L{l}_H{h}.npy`` (bool)."""
    files: dict[str, bytes] = {}
    for prefix, s in (("", result.summary), ("baseline_", result.baseline_summary)):
        files[f"{prefix}stats.npy"] = npy_bytes(as_array(s.stats, np.float32))
        files[f"{prefix}pooled_attention.npy"] = npy_bytes(as_array(s.pooled, np.float32))
        files[f"{prefix}pooled_masks.npy"] = npy_bytes(as_array(s.pooled_allowed, np.float32))
        for (layer, head), weights in s.full.items():
            files[f"{prefix}attention_L{layer}_H{head}.npy"] = npy_bytes(as_array(weights, np.float32))
            files[f"{prefix}masks_L{layer}_H{head}.npy"] = npy_bytes(as_array(s.full_allowed[(layer, head)], bool))
    return files


def attribution_files(result: Any) -> dict[str, bytes]:
    """The files of an attribution: ``attribution.json`` (see ``AttributionResult.to_dict``), ``attribution.npy`` and
    ``baseline_attribution.npy`` (float64 (T,), one score per position), and when the input has an overlay map,
    ``attribution_<name>.npy`` / ``baseline_attribution_<name>.npy``, ``<name>`` its modality's ``overlay_name``:
    for images ``pixels`` ((H, W), channels summed), for spectrogram audio ``frames`` ((frames,), mel bins
    summed)."""
    files = {"attribution.json": json_bytes(result.to_dict()),
             "attribution.npy": npy_bytes(np.asarray(result.masked.positions, dtype=np.float64)),
             "baseline_attribution.npy": npy_bytes(np.asarray(result.baseline.positions, dtype=np.float64))}
    if result.masked.overlay is not None:
        name = modality(result.kind).overlay_name
        files[f"attribution_{name}.npy"] = npy_bytes(np.asarray(result.masked.overlay, dtype=np.float64))
        files[f"baseline_attribution_{name}.npy"] = npy_bytes(np.asarray(result.baseline.overlay, dtype=np.float64))
    return files


def write_attribution(folder: Any, result: Any, extra: Mapping[str, Any] | None = None) -> tuple[str, ...]:
    """Writes :func:`attribution_files` to ``folder`` (``extra`` joins the JSON: the recipe, the input)."""
    from pathlib import Path

    files = attribution_files(result)
    if extra:
        files["attribution.json"] = json_bytes({**result.to_dict(), **extra})
    for name, data in files.items():
        (Path(folder) / name).write_bytes(data)
    return tuple(files)
