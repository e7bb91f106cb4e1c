"""The *Code* tab (README "From the lab to your model") through AppTest: the snippet is the run's, written only when
the tab is opened, and the downloaded ``mask_code.py``, run in a fresh Python process, prints the numbers the page
shows (parsed from the page: the output bars and the metric card, not compared as text).

Each case runs its file once (a fresh process loads torch, transformers and the model: several seconds).
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from streamlit.testing.v1 import AppTest

from dynmask_app.server import figure_cache
from dynmask_app.state import AppState
from dynmask_app.views import code as code_views
from dynmask_app.views import downloads
from dynmask_core import encode, load
from dynmask_core.mask_code import FILE_NAME, RunInfo, snippet
from tests import ROOT
from tests.app import pages
from tests.app.pages import no_exception, ok

CODE_TAB = "Code"
#: A class's masked probability in the page's output bars: the label, the percentage with one decimal (the words)
#: and with two (the bar's width).
_BAR = re.compile(r'aria-label="([^"]+), masked: ([\d.]+)%"><div style="width:([\d.]+)%')

CASES = [
    AppState(strategy="sliding_window", params={"radius": 2}, seed=7, layer=1, head=2),
    AppState(strategy="random_dynamic", params={"p": 0.4}, op="and", strategy2="topk", params2={"k": 3},
             layers=(0, 2), heads=(1, 3), mode="gate", renormalize=False, seed=4242, layer=2, head=1),
    AppState(input_kind="image", input_ref="shapes-star", model="shapes_vit", strategy="mae_patches",
             params={"ratio": 0.5}, seed=3),
]


@pytest.fixture
def buttons(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The download buttons the page draws, by key: their deferred ``data`` (what a click runs)."""
    found: dict[str, Any] = {}
    monkeypatch.setattr(downloads, "download_button",
                        lambda label, data, file_name, mime, key, help="": found.update({key: (data, file_name)}))
    return found


def _shown(at: AppTest, ns: str) -> dict[str, Any]:
    """The page's results, by side: shared handles, which read like the result and carry its key."""
    return dict(at.session_state[f"{ns}.shown"])


def _expected_snippet(state: AppState, result: Any) -> str:
    """The snippet of the run, as ``st.code`` shows it (its last newline dropped)."""
    loaded = load(state.model)
    return snippet(result.plan, RunInfo.of(loaded, encode(loaded, state.source()))).rstrip("\n")


def _code_keys(result: Any) -> list[Any]:
    """What the figure cache holds of the run's code (``code.snippet``, ``code.file``), oldest first."""
    held = figure_cache.shared().keys()  # a ByteLRU: keys() is its snapshot (it is not iterable)
    return [key for key in held if key[0] == result.key and str(key[1]).startswith("code.")]


def _run_file(data: bytes, where: Path) -> dict[str, Any]:
    """Runs the downloaded file as a script in a fresh process (a bundled model: dynmask importable, as the file
    says), the Hub switched off; returns what it printed."""
    path = where / FILE_NAME
    path.write_bytes(data)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, str(path)], cwd=where, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def _page_numbers(at: AppTest) -> tuple[dict[str, tuple[float, float]], str, float]:
    """What the page shows of the masked run: per class its percentage (one decimal, two decimals), and the top
    class with its percentage from the metric card."""
    bars = at.get("html")[0].proto.body
    shown = {label: (float(words), float(width)) for label, words, width in _BAR.findall(bars)}
    card = next(m for m in at.metric if m.label.startswith("With the mask: "))
    return shown, card.label.removeprefix("With the mask: "), float(card.value.rstrip("%"))


@pytest.mark.parametrize("state", CASES, ids=["sliding_window", "random_dynamic_and_topk_gate", "image_mae"])
def test_the_code_tab_is_the_runs_and_its_file_prints_the_pages_numbers(state: AppState,
                                                                        buttons: dict[str, Any]) -> None:
    at = pages.open_page("app.py", state.to_query_params())
    ok(at)
    (result,) = _shown(at, "pg").values()
    assert not at.code and "dl_code_main" not in buttons and not _code_keys(result)  # nothing until asked
    at.session_state["pg.view_tab"] = CODE_TAB  # what a click on the tab sends
    at.run()
    ok(at)
    assert [key[1] for key in _code_keys(result)] == ["code.snippet"]  # the file waits for its download
    (code,) = at.code
    assert code.language == "python"
    assert code.value == _expected_snippet(state, result)
    assert f"seed {result.seed}" in code.value and result.model_id in code.value
    words = " ".join(c.value for c in at.caption)
    assert FILE_NAME in words and f"`{result.model_id}`" in words and f"seed {result.seed}" in words

    _check_the_file(at, result, buttons)


