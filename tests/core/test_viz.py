"""Pure figure builders: trace types, shapes, unique labels, pooling, payload size."""

from __future__ import annotations

import json

import altair as alt
import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from dynmask_core import analysis, viz
from dynmask_core.analysis import Classification, Embedding, NextToken

TOKENS = ["[CLS]", "the", "film", "the", "end", "[SEP]"]


def _attention(q: int, seed: int = 0) -> np.ndarray:
    x = np.random.default_rng(seed).random((q, q)).astype(np.float32)
    return x / x.sum(axis=1, keepdims=True)


def test_token_axis_is_unique() -> None:
    labels = viz.token_axis(TOKENS)
    assert len(set(labels)) == len(labels) and labels[1] == "1:the" and labels[3] == "3:the"


def test_mask_figure_two_colours() -> None:
    mask = np.tril(np.ones((6, 6), dtype=bool))
    fig = viz.mask_figure(mask, TOKENS)
    (trace,) = fig.data
    assert isinstance(trace, go.Heatmap)
    assert np.asarray(trace.z).shape == (6, 6) and set(np.unique(trace.z)) == {0, 1}
    assert list(trace.colorbar.ticktext) == ["blocked", "allowed"]
    assert list(trace.x) == viz.token_axis(TOKENS) and fig.layout.yaxis.autorange == "reversed"


def test_attention_and_diff_figures() -> None:
    a, b = _attention(6, 0), _attention(6, 1)
    fig = viz.attention_figure(a, TOKENS, zmax=0.9)
    assert isinstance(fig.data[0], go.Heatmap) and fig.data[0].zmin == 0 and fig.data[0].zmax == 0.9
    diff = viz.diff_figure(a - b, TOKENS)
    trace = diff.data[0]
    assert trace.zmid == 0 and trace.zmin == -trace.zmax
    assert np.allclose(np.asarray(trace.z), np.round(a - b, 3), atol=1e-6)


def test_big_matrices_are_pooled_with_a_note() -> None:
    fig = viz.attention_figure(_attention(600), [f"t{i}" for i in range(600)], max_side=256)
    z = np.asarray(fig.data[0].z)
    assert z.shape == (200, 200) and fig.data[0].x[0] == "0-2"
    assert "3x3" in viz.pooling_note(600, viz.pool_factor(600, 256))
    assert viz.pooling_note(100, viz.pool_factor(100, 256)) == ""
    pooled_mask = viz.mask_figure(np.ones((600, 600), bool), [str(i) for i in range(600)], max_side=256)
    assert np.asarray(pooled_mask.data[0].z).max() == 1.0


def test_pool2d_averages_blocks_and_edges() -> None:
    m = np.arange(25, dtype=np.float32).reshape(5, 5)
    pooled = viz.pool2d(m, 2)
    assert pooled.shape == (3, 3)
    assert pooled[0, 0] == pytest.approx((0 + 1 + 5 + 6) / 4) and pooled[2, 2] == 24


def test_single_heatmap_at_512_tokens_is_under_5_mb() -> None:
    tokens = [f"tok{i}" for i in range(512)]
    fig = viz.attention_figure(_attention(512), tokens)
    assert np.asarray(fig.data[0].z).shape == (512, 512)  # full resolution at 512
    payload = pio.to_json(fig, validate=False)
    assert len(payload) < 5_000_000
    mask = pio.to_json(viz.mask_figure(np.random.default_rng(0).random((512, 512)) > 0.5, tokens), validate=False)
    assert len(mask) < 1_000_000


@pytest.mark.parametrize(("layers", "heads", "q"), [(6, 12, 14), (6, 12, 160), (30, 9, 512)])
def test_model_view_is_one_small_heatmap(layers: int, heads: int, q: int) -> None:
    rng = np.random.default_rng(0)
    attention = rng.random((layers, heads, q, q), dtype=np.float32)
    fig = viz.model_view_figure(attention, highlight=(1, 2))
    (trace,) = fig.data
    z = np.asarray(trace.z)
    factor, side = viz.model_view_cell(q, layers, heads)
    assert side <= viz.MODEL_VIEW_SIDE and z.shape == (layers * (side + 1) - 1, heads * (side + 1) - 1)
    assert len(fig.layout.shapes) == 1
    assert len(pio.to_json(fig, validate=False)) < 1_500_000
    note = viz.model_view_note(q, layers, heads)
    assert ("average-pooled" in note) == (factor > 1)


