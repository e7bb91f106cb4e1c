"""Hostile files (issue 20, classes 3 and 4): custom-mask uploads (CSV/NPY) and saved MLM lab runs (metrics.json).

The contract: every bad file is refused with one ``ValueError`` line that says what is wrong and what to do; never
another exception, a traceback, a path of the server or a library's advice (numpy's ``allow_pickle=True``).
The CLI reads neither kind of file (no ``--mask-file``, ``mlm-lab`` only writes), so there are no CLI cases here;
the app's two uploads are checked in ``tests/app/test_hostile_uploads.py``.
"""

from __future__ import annotations

import copy
import io
import json
import random

import numpy as np
import pytest

from dynmask_core.lessons import mlm
from dynmask_core.masks.custom import parse_matrix_file

# words that must never reach the user: numpy's advice and internals, a traceback, paths of the server
FORBIDDEN = ("allow_pickle", "pickle=", "Traceback", "EOF:", "max_header_size", "literal_eval", "Object arrays",
             "/work", "/tmp", "/usr", "site-packages", "numpy/", "Errno")


def refused(call, *args, words: tuple[str, ...] = (), forbidden: tuple[str, ...] = ()) -> str:
    """Calls ``call(*args)``; asserts a one-line ValueError holding ``words`` and nothing forbidden; returns it."""
    with pytest.raises(ValueError) as err:
        call(*args)
    assert type(err.value) is ValueError, type(err.value)
    message = str(err.value)
    assert message and "\n" not in message and "\r" not in message, message
    assert len(message) < 400, message
    for w in (*FORBIDDEN, *forbidden):
        assert w not in message, (w, message)
    for w in words:
        assert w in message, (w, message)
    return message


# ----------------------------------------------------------------------------------------------------------------
# Class 3: custom-mask CSV
# ----------------------------------------------------------------------------------------------------------------


CSV_IDS = [
    "quoted-cell-140k", "unquoted-cell-200k", "unclosed-quote", "nul-byte", "binary-control-bytes", "ctrl-z",
    "escape-sequence", "bom-inside", "png-renamed", "utf-16", "latin-1", "mixed-comma-semicolon", "mixed-lines",
    "mixed-comma-tab", "mixed-semicolon-comma", "200k-rows", "66-rows", "500k-columns",
]


@pytest.mark.parametrize(("data", "words"), [
    # over csv's field limit (131,072 characters): csv.Error before
    (b'"' + b"a" * 140_000 + b'"\n1,0\n', ("quote", "too long")),
    (b"1," + b"1" * 200_000 + b"\n0,1\n", ("too long",)),
    (b'1,0\n0,"1\n' + (b"1,0" * 20_000 + b"\n") * 3, ("quote",)),  # a quote never closed swallows the rest
    # binary: NUL bytes and other control characters were read as cells
    (b"1,0\x00\n0,1\n", ("U+0000", "binary")),
    (b"\x00\x01\x02\x03" * 100, ("binary",)),
    (b"1,0\x1a\n0,1\n", ("U+001A",)),
    (b"1,0\n0,1\x1b[31m\n", ("U+001B",)),
    # a BOM inside the text (files joined together): it turned a cell into a label
    ("1,0\n\ufeff0,1\n".encode(), ("U+FEFF",)),
    # not UTF-8: an image renamed .csv, UTF-16, Latin-1
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ("UTF-8",)),
    ("1,0\n0,1\n".encode("utf-16"), ("UTF-8",)),
    ("é,1\n1,0\n".encode("latin-1"), ("UTF-8",)),
    # mixed separators: read as labels, the matrix shifted silently
    (b"1,0;1\n0;1,0\n", ("mixes separators", "'0;1'")),
    (b"1,0\n0;1\n", ("mixes separators",)),
    (b"1,0\n0\t1\n", ("mixes separators",)),
    (b"1;0;1\n0;1,0;1\n", ("mixes separators",)),
    # too many rows or columns: refused before a cell is read
    (b"1,0\n" * 200_000, ("200000 rows", "at most 64")),
    (b"1\n" * 66 + b"\n" * 1000, ("66 rows",)),  # blank lines do not count
    (",".join(["1"] * 500_000).encode(), ("1x500000", "at most 64x64")),
], ids=CSV_IDS)
def test_hostile_csv_is_one_line(data, words):
    refused(parse_matrix_file, data, "m.csv", words=words)


def test_leading_byte_order_marks_are_dropped():
    # Excel writes one BOM; some tools add another on every save: the cells are still read, none becomes a label
    for data in ("\ufeff1,0\n0,1\n".encode(), "\ufeff\ufeff1,0\n0,1\n".encode()):
        assert parse_matrix_file(data, "m.csv").int().tolist() == [[1, 0], [0, 1]]


