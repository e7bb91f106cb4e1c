"""Static index strategies against literal matrices (derived by hand from the definitions) and FlexAttention.

Every literal below was written out from the rule in the factory's docstring, not copied from the code:
``■`` = the query (row i) may attend to the key (column j), ``□`` = blocked.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn.attention.flex_attention import create_mask

from dynmask_core.masks import (
    MaskContext,
    alibi_slopes,
    bigbird,
    causal,
    dense,
    dilated,
    document,
    full,
    get_strategy,
    prefix_lm,
    random_dynamic,
    random_static,
    sliding_window,
    strided,
)
from tests.core.grids import assert_grid, grid  # noqa: E402

LENGTHS = (1, 7, 129)


def matrix(fn, q: int, k: int | None = None) -> torch.Tensor:
    """(Q, K) bool of a head-independent mask function."""
    out = dense(fn, q, q if k is None else k)
    assert out.shape[0] == 1
    return out[0]


def flex(fn, q: int, k: int, heads: int = 1) -> torch.Tensor:
    """(H, Q, K) bool from FlexAttention's own materialiser (vmap over the index function)."""
    return create_mask(fn, 1, heads, q, k, device="cpu")[0].bool()


# ----------------------------------------------------------------------------------------------------------------
# Literal matrices
# ----------------------------------------------------------------------------------------------------------------

LITERALS = {
    "none_3": (full(), grid("■■■", "■■■", "■■■")),
    "causal_5": (causal(), grid(
        "■□□□□",
        "■■□□□",
        "■■■□□",
        "■■■■□",
        "■■■■■",
    )),
    # j < 2 or j <= i
    "prefix_lm_2_6": (prefix_lm(2), grid(
        "■■□□□□",
        "■■□□□□",
        "■■■□□□",
        "■■■■□□",
        "■■■■■□",
        "■■■■■■",
    )),
    # |i - j| <= 1
    "sliding_window_r1_6": (sliding_window(1), grid(
        "■■□□□□",
        "■■■□□□",
        "□■■■□□",
        "□□■■■□",
        "□□□■■■",
        "□□□□■■",
    )),
    # |i - j| <= 2
    "sliding_window_r2_6": (sliding_window(2), grid(
        "■■■□□□",
        "■■■■□□",
        "■■■■■□",
        "□■■■■■",
        "□□■■■■",
        "□□□■■■",
    )),
    # i - 2 <= j <= i
    "sliding_window_r2_causal_6": (sliding_window(2, causal=True), grid(
        "■□□□□□",
        "■■□□□□",
        "■■■□□□",
        "□■■■□□",
        "□□■■■□",
        "□□□■■■",
    )),
    # |i - j| <= 2 and (i - j) even
    "dilated_r1_d2_6": (dilated(1, 2), grid(
        "■□■□□□",
        "□■□■□□",
        "■□■□■□",
        "□■□■□■",
        "□□■□■□",
        "□□□■□■",
    )),
    # |i - j| <= 3 and (i - j) mod 3 == 0
    "dilated_r1_d3_7": (dilated(1, 3), grid(
        "■□□■□□□",
        "□■□□■□□",
        "□□■□□■□",
        "■□□■□□■",
        "□■□□■□□",
        "□□■□□■□",
        "□□□■□□■",
    )),
    # causal: 0 <= i - j < 3, or (i - j) a positive multiple of 3
    "strided_l3_7": (strided(3), grid(
        "■□□□□□□",
        "■■□□□□□",
        "■■■□□□□",
        "■■■■□□□",
        "□■■■■□□",
        "□□■■■■□",
        "■□□■■■■",
    )),
    # bidirectional: |i - j| < 3, or (i - j) mod 3 == 0
    "strided_l3_bidir_7": (strided(3, "strided", causal=False), grid(
        "■■■■□□■",
        "■■■■■□□",
        "■■■■■■□",
        "■■■■■■■",
        "□■■■■■■",
        "□□■■■■■",
        "■□□■■■■",
    )),
    # causal: same block of 3 ({0,1,2}, {3,4,5}, {6}), or a summary column j mod 3 == 2
    "strided_fixed_l3_7": (strided(3, "fixed"), grid(
        "■□□□□□□",
        "■■□□□□□",
        "■■■□□□□",
        "□□■■□□□",
        "□□■■■□□",
        "□□■■■■□",
        "□□■□□■■",
    )),
    "strided_fixed_l3_bidir_7": (strided(3, "fixed", causal=False), grid(
        "■■■□□■□",
        "■■■□□■□",
        "■■■□□■□",
        "□□■■■■□",
        "□□■■■■□",
        "□□■■■■□",
        "□□■□□■■",
    )),
    # blocks of 2; block 0 global; neighbouring blocks |a - c| <= 1; no random blocks
    "bigbird_b2_g1_r0_8": (bigbird(2, 1, 0, kv_len=8), grid(
        "■■■■■■■■",
        "■■■■■■■■",
        "■■■■■■□□",
        "■■■■■■□□",
        "■■■■■■■■",
        "■■■■■■■■",
        "■■□□■■■■",
        "■■□□■■■■",
    )),
    # no global block: just the band of blocks
    "bigbird_b2_g0_r0_6": (bigbird(2, 0, 0, kv_len=6), grid(
        "■■■■□□",
        "■■■■□□",
        "■■■■■■",
        "■■■■■■",
        "□□■■■■",
        "□□■■■■",
    )),
    "document_6": (document(torch.tensor([0, 0, 1, 1, 1, 2])), grid(
        "■■□□□□",
        "■■□□□□",
        "□□■■■□",
        "□□■■■□",
        "□□■■■□",
        "□□□□□■",
    )),
}