def _check_the_file(at: AppTest, result: Any, buttons: dict[str, Any]) -> None:
    """The Code tab's download, run as a script in a fresh process, prints the numbers the page shows."""
    data, file_name = buttons["dl_code_main"]
    assert file_name == FILE_NAME
    source = data()  # what a click runs, after the script run, outside its thread
    assert [key[1] for key in _code_keys(result)] == ["code.snippet", "code.file"]
    with tempfile.TemporaryDirectory() as tmp:
        printed = _run_file(source, Path(tmp))
    assert printed["model"] == result.model_id and printed["seed"] == result.seed
    assert printed["mode"] == result.plan.apply.mode
    outputs = printed["outputs"]

    # the page's numbers, parsed: each class's masked percentage, the top class and its card
    bars, top, top_percent = _page_numbers(at)
    assert set(bars) == set(outputs["probs"])
    for label, prob in outputs["probs"].items():
        words, width = bars[label]
        assert abs(prob * 100 - words) <= 0.05 + 1e-9 and abs(prob * 100 - width) <= 0.005 + 1e-9, (label, prob)
    assert outputs["top1"] == top and abs(outputs["probs"][top] * 100 - top_percent) <= 0.05 + 1e-9
    # ...and in full: the run the page holds
    for label, prob in result.outputs["probs"].items():
        assert outputs["probs"][label] == pytest.approx(prob, abs=1e-5)


def _picture() -> bytes:
    canvas = np.full((64, 64, 3), 235, np.uint8)
    canvas[20:44, 20:44] = (200, 30, 30)
    buf = io.BytesIO()
    Image.fromarray(canvas).save(buf, format="PNG")
    return buf.getvalue()


def test_an_uploaded_picture_rides_as_its_tensors(buttons: dict[str, Any]) -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=300).run()
    at.radio(key="pg.kind").set_value("image").run()
    at.radio(key="pg.image_origin").set_value("Upload a picture").run()
    at.file_uploader(key="pg.image_upload").set_value(("red-square.png", _picture(), "image/png")).run()
    at.button(key="pg.run").click().run()
    ok(at)
    (result,) = _shown(at, "pg").values()
    at.session_state["pg.view_tab"] = CODE_TAB
    at.run()
    ok(at)
    words = " ".join(c.value for c in at.caption)
    assert "your uploaded picture" in words and "does not ride in the code" in words and "model_input()" in words
    _check_the_file(at, result, buttons)  # the upload, read in the script run, is in the file as its tensors


def test_compare_has_each_sides_code_when_its_expander_is_opened(buttons: dict[str, Any]) -> None:
    state = AppState(page="compare", strategy="sliding_window", params={"radius": 1}, strategy2="random_dynamic",
                     params2={"p": 0.3}, seed=515)
    at = pages.open_page("pages/1_Compare.py", state.to_query_params())
    ok(at)
    assert not at.code and not buttons
    assert len(at.expander) >= 2
    at.session_state["cmp.code_b"] = True  # B's expander opened
    at.run()
    ok(at)
    shown = _shown(at, "cmp")
    a, b = (shown[key] for key in sorted(shown))
    assert a.plan.terms[0].strategy == "sliding_window" and b.plan.terms[0].strategy == "random_dynamic"
    (code,) = at.code
    assert code.value == _expected_snippet(state, b)
    assert set(buttons) == {"dl_code_b"}
    at.session_state["cmp.code_a"] = True
    at.run()
    ok(at)
    assert [c.value for c in at.code] == [_expected_snippet(state, a), _expected_snippet(state, b)]
    assert set(buttons) == {"dl_code_a", "dl_code_b"}
    assert "def mask_mod(" in buttons["dl_code_a"][0]().decode()


def test_a_plan_that_cannot_be_written_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch,
                                                          buttons: dict[str, Any]) -> None:
    def refuse(plan: Any, info: Any) -> str:
        raise ValueError("sliding_window has no code template in its registry entry")

    monkeypatch.setattr(code_views, "snippet", refuse)
    state = AppState(strategy="sliding_window", params={"radius": 3}, seed=90210)  # a run no other test caches
    at = pages.open_page("app.py", state.to_query_params())
    at.session_state["pg.view_tab"] = CODE_TAB
    at.run()
    no_exception(at)
    assert not at.code and "dl_code_main" not in buttons and not at.error
    (note,) = [i.value for i in at.info if "No code for this run" in i.value]
    assert "no code template" in note and "\n" not in note


def test_the_code_tab_speaks_chinese_around_english_code(buttons: dict[str, Any]) -> None:
    """In Chinese the words around the code are Chinese (the code itself stays as generated)."""
    from tests.app.test_chinese_text import texts
    from tests.english import literals, offenders

    state = AppState(strategy="topk", params={"k": 2}, seed=11, lang="zh")
    at = pages.open_page("app.py", state.to_query_params())
    at.session_state["pg.view_tab"] = "代码"
    at.run()
    ok(at)
    (code,) = at.code
    assert code.value.startswith("# topk(")
    found = offenders(texts(at), literals([state.input_ref]))
    assert not found, "\n".join(found)
    at = pages.open_page("pages/1_Compare.py", {**AppState(page="compare", seed=11, lang="zh").to_query_params()})
    at.session_state["cmp.code_a"] = True
    at.run()
    ok(at)
    assert len(at.code) == 1
    found = offenders(texts(at), literals([state.input_ref]))
    assert not found, "\n".join(found)