def test_labels_with_separator_characters_are_still_labels():
    data = b'q,;,a;b\n;,1,0\n"x,y",0,1\n'  # a token ';' and 'a;b' are labels, not mixed separators
    assert parse_matrix_file(data, "m.csv").int().tolist() == [[1, 0], [0, 1]]


# ----------------------------------------------------------------------------------------------------------------
# Class 3: custom-mask NPY
# ----------------------------------------------------------------------------------------------------------------


def npy(array, version=None) -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asanyarray(array), version=version, allow_pickle=True)
    return buf.getvalue()


def raw_npy(header: str, body: bytes = b"", version: tuple[int, int] = (1, 0)) -> bytes:
    """An NPY file with a hand-written header (what np.save would never write)."""
    text = (header + "\n").encode("latin-1")
    size = len(text).to_bytes(2 if version == (1, 0) else 4, "little")
    return b"\x93NUMPY" + bytes(version) + size + text + body


def npz() -> bytes:
    buf = io.BytesIO()
    np.savez(buf, a=np.eye(2), b=np.eye(3))
    return buf.getvalue()


def bool_byte_two() -> bytes:
    data = bytearray(npy(np.array([[True, False], [False, True]])))
    data[-1] = 2  # a bool cell stored as byte 2: not 0 or 1
    return bytes(data)


NPY_IDS = [
    "header-60kb", "header-70kb-v2", "object-dicts", "object-mixed", "object-descr", "object-in-struct",
    "structured", "complex", "bytes-S3", "format-3.0", "shape-1e9", "shape-900-digits", "shape-negative",
    "truncated-10", "truncated-128", "magic-only", "header-list", "header-no-shape", "header-bad-fortran",
    "header-deep-nesting", "unknown-version", "npz", "0-d", "3-d", "bool-byte-2",
]
PLAIN = "{'descr': '<f8', 'fortran_order': False, 'shape': (2, 2), }"


@pytest.mark.parametrize(("data", "words"), [
    # a 60 KB header: numpy's two-line refusal advised allow_pickle=True
    (raw_npy(PLAIN + " " * 60_000, b"\0" * 32), ("60060-byte .npy header",)),
    (raw_npy(PLAIN + " " * 70_000, b"\0" * 32, version=(2, 0)), (".npy header",)),
    # Python objects: never unpickled, and numpy's words about allow_pickle never shown
    (npy(np.array([{"a": 1}, None], dtype=object)), ("Python objects", "safely")),
    (npy(np.array([[1, "x"], [None, 0]], dtype=object)), ("Python objects",)),
    (raw_npy("{'descr': '|O', 'fortran_order': False, 'shape': (2, 2), }", b"\0" * 32), ("Python objects",)),
    (npy(np.zeros((2, 2), dtype=[("a", "i4"), ("b", "O")])), ("Python objects",)),
    # structured, complex and text cells
    (npy(np.zeros((2, 2), dtype=[("a", "i4"), ("b", "f8")])), ("type",)),
    (npy(np.zeros((2, 2), dtype=np.complex64)), ("complex64",)),
    (npy(np.zeros((2, 2), dtype="S3")), ("|S3",)),
    (npy(np.zeros(2, dtype=[("\u03b1", "i4")]), version=(3, 0)), ("format 3.0",)),
    # a huge claimed shape with few bytes: refused before anything is allocated
    (raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (1000000000, 1000000000), }", b"\0" * 16),
     ("1000000000x1000000000", "at most 64x64")),
    (raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (" + "9" * 900 + ", 2), }", b"\0" * 16),
     ("claims the shape", "64x64")),
    (raw_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (-5, 2), }", b"\0" * 16), ("claims the shape",)),
    # cut short
    (npy(np.ones((4, 4)))[:-10], ("cut short", "128 bytes")),
    (npy(np.ones((4, 4)))[:-128], ("cut short",)),
    (b"\x93NUMPY\x01\x00", ("not a NumPy .npy array",)),
    # headers numpy cannot read, or that are no dict
    (raw_npy("[1, 2, 3]"), ("not a NumPy .npy array",)),
    (raw_npy("{'descr': '<f8', 'fortran_order': False}"), ("not a NumPy .npy array",)),
    (raw_npy("{'descr': '<f8', 'fortran_order': 'yes', 'shape': (2, 2), }", b"\0" * 32), ("not a NumPy",)),
    (raw_npy("{'descr': " + "[" * 1000 + "]" * 1000 + ", 'fortran_order': False, 'shape': (2, 2), }"),
     ("not a NumPy .npy array",)),
    (b"\x93NUMPY\x09\x00" + b"\0" * 100, ("not a NumPy .npy array",)),
    # several arrays, 0-d and 3-d arrays
    (npz(), (".npz", "np.save")),
    (npy(np.float64(1.0)), ("2-D", "0-D")),
    (npy(np.ones((2, 2, 2))), ("2-D", "3-D")),
    # a bool cell that is neither 0 nor 1
    (bool_byte_two(), ("row 2, column 2 is 2", "0 or 1")),
], ids=NPY_IDS)
def test_hostile_npy_is_one_line(data, words):
    refused(parse_matrix_file, data, "m.npy", words=words)


