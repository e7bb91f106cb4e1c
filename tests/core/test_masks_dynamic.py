"""Dynamic (score-, content- and seed-based) strategies on hand-made MaskContexts.

``■`` = the query (row i) may attend to the key (column j), ``□`` = blocked.
"""

from __future__ import annotations

import math

import pytest
import torch

from dynmask_core.masks import MaskContext, get_strategy
from tests.core.grids import assert_grid, causal_allowed, grid  # noqa: E402,F401


def rand_ctx(length: int = 8, heads: int = 2, dim: int = 8, seed: int = 0, allowed=None, gen_seed: int = 1234,
             layer: int = 0, **kw) -> MaskContext:
    g = torch.Generator().manual_seed(gen_seed)
    query = torch.randn(1, heads, length, dim, generator=g)
    key = torch.randn(1, heads, length, dim, generator=g)
    scores = query @ key.transpose(-1, -2) / math.sqrt(dim)
    return MaskContext(q_len=length, k_len=length, n_heads=heads, layer=layer, seed=seed, allowed=allowed,
                       scores=scores, query=query, key=key, **kw)


def run(sid: str, ctx: MaskContext, **params):
    s = get_strategy(sid)
    out = s.materialize(s.resolve(params), ctx)
    b = ctx.scores.shape[0] if ctx.scores is not None else 1
    assert out.allowed.dtype == torch.bool
    return out, out.allowed.expand(b, ctx.n_heads, ctx.q_len, ctx.k_len)


def model_mask(ctx: MaskContext) -> torch.Tensor:
    return ctx.model_allowed().expand(ctx.scores.shape[0], ctx.n_heads, ctx.q_len, ctx.k_len)


# ----------------------------------------------------------------------------------------------------------------
# top-k
# ----------------------------------------------------------------------------------------------------------------


def test_topk_docstring_example():
    scores = torch.tensor([[2.0, 1.0, 3.0, 0.0]]).view(1, 1, 1, 4)
    _, m = run("topk", MaskContext(q_len=1, k_len=4, scores=scores), k=2)
    assert_grid(m[0, 0], grid("■□■□"))


def test_topk_hand_case_under_a_causal_model_mask():
    # the 9s sit where the model blocks: they must never be picked
    scores = torch.tensor([
        [5.0, 9.0, 9.0, 9.0],
        [0.5, 1.5, 9.0, 9.0],
        [3.0, -1.0, 2.0, 9.0],
        [1.0, 4.0, 2.0, 3.0],
    ]).view(1, 1, 4, 4)
    ctx = MaskContext(q_len=4, k_len=4, scores=scores, allowed=causal_allowed(4))
    _, m = run("topk", ctx, k=2)
    assert_grid(m[0, 0], grid(
        "■□□□",
        "■■□□",
        "■□■□",
        "□■□■",
    ))
    _, m1 = run("topk", ctx, k=1)
    assert_grid(m1[0, 0], grid("■□□□", "□■□□", "■□□□", "□■□□"))


@pytest.mark.parametrize("k", (1, 2, 3, 5, 8, 100))
@pytest.mark.parametrize("causal", (False, True))
def test_topk_keeps_min_k_allowed_highest_keys(k, causal):
    length = 8
    ctx = rand_ctx(length, allowed=causal_allowed(length) if causal else None)
    _, m = run("topk", ctx, k=k)
    model = model_mask(ctx)
    assert not bool((m & ~model).any()), "top-k picked a key the model blocks"
    n_allowed = model.sum(dim=-1)
    assert torch.equal(m.sum(dim=-1), n_allowed.clamp(max=k))
    scores = ctx.scores
    kept_min = scores.masked_fill(~m, math.inf).amin(dim=-1)
    dropped_max = scores.masked_fill(m | ~model, -math.inf).amax(dim=-1)
    assert bool((kept_min >= dropped_max).all()), "a dropped allowed key scores higher than a kept one"


