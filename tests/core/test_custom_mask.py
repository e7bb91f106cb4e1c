"""The ``custom`` strategy: a user-given (Q, K) 0/1 matrix, its compact text form, CSV/NPY files, links and the CLI."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch
from torch.nn.attention.flex_attention import create_mask

from dynmask_core import encode_text, run
from dynmask_core.masks import MaskContext, MaskPlan, Param, dense, get_strategy
from dynmask_core.masks.custom import (
    MAX_MATRIX_SIDE,
    custom,
    decode_matrix,
    encode_matrix,
    parse_matrix_file,
)
from dynmask_core.recipe import Recipe
from dynmask_core.recipe.cli_args import parse_compose, recipe_to_args
from tests.core.grids import assert_grid, grid

TEXT = "The film was great."

# 5 x 5, drawn by hand: a diagonal, key 0 for everyone, query 3 also sees key 2
SMALL = grid(
    "■□□□□",
    "■■□□□",
    "■□■□□",
    "■□■■□",
    "■□□□■",
)
# row-major bits 10000 11000 10100 10110 10001 (+ 3 padding zeros), 4 per hex digit: 1000 0110 0010 1001 0110 1000 1000
SMALL_TEXT = "5x5:8629688"


def npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.asarray(array))
    return buf.getvalue()


def random_matrix(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    m = torch.rand(rows, cols, generator=torch.Generator().manual_seed(seed)) > 0.5
    m |= torch.eye(rows, cols, dtype=torch.bool)  # every row keeps a key (not needed; makes the runs meaningful)
    return m


# ----------------------------------------------------------------------------------------------------------------
# The compact text form
# ----------------------------------------------------------------------------------------------------------------


def test_encode_literal_and_decode_back():
    assert encode_matrix(SMALL) == SMALL_TEXT
    assert_grid(decode_matrix(SMALL_TEXT), SMALL)
    assert encode_matrix([[1, 0], [0, 1]]) == "2x2:9"
    assert encode_matrix(torch.ones(1, 1)) == "1x1:8"
    assert encode_matrix(np.zeros((3, 4), dtype=np.int64)) == "3x4:000"


@pytest.mark.parametrize(("rows", "cols"), [(1, 1), (1, 7), (7, 1), (5, 5), (13, 9), (64, 64), (64, 3)])
def test_round_trip(rows, cols):
    m = random_matrix(rows, cols, seed=rows * 100 + cols)
    text = encode_matrix(m)
    assert "," not in text and "&" not in text and "=" not in text and " " not in text
    assert text == f"{rows}x{cols}:" + text.split(":")[1] and len(text.split(":")[1]) == -(-rows * cols // 4)
    back = decode_matrix(text)
    assert back.dtype == torch.bool and torch.equal(back, m)
    assert encode_matrix(back) == text
    assert encode_matrix(m.int()) == encode_matrix(m.float()) == text  # equal matrices, equal strings


def test_param_coerce_canonicalises():
    p = Param("matrix", "matrix", "", "a matrix")
    assert p.coerce("", "custom") == "" and p.coerce(None, "custom") == "" and p.coerce("  ", "custom") == ""
    assert p.coerce(" 5X5:8629688 ", "custom") == SMALL_TEXT
    assert p.coerce("3x4:ABC", "custom") == "3x4:abc"
    assert p.coerce("5x5:8629689", "custom") == SMALL_TEXT  # the padding bit is dropped
    assert p.describe() == "matrix: 0/1 matrix '<rows>x<cols>:<hex>' (at most 64x64) = ''"
    assert get_strategy("custom").params[0].type == "matrix"


@pytest.mark.parametrize(("text", "words"), [
    ("5x5", ("<rows>x<cols>:<hex",)),
    ("5,5:86", ("<rows>x<cols>:<hex",)),
    ("5x5:862968g", ("<rows>x<cols>:<hex",)),
    ("5x5:86", ("5x5", "7 hex digits", "got 2")),
    ("0x5:", ("empty",)),
    ("65x2:" + "0" * 33, ("65x2", "at most 64x64", "link")),
])
def test_bad_text_is_a_clear_error(text, words):
    with pytest.raises(ValueError) as err:
        get_strategy("custom").resolve({"matrix": text})
    message = str(err.value)
    assert message.startswith("custom: matrix")
    for w in words:
        assert w in message, message


def test_encode_refuses_what_cannot_be_a_mask():
    with pytest.raises(ValueError, match="0 or 1"):
        encode_matrix([[0, 2]])
    with pytest.raises(ValueError, match="0 or 1"):
        encode_matrix([[0.0, float("nan")]])
    with pytest.raises(ValueError, match="2-D"):
        encode_matrix(torch.ones(2, 2, 2))
    with pytest.raises(ValueError, match="at most 64x64"):
        encode_matrix(torch.ones(MAX_MATRIX_SIDE + 1, 2))


# ----------------------------------------------------------------------------------------------------------------
# Files
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("data", "name"), [
    (b"1,0,0,0,0\n1,1,0,0,0\n1,0,1,0,0\n1,0,1,1,0\n1,0,0,0,1\n", "m.csv"),
    (b"1;0;0;0;0\r\n1;1;0;0;0\r\n1;0;1;0;0\r\n1;0;1;1;0\r\n1;0;0;0;1", "m.CSV"),
    (b"1\t0\t0\t0\t0\n1\t1\t0\t0\t0\n1\t0\t1\t0\t0\n1\t0\t1\t1\t0\n1\t0\t0\t0\t1\n\n", "m.tsv"),
    (b"1 0 0 0 0\n1 1 0 0 0\n1 0 1 0 0\n1 0 1 1 0\n1 0 0 0 1\n", "m.txt"),
    ("\ufeff1.0,0.0,0,0,0\n1,1,0,0,0\nTRUE,false,1,0,0\n1,0,1,1,0\n1,0,0,0,1\n".encode(), "m.csv"),
    # token labels on both sides
    (b"q\\k,The,film,was,great,.\nThe,1,0,0,0,0\nfilm,1,1,0,0,0\nwas,1,0,1,0,0\ngreat,1,0,1,1,0\n.,1,0,0,0,1\n",
     "m.csv"),
    # a header row only, and a label column only
    (b"a,b,c,d,e\n1,0,0,0,0\n1,1,0,0,0\n1,0,1,0,0\n1,0,1,1,0\n1,0,0,0,1\n", "m.csv"),
    (b"a,1,0,0,0,0\nb,1,1,0,0,0\nc,1,0,1,0,0\nd,1,0,1,1,0\n\"e,f\",1,0,0,0,1\n", "m.csv"),
    # pandas' to_csv with its index: an empty corner cell, numeric labels
    (b",0,1,2,3,4\n0,1,0,0,0,0\n1,1,1,0,0,0\n2,1,0,1,0,0\n3,1,0,1,1,0\n4,1,0,0,0,1\n", "m.csv"),
    # numeric labels under a text corner, and a single labelled row
    (b"q\\k,0,1,2,3,4\n0,1,0,0,0,0\n1,1,1,0,0,0\n2,1,0,1,0,0\n3,1,0,1,1,0\n4,1,0,0,0,1\n", "m.csv"),
])
def test_parse_csv(data, name):
    assert_grid(parse_matrix_file(data, name), SMALL)


def test_parse_single_rows_and_columns():
    assert_grid(parse_matrix_file(b"1,0,1\n", "row.csv"), grid("■□■"))
    assert_grid(parse_matrix_file(b"query 4,1,0,1\n", "row.csv"), grid("■□■"))
    assert_grid(parse_matrix_file(b"1\n0\n1\n", "col.csv"), grid("■", "□", "■"))


@pytest.mark.parametrize("array", [
    SMALL.numpy(), SMALL.numpy().astype(np.int64), SMALL.numpy().astype(np.uint8), SMALL.numpy().astype(np.float32),
    SMALL.numpy().astype(np.float64),
])
def test_parse_npy(array):
    assert_grid(parse_matrix_file(npy(array), "m.npy"), SMALL)
    assert_grid(parse_matrix_file(npy(array), "upload"), SMALL)  # NumPy's magic bytes are enough


def test_parse_pandas_dataframe_csv():
    pd = pytest.importorskip("pandas")
    data = pd.DataFrame(SMALL.int().numpy()).to_csv().encode()
    assert_grid(parse_matrix_file(data, "frame.csv"), SMALL)


@pytest.mark.parametrize(("data", "name", "words"), [
    (b"", "m.csv", ("'m.csv' is empty",)),
    (b"\n  \n", "m.csv", ("is empty",)),
    (b"a,b,c\n", "m.csv", ("header row but no data rows",)),
    (b"1,0,1\n0,1\n1,1,1\n", "m.csv", ("ragged", "line 2 has 2 cells", "line 1 has 3")),
    (b"1,0,1\n0,1,2\n1,1,1\n", "m.csv", ("row 2, column 3", "'2'", "0 or 1")),
    (b"1,0\n0,nan\n", "m.csv", ("row 2, column 2", "'nan'", "0 or 1")),
    (b"1,0\n0,\n", "m.csv", ("row 2, column 2", "0 or 1")),
    (b"\xff\xfe1,0\n", "m.csv", ("UTF-8",)),
    (npy(np.array([[1.0, 0.0], [np.nan, 1.0]])), "m.npy", ("row 2, column 1", "nan", "0 or 1")),
    (npy(np.array([[1, 0], [0, 2]])), "m.npy", ("row 2, column 2", "2", "0 or 1")),
    (npy(np.ones((2, 2, 2))), "m.npy", ("2-D", "3-D", "[2, 2, 2]")),
    (npy(np.ones(5)), "m.npy", ("2-D", "1-D")),
    (npy(np.ones((0, 5))), "m.npy", ("empty", "0x5")),
    (npy(np.ones((65, 65))), "m.npy", ("65x65", "at most 64x64", "link", "not supported in this build")),
    (npy(np.array([["a", "b"]])), "m.npy", ("<U1", "0 or 1")),
    (b"\x93NUMPY garbage", "m.npy", ("not a NumPy .npy array",)),
    (b"1,0\n0,1\n", "m.xlsx", (".csv or a .npy",)),
    (b"1" * (2 << 20), "m.csv", ("bytes", "at most")),
])
def test_bad_files_are_clear_errors(data, name, words):
    with pytest.raises(ValueError) as err:
        parse_matrix_file(data, name)
    message = str(err.value)
    for w in words:
        assert w in message, message


def test_too_big_csv_is_refused():
    data = "\n".join(",".join("1" for _ in range(70)) for _ in range(3)).encode()
    with pytest.raises(ValueError, match="3x70: at most 64x64"):
        parse_matrix_file(data, "wide.csv")
    assert parse_matrix_file("\n".join(",".join("1" for _ in range(64)) for _ in range(64)).encode(),
                             "max.csv").all()


def test_pickled_npy_is_not_loaded():
    with pytest.raises(ValueError, match="safely"):
        parse_matrix_file(npy(np.array([{"a": 1}], dtype=object)), "evil.npy")


# ----------------------------------------------------------------------------------------------------------------
# The strategy
# ----------------------------------------------------------------------------------------------------------------


def test_custom_index_function_matches_flex_create_mask():
    m = random_matrix(9, 9, seed=3)
    fn = custom(encode_matrix(m))
    assert torch.equal(dense(fn, 9, 9)[0], m)
    assert torch.equal(create_mask(fn, 1, 2, 9, 9, device="cpu")[0].bool(), m.expand(2, 9, 9))
    padded = create_mask(fn, 1, 1, 11, 12, device="cpu")[0, 0].bool()  # past the matrix: blocked, never an error
    assert torch.equal(padded[:9, :9], m) and not bool(padded[9:].any()) and not bool(padded[:, 9:].any())
    assert fn.__name__.startswith("custom_9x9_")


def test_materialize_gives_the_matrix_broadcast_to_every_head():
    s = get_strategy("custom")
    assert s.kind == "static" and s.reference == "user-defined" and not s.uses_seed and not s.uses_scores
    out = s.materialize(s.resolve({"matrix": SMALL_TEXT}), MaskContext(q_len=5, k_len=5, n_heads=3))
    assert out.bias is None and out.gate is None
    assert out.allowed.dtype == torch.bool and out.allowed.shape == (1, 1, 5, 5)
    assert_grid(out.allowed[0, 0], SMALL)


def test_no_matrix_allows_everything():
    s = get_strategy("custom")
    assert s.resolve({}) == {"matrix": ""}
    out = s.materialize(s.resolve({}), MaskContext(q_len=4, k_len=6, n_heads=2))
    assert bool(out.allowed.expand(1, 2, 4, 6).all())
    assert s.label({}) == "custom"


def test_shape_mismatch_names_both_shapes():
    s = get_strategy("custom")
    with pytest.raises(ValueError) as err:
        s.materialize(s.resolve({"matrix": SMALL_TEXT}), MaskContext(q_len=7, k_len=7))
    message = str(err.value)
    assert "5x5" in message and "7 queries x 7 keys" in message and "7x7" in message and "draw" in message


# ----------------------------------------------------------------------------------------------------------------
# A run, a link, the command line
# ----------------------------------------------------------------------------------------------------------------


def test_run_on_minilm_captures_the_matrix_in_every_layer_and_head(minilm):
    prepared = encode_text(minilm, TEXT)
    n = len(prepared.labels)
    m = random_matrix(n, n, seed=5)
    m[2] = False
    m[2, 0] = True  # query 2 sees only [CLS]
    result = run(minilm, prepared, MaskPlan.of("custom", {"matrix": encode_matrix(m)}))
    assert result.masks.dtype == torch.bool
    layers, heads, q, k = result.masks.shape
    assert (q, k) == (n, n) and layers > 1 and heads > 1
    assert torch.equal(result.masks, m.expand(layers, heads, n, n))
    assert bool(result.baseline_masks.all())  # MiniLM is bidirectional: all of the mask is ours
    blocked = ~m.expand(layers, heads, n, n)
    assert float(result.attention[blocked].abs().max()) == 0.0
    assert result.metrics["kl"] > 0


def test_run_with_the_wrong_size_is_a_clear_error(minilm):
    prepared = encode_text(minilm, TEXT)
    n = len(prepared.labels)
    with pytest.raises(ValueError) as err:
        run(minilm, prepared, MaskPlan.of("custom", {"matrix": encode_matrix(torch.ones(n + 1, n + 1))}))
    assert f"{n + 1}x{n + 1}" in str(err.value) and f"{n}x{n}" in str(err.value)


def test_recipe_survives_a_link():
    text = encode_matrix(random_matrix(64, 64, seed=9))
    recipe = Recipe(strategy="custom", params={"matrix": text})
    assert dict(recipe.params) == {"matrix": text}
    qp = recipe.to_query_params()
    assert qp["s"] == "custom" and qp["p.matrix"] == text
    back, warnings = Recipe.from_query_params(qp)
    assert warnings == [] and back == recipe
    assert back.to_query_params() == qp
    # a hand-edited link: upper-case hex is read and written back canonical
    back, warnings = Recipe.from_query_params({**qp, "p.matrix": text.upper()})
    assert warnings == [] and dict(back.params)["matrix"] == text


def test_a_bad_matrix_in_a_link_is_a_warning():
    back, warnings = Recipe.from_query_params({"s": "custom", "p.matrix": "80x80:" + "0" * 1600})
    assert dict(back.params) == {"matrix": ""}
    assert len(warnings) == 1 and "80x80" in warnings[0] and "at most 64x64" in warnings[0]


def test_command_line_shorthands_keep_the_matrix():
    assert parse_compose(f"and:custom:matrix={SMALL_TEXT}") == ("and", "custom", {"matrix": SMALL_TEXT})
    args = recipe_to_args(Recipe(strategy="custom", params={"matrix": SMALL_TEXT}))
    assert f"matrix={SMALL_TEXT}" in args


def test_cli_run_with_a_custom_matrix(minilm, tmp_path, capsys):
    from dynmask_core.cli import main

    n = len(encode_text(minilm, TEXT).labels)
    m = random_matrix(n, n, seed=11)
    out = tmp_path / "run"
    code = main(["run", "--text", TEXT, "--model", "minilm", "--strategy", "custom",
                 "--param", f"matrix={encode_matrix(m)}", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    masks = np.load(out / "masks.npy")
    assert masks.dtype == np.bool_ and (masks == m.numpy()).all()
    record = json.loads((out / "run.json").read_text())
    assert record["strategy"]["terms"][0] == {"op": "and", "strategy": "custom",
                                              "params": {"matrix": encode_matrix(m)}}

    code = main(["run", "--text", TEXT, "--model", "minilm", "--strategy", "custom",
                 "--param", f"matrix={SMALL_TEXT}", "--out", str(tmp_path / "bad")])
    err = capsys.readouterr().err
    assert code == 2 and "5x5" in err and f"{n}x{n}" in err