def test_npz_or_text_named_npy_is_one_line():
    refused(parse_matrix_file, npz(), "m.npz", words=(".csv or a .npy",))
    refused(parse_matrix_file, b"1,0\n0,1\n", "m.npy", words=("not a NumPy .npy array",))


@pytest.mark.parametrize("array", [
    np.asfortranarray(np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=np.int8)),
    np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=">i8"),  # big-endian
    np.array([[1, 0, 0], [1, 1, 0], [1, 0, 1]], dtype=np.float16),
])
def test_plain_npy_variants_still_load(array):
    assert parse_matrix_file(npy(array), "m.npy").int().tolist() == [[1, 0, 0], [1, 1, 0], [1, 0, 1]]


# ----------------------------------------------------------------------------------------------------------------
# Class 4: saved MLM lab runs
# ----------------------------------------------------------------------------------------------------------------


def lab_result(steps: int = 5) -> mlm.LabResult:
    """A run as run_lab records it, with made-up numbers (no training)."""
    rng = random.Random(steps)

    def recipe(name: str) -> mlm.RecipeRun:
        records = [{"step": s, "train_loss": rng.uniform(2, 8)} for s in range(1, steps + 1)]
        evals = [{"step": s, "heldout_loss": rng.uniform(2, 8), "masked_accuracy": rng.random()}
                 for s in sorted({*range(0, steps, 50), steps})]
        final = {"train_loss": 3.25, "heldout_loss": 3.5, "masked_accuracy": 0.375}
        return mlm.RecipeRun(name, records, evals, final, 12.345)

    corpus = {"source": "pydoc_data.topics (prose paragraphs)", "train_segments": 900, "heldout_segments": 100,
              "vocab_size": 2600, "tokens": 40000}
    return mlm.LabResult(mlm.LabConfig(steps=steps), recipe("static"), recipe("dynamic"), 30.5, "cpu", corpus)


GOOD = lab_result().to_dict()


def changed(edit) -> dict:
    data = copy.deepcopy(GOOD)
    edit(data)
    return data


def load(tmp_path, data: bytes) -> mlm.LabResult:
    path = tmp_path / "metrics.json"
    path.write_bytes(data)
    return mlm.load_run(path)


@pytest.mark.parametrize(("data", "field", "words"), [
    (changed(lambda d: d.update(config=[1, 2])), '"config"', ("must be an object", "got a list")),
    (changed(lambda d: d["static"].update(steps=[1, 2, 3])), '"static.steps[0]"', ("got 1",)),
    (changed(lambda d: d["static"].update(final={})), '"static.final.train_loss"', ("missing",)),
    (changed(lambda d: d["static"]["steps"][2].update(train_loss="0.5")), '"static.steps[2].train_loss"',
     ("must be a number", "got a string")),
    (changed(lambda d: d["dynamic"]["eval"][1].update(heldout_loss=float("nan"))), '"dynamic.eval[1].heldout_loss"',
     ("got NaN",)),
    (changed(lambda d: d["static"].update(seconds=float("inf"))), '"static.seconds"', ("got Infinity",)),
    (changed(lambda d: d["dynamic"]["final"].update(masked_accuracy=-float("inf"))),
     '"dynamic.final.masked_accuracy"', ("-Infinity",)),
    (changed(lambda d: d.update(seconds=1e308)), '"seconds"', ("from 0 to",)),
    (changed(lambda d: d["config"].update(seed=10**40)), '"config.seed"', ("characters",)),
    (changed(lambda d: d["config"].update(steps=True)), '"config.steps"', ("whole number", "got true")),
    (changed(lambda d: d["config"].update(lr="0.002")), '"config.lr"', ("got a string",)),
    (changed(lambda d: d["config"].update(device=["cuda"])), '"config.device"', ("text",)),
    (changed(lambda d: d["config"].update(corpus=[])), '"config.corpus"', ("got a list",)),
    (changed(lambda d: d["config"]["corpus"].update(tokens=None)), '"config.corpus.tokens"', ("got null",)),
    (changed(lambda d: d["static"]["eval"][0].update(step=-1)), '"static.eval[0].step"', ("whole number",)),
    (changed(lambda d: d["static"].update(eval=[])), '"static.eval"', ("empty list",)),
    (changed(lambda d: d["dynamic"].update(steps={"step": 1})), '"dynamic.steps"', ("got an object",)),
    (changed(lambda d: d.pop("dynamic")), '"dynamic"', ("missing",)),
    (changed(lambda d: d["config"].pop("max_len")), '"config.max_len"', ("missing",)),
    (changed(lambda d: d.update(comment="mine")), "'comment'", ("the file has the field",)),
    (changed(lambda d: d["static"]["steps"][0].update(lr=0.1)), '"static.steps[0]"', ("'lr'",)),
    (changed(lambda d: d["config"].update(steps=0)), '"config"', ("steps must be a whole number from 1",)),
    (changed(lambda d: d["config"].update(hidden_size=100, heads=3)), '"config"', ("multiple of heads",)),
], ids=lambda v: v.strip("\"'") if isinstance(v, str) else None)
def test_malformed_run_names_the_field(tmp_path, data, field, words):
    text = json.dumps(data).encode()  # NaN and Infinity are written as JSON's common extension, as by save_run
    message = refused(load, tmp_path, text, words=("'metrics.json' is not an MLM lab run", field, *words),
                      forbidden=(str(tmp_path),))
    assert message.endswith("load a metrics.json saved by the MLM lab"), message
    refused(mlm.parse_run, text, "upload.json", words=("'upload.json'", field))  # the app's upload path