def test_heatmap_margins_follow_the_labels() -> None:
    """Margins are estimated from the tick labels (so the browser draws a figure once): longer or wider labels get
    more room, and the colour bar its own on the right."""
    from dynmask_core.viz._common import text_width

    mask = np.tril(np.ones((4, 4), dtype=bool))
    short = viz.mask_figure(mask, ["a", "b", "c", "d"]).layout.margin
    long = viz.mask_figure(mask, ["a", "extraordinarily", "c", "d"]).layout.margin
    assert long.l > short.l and long.b > short.b and long.r == short.r > 60
    assert text_width("国", 14) > text_width("a", 14) > 0
    wide = viz.attention_figure(np.ones((4, 4)) / 4, ["a", "国际化国际化", "c", "d"]).layout.margin
    narrow = viz.attention_figure(np.ones((4, 4)) / 4, ["a", "abcdef", "c", "d"]).layout.margin
    assert wide.l > narrow.l


def test_output_figures() -> None:
    bars = viz.output_figure(Classification(torch.tensor([0.2, 0.8]), ("neg", "pos")),
                             Classification(torch.tensor([0.6, 0.4]), ("neg", "pos")))
    assert [type(t) for t in bars.data] == [go.Bar, go.Bar]
    assert np.allclose(list(bars.data[1].y), [0.6, 0.4])
    probs = torch.tensor([0.5 / (i + 1) for i in range(5)] + [0.0] * 3)
    nxt = viz.output_figure(NextToken(probs), NextToken(probs.flip(0)))
    assert len(nxt.data) == 2 and all(t.orientation == "h" for t in nxt.data) and len(nxt.data[0].y) == 5
    assert viz.output_figure(Embedding(torch.ones(3)), Embedding(torch.ones(3))) is None


def test_layer_stats_and_chart() -> None:
    uniform = np.full((2, 1, 4, 4), 0.25, dtype=np.float32)
    one_hot = np.zeros((2, 1, 4, 4), dtype=np.float32)
    one_hot[..., 0] = 1.0
    assert np.allclose(analysis.attention_entropy(uniform), np.log(4))
    assert np.allclose(analysis.attention_entropy(one_hot), 0.0)
    masks = np.zeros((2, 1, 4, 4), dtype=bool)
    masks[0] = True
    assert list(analysis.allowed_fraction(masks)) == [1.0, 0.0]
    assert analysis.mask_patterns(masks) == 2 and analysis.mask_patterns(np.ones((3, 4, 5, 5), bool)) == 1
    table = analysis.layer_table({"A": (uniform, masks), "B": (one_hot, ~masks)})
    assert set(table.columns) == {"run", "layer", "metric", "value"} and len(table) == 8
    chart = viz.layer_chart(table, "entropy", colors={"A": "#111111", "B": "#222222"})
    assert isinstance(chart, alt.Chart)
    spec = chart.to_dict()
    assert spec["mark"]["type"] == "line" and spec["encoding"]["x"]["field"] == "layer"
    json.dumps(spec)


def test_pooled_and_windowed_heatmaps_label_what_they_show() -> None:
    tokens = [f"t{i}" for i in range(300)]
    pooled = np.linspace(0, 1, 25, dtype=np.float32).reshape(5, 5)  # 300 tokens kept in 64-token blocks
    fig = viz.mask_figure(pooled, tokens, block=64)
    trace = fig.data[0]
    assert list(trace.y) == ["0-63", "64-127", "128-191", "192-255", "256-299"]
    assert np.allclose(np.asarray(trace.z), np.round(pooled, 2)) and "fraction" in trace.colorbar.title.text
    window = np.eye(4, dtype=np.float32)
    att = viz.attention_figure(window, tokens, window=(100, 98)).data[0]
    assert list(att.y) == ["100:t100", "101:t101", "102:t102", "103:t103"] and list(att.x)[0] == "98:t98"
    assert viz.diff_figure(pooled - 0.5, tokens, block=64).data[0].y[-1] == "256-299"
    stats = viz.head_stats_figure(np.ones((3, 2)), np.zeros((3, 2)), "sink", highlight=(1, 1))
    assert len(stats.data) == 2 and len(stats.layout.shapes) == 2 and stats.data[0].zmax == 1.0