def test_topk_respects_a_per_head_model_mask():
    ctx = rand_ctx(6, heads=2)
    allowed = torch.ones(1, 2, 6, 6, dtype=torch.bool)
    allowed[0, 1, :, :3] = False  # head 1 may only see keys 3..5
    ctx.allowed = allowed
    _, m = run("topk", ctx, k=4)
    assert torch.equal(m[0, 0].sum(-1), torch.full((6,), 4))
    assert torch.equal(m[0, 1].sum(-1), torch.full((6,), 3))
    assert not bool(m[0, 1, :, :3].any())


# ----------------------------------------------------------------------------------------------------------------
# threshold
# ----------------------------------------------------------------------------------------------------------------


def _prob_scores(*rows) -> torch.Tensor:
    return torch.log(torch.tensor(rows, dtype=torch.float32)).view(1, 1, len(rows), len(rows[0]))


def test_threshold_docstring_example():
    ctx = MaskContext(q_len=1, k_len=4, scores=_prob_scores([0.5, 0.3, 0.15, 0.05]))
    assert_grid(run("threshold", ctx, tau=0.2)[1][0, 0], grid("■■□□"))
    assert_grid(run("threshold", ctx, tau=0.1)[1][0, 0], grid("■■■□"))
    assert_grid(run("threshold", ctx, tau=0.0)[1][0, 0], grid("■■■■"))


def test_threshold_always_keeps_the_argmax():
    ctx = MaskContext(q_len=1, k_len=4, scores=_prob_scores([0.3, 0.25, 0.25, 0.2]))
    assert_grid(run("threshold", ctx, tau=0.9)[1][0, 0], grid("■□□□"))
    assert_grid(run("threshold", ctx, tau=1.0)[1][0, 0], grid("■□□□"))


def test_threshold_probabilities_are_taken_under_the_model_mask():
    # key 0 is blocked by the model: the rest renormalise to [.6, .3, .1]
    allowed = torch.tensor([False, True, True, True]).view(1, 1, 1, 4)
    ctx = MaskContext(q_len=1, k_len=4, scores=_prob_scores([0.5, 0.3, 0.15, 0.05]), allowed=allowed)
    assert_grid(run("threshold", ctx, tau=0.2)[1][0, 0], grid("□■■□"))
    assert_grid(run("threshold", ctx, tau=0.9)[1][0, 0], grid("□■□□"))


@pytest.mark.parametrize("tau", (0.0, 0.05, 0.2, 0.5, 1.0))
def test_threshold_property_random(tau):
    ctx = rand_ctx(9, heads=2, allowed=causal_allowed(9))
    _, m = run("threshold", ctx, tau=tau)
    model = model_mask(ctx)
    assert not bool((m & ~model).any())
    probs = torch.softmax(ctx.scores.masked_fill(~model, -math.inf), dim=-1)
    argmax = torch.zeros_like(m).scatter_(-1, probs.argmax(-1, keepdim=True), True)
    expected = ((probs >= tau) | argmax) & model
    assert torch.equal(m, expected)
    assert bool(m.any(dim=-1).all())


# ----------------------------------------------------------------------------------------------------------------
# LSH and k-means routing
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("buckets", (2, 4, 8))
@pytest.mark.parametrize("seed", (0, 1, 2))
def test_lsh_hand_case_opposite_vectors_never_share_a_bucket(buckets, seed):
    # every query is v; keys alternate v, -v. x and -x hash to different halves, x and x to the same bucket,
    # whatever the rotation: query i sees keys 0 and 2, plus itself.
    v = torch.tensor([0.3, -1.2, 0.7, 2.0])
    query = v.expand(1, 1, 4, 4).clone()
    key = torch.stack([v, -v, v, -v]).view(1, 1, 4, 4)
    ctx = MaskContext(q_len=4, k_len=4, seed=seed, scores=query @ key.transpose(-1, -2), query=query, key=key)
    _, m = run("lsh", ctx, buckets=buckets)
    assert_grid(m[0, 0], grid("■□■□", "■■■□", "■□■□", "■□■■"))