def padded_good_run() -> bytes:
    return json.dumps(GOOD).encode() + b" " * (3 << 20)  # valid JSON, but far more than a run weighs


RUN_IDS = [
    "empty", "blank", "top-list", "top-string", "top-nan", "top-null", "deep-lists", "deep-objects",
    "deep-in-config", "5000-digits", "single-quotes", "unclosed", "utf-16", "latin-1", "over-size-limit",
]


@pytest.mark.parametrize(("data", "words"), [
    (b"", ("empty",)),
    (b"   \n", ("not JSON",)),
    (b"[1, 2]", ("the file must be an object", "got a list")),
    (b'"metrics"', ("got a string",)),
    (b"NaN", ("got NaN",)),
    (b"null", ("got null",)),
    (b"[" * 200_000, ("nested",)),
    (b'{"config": ' * 100_000 + b"1" + b"}" * 100_000, ("nested",)),
    (b'{"config": [' + b"[" * 200_000 + b"]" * 200_000 + b"]}", ("nested",)),
    (b'{"seconds": ' + b"9" * 5000 + b"}", ("thousands of digits",)),
    (b"{'config': {}}", ("not JSON", "line 1, column 2")),
    (b'{"config": {}', ("not JSON",)),
    (b"\xff\xfe{\x00}\x00", ("UTF-8",)),
    (b'{"config": "\xe9"}', ("UTF-8", "byte 12")),
    (padded_good_run(), ("over 2097152 bytes",)),
], ids=RUN_IDS)
def test_broken_run_file_is_one_line(tmp_path, data, words):
    refused(load, tmp_path, data, words=("not an MLM lab run", *words), forbidden=(str(tmp_path),))


def test_missing_run_file_does_not_show_the_server_path(tmp_path):
    refused(mlm.load_run, tmp_path / "nothing" / "metrics.json", words=("cannot read 'metrics.json'",),
            forbidden=(str(tmp_path),))


def test_a_saved_run_loads_back_exactly(tmp_path):
    result = lab_result(40)
    path = mlm.save_run(result, tmp_path)
    loaded = mlm.load_run(tmp_path)
    assert loaded == result and loaded.to_dict() == json.loads(path.read_text())
    # the app's "Save this run" writes the same JSON without the last newline; a BOM from an editor is fine too
    download = json.dumps(result.to_dict(), indent=1).encode()
    assert mlm.parse_run(download, "mlm-lab-40steps-seed0.json") == result
    assert mlm.parse_run(b"\xef\xbb\xbf" + download) == result
    # a run without a corpus description (corpus None) writes {} and reads back
    bare = mlm.LabResult(result.config, result.static, result.dynamic, result.seconds, "cuda", None)
    assert mlm.parse_run(json.dumps(bare.to_dict()).encode()).to_dict() == bare.to_dict()


def test_the_largest_run_the_app_trains_fits_the_size_limit():
    steps = 3000  # dynmask_app.views.mlm.MAX_STEPS_UI (the core tests do not import the app)
    data = json.dumps(lab_result(steps).to_dict(), indent=1).encode()
    assert len(data) < mlm.MAX_RUN_BYTES / 4  # about 0.4 MB
    assert mlm.parse_run(data).config.steps == steps
