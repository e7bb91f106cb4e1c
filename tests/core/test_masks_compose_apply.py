"""Composition (and/or), the four apply modes, parameter validation, and a sweep over every registered strategy."""

from __future__ import annotations

import math

import pytest
import torch

from dynmask_core.masks import (
    MODES,
    OPS,
    ApplyOptions,
    ComposedMask,
    MaskContext,
    MaskSpec,
    Param,
    compose,
    dense,
    get_strategy,
    masked_softmax,
    strategies,
)
from tests.core.grids import assert_grid, causal_allowed, grid  # noqa: E402,F401


def rand_ctx(q: int = 8, k: int | None = None, heads: int = 2, batch: int = 1, dim: int = 8, seed: int = 0,
             allowed=None, gen_seed: int = 7, **kw) -> MaskContext:
    k = q if k is None else k
    g = torch.Generator().manual_seed(gen_seed)
    query = torch.randn(batch, heads, q, dim, generator=g)
    key = torch.randn(batch, heads, k, dim, generator=g)
    scores = query @ key.transpose(-1, -2) / math.sqrt(dim)
    return MaskContext(q_len=q, k_len=k, n_heads=heads, seed=seed, allowed=allowed, scores=scores, query=query,
                       key=key, q_offset=k - q, **kw)


def matrix(mask: ComposedMask, ctx: MaskContext) -> torch.Tensor:
    out = mask.materialize(ctx)
    return out.allowed.expand(1, ctx.n_heads, ctx.q_len, ctx.k_len)[0, 0]


# ----------------------------------------------------------------------------------------------------------------
# compose / ComposedMask
# ----------------------------------------------------------------------------------------------------------------


def test_and_of_causal_and_window():
    mask = compose("causal", MaskSpec("sliding_window", {"radius": 1}))
    assert_grid(matrix(mask, MaskContext(q_len=5, k_len=5)), grid(
        "■□□□□",
        "■■□□□",
        "□■■□□",
        "□□■■□",
        "□□□■■",
    ))
    assert mask.label() == "causal & sliding_window(radius=1)"
    assert mask.kind == "static"


def test_or_of_causal_and_prefix():
    mask = compose("causal", MaskSpec("prefix_lm", {"prefix": 2}, op="or"))
    assert_grid(matrix(mask, MaskContext(q_len=5, k_len=5)), grid(
        "■■□□□",
        "■■□□□",
        "■■■□□",
        "■■■■□",
        "■■■■■",
    ))
    assert mask.label() == "causal | prefix_lm(prefix=2)"


def test_or_adds_what_either_allows():
    mask = compose("causal", MaskSpec("sliding_window", {"radius": 1}, op="or"))
    assert_grid(matrix(mask, MaskContext(q_len=5, k_len=5)), grid(
        "■■□□□",
        "■■■□□",
        "■■■■□",
        "■■■■■",
        "■■■■■",
    ))


def test_terms_fold_left_to_right():
    # window(1) & prefix_lm(1) | causal  =  (window(1) & prefix_lm(1)) | causal  =  causal window | causal = causal;
    # grouped the other way, window(1) & (prefix_lm(1) | causal) would be the causal window i-1 <= j <= i
    mask = compose(MaskSpec("sliding_window", {"radius": 1}), MaskSpec("prefix_lm", {"prefix": 1}),
                   MaskSpec("causal", op="or"))
    assert_grid(matrix(mask, MaskContext(q_len=4, k_len=4)), grid("■□□□", "■■□□", "■■■□", "■■■■"))
    assert mask.label() == "sliding_window(radius=1) & prefix_lm(prefix=1) | causal"