@pytest.mark.parametrize("sid", ("lsh", "kmeans"))
def test_content_routing_reproducible_seeded_and_masked(sid):
    length = 64
    params = {"buckets": 8} if sid == "lsh" else {"clusters": 6}
    a = run(sid, rand_ctx(length, heads=2, dim=16, seed=3), **params)[1]
    b = run(sid, rand_ctx(length, heads=2, dim=16, seed=3), **params)[1]
    assert torch.equal(a, b), "same seed must reproduce the mask"
    others = [run(sid, rand_ctx(length, heads=2, dim=16, seed=s), **params)[1] for s in (4, 5)]
    assert any(not torch.equal(a, o) for o in others), "another seed should give another mask"
    eye = torch.eye(length, dtype=torch.bool).expand_as(a)
    assert bool(a[eye].all()), "diagonal dropped"
    assert 0 < a.float().mean().item() < 1, "routing should block something and keep something"
    ctx = rand_ctx(length, heads=2, dim=16, seed=3, allowed=causal_allowed(length))
    m = run(sid, ctx, **params)[1]
    assert not bool((m & ~model_mask(ctx)).any())
    assert torch.equal(m, a & model_mask(ctx)), "the model mask should only remove keys, not change the routing"


def test_lsh_layer_changes_the_rotation():
    masks = [run("lsh", rand_ctx(64, dim=16, seed=3, layer=layer), buckets=8)[1] for layer in range(3)]
    assert not (torch.equal(masks[0], masks[1]) and torch.equal(masks[0], masks[2]))


def test_kmeans_identical_vectors_share_a_cluster():
    g = torch.Generator().manual_seed(0)
    query = torch.randn(1, 1, 12, 8, generator=g)
    perm = torch.roll(torch.arange(12), 5)  # key j (j < 6) is a copy of query perm[j] != j
    key = query[..., perm, :].clone()
    key[..., 6:, :] = torch.randn(1, 1, 6, 8, generator=g)
    for seed in range(3):
        ctx = MaskContext(q_len=12, k_len=12, seed=seed, scores=query @ key.transpose(-1, -2), query=query, key=key)
        m = run("kmeans", ctx, clusters=3)[1][0, 0]
        for j in range(6):
            assert bool(m[perm[j], j]), (seed, j)


@pytest.mark.parametrize("sid", ("lsh", "kmeans"))
def test_content_routing_needs_queries_and_keys(sid):
    ctx = MaskContext(q_len=3, k_len=3, scores=torch.zeros(1, 1, 3, 3))
    with pytest.raises(ValueError, match="quer"):
        run(sid, ctx)


# ----------------------------------------------------------------------------------------------------------------
# attention_guided (AttMask)
# ----------------------------------------------------------------------------------------------------------------


def _column_scores(weights, rows: int = 4, heads: int = 1) -> torch.Tensor:
    """Scores whose softmax gives every query row the same probabilities ``weights``."""
    row = torch.log(torch.tensor(weights, dtype=torch.float32))
    return row.expand(1, heads, rows, len(weights)).clone()


def test_attention_guided_blocks_the_most_attended_keys():
    # every row attends [.4, .3, .2, .1]: salience 1, .75, .5, .25. ratio .5 blocks keys 0 and 1 (diagonal kept).
    ctx = MaskContext(q_len=4, k_len=4, n_heads=2, scores=_column_scores([0.4, 0.3, 0.2, 0.1], heads=2))
    _, m = run("attention_guided", ctx, ratio=0.5, target="most")
    for h in range(2):
        assert_grid(m[0, h], grid("■□■■", "□■■■", "□□■■", "□□■■"))
    _, m = run("attention_guided", ctx, ratio=0.25, target="most")
    assert_grid(m[0, 0], grid("■■■■", "□■■■", "□■■■", "□■■■"))


def test_attention_guided_blocks_the_least_attended_keys():
    ctx = MaskContext(q_len=4, k_len=4, scores=_column_scores([0.4, 0.3, 0.2, 0.1]))
    _, m = run("attention_guided", ctx, ratio=0.5, target="least")
    assert_grid(m[0, 0], grid("■■□□", "■■□□", "■■■□", "■■□■"))


