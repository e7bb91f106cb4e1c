"""Pure export helpers: NPY, CSV, JSON and the offline HTML report."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import plotly.graph_objects as go

from dynmask_core import export


def test_npy_round_trip() -> None:
    a = np.random.default_rng(0).random((2, 3, 4, 4)).astype(np.float32)
    assert np.array_equal(np.load(io.BytesIO(export.npy_bytes(a))), a)
    m = a > 0.5
    back = np.load(io.BytesIO(export.npy_bytes(m)))
    assert back.dtype == bool and np.array_equal(back, m)


def test_csv_has_unique_labels() -> None:
    m = np.array([[True, False], [True, True]])
    rows = list(csv.reader(io.StringIO(export.csv_bytes(m, ["a", "a"]).decode())))
    assert rows == [["query \\ key", "0:a", "1:a"], ["0:a", "1", "0"], ["1:a", "1", "1"]]
    f = export.csv_bytes(np.array([[0.1234567, 0.8765433]]), ["x", "y"]).decode()
    assert "0.123457" in f


def test_json_handles_nan() -> None:
    data = json.loads(export.json_bytes({"kl": float("nan"), "x": [1, 2], "n": np.float32(0.5)}))
    assert data == {"kl": None, "x": [1, 2], "n": 0.5}


def test_html_report_inlines_plotly_once() -> None:
    figs = [("one", go.Figure(go.Bar(y=[1, 2]))), ("two", go.Figure(go.Heatmap(z=[[1, 2], [3, 4]])))]
    page = export.html_report("Title <x>", figs, {"kl": 0.0123, "seed": 5}, notes=["pooled"], run={"a": 1}).decode()
    single = go.Figure().to_html(full_html=False, include_plotlyjs=True)
    banner = single[single.index("plotly.js v"):][:20]
    assert page.count(banner) == 1 and page.count("Plotly.newPlot") == 2  # plotly.js inlined exactly once
    assert "<script src=" not in page and "Title &lt;x&gt;" in page and "0.0123" in page
    assert "&quot;a&quot;: 1" in page
