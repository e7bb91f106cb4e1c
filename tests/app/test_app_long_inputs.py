"""Past the usual 512 tokens in the Playground (AppTest): the token limit rides in the link, the run keeps summaries
and pooled maps within the capture budget with the same numbers as a full capture, the views say they are pooled,
and a zoom window is the run's own weights at full resolution."""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.server import resources
from dynmask_app.state import AppState
from dynmask_core import encode, run
from dynmask_core.modalities import TextSource
from dynmask_core.viz import pool2d
from tests import ROOT
from tests.app.test_app_playground import charts, ok, result_of

DIGITS = "0123456789" * 100  # 1,000 SmolLM2 tokens (one per digit) in 1,000 characters: the text rides in the link
LONG = AppState(model="smollm2", input_ref=DIGITS, max_tokens=700, strategy="sliding_window",
                params={"radius": 16}, layer=2, head=4)


def _open(state: AppState) -> AppTest:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
    at.query_params.update(state.to_query_params())
    return at.run()


def _open_tab(at: AppTest, title: str) -> AppTest:
    at.session_state["pg.view_tab"] = title
    return at.run()


def _titled(at: AppTest, text: str) -> list:
    """The charts whose title holds ``text`` (titles read from the JSON, where non-ASCII is escaped)."""
    return [c for c in charts(at) if text in json.loads(c.proto.spec)["layout"]["title"]["text"]]


def _z(chart) -> np.ndarray:
    """The heatmap's cells as sent (plotly writes numpy arrays as base64 typed arrays)."""
    z = json.loads(chart.proto.spec)["data"][0]["z"]
    if isinstance(z, dict):
        values = np.frombuffer(base64.b64decode(z["bdata"]), dtype=np.dtype(z["dtype"]))
        return values.reshape(z["shape"] if isinstance(z["shape"], list) else
                              [int(v) for v in str(z["shape"]).split(",")]).astype(np.float64)
    return np.asarray(z, dtype=np.float64)


@pytest.fixture(scope="module")
def smollm2_direct(smollm2):
    """The same recipe run by the core with every weight captured."""
    prepared = encode(smollm2, TextSource(DIGITS, 700))
    return run(smollm2, prepared, LONG.plan().resolved())


def test_a_link_with_a_token_limit_runs_budgeted_with_the_numbers_of_a_full_capture(smollm2_direct) -> None:
    assert LONG.to_query_params()["tokens"] == "700" and "tokens" not in AppState().to_query_params()
    at = _open(LONG)
    ok(at)
    assert not at.error
    result = result_of(at)
    assert result.budgeted and result.shape == (30, 9, 700, 700) and not smollm2_direct.budgeted
    # what is kept changes, the numbers do not: the tile-by-tile path sums in another order (within 1e-5)
    assert result.metrics == pytest.approx(smollm2_direct.metrics, rel=1e-5, abs=1e-6)
    kept = result.summary.nbytes + result.baseline_summary.nbytes
    assert kept <= resources.policy().capture_budget
    captions = " ".join(c.value for c in at.caption)
    assert "700 tokens: past the usual 512" in captions and f"{result.summary.block}x{result.summary.block}" in captions
    assert _titled(at, f"layer 2, head 4, {result.summary.block}x{result.summary.block} blocks")
    mask = _z(charts(at)[-1])  # the pooled mask: the fraction allowed in each block, from the full masks
    np.testing.assert_allclose(mask, pool2d(smollm2_direct.masks[2, 4].numpy(), result.summary.block), atol=0.006)
    assert at.query_params["tokens"] in ("700", ["700"])


def test_the_zoom_computes_a_window_of_the_runs_own_weights(smollm2_direct) -> None:
    at = _open(LONG)
    at = _open_tab(at, "Zoom (full resolution)")
    ok(at)
    go = [b for b in at.button if b.label.startswith("Compute rows 0–127")]
    assert go and not _titled(at, "full resolution")
    go[0].click().run()
    ok(at)
    zoom = _titled(at, "rows 0–127: masked attention (full resolution)")
    assert len(zoom) == 1
    want = smollm2_direct.attention[2, 4, 0:128, 0:128].numpy()
    np.testing.assert_allclose(_z(zoom[0]), want, atol=5e-4)  # the figure rounds to 3 decimals
    at.session_state["pg.zoom_show"] = "mask"
    at.run()
    mask = _titled(at, "mask applied (full resolution)")
    assert len(mask) == 1 and np.array_equal(_z(mask[0]), smollm2_direct.masks[2, 4, 0:128, 0:128].numpy())


def test_summaries_and_downloads_of_a_long_run() -> None:
    at = _open(LONG)
    at = _open_tab(at, "Per-head summaries")
    ok(at)
    assert _titled(at, "Entropy of each row")
    at = _open_tab(at, "Downloads")
    ok(at)
    labels = [b.label for b in at.get("download_button")]
    assert "Pooled attention, masked (NPY, float32 block means)" in labels
    assert not any(label.startswith("All attention") for label in labels)  # not kept, so not offered


def test_without_a_token_limit_the_text_is_cut_at_512_as_before() -> None:
    at = _open(AppState(model="smollm2", input_ref=DIGITS))
    ok(at)
    result = result_of(at)
    assert not result.budgeted and result.attention.shape[-1] == 512 and result.truncated
    assert "tokens" not in at.query_params