@pytest.mark.parametrize("length", (1, 6, 17))
def test_and_with_topk_picks_among_the_causal_keys(length):
    ctx = rand_ctx(length, heads=2)
    for terms in (("causal", MaskSpec("topk", {"k": 2})), (MaskSpec("topk", {"k": 2}), "causal")):
        mask = compose(*terms)
        m = mask.materialize(ctx).allowed.expand(1, 2, length, length)
        causal = causal_allowed(length).expand_as(m)
        assert not bool((m & ~causal).any())
        expected_counts = (torch.arange(length) + 1).clamp(max=2).expand(1, 2, length)
        assert torch.equal(m.sum(-1), expected_counts), "each row keeps min(k, i + 1) keys"
        top_in_causal = ctx.scores.masked_fill(~causal, -math.inf).topk(min(2, length), dim=-1).indices
        expected = torch.zeros_like(m).scatter_(-1, top_in_causal, True) & causal
        assert torch.equal(m, expected)
        assert mask.label() in ("causal & topk(k=2)", "topk(k=2) & causal")
    assert compose("causal", MaskSpec("topk", {"k": 2})).label() == "causal & topk(k=2)"


def test_score_terms_are_not_reordered_under_or():
    # with an `or`, terms fold in the given order; top-k sees the model's mask only
    ctx = rand_ctx(6, heads=1)
    m = matrix(compose(MaskSpec("topk", {"k": 1}), MaskSpec("sliding_window", {"radius": 0}, op="or")), ctx)
    top = ctx.scores[0, 0].argmax(-1)
    expected = torch.eye(6, dtype=torch.bool)
    expected[torch.arange(6), top] = True
    assert_grid(m, expected)


def test_biases_of_all_terms_add():
    ctx = rand_ctx(7, heads=4)
    alibi = get_strategy("alibi")
    dw = get_strategy("dynamic_weight")
    a = alibi.materialize(alibi.resolve({"scale": 2.0}), ctx).bias
    w = dw.materialize(dw.resolve({"apply": "bias"}), ctx).bias
    out = compose(MaskSpec("alibi", {"scale": 2.0}), MaskSpec("dynamic_weight", {"apply": "bias"})).materialize(ctx)
    assert torch.allclose(out.bias, a + w)
    assert bool(out.allowed.all())
    twice = compose("alibi", "alibi").materialize(ctx).bias
    assert torch.allclose(twice, 2 * alibi.materialize(alibi.resolve({}), ctx).bias)
    assert compose("causal", "sliding_window").materialize(ctx).bias is None


def test_composed_flags():
    assert compose("none").is_identity
    assert compose("none", "none").is_identity
    assert not compose("none", MaskSpec("none", op="or"), "causal").is_identity
    assert not compose("causal").is_identity
    c = compose("causal", "lsh")
    assert c.kind == "dynamic" and c.uses_seed and c.uses_scores
    s = compose("causal", "bigbird")
    assert s.kind == "static" and not s.uses_seed and not s.uses_scores
    assert compose("random_dynamic").uses_seed
    assert OPS == ("and", "or")


def test_compose_errors_are_value_errors():
    with pytest.raises(ValueError, match="at least one"):
        compose()
    with pytest.raises(ValueError, match="'and' or 'or'"):
        compose("causal", MaskSpec("sliding_window", op="xor"))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown strategy 'nope'"):
        compose("causal", "nope")
    with pytest.raises(ValueError, match="radius"):
        compose(MaskSpec("sliding_window", {"radius": -1}))


def test_and_narrows_the_context_of_later_score_terms_only():
    # a score-based term sees the keys the index terms allow: threshold probabilities renormalise inside them
    ctx = MaskContext(q_len=1, k_len=4, scores=torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05])).view(1, 1, 1, 4),
                      allowed=torch.ones(1, 1, 1, 4, dtype=torch.bool), q_offset=3)
    # window radius 2 around position 3 allows keys 1..3: probs [.6, .3, .1] -> tau .2 keeps keys 1, 2
    m = compose(MaskSpec("sliding_window", {"radius": 2}), MaskSpec("threshold", {"tau": 0.2})).materialize(ctx)
    assert_grid(m.allowed.reshape(1, 4), grid("□■■□"))
    assert torch.equal(ctx.allowed, torch.ones(1, 1, 1, 4, dtype=torch.bool)), "the caller's context was changed"