@pytest.mark.parametrize("case", list(LITERALS))
def test_factory_matches_literal(case):
    fn, expected = LITERALS[case]
    assert_grid(matrix(fn, *expected.shape), expected)


@pytest.mark.parametrize("case", list(LITERALS))
def test_factory_matches_flex_create_mask_on_literal(case):
    fn, expected = LITERALS[case]
    assert_grid(flex(fn, *expected.shape)[0], expected)


def test_degenerate_parameters_reduce_to_simpler_masks():
    eye = torch.eye(6, dtype=torch.bool)
    assert_grid(matrix(sliding_window(0), 6), eye)
    assert_grid(matrix(sliding_window(0, causal=True), 6), eye)
    assert_grid(matrix(prefix_lm(0), 6), matrix(causal(), 6))
    assert_grid(matrix(prefix_lm(6), 6), torch.ones(6, 6, dtype=torch.bool))
    assert_grid(matrix(dilated(2, 1), 7), matrix(sliding_window(2), 7))  # dilation 1 = plain window
    assert_grid(matrix(strided(1), 6), matrix(causal(), 6))  # every key is a multiple of 1
    assert_grid(matrix(sliding_window(500), 6), torch.ones(6, 6, dtype=torch.bool))
    assert_grid(matrix(document(torch.zeros(6, dtype=torch.long)), 6), torch.ones(6, 6, dtype=torch.bool))


def test_mask_functions_are_named_after_their_parameters():
    assert causal().__name__ == "causal"
    assert sliding_window(2).__name__ == "sliding_window_r2"
    assert sliding_window(3, causal=True).__name__ == "sliding_window_r3_causal"
    assert prefix_lm(4).__name__ == "prefix_lm_p4"
    assert dilated(2, 3).__name__ == "dilated_r2_d3"
    assert strided(3, "fixed", causal=False).__name__ == "strided_fixed_l3_bidir"


# ----------------------------------------------------------------------------------------------------------------
# Factories against FlexAttention's create_mask at awkward lengths
# ----------------------------------------------------------------------------------------------------------------

