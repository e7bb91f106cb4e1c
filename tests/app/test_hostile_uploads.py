"""Hostile uploads through AppTest (issue 20, classes 3 and 4): a custom-mask CSV/NPY and a saved MLM run.

Each bad file shows one error box with one line (the core's message, see ``tests/core/test_hostile_files.py``),
never Streamlit's exception box; the page keeps running, keeps the user's other inputs and takes a good file after.
"""

from __future__ import annotations

import io
import json
import re

import numpy as np
from streamlit.testing.v1 import AppTest

from dynmask_core.lessons import mlm
from tests.app import pages
from tests.app.pages import ok
from tests.core.test_hostile_files import lab_result, raw_npy


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), allow_pickle=True)
    return buf.getvalue()


def one_error(at: AppTest, words: str) -> None:
    """Exactly one error box, one line, holding ``words``; no exception box."""
    assert not at.exception, [e.value for e in at.exception]
    assert len(at.error) == 1, [e.value for e in at.error]
    message = re.sub(r"\\(.)", r"\1", at.error[0].value)  # messages.plain escapes markdown: \_ \: ...
    assert words in message and "\n" not in message and "allow_pickle" not in message, message


BAD_MATRICES = [
    ("long-cell.csv", b'"' + b"a" * 140_000 + b'"\n1,0\n', "far too long"),  # csv.Error before
    ("nul.csv", b"1,0\x00\n0,1\n", "U+0000"),
    ("mixed.csv", b"1,0;1\n0;1,0\n", "mixes separators"),
    ("image.csv", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "UTF-8"),
    ("header.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }" + " " * 60_000,
                           b"\0" * 32), ".npy header"),  # numpy's two lines advising allow_pickle=True before
    ("objects.npy", npy(np.array([{"a": 1}, None], dtype=object)), "Python objects"),
    ("huge.npy", raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }"),
     "at most 64x64"),
]


def test_hostile_mask_uploads_are_one_error_line_and_keep_the_inputs() -> None:
    at = pages.open_page("app.py")
    at.selectbox(key="pg.s1").set_value("custom").run()
    at.text_input(key="pg.p1.custom.matrix").set_value("2x2:9").run()  # the user's matrix so far
    ok(at)
    for name, data, words in BAD_MATRICES:
        at.file_uploader(key="pg.p1.custom.matrix.file").upload(name, data).run()
        one_error(at, words)
        assert at.text_input(key="pg.p1.custom.matrix").value == "2x2:9", name  # kept
        assert at.selectbox(key="pg.s1").value == "custom" and at.selectbox(key="pg.model").value == "minilm"
        at.file_uploader(key="pg.p1.custom.matrix.file").clear().run()
    at.file_uploader(key="pg.p1.custom.matrix.file").upload("good.csv", b"1,0,0\n1,1,0\n1,1,1\n").run()
    ok(at)
    assert at.text_input(key="pg.p1.custom.matrix").value == "3x3:9b8"  # the page still works


def good_run() -> bytes:
    return json.dumps(lab_result(60).to_dict(), indent=1).encode()


def edited(edit) -> bytes:
    data = lab_result(60).to_dict()
    edit(data)
    return json.dumps(data).encode()


BAD_RUNS = [
    (b"[" * 200_000, "nested far deeper"),  # RecursionError before
    (edited(lambda d: d.update(config=[1, 2])), '"config" must be an object'),  # AttributeError before
    (edited(lambda d: d["static"].update(steps=[1, 2, 3])), "static.steps"),
    (edited(lambda d: d["static"].update(final={})), "static.final.train_loss"),
    (edited(lambda d: d["dynamic"]["steps"][1].update(train_loss="0.5")), "dynamic.steps"),
    (edited(lambda d: d.update(seconds=float("nan"))), "got NaN"),
    (b"\xff\xfe{\x00}\x00", "UTF-8"),
    (b"[1, 2]", "got a list"),
    (good_run() + b" " * (3 << 20), "bytes"),
]


def test_hostile_saved_runs_are_one_error_line_and_keep_the_inputs() -> None:
    at = pages.open_page("pages/5_MLM_lab.py", {"steps": "100", "seed": "4"})
    ok(at)
    for data, words in BAD_RUNS:
        at.file_uploader(key="mlm.load").upload("metrics.json", data, "application/json").run()
        one_error(at, words)
        assert "not an MLM lab run" in at.error[0].value
        assert at.slider(key="mlm.steps").value == 100 and at.number_input(key="mlm.seed").value == 4  # kept
        assert not at.dataframe  # no run shown
        at.file_uploader(key="mlm.load").clear().run()
    at.file_uploader(key="mlm.load").upload("metrics.json", good_run(), "application/json").run()
    ok(at)
    shown = at.session_state["mlm.result"]
    assert isinstance(shown, mlm.LabResult) and shown.config.steps == 60
    assert list(at.dataframe[0].value.iloc[:, 0]) == ["static", "dynamic"]