# ----------------------------------------------------------------------------------------------------------------
# masked_softmax
# ----------------------------------------------------------------------------------------------------------------

ALL_MODES = tuple(MODES)


def _row(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32).view(1, 1, 1, -1)


def _mask(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.bool).view(1, 1, 1, -1)


def test_modes_are_the_documented_four():
    assert set(MODES) == {"hard", "bias", "gate", "naive_multiply"}
    assert all(isinstance(v, str) and v for v in MODES.values())


def test_naive_multiply_reproduces_the_masks_md_example():
    p = masked_softmax(_row([2.0, 1.0, 3.0]), _mask([1, 1, 1]), _mask([1, 1, 0]), None,
                       ApplyOptions("naive_multiply"))
    assert [round(x, 3) for x in p.flatten().tolist()] == [0.665, 0.245, 0.090]
    assert p.flatten()[2] > 0.08, "the 'blocked' key keeps ~9%"


def test_naive_multiply_blocked_negative_score_gains_weight():
    scores = _row([2.0, 1.0, -3.0])
    unmasked = torch.softmax(scores, dim=-1).flatten()[2]
    naive = masked_softmax(scores, _mask([1, 1, 1]), _mask([1, 1, 0]), None, ApplyOptions("naive_multiply"))
    assert naive.flatten()[2] > unmasked * 10, "blocking a negative score by multiplying raises its weight"
    hard = masked_softmax(scores, _mask([1, 1, 1]), _mask([1, 1, 0]), None, ApplyOptions("hard"))
    assert hard.flatten()[2].item() == 0.0