FACTORIES = {
    "none": lambda L: full(),
    "causal": lambda L: causal(),
    "prefix_lm": lambda L: prefix_lm(3),
    "sliding_window": lambda L: sliding_window(2),
    "sliding_window_causal": lambda L: sliding_window(3, causal=True),
    "dilated": lambda L: dilated(2, 3),
    "strided": lambda L: strided(3),
    "strided_bidir": lambda L: strided(4, "strided", causal=False),
    "strided_fixed": lambda L: strided(3, "fixed"),
    "strided_fixed_bidir": lambda L: strided(3, "fixed", causal=False),
    "bigbird": lambda L: bigbird(2, 1, 2, seed=5, kv_len=L),
    "document": lambda L: document(torch.arange(L) // 5),
    "random_static": lambda L: random_static(0.4, seed=9),
    "random_dynamic": lambda L: random_dynamic(0.4, seed=9, layer=2, per_head=True),
    "random_dynamic_shared": lambda L: random_dynamic(0.4, seed=9, layer=2, per_head=False),
}


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("name", list(FACTORIES))
def test_factory_dense_equals_flex_create_mask(name, length):
    fn = FACTORIES[name](length)
    ours = dense(fn, length, length, n_heads=3)
    theirs = flex(fn, length, length, heads=3)
    assert ours.dtype == torch.bool
    assert torch.equal(ours.expand(3, length, length), theirs)
    assert bool(theirs.diagonal(dim1=-2, dim2=-1).all()), f"{name} drops a diagonal entry"


@pytest.mark.parametrize("length", (1, 7, 129))
def test_rule_holds_at_every_length(length):
    i = torch.arange(length).view(-1, 1)
    j = torch.arange(length).view(1, -1)
    d = i - j
    rules = {
        "sliding_window(2)": (sliding_window(2), d.abs() <= 2),
        "sliding_window(2, causal)": (sliding_window(2, True), (j >= i - 2) & (j <= i)),
        "prefix_lm(3)": (prefix_lm(3), (j < 3) | (j <= i)),
        "dilated(2, 3)": (dilated(2, 3), (d.abs() <= 6) & (d % 3 == 0)),
        "causal": (causal(), j <= i),
    }
    for label, (fn, expected) in rules.items():
        assert torch.equal(matrix(fn, length), expected), label


# ----------------------------------------------------------------------------------------------------------------
# Registry entries: mask_mod(params, ctx) and materialize agree with each other and with FlexAttention
# ----------------------------------------------------------------------------------------------------------------

REGISTRY_CASES = [
    ("none", {}),
    ("causal", {}),
    ("prefix_lm", {}),
    ("prefix_lm", {"prefix": 2}),
    ("sliding_window", {}),
    ("sliding_window", {"radius": 1, "causal": True}),
    ("dilated", {}),
    ("dilated", {"radius": 1, "dilation": 3}),
    ("strided", {}),
    ("strided", {"pattern": "fixed"}),
    ("strided", {"stride": 2, "causal": False}),
    ("strided", {"stride": 3, "pattern": "fixed", "causal": False}),
    ("bigbird", {}),
    ("bigbird", {"block": 3, "n_global": 0, "n_random": 2, "seed": 4}),
    ("document", {}),
    ("random_static", {}),
    ("random_static", {"p": 0.8, "seed": 3}),
    ("random_dynamic", {}),
    ("random_dynamic", {"per_head": False}),
]


def _ctx(length: int, heads: int = 2, **kw) -> MaskContext:
    return MaskContext(q_len=length, k_len=length, n_heads=heads, segment_ids=torch.arange(length) // 4, **kw)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize(("sid", "params"), REGISTRY_CASES, ids=[f"{s}-{p}" for s, p in REGISTRY_CASES])
def test_registry_materialize_equals_flex_create_mask(sid, params, length):
    strategy = get_strategy(sid)
    assert strategy.mask_mod is not None
    resolved = strategy.resolve(params)
    ctx = _ctx(length, seed=11, layer=1)
    fn = strategy.mask_mod(resolved, ctx)
    out = strategy.materialize(resolved, ctx)
    assert out.bias is None
    assert out.allowed.dtype == torch.bool
    assert out.allowed.dim() == 4 and out.allowed.shape[0] == 1 and out.allowed.shape[1] in (1, 2)
    got = out.allowed.expand(1, 2, length, length)[0]
    assert torch.equal(got, flex(fn, length, length, heads=2))
    assert torch.equal(got, dense(fn, length, length, 2).expand(2, length, length))


@pytest.mark.parametrize(("sid", "params", "expected_key"), [
    ("causal", {}, "causal_5"),
    ("prefix_lm", {"prefix": 2}, "prefix_lm_2_6"),
    ("sliding_window", {"radius": 1}, "sliding_window_r1_6"),
    ("sliding_window", {"radius": 2, "causal": True}, "sliding_window_r2_causal_6"),
    ("dilated", {"radius": 1, "dilation": 3}, "dilated_r1_d3_7"),
    ("strided", {"stride": 3}, "strided_l3_7"),
    ("strided", {"stride": 3, "causal": False}, "strided_l3_bidir_7"),
    ("strided", {"stride": 3, "pattern": "fixed"}, "strided_fixed_l3_7"),
    ("strided", {"stride": 3, "pattern": "fixed", "causal": False}, "strided_fixed_l3_bidir_7"),
    ("bigbird", {"block": 2, "n_global": 1, "n_random": 0}, "bigbird_b2_g1_r0_8"),
])
def test_registry_strategy_matches_literal(sid, params, expected_key):
    expected = LITERALS[expected_key][1]
    q, k = expected.shape
    strategy = get_strategy(sid)
    out = strategy.materialize(strategy.resolve(params), MaskContext(q_len=q, k_len=k, n_heads=2))
    assert_grid(out.allowed.expand(1, 2, q, k)[0, 0], expected)
    assert_grid(out.allowed.expand(1, 2, q, k)[0, 1], expected)


def test_registry_document_uses_segment_ids_and_defaults_to_one_segment():
    s = get_strategy("document")
    ctx = MaskContext(q_len=6, k_len=6, segment_ids=torch.tensor([0, 0, 1, 1, 1, 2]))
    assert_grid(s.materialize({}, ctx).allowed[0, 0], LITERALS["document_6"][1])
    no_segments = s.materialize({}, MaskContext(q_len=6, k_len=6)).allowed[0, 0]
    assert_grid(no_segments, torch.ones(6, 6, dtype=torch.bool))


def test_registry_window_respects_q_offset_of_a_kv_cache():
    # one new query at position 5 over 6 cached keys: its row of the 6x6 causal window
    s = get_strategy("sliding_window")
    out = s.materialize(s.resolve({"radius": 2, "causal": True}), MaskContext(q_len=1, k_len=6, q_offset=5))
    assert_grid(out.allowed[0, 0], grid("□□□■■■"))


def test_static_defaults_are_the_documented_ones():
    assert get_strategy("prefix_lm").resolve({}) == {"prefix": 4}
    assert get_strategy("sliding_window").resolve({}) == {"radius": 2, "causal": False, "sinks": 0}
    assert get_strategy("dilated").resolve({}) == {"radius": 2, "dilation": 2}
    assert get_strategy("strided").resolve({}) == {"stride": 3, "pattern": "strided", "causal": True}


# ----------------------------------------------------------------------------------------------------------------
# BigBird's random blocks
# ----------------------------------------------------------------------------------------------------------------


def test_bigbird_random_blocks_are_fixed_by_the_seed():
    a = matrix(bigbird(1, 0, 1, seed=3, kv_len=129), 129)
    assert torch.equal(a, matrix(bigbird(1, 0, 1, seed=3, kv_len=129), 129))
    assert not torch.equal(a, matrix(bigbird(1, 0, 1, seed=4, kv_len=129), 129))
    band = matrix(sliding_window(1), 129)
    assert bool((a | ~band).all()), "the window of blocks is missing"
    extra = (a & ~band).sum(dim=-1)
    assert int(extra.max()) <= 1, "one random block of one token adds at most one key per row"
    assert int(extra.sum()) > 64, "the random blocks should add keys to most rows"


def test_bigbird_random_blocks_are_whole_blocks():
    m = matrix(bigbird(4, 0, 2, seed=1, kv_len=64), 64)
    blocks = m.view(16, 4, 16, 4)  # (qb, qi, kb, ki)
    assert bool((blocks.all(dim=(1, 3)) | ~blocks.any(dim=(1, 3))).all()), "a block is partly allowed"


# ----------------------------------------------------------------------------------------------------------------
# random_static
# ----------------------------------------------------------------------------------------------------------------


def test_random_static_documented_drawing():
    # pins the docstring's drawing (and so the hash) for p=0.5, seed=1
    assert_grid(matrix(random_static(0.5, seed=1), 5), grid("■□■□□", "□■■■■", "■□■□□", "□■■■□", "□□□□■"))


def test_random_static_is_the_same_pattern_every_call_and_every_length():
    big = matrix(random_static(0.5, seed=2), 129)
    assert torch.equal(big, matrix(random_static(0.5, seed=2), 129))
    assert torch.equal(matrix(random_static(0.5, seed=2), 7), big[:7, :7])
    assert torch.equal(matrix(random_static(0.5, seed=2), 1), big[:1, :1])
    assert torch.equal(matrix(random_static(0.5, seed=2), 7, 20), big[:7, :20])
    s = get_strategy("random_static")
    p = s.resolve({"p": 0.5, "seed": 2})
    small = s.materialize(p, MaskContext(q_len=7, k_len=7, n_heads=4, seed=1)).allowed
    again = s.materialize(p, MaskContext(q_len=7, k_len=7, n_heads=4, seed=99, layer=3)).allowed
    assert torch.equal(small.expand(1, 4, 7, 7)[0, 3], big[:7, :7])
    assert torch.equal(small, again), "the run seed must not change a static pattern"


def test_random_static_other_seed_other_pattern():
    assert not torch.equal(matrix(random_static(0.5, seed=2), 33), matrix(random_static(0.5, seed=3), 33))


@pytest.mark.parametrize("p", (0.1, 0.5, 0.9))
@pytest.mark.parametrize("seed", (0, 12345))
def test_random_static_blocks_about_p_and_keeps_the_diagonal(p, seed):
    m = matrix(random_static(p, seed=seed), 129)
    eye = torch.eye(129, dtype=torch.bool)
    assert bool(m[eye].all())
    blocked = 1.0 - m[~eye].float().mean().item()
    assert abs(blocked - p) <= 0.03, blocked


def test_random_static_extremes():
    eye = torch.eye(9, dtype=torch.bool)
    assert_grid(matrix(random_static(1.0, seed=0), 9), eye)
    assert_grid(matrix(random_static(0.0, seed=0), 9), torch.ones(9, 9, dtype=torch.bool))


# ----------------------------------------------------------------------------------------------------------------
# random_dynamic (an index function of the run's seed, layer and head)
# ----------------------------------------------------------------------------------------------------------------


def _rd(seed: int, layer: int, per_head: bool, length: int = 33, heads: int = 4, p: float = 0.5) -> torch.Tensor:
    s = get_strategy("random_dynamic")
    ctx = MaskContext(q_len=length, k_len=length, n_heads=heads, seed=seed, layer=layer)
    return s.materialize(s.resolve({"p": p, "per_head": per_head}), ctx).allowed.expand(1, heads, length, length)[0]


def test_random_dynamic_same_seed_reproduces():
    assert torch.equal(_rd(5, 0, True), _rd(5, 0, True))
    assert torch.equal(_rd(5, 2, False), _rd(5, 2, False))


def test_random_dynamic_other_seed_other_pattern():
    assert not torch.equal(_rd(5, 0, True), _rd(6, 0, True))
    assert not torch.equal(_rd(5, 0, False), _rd(6, 0, False))


def test_random_dynamic_per_head_differs_across_heads_and_layers():
    m = _rd(5, 0, True)
    for a in range(4):
        for b in range(a + 1, 4):
            assert not torch.equal(m[a], m[b]), (a, b)
    other_layer = _rd(5, 1, True)
    for h in range(4):
        assert not torch.equal(m[h], other_layer[h])


def test_random_dynamic_shared_is_identical_across_heads_and_layers():
    m = _rd(5, 0, False)
    for h in range(1, 4):
        assert torch.equal(m[0], m[h])
    assert torch.equal(m, _rd(5, 3, False))


@pytest.mark.parametrize("per_head", (True, False))
def test_random_dynamic_keeps_diagonal_and_blocks_about_p(per_head):
    m = _rd(7, 1, per_head, length=129, heads=2, p=0.5)
    eye = torch.eye(129, dtype=torch.bool)
    for h in range(2):
        assert bool(m[h][eye].all())
        blocked = 1.0 - m[h][~eye].float().mean().item()
        assert abs(blocked - 0.5) <= 0.03, blocked


# ----------------------------------------------------------------------------------------------------------------
# ALiBi (soft)
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("heads", (1, 2, 4, 8, 12))
def test_alibi_slopes_are_powers_of_two(heads):
    expected = torch.tensor([2.0 ** (-8.0 * h / heads) for h in range(1, heads + 1)])
    assert torch.allclose(alibi_slopes(heads), expected, rtol=0, atol=1e-7)


def test_alibi_slopes_literal_for_eight_heads():
    expected = [1 / 2, 1 / 4, 1 / 8, 1 / 16, 1 / 32, 1 / 64, 1 / 128, 1 / 256]
    assert alibi_slopes(8).tolist() == expected


def test_alibi_bias_literal_two_heads():
    s = get_strategy("alibi")
    out = s.materialize(s.resolve({}), MaskContext(q_len=3, k_len=3, n_heads=2))
    m0, m1 = 1 / 16, 1 / 256  # 2^(-8*1/2), 2^(-8*2/2)
    dist = torch.tensor([[0.0, 1, 2], [1, 0, 1], [2, 1, 0]])
    assert out.bias is not None and out.bias.dtype == torch.float32
    bias = out.bias.expand(1, 2, 3, 3)[0]
    assert torch.allclose(bias[0], -m0 * dist, atol=0)
    assert torch.allclose(bias[1], -m1 * dist, atol=0)
    assert bool(out.allowed.all()), "ALiBi blocks nothing"


@pytest.mark.parametrize("length", (1, 7, 33))
@pytest.mark.parametrize("scale", (0.0, 1.0, 2.5))
def test_alibi_bias_formula(length, scale):
    heads = 4
    s = get_strategy("alibi")
    out = s.materialize(s.resolve({"scale": scale}), MaskContext(q_len=length, k_len=length, n_heads=heads))
    i = torch.arange(length).view(-1, 1)
    j = torch.arange(length).view(1, -1)
    slopes = torch.tensor([2.0 ** (-8.0 * h / heads) for h in range(1, heads + 1)]).view(-1, 1, 1)
    expected = -scale * slopes * (i - j).abs().float()
    got = out.bias.expand(1, heads, length, length)[0]
    assert torch.allclose(got, expected, atol=1e-6)
    assert bool((got <= 0).all())
    assert bool(out.allowed.expand(1, heads, length, length).all())


def test_alibi_bias_with_q_offset():
    s = get_strategy("alibi")
    out = s.materialize(s.resolve({}), MaskContext(q_len=1, k_len=4, n_heads=1, q_offset=3))
    assert torch.allclose(out.bias.reshape(4), -(2.0 ** -8) * torch.tensor([3.0, 2.0, 1.0, 0.0]))


def test_index_hash_gives_the_same_mask_on_every_call():
    # a static random pattern is a function of indices only: recomputing it never changes a bit
    first = [matrix(random_static(0.3, seed=s), 17) for s in range(3)]
    second = [matrix(random_static(0.3, seed=s), 17) for s in range(3)]
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert math.isclose(sum(int(m.sum()) for m in first) / (3 * 17 * 17), 0.7, abs_tol=0.1)


# ----------------------------------------------------------------------------------------------------------------
# padding, and the docstring drawings
# ----------------------------------------------------------------------------------------------------------------


def test_padding_blocks_the_keys_no_query_may_see():
    s = get_strategy("padding")
    model = torch.ones(2, 1, 4, 4, dtype=torch.bool)
    model[0, ..., 3] = False  # batch 0: key 3 is padding
    model[1, ..., 2:] = False  # batch 1: keys 2 and 3 are padding
    out = s.materialize({}, MaskContext(q_len=4, k_len=4, allowed=model))
    assert out.bias is None
    got = out.allowed.expand(2, 1, 4, 4)
    assert_grid(got[0, 0], grid("■■■□", "■■■□", "■■■□", "■■■□"))
    assert_grid(got[1, 0], grid("■■□□", "■■□□", "■■□□", "■■□□"))
    everything = s.materialize({}, MaskContext(q_len=3, k_len=3)).allowed
    assert bool(everything.all())


def test_docstring_drawings_are_what_the_code_draws():
    import doctest

    import dynmask_core.masks.static as static

    result = doctest.testmod(static, verbose=False)
    assert result.attempted >= 10
    assert result.failed == 0


# ----------------------------------------------------------------------------------------------------------------
# sliding_window's attention sinks (StreamingLLM, Xiao et al., ICLR 2024): the first `sinks` keys stay visible
# ----------------------------------------------------------------------------------------------------------------

SINK_LITERALS = {
    # |i - j| <= 1, or j < 2
    "sliding_window_r1_s2_6": (sliding_window(1, sinks=2), grid(
        "■■□□□□",
        "■■■□□□",
        "■■■■□□",
        "■■■■■□",
        "■■□■■■",
        "■■□□■■",
    )),
    # i - 2 <= j <= i, or (j < 1 and j <= i)
    "sliding_window_r2_causal_s1_7": (sliding_window(2, causal=True, sinks=1), grid(
        "■□□□□□□",
        "■■□□□□□",
        "■■■□□□□",
        "■■■■□□□",
        "■□■■■□□",
        "■□□■■■□",
        "■□□□■■■",
    )),
    # causal: the sinks never open the future (query 0 does not see key 2)
    "sliding_window_r0_causal_s3_5": (sliding_window(0, causal=True, sinks=3), grid(
        "■□□□□",
        "■■□□□",
        "■■■□□",
        "■■■■□",
        "■■■□■",
    )),
}


@pytest.mark.parametrize("case", list(SINK_LITERALS))
def test_sinks_factory_matches_literal_and_flex(case):
    fn, expected = SINK_LITERALS[case]
    assert_grid(matrix(fn, *expected.shape), expected)
    assert_grid(flex(fn, *expected.shape)[0], expected)


@pytest.mark.parametrize(("params", "expected_key"), [
    ({"radius": 1, "sinks": 2}, "sliding_window_r1_s2_6"),
    ({"radius": 2, "causal": True, "sinks": 1}, "sliding_window_r2_causal_s1_7"),
    ({"radius": "0", "causal": "true", "sinks": "3"}, "sliding_window_r0_causal_s3_5"),
])
def test_registry_sinks_match_literal(params, expected_key):
    expected = SINK_LITERALS[expected_key][1]
    q, k = expected.shape
    s = get_strategy("sliding_window")
    out = s.materialize(s.resolve(params), MaskContext(q_len=q, k_len=k, n_heads=2))
    assert out.bias is None
    assert_grid(out.allowed.expand(1, 2, q, k)[0, 0], expected)
    assert_grid(out.allowed.expand(1, 2, q, k)[0, 1], expected)


@pytest.mark.parametrize("length", LENGTHS)
@pytest.mark.parametrize("sinks", (1, 3))
def test_sinks_rule_at_every_length(length, sinks):
    i = torch.arange(length).view(-1, 1)
    j = torch.arange(length).view(1, -1)
    d = i - j
    assert torch.equal(matrix(sliding_window(2, sinks=sinks), length), (d.abs() <= 2) | (j < sinks))
    assert torch.equal(matrix(sliding_window(2, True, sinks), length), ((d >= 0) & (d <= 2)) | ((j < sinks) & (d >= 0)))
    fn = sliding_window(2, True, sinks)
    assert torch.equal(dense(fn, length, length, n_heads=3).expand(3, length, length), flex(fn, length, length, 3))


def test_sinks_zero_is_the_plain_window():
    s = get_strategy("sliding_window")
    assert s.resolve({"radius": 3}) == s.resolve({"radius": 3, "sinks": 0}) == {"radius": 3, "causal": False,
                                                                                  "sinks": 0}
    for causal_ in (False, True):
        plain = s.materialize(s.resolve({"radius": 3, "causal": causal_}), _ctx(33)).allowed
        zero = s.materialize(s.resolve({"radius": 3, "causal": causal_, "sinks": 0}), _ctx(33)).allowed
        assert torch.equal(plain, zero)
        assert torch.equal(matrix(sliding_window(3, causal_, 0), 33), matrix(sliding_window(3, causal_), 33))
    assert s.label({"radius": 3, "sinks": 0}) == "sliding_window(radius=3)"
    assert s.label({"radius": 3, "sinks": 1}) == "sliding_window(radius=3, sinks=1)"


def test_sinks_degenerate_cases():
    everything = torch.ones(6, 6, dtype=torch.bool)
    assert_grid(matrix(sliding_window(0, sinks=6), 6), everything)
    assert_grid(matrix(sliding_window(0, sinks=4096), 6), everything)
    assert_grid(matrix(sliding_window(0, causal=True, sinks=6), 6), matrix(causal(), 6))
    assert_grid(matrix(sliding_window(500, sinks=2), 6), everything)
    # sinks are keys, not queries: query 0's row is the window's, key 0's column is all allowed
    m = matrix(sliding_window(1, sinks=1), 9)
    assert bool(m[:, 0].all()) and int(m[0].sum()) == 2


def test_sinks_are_absolute_key_positions_under_a_kv_cache():
    # one new query at position 5 over 6 cached keys: window {4, 5} plus the sinks {0, 1}
    s = get_strategy("sliding_window")
    out = s.materialize(s.resolve({"radius": 1, "causal": True, "sinks": 2}), MaskContext(q_len=1, k_len=6, q_offset=5))
    assert_grid(out.allowed[0, 0], grid("■■□□■■"))


def test_sinks_names_and_parameter():
    assert sliding_window(3, sinks=1).__name__ == "sliding_window_r3_s1"
    assert sliding_window(3, causal=True, sinks=2).__name__ == "sliding_window_r3_causal_s2"
    assert sliding_window(3, sinks=0).__name__ == "sliding_window_r3"
    assert sliding_window(3, causal=True, sinks=0).__name__ == "sliding_window_r3_causal"
    sinks = get_strategy("sliding_window").params[2]
    assert sinks.describe() == "sinks: int in [0, 4096] = 0"
    for bad in (-1, 4097, 1.5, "many"):
        with pytest.raises(ValueError, match="sinks"):
            get_strategy("sliding_window").resolve({"sinks": bad})