def test_attention_guided_extremes():
    ctx = MaskContext(q_len=4, k_len=4, scores=_column_scores([0.4, 0.3, 0.2, 0.1]))
    assert_grid(run("attention_guided", ctx, ratio=0.0)[1][0, 0], torch.ones(4, 4, dtype=torch.bool))
    assert_grid(run("attention_guided", ctx, ratio=1.0)[1][0, 0], torch.eye(4, dtype=torch.bool))


def test_attention_guided_averages_heads_and_respects_the_model_mask():
    # head 0 prefers key 0, head 1 key 3 even more: averaged, key 3 is the most attended
    scores = torch.cat([_column_scores([0.4, 0.3, 0.2, 0.1]), _column_scores([0.05, 0.05, 0.1, 0.8])], dim=1)
    allowed = torch.ones(1, 1, 4, 4, dtype=torch.bool)
    allowed[..., 2] = False  # the model blocks key 2 everywhere
    ctx = MaskContext(q_len=4, k_len=4, n_heads=2, scores=scores, allowed=allowed)
    _, m = run("attention_guided", ctx, ratio=0.25, target="most")
    assert not bool((m & ~allowed).any())
    expected = grid("■■□□", "■■□□", "■■□□", "■■□■")  # key 3 blocked except on its diagonal
    assert_grid(m[0, 0], expected)
    assert_grid(m[0, 1], expected)


# ----------------------------------------------------------------------------------------------------------------
# token_pruning (DynamicViT)
# ----------------------------------------------------------------------------------------------------------------


def _alive_columns(m: torch.Tensor) -> torch.Tensor:
    """(K,) bool: the keys every other query may see (a query always sees itself)."""
    q, k = m.shape[-2:]
    cols = torch.arange(k)
    return m[0, 0, (cols + 1) % q, cols]


@pytest.mark.parametrize("by", ("mean", "cls"))
def test_token_pruning_is_cumulative_over_layers(by):
    state: dict = {}
    length = 10
    alive_sets = []
    for layer in range(4):
        ctx = rand_ctx(length, heads=2, layer=layer, gen_seed=100 + layer, run_state=state)
        ctx.scores[..., 0] -= 20.0  # token 0 gets (almost) no attention: it must survive anyway
        _, m = run("token_pruning", ctx, keep=0.5, by=by)
        eye = torch.eye(length, dtype=torch.bool).expand_as(m)
        assert bool(m[eye].all()), "a query always sees itself"
        for h in range(1, 2):
            assert torch.equal(m[0, h], m[0, 0]), "pruning is shared by all heads"
        alive = _alive_columns(m)
        assert bool(alive[0]), "token 0 is never pruned"
        off_diag = m[0, 0] & ~torch.eye(length, dtype=torch.bool)
        assert torch.equal(off_diag, alive.expand(length, length) & ~torch.eye(length, dtype=torch.bool))
        alive_sets.append(alive)
    assert [int(a.sum()) for a in alive_sets] == [5, 3, 2, 1]  # ceil(.5*10), ceil(.5*5), ceil(.5*3), ceil(.5*2)
    for before, after in zip(alive_sets, alive_sets[1:]):
        assert not bool((after & ~before).any()), "a pruned token came back"


def test_token_pruning_fresh_run_state_starts_over():
    first = run("token_pruning", rand_ctx(10, run_state={}), keep=0.5)[1]
    again = run("token_pruning", rand_ctx(10, run_state={}), keep=0.5)[1]
    assert torch.equal(first, again)
    assert int(_alive_columns(first).sum()) == 5