def _random_case(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randn(2, 3, 6, 6, generator=g) * 3
    model = causal_allowed(6).expand(2, 1, 6, 6).clone()
    user = torch.rand(1, 3, 6, 6, generator=g) > 0.4
    user |= torch.eye(6, dtype=torch.bool)  # every row keeps one key
    return scores, model, user


def test_hard_rows_sum_to_one_and_blocked_cells_are_exactly_zero():
    scores, model, user = _random_case()
    p = masked_softmax(scores, model, user, None, ApplyOptions("hard"))
    assert p.shape == (2, 3, 6, 6) and p.dtype == torch.float32
    allowed = model & user
    assert bool((p[~allowed.expand_as(p)] == 0).all())
    assert torch.allclose(p.sum(-1), torch.ones(2, 3, 6))
    expected = torch.softmax(scores.masked_fill(~allowed, -math.inf), dim=-1)
    assert torch.allclose(p, expected, atol=1e-6)


def test_hard_adds_the_bias():
    scores, model, user = _random_case(1)
    bias = -torch.rand(1, 3, 6, 6)
    p = masked_softmax(scores, model, user, bias, ApplyOptions("hard"))
    expected = torch.softmax((scores + bias).masked_fill(~(model & user), -math.inf), dim=-1)
    assert torch.allclose(p, expected, atol=1e-6)


def test_bias_mode_blocked_cells_small_but_positive():
    scores = torch.zeros(1, 1, 1, 4)
    p = masked_softmax(scores, _mask([1, 1, 1, 1]), _mask([1, 1, 0, 0]), None, ApplyOptions("bias", beta=8.0))
    e = math.exp(-8.0)
    expected = torch.tensor([1, 1, e, e]) / (2 + 2 * e)
    assert torch.allclose(p.flatten(), expected, atol=1e-7)
    assert 0 < p.flatten()[2] < 1e-3


def test_bias_mode_general_formula_and_model_mask_stays_hard():
    scores, model, user = _random_case(2)
    p = masked_softmax(scores, model, user, None, ApplyOptions("bias", beta=3.0))
    expected = torch.softmax((scores - 3.0 * (~user).float()).masked_fill(~model, -math.inf), dim=-1)
    assert torch.allclose(p, expected, atol=1e-6)
    assert bool((p[~model.expand_as(p)] == 0).all())
    soft_blocked = (model & ~user).expand_as(p)
    assert bool((p[soft_blocked] > 0).all())
    assert torch.allclose(p.sum(-1), torch.ones(2, 3, 6))


def test_gate_with_and_without_renormalisation():
    scores, model, user = _random_case(3)
    renorm = masked_softmax(scores, model, user, None, ApplyOptions("gate", renormalize=True))
    assert torch.allclose(renorm.sum(-1), torch.ones(2, 3, 6))
    assert torch.allclose(renorm, masked_softmax(scores, model, user, None, ApplyOptions("hard")), atol=1e-6)
    raw = masked_softmax(scores, model, user, None, ApplyOptions("gate", renormalize=False))
    base = torch.softmax(scores.masked_fill(~model, -math.inf), dim=-1)
    assert torch.allclose(raw, base * user, atol=1e-6)
    sums = raw.sum(-1)
    some_blocked = ((model & ~user).expand_as(raw)).any(-1)
    assert bool((sums[some_blocked] < 1 - 1e-6).all()), "without renormalisation the output shrinks"
    assert bool((raw[~(model & user).expand_as(raw)] == 0).all())


def test_gate_multiplies_by_exp_bias():
    scores = torch.zeros(1, 1, 1, 2)
    bias = torch.tensor([0.0, math.log(0.5)]).view(1, 1, 1, 2)
    p = masked_softmax(scores, _mask([1, 1]), _mask([1, 1]), bias, ApplyOptions("gate", renormalize=False))
    assert torch.allclose(p.flatten(), torch.tensor([0.5, 0.25]))


def test_no_user_mask_applies_model_mask_and_bias():
    scores, model, _ = _random_case(4)
    bias = -torch.rand(1, 3, 6, 6)
    for mode in ALL_MODES:
        p = masked_softmax(scores, model, None, bias, ApplyOptions(mode))
        expected = torch.softmax((scores + bias).masked_fill(~model, -math.inf), dim=-1)
        assert torch.allclose(p, expected, atol=1e-6), mode


@pytest.mark.parametrize("mode", ALL_MODES)
@pytest.mark.parametrize("with_bias", (False, True))
def test_row_blocked_by_the_model_is_all_zero_never_nan(mode, with_bias):
    scores = torch.randn(1, 2, 3, 4)
    model = torch.ones(1, 1, 3, 4, dtype=torch.bool)
    model[..., 1, :] = False  # query 1 may see nothing (e.g. a padding query)
    user = torch.ones(1, 2, 3, 4, dtype=torch.bool)
    user[..., 2, 0] = False
    bias = -torch.rand(1, 2, 3, 4) if with_bias else None
    for u in (user, None):
        p = masked_softmax(scores, model, u, bias, ApplyOptions(mode))
        assert not bool(torch.isnan(p).any())
        assert bool((p[..., 1, :] == 0).all())
        assert torch.allclose(p[..., [0, 2], :].sum(-1), torch.ones(1, 2, 2))


@pytest.mark.parametrize("mode", ("hard", "gate"))
def test_row_blocked_by_the_strategy_is_all_zero_in_blocking_modes(mode):
    scores = torch.randn(1, 1, 2, 3)
    user = torch.tensor([[True, False, True], [False, False, False]]).view(1, 1, 2, 3)
    p = masked_softmax(scores, torch.ones(1, 1, 2, 3, dtype=torch.bool), user, None, ApplyOptions(mode))
    assert not bool(torch.isnan(p).any())
    assert bool((p[0, 0, 1] == 0).all())
    assert math.isclose(p[0, 0, 0].sum().item(), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("mode", ("bias", "naive_multiply"))
def test_row_blocked_by_the_strategy_in_soft_modes_still_sums_to_one(mode):
    # soft modes do not block: a row the strategy empties keeps a distribution (this is what they teach)
    scores = torch.randn(1, 1, 1, 3)
    p = masked_softmax(scores, _mask([1, 1, 1]), _mask([0, 0, 0]), None, ApplyOptions(mode))
    assert not bool(torch.isnan(p).any())
    assert math.isclose(p.sum().item(), 1.0, rel_tol=1e-6)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_minus_inf_scores_where_the_model_blocks_give_no_nan(mode):
    # models add a -inf / finfo.min mask to the scores before we see them
    scores = torch.randn(1, 1, 4, 4).masked_fill(~causal_allowed(4), -math.inf)
    user = torch.eye(4, dtype=torch.bool).view(1, 1, 4, 4) | torch.tensor([True, False, False, False])
    p = masked_softmax(scores, causal_allowed(4), user, None, ApplyOptions(mode))
    assert not bool(torch.isnan(p).any())
    assert bool((p[~causal_allowed(4).expand_as(p)] == 0).all())
    assert torch.allclose(p.sum(-1), torch.ones(1, 1, 4))


def test_apply_options_validate():
    with pytest.raises(ValueError, match="hard"):
        ApplyOptions("soft")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="beta"):
        ApplyOptions("bias", beta=-1.0)
    assert ApplyOptions().mode == "hard"


# ----------------------------------------------------------------------------------------------------------------
# Param.coerce / Strategy.resolve / get_strategy
# ----------------------------------------------------------------------------------------------------------------


def test_resolve_coerces_strings_and_fills_defaults():
    sw = get_strategy("sliding_window")
    assert sw.resolve({"radius": "3", "causal": "true"}) == {"radius": 3, "causal": True, "sinks": 0}
    assert type(sw.resolve({"radius": "3"})["radius"]) is int
    assert sw.resolve({}) == {"radius": 2, "causal": False, "sinks": 0}
    assert sw.resolve(None) == {"radius": 2, "causal": False, "sinks": 0}
    assert sw.resolve({"radius": 4.0}) == {"radius": 4, "causal": False, "sinks": 0}
    assert get_strategy("random_static").resolve({"p": "0.25"})["p"] == 0.25
    assert type(get_strategy("random_static").resolve({"p": 1})["p"]) is float
    assert get_strategy("strided").resolve({"pattern": " fixed "})["pattern"] == "fixed"


@pytest.mark.parametrize(("text", "value"), [
    ("true", True), ("True", True), ("1", True), ("yes", True), ("on", True), (True, True), (1, True),
    ("false", False), ("FALSE", False), ("0", False), ("no", False), ("off", False), (False, False), (0, False),
])
def test_bool_coercion(text, value):
    assert Param("causal", "bool", False, "").coerce(text) is value


@pytest.mark.parametrize(("sid", "params", "words"), [
    ("topk", {"k": 0}, ("k", "integer", "1", "4096", "0")),
    ("topk", {"k": "5000"}, ("k", "1", "4096", "5000")),
    ("topk", {"k": "2.5"}, ("k", "integer", "1", "4096")),
    ("topk", {"k": "abc"}, ("k", "integer", "1", "4096", "abc")),
    ("topk", {"k": None}, ("k", "1", "4096")),
    ("topk", {"k": [3]}, ("k", "1", "4096")),
    ("sliding_window", {"radius": -1}, ("radius", "0", "512")),
    ("random_static", {"p": 1.5}, ("p", "number", "0", "1")),
    ("random_static", {"p": "nan"}, ("p", "0", "1")),
    ("random_static", {"p": "inf"}, ("p", "0", "1")),
    ("sliding_window", {"causal": "maybe"}, ("causal", "true or false", "maybe")),
    ("sliding_window", {"causal": 2}, ("causal", "true or false")),
    ("strided", {"pattern": "diagonal"}, ("pattern", "strided", "fixed", "diagonal")),
    ("dilated", {"dilation": 0}, ("dilation", "1", "64")),
])
def test_bad_values_raise_a_value_error_naming_parameter_and_range(sid, params, words):
    with pytest.raises(ValueError) as err:
        get_strategy(sid).resolve(params)
    message = str(err.value)
    assert message.startswith(f"{sid}: {words[0]} must "), message
    for word in words[1:]:
        assert word in message, (word, message)


def test_unknown_parameter_names_it_and_lists_the_known_ones():
    with pytest.raises(ValueError) as err:
        get_strategy("sliding_window").resolve({"radius": 1, "width": 3})
    assert "'width'" in str(err.value) and "radius" in str(err.value) and "causal" in str(err.value)
    with pytest.raises(ValueError, match="none"):
        get_strategy("causal").resolve({"radius": 1})


def test_unknown_strategy_lists_the_known_ids():
    with pytest.raises(ValueError) as err:
        get_strategy("sliding_windw")
    message = str(err.value)
    assert "'sliding_windw'" in message
    for sid in ("causal", "sliding_window", "topk"):
        assert sid in message


def test_label_shows_only_non_default_parameters():
    sw = get_strategy("sliding_window")
    assert sw.label({}) == "sliding_window"
    assert sw.label({"radius": 2}) == "sliding_window"
    assert sw.label({"radius": "3"}) == "sliding_window(radius=3)"
    assert sw.label({"radius": 3, "causal": True, "sinks": 0}) == "sliding_window(radius=3, causal=True)"
    assert get_strategy("random_static").label({"p": 0.5}) == "random_static(p=0.5)"


def test_param_describe():
    assert get_strategy("sliding_window").params[0].describe() == "radius: int in [0, 512] = 2"
    assert get_strategy("strided").params[1].describe() == "pattern: one of strided|fixed = strided"


# ----------------------------------------------------------------------------------------------------------------
# Every registered strategy
# ----------------------------------------------------------------------------------------------------------------

ALL_IDS = [s.id for s in strategies()]


def test_registry_is_well_formed():
    assert len(ALL_IDS) == len(set(ALL_IDS))
    expected = {"none", "padding", "causal", "prefix_lm", "sliding_window", "dilated", "strided", "bigbird",
                "document", "random_static", "random_dynamic", "topk", "threshold", "lsh", "kmeans",
                "dynamic_weight", "attention_guided", "token_pruning", "alibi"}
    assert expected <= set(ALL_IDS)
    for s in strategies():
        assert s.kind in ("static", "dynamic"), s.id
        assert s.title and s.summary and s.reference, s.id
        for p in s.params:
            assert p.coerce(p.default, s.id) == p.default, (s.id, p.name)
            if p.type in ("int", "float"):
                assert p.min is not None and p.max is not None and p.min <= p.default <= p.max
            if p.type == "choice":
                assert p.default in p.choices
        if s.uses_scores:
            assert s.kind == "dynamic", s.id


def _sweep_ctx(q: int, k: int, batch: int = 1, seed: int = 0, gen_seed: int = 3, allowed=None) -> MaskContext:
    allowed = causal_allowed(q, k).expand(batch, 1, q, k) if allowed is None else allowed
    return rand_ctx(q, k, heads=2, batch=batch, seed=seed, gen_seed=gen_seed, allowed=allowed,
                    segment_ids=torch.arange(k) // 3, run_state={}, grid=(1, max(k - 1, 1)), prefix=1)


SHAPES = [(1, 1), (7, 7), (33, 33), (3, 7)]


@pytest.mark.parametrize(("q", "k"), SHAPES, ids=[f"{q}x{k}" for q, k in SHAPES])
@pytest.mark.parametrize("sid", ALL_IDS)
def test_every_strategy_materialises_safely(sid, q, k):
    s = get_strategy(sid)
    ctx = _sweep_ctx(q, k)
    model = ctx.allowed.expand(1, 2, q, k)
    out = s.materialize(s.resolve({}), ctx)
    assert out.allowed.dtype == torch.bool, sid
    assert torch.broadcast_shapes(out.allowed.shape, (1, 2, q, k)) == (1, 2, q, k), out.allowed.shape
    m = out.allowed.expand(1, 2, q, k)
    if out.bias is not None:
        assert out.bias.is_floating_point()
        assert torch.broadcast_shapes(out.bias.shape, (1, 2, q, k)) == (1, 2, q, k)
        assert bool(torch.isfinite(out.bias).all())
    if s.uses_scores:
        assert not bool((m & ~model).any()), f"{sid} allows a key the model blocks"
    if s.mask_mod is not None:
        # index strategies return the pure pattern; the engine and masked_softmax intersect it with the model's
        # own mask (always applied hard), so only `effective` below reaches the attention
        fn = s.mask_mod(s.resolve({}), ctx)
        assert torch.equal(m[0], dense(fn, q, k, 2, k - q).expand(2, q, k))
    effective = m & model
    if out.gate is not None:  # head_gate switches whole heads off on purpose: their rows allow nothing, gate 0
        assert torch.equal(out.gate.view(-1) == 0, ~m[0, :, 0, 0]), sid
        return
    assert bool(effective.any(dim=-1).all()), f"{sid} leaves a query with no key although its diagonal is allowed"


@pytest.mark.parametrize("sid", ALL_IDS)
def test_every_strategy_with_a_bidirectional_model_keeps_a_key_per_row(sid):
    s = get_strategy(sid)
    ctx = _sweep_ctx(9, 9, allowed=torch.ones(1, 1, 9, 9, dtype=torch.bool))
    out = s.materialize(s.resolve({}), ctx)
    m = out.allowed.expand(1, 2, 9, 9)
    assert out.gate is not None or bool(m.any(dim=-1).all()), sid  # head_gate empties the heads it switches off


@pytest.mark.parametrize("sid", ALL_IDS)
def test_seed_dependence_matches_the_registry_flags(sid):
    s = get_strategy(sid)
    a = s.materialize(s.resolve({}), _sweep_ctx(33, 33, seed=1)).allowed
    b = s.materialize(s.resolve({}), _sweep_ctx(33, 33, seed=2)).allowed
    a_again = s.materialize(s.resolve({}), _sweep_ctx(33, 33, seed=1)).allowed
    assert torch.equal(a, a_again), f"{sid} is not reproducible from its seed"
    if s.hide is not None:  # input-masking: the seed draws what is hidden (tests/core/test_input_masks.py)
        assert bool(a.all()), f"{sid} hides the input; it must not mask attention"
    elif s.uses_seed:
        assert not torch.equal(a, b), f"{sid} says it uses the seed but ignores it"
    else:
        assert torch.equal(a, b), f"{sid} changes with the run seed but does not say so"


@pytest.mark.parametrize("sid", [s.id for s in strategies() if s.kind == "static"])
def test_static_strategies_ignore_the_scores(sid):
    s = get_strategy(sid)
    a = s.materialize(s.resolve({}), _sweep_ctx(9, 9, gen_seed=1))
    b = s.materialize(s.resolve({}), _sweep_ctx(9, 9, gen_seed=2))
    assert torch.equal(a.allowed, b.allowed)
    assert (a.bias is None) == (b.bias is None)
    if a.bias is not None:
        assert torch.equal(a.bias, b.bias)


@pytest.mark.parametrize("sid", ALL_IDS)
def test_every_strategy_handles_a_batch_with_a_shared_model_mask(sid):
    # the engine passes a (1, 1, Q, K) causal mask (or None) for causal models without padding, whatever B is
    s = get_strategy(sid)
    ctx = _sweep_ctx(7, 7, batch=2, allowed=causal_allowed(7))
    out = s.materialize(s.resolve({}), ctx)
    assert torch.broadcast_shapes(out.allowed.shape, (2, 2, 7, 7)) == (2, 2, 7, 7)
    m = out.allowed.expand(2, 2, 7, 7)
    assert out.gate is not None or bool((m & causal_allowed(7)).any(dim=-1).all())  # head_gate: heads off