def test_output_bars_are_escaped_html_with_the_values() -> None:
    """The app's output bars: every value as text and as a bar width, labels escaped, many classes summarised."""
    hostile = "<img src=x onerror=alert(1)>"
    base = Classification(torch.tensor([0.2, 0.8]), (hostile, "a&b"))
    html = viz.output_bars_html(base, Classification(torch.tensor([0.6, 0.4]), (hostile, "a&b")))
    assert "<img" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html and "a&amp;b" in html
    assert "<script" not in html and "onerror=alert" not in html.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    for value in ("20.0%", "80.0%", "60.0%", "40.0%"):
        assert value in html
    assert "width:20.00%" in html and "width:60.00%" in html  # bars are absolute: the track is 100 %
    assert html.count("role=\"img\"") == 4 and "baseline (no extra mask)" in html and ">masked<" in html

    probs = torch.softmax(torch.arange(20, dtype=torch.float32), 0)
    names = tuple(f"class{i}" for i in range(20))
    many = viz.output_bars_html(Classification(probs, names), Classification(probs.flip(0), names))
    assert many.count("role=\"img\"") == 2 * viz.outputs.MAX_CLASS_BARS
    shown = [n for n in names if f">{n}<" in many]
    assert len(shown) == viz.outputs.MAX_CLASS_BARS and shown == sorted(shown, key=names.index)
    assert "8 other classes" in many  # the rest, summed in one line

    class Tok:
        def decode(self, ids):
            return {0: " the", 1: "<script>", 2: "\n"}.get(ids[0], f"t{ids[0]}")

    p = torch.tensor([0.5, 0.2, 0.1, 0.08, 0.07, 0.05])
    q = torch.tensor([0.05, 0.07, 0.1, 0.2, 0.08, 0.5])
    nxt = viz.output_bars_html(NextToken(p, Tok()), NextToken(q, Tok()))
    assert "<script>" not in nxt and "&lt;script&gt;" in nxt and "&#x27; the&#x27;" in nxt and "⏎" in nxt
    assert nxt.count(">new</span>") == 1  # t5 entered the top 5; the other four were there before
    assert "50.0%" in nxt and "next-token" in nxt
    assert viz.output_bars_html(Embedding(torch.ones(3)), Embedding(torch.ones(3))) is None


def _lightness(rgb: tuple[float, float, float]) -> float:
    """CIE L* of an sRGB colour (0-255 channels)."""
    lin = [((c / 255 + 0.055) / 1.055) ** 2.4 if c / 255 > 0.04045 else c / 255 / 12.92 for c in rgb]
    y = 0.2126 * lin[0] + 0.7152 * lin[1] + 0.0722 * lin[2]
    return 116 * y ** (1 / 3) - 16 if y > 216 / 24389 else 24389 / 27 * y


def test_the_image_overlay_grows_lighter_with_the_value_and_leaves_the_picture_visible() -> None:
    """Issue 22, item 6: the attention overlay said "Brighter = more attention" over a scale that was not ordered by
    lightness, and its tint hid the star it explained. Each stop is lighter and more opaque than the one before, and
    a patch with no attention leaves the picture as it is."""
    from dynmask_core.viz.image import OVERLAY_SCALE, patch_overlay_figure

    stops = []
    for position, colour in OVERLAY_SCALE:
        r, g, b, a = (float(x) for x in colour[colour.index("(") + 1:-1].split(","))
        stops.append((position, _lightness((r, g, b)), a))
    assert [s[0] for s in stops] == sorted(s[0] for s in stops) and stops[0][0] == 0.0 and stops[-1][0] == 1.0
    assert all(b[1] > a[1] for a, b in zip(stops, stops[1:])), stops  # lighter at every step
    assert all(b[2] > a[2] for a, b in zip(stops, stops[1:])), stops  # and more opaque
    assert stops[0][2] == 0.0 and stops[-1][2] < 1.0  # nothing attended: the picture; the most: still seen under it
    fig = patch_overlay_figure(np.zeros((32, 32, 3), np.uint8), np.eye(4), "t")
    assert fig.data[-1].colorscale == tuple(tuple(s) for s in OVERLAY_SCALE)