def test_token_pruning_keeps_the_most_important_tokens():
    # mean attention received decides: columns receive [.05, .4, .3, .15, .1] in every row;
    # keep ceil(.5 * 5) = 3 tokens: 0 (forced), 1, 2
    scores = _column_scores([0.05, 0.4, 0.3, 0.15, 0.1], rows=5)
    _, m = run("token_pruning", MaskContext(q_len=5, k_len=5, scores=scores, run_state={}), keep=0.5, by="mean")
    assert_grid(m[0, 0], grid("■■■□□", "■■■□□", "■■■□□", "■■■■□", "■■■□■"))


def test_token_pruning_respects_the_model_mask():
    ctx = rand_ctx(9, allowed=causal_allowed(9), run_state={})
    _, m = run("token_pruning", ctx, keep=0.7)
    assert not bool((m & ~model_mask(ctx)).any())


# ----------------------------------------------------------------------------------------------------------------
# dynamic_weight
# ----------------------------------------------------------------------------------------------------------------


def test_dynamic_weight_bias_hand_case():
    ctx = MaskContext(q_len=4, k_len=4, scores=_column_scores([0.4, 0.3, 0.2, 0.1]))
    out, m = run("dynamic_weight", ctx, apply="bias", strength=2.0)
    assert bool(m.all()), "bias mode blocks nothing the model allows"
    expected = 2.0 * torch.log(torch.tensor([1.0, 0.75, 0.5, 0.25]))
    assert torch.allclose(out.bias.expand(1, 1, 4, 4)[0, 0], expected.expand(4, 4), atol=1e-5)


@pytest.mark.parametrize("causal", (False, True))
def test_dynamic_weight_bias_is_nonpositive_with_the_most_salient_key_at_zero(causal):
    ctx = rand_ctx(12, heads=2, allowed=causal_allowed(12) if causal else None)
    out, m = run("dynamic_weight", ctx, apply="bias", strength=1.5)
    assert out.bias is not None
    bias = out.bias.expand(1, 2, 12, 12)
    assert bool(torch.isfinite(bias).all())
    assert bool((bias <= 0).all())
    assert torch.allclose(bias.amax(dim=-1), torch.zeros(1, 2, 12)), "the max-salience key gets bias 0"
    assert torch.equal(m, model_mask(ctx))


def test_dynamic_weight_threshold_hand_case():
    ctx = MaskContext(q_len=4, k_len=4, scores=_column_scores([0.4, 0.3, 0.2, 0.1]))
    out, m = run("dynamic_weight", ctx, apply="threshold", keep=0.5)
    assert out.bias is None
    assert_grid(m[0, 0], grid("■■□□", "■■□□", "■■■□", "■■□■"))


@pytest.mark.parametrize("keep", (0.1, 0.3, 0.5, 0.9))
def test_dynamic_weight_threshold_keeps_about_keep_fraction(keep):
    length = 64
    ctx = rand_ctx(length, heads=2)
    _, m = run("dynamic_weight", ctx, apply="threshold", keep=keep)
    for h in range(2):
        chosen = _alive_columns(m[:, h:h + 1])
        assert int(chosen.sum()) == math.ceil(keep * length)
        assert abs(m[0, h].float().mean().item() - keep) <= 0.03
        assert bool(m[0, h].diagonal().all())


def test_top_keys_count_is_exact_for_decimal_fractions():
    # ceil(0.15 * 100) = 15, but float32(0.15) * 100 = 15.0000006 -> 16
    ctx = rand_ctx(100, heads=1, dim=4)
    _, m = run("dynamic_weight", ctx, apply="threshold", keep=0.15)
    assert int(_alive_columns(m).sum()) == 15


def test_attention_guided_count_is_exact_for_decimal_fractions():
    ctx = rand_ctx(75, heads=1, dim=4)
    _, m = run("attention_guided", ctx, ratio=0.28, target="most")
    assert int((~_alive_columns(m)).sum()) == 21  # 0.28 * 75 = 21 keys blocked, 54 kept


def test_dynamic_strategies_need_scores():
    for sid in ("topk", "threshold", "dynamic_weight", "attention_guided", "token_pruning"):
        with pytest.raises(ValueError, match="scores"):
            run(sid, MaskContext(q_len=3, k_len=3))
