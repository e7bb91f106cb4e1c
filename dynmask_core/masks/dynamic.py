"""Dynamic strategies: the mask depends on this layer's scores, queries/keys, or the run's seed.

Each gets a :class:`~dynmask_core.masks.base.MaskContext` with ``scores`` ``(B, H, Q, K)`` (model mask not applied)
and ``allowed`` ``(B, 1|H, Q, K)`` (the model's own mask, narrowed by strategies ANDed before it), and returns a
:class:`~dynmask_core.masks.base.MaskOut` whose ``allowed`` is ``(B, H, Q, K)``. Keys the model blocks are never
picked. Randomness comes only from ``ctx.seed`` (and the layer), so a run reproduces exactly from its seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from dynmask_core.masks.base import (
    MaskContext,
    MaskMod,
    MaskOut,
    Param,
    Strategy,
    index_hash,
    index_strategy,
    named,
    register,
)
from dynmask_core.masks.static import BLOCK_P

PER_HEAD = Param("per_head", "bool", True, "a different pattern for every layer and head")


def _masked_scores(ctx: MaskContext) -> tuple[Tensor, Tensor]:
    """Scores with the keys that are not allowed at the dtype's minimum, and the allowed mask, both (B, H, Q, K)."""
    if ctx.scores is None:
        raise ValueError("this strategy needs the attention scores of the run")
    scores = ctx.scores.float()
    allowed = ctx.model_allowed().expand_as(scores)
    return scores.masked_fill(~allowed, torch.finfo(torch.float32).min), allowed


def _unmasked_probs(ctx: MaskContext) -> tuple[Tensor, Tensor]:
    """Softmax of the scores under the model's (narrowed) mask only: what this layer would attend to unmasked."""
    scores, allowed = _masked_scores(ctx)
    return torch.softmax(scores, dim=-1) * allowed, allowed


def _diagonal(ctx: MaskContext) -> Tensor:
    """(Q, K) bool: query i's own key position (shifted by the cache offset)."""
    q = torch.arange(ctx.q_len, device=ctx.device).view(-1, 1) + ctx.q_offset
    k = torch.arange(ctx.k_len, device=ctx.device).view(1, -1)
    return q == k


def _generator(ctx: MaskContext, salt: int) -> torch.Generator:
    gen = torch.Generator(device="cpu")
    gen.manual_seed((ctx.seed * 1_000_003 + ctx.layer * 7919 + salt) % (2**63 - 1))
    return gen


def topk(k: int, ctx: MaskContext) -> MaskOut:
    """Each query row keeps its min(k, K) highest-scoring allowed keys (Zhao et al. 2019).

    Example: scores [[2, 1, 3, 0]] with k=2 keep keys 2 and 0 (■□■□).
    """
    scores, allowed = _masked_scores(ctx)
    kk = min(k, ctx.k_len)
    idx = scores.topk(kk, dim=-1).indices
    keep = torch.zeros_like(allowed).scatter_(-1, idx, True)
    return MaskOut(keep & allowed)


def threshold(tau: float, ctx: MaskContext) -> MaskOut:
    """Keeps keys whose unmasked probability is >= tau, and always each row's most probable key.

    Example: probabilities [[.5, .3, .15, .05]] with tau=0.2 keep ■■□□.
    """
    probs, allowed = _unmasked_probs(ctx)
    top = torch.zeros_like(allowed).scatter_(-1, probs.argmax(dim=-1, keepdim=True), True)
    return MaskOut(((probs >= tau) | top) & allowed)


def lsh(buckets: int, ctx: MaskContext) -> MaskOut:
    """Reformer-style angular LSH: queries and keys attend within the same hash bucket (plus the diagonal).

    A random rotation R (drawn from the run seed and the layer) maps a unit vector x to
    argmax([xR, -xR]); i may attend to j iff bucket(q_i) == bucket(k_j).
    """
    if ctx.query is None or ctx.key is None:
        raise ValueError("lsh needs the layer's queries and keys")
    q = torch.nn.functional.normalize(ctx.query.float(), dim=-1)  # (B, H, Q, D)
    k = torch.nn.functional.normalize(ctx.key.float(), dim=-1)  # (B, H, K, D)
    half = max(1, buckets // 2)
    rot = torch.randn(q.shape[-1], half, generator=_generator(ctx, 11)).to(q.device)

    def bucket(x: Tensor) -> Tensor:
        proj = x @ rot
        return torch.cat([proj, -proj], dim=-1).argmax(dim=-1)

    same = bucket(q).unsqueeze(-1) == bucket(k).unsqueeze(-2)  # (B, H, Q, K)
    allowed = ctx.model_allowed().expand_as(same)
    return MaskOut((same | _diagonal(ctx)) & allowed)


def kmeans(clusters: int, ctx: MaskContext, iters: int = 5) -> MaskOut:
    """Routing-Transformer-style: cluster queries and keys together (spherical k-means), attend within a cluster.

    Centroids start at points drawn from the run seed; ``iters`` rounds of assignment and update per head.
    """
    if ctx.query is None or ctx.key is None:
        raise ValueError("kmeans needs the layer's queries and keys")
    q = torch.nn.functional.normalize(ctx.query.float(), dim=-1)
    k = torch.nn.functional.normalize(ctx.key.float(), dim=-1)
    points = torch.cat([q, k], dim=-2)  # (B, H, Q+K, D)
    n = points.shape[-2]
    c = min(clusters, n)
    start = torch.randperm(n, generator=_generator(ctx, 23))[:c].to(points.device)
    centroids = points[..., start, :]  # (B, H, C, D)
    for _ in range(iters):
        assign = (points @ centroids.transpose(-1, -2)).argmax(dim=-1)  # (B, H, N)
        onehot = torch.nn.functional.one_hot(assign, c).to(points.dtype)  # (B, H, N, C)
        sums = onehot.transpose(-1, -2) @ points  # (B, H, C, D)
        counts = onehot.sum(dim=-2).unsqueeze(-1)  # (B, H, C, 1)
        centroids = torch.where(counts > 0, torch.nn.functional.normalize(sums, dim=-1), centroids)
    assign = (points @ centroids.transpose(-1, -2)).argmax(dim=-1)
    cq, ck = assign[..., : ctx.q_len], assign[..., ctx.q_len :]
    same = cq.unsqueeze(-1) == ck.unsqueeze(-2)
    allowed = ctx.model_allowed().expand_as(same)
    return MaskOut((same | _diagonal(ctx)) & allowed)


def key_salience(ctx: MaskContext) -> Tensor:
    """Per-key weight in (0, 1]: attention each key receives in this layer, averaged over queries, / the row max.

    Returns:
        ``(B, H, 1, K)`` float.
    """
    probs, allowed = _unmasked_probs(ctx)
    received = probs.sum(dim=-2, keepdim=True) / allowed.sum(dim=-2, keepdim=True).clamp(min=1)
    return received / received.amax(dim=-1, keepdim=True).clamp(min=1e-12)


def dynamic_weight(apply: str, strength: float, keep: float, ctx: MaskContext) -> MaskOut:
    """The seed article's ``DynamicMask = Weight ⊙ MaskBase``, with weights predicted from the input.

    Weights w_j = :func:`key_salience` (MaskBase = the model's own mask). ``bias``: add strength * log(w_j)
    (the most salient key unchanged, weak keys pushed down); ``threshold``: keep the top ``keep`` fraction of keys.
    """
    weights = key_salience(ctx)  # (B, H, 1, K)
    allowed = ctx.model_allowed().expand(weights.shape[0], weights.shape[1], ctx.q_len, ctx.k_len)
    if apply == "bias":
        bias = strength * torch.log(weights.clamp(min=1e-6))
        return MaskOut(allowed, bias.expand_as(allowed))
    return MaskOut(_rows(_top_keys(weights, keep), ctx) & allowed)


def _top_keys(weights: Tensor, keep: float, alive: Tensor | None = None) -> Tensor:
    """(B, H|1, 1, K) bool: the ceil(keep * n_alive) alive keys with the largest weight."""
    if alive is None:
        alive = torch.ones_like(weights, dtype=torch.bool)
    n_keep = torch.ceil(keep * alive.sum(dim=-1, keepdim=True).double() - 1e-9).long().clamp(min=1)
    order = weights.masked_fill(~alive, float("-inf")).argsort(dim=-1, descending=True, stable=True)  # ties: first
    positions = torch.arange(weights.shape[-1], device=weights.device).expand_as(order)
    rank = torch.empty_like(order).scatter_(-1, order, positions)
    return (rank < n_keep) & alive


def _rows(keys: Tensor, ctx: MaskContext) -> Tensor:
    """Broadcasts a per-key choice (..., 1, K) to every query row, and lets each query keep its own position."""
    return keys.expand(*keys.shape[:-2], ctx.q_len, ctx.k_len) | _diagonal(ctx)


def attention_guided(ratio: float, target: str, ctx: MaskContext) -> MaskOut:
    """AttMask (Kakogeorgiou et al. 2022): block the keys the unmasked layer attends to most (or least).

    The reference is this layer's own unmasked attention, averaged over heads and queries; the ``ratio`` fraction of
    keys with the highest (``most``) or lowest (``least``) weight is blocked for every query, except its diagonal.
    """
    sal = key_salience(ctx).mean(dim=1, keepdim=True)  # (B, 1, 1, K)
    score = sal if target == "least" else -sal
    kept = _rows(_top_keys(score, 1.0 - ratio), ctx) if ratio < 1.0 else _diagonal(ctx).expand(1, 1, -1, -1)
    out = kept & ctx.model_allowed()
    return MaskOut(out.expand(out.shape[0], ctx.n_heads, ctx.q_len, ctx.k_len))


def token_pruning(keep: float, by: str, ctx: MaskContext) -> MaskOut:
    """DynamicViT-style (Rao et al. 2021): drop the least important tokens as keys, cumulatively over layers.

    At every planned layer the ``keep`` fraction of still-alive tokens with the highest importance survives;
    pruned tokens stay pruned in later layers. Importance: attention from the first token (``cls``) or the mean
    attention received (``mean``), averaged over heads. Token 0 is never pruned; a query always sees itself.
    """
    probs, _ = _unmasked_probs(ctx)
    if by == "cls":
        importance = probs[..., :1, :].mean(dim=1, keepdim=True)  # (B, 1, 1, K)
    else:
        importance = key_salience(ctx).mean(dim=1, keepdim=True)
    alive = ctx.run_state.get("token_pruning_alive")
    if alive is None or alive.shape[-1] != ctx.k_len:
        alive = torch.ones_like(importance, dtype=torch.bool)
    importance = importance.clone()
    importance[..., 0] = float("inf")
    now_alive = _top_keys(importance, keep, alive)  # (B, 1, 1, K)
    ctx.run_state["token_pruning_alive"] = now_alive
    kept_rows = _rows(now_alive, ctx)  # (B, 1, Q, K)
    out = kept_rows & ctx.model_allowed()
    return MaskOut(out.expand(out.shape[0], ctx.n_heads, ctx.q_len, ctx.k_len))


def random_dynamic(p: float = BLOCK_P.default, seed: int = 0, layer: int = 0,
                   per_head: bool = PER_HEAD.default) -> MaskMod:
    """A Bernoulli pattern drawn anew for every run (from the run's seed), per layer and head; diagonal kept.

    Given the same seed it reproduces exactly. With ``per_head=False`` one pattern serves all layers and heads.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(random_dynamic(0.5, seed=3), 5, 5)[0]))
    ■■■■□
    □■□■□
    ■□■■■
    □□■■■
    ■■■□■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        if per_head:
            u = index_hash(seed, layer, h, q_idx, kv_idx)
        else:
            u = index_hash(seed, 104_729, q_idx, kv_idx)  # salted: not the random_static pattern
        return (u >= p) | (q_idx == kv_idx)

    return named(mask, f"random_dynamic_p{p:g}_s{seed}" + (f"_l{layer}" if per_head else ""))


# ----------------------------------------------------------------------------------------------------------------
# Registry entries
# ----------------------------------------------------------------------------------------------------------------

_SEED_NOTE = "Random parts come from the run's seed: the same seed reproduces the same mask."

index_strategy(
    lambda p, ctx: random_dynamic(p["p"], ctx.seed, ctx.layer, p["per_head"]),
    id="random_dynamic", kind="dynamic", title="Random (dynamic)",
    summary="Each entry is blocked with probability p, re-drawn on every run (and per layer and head).",
    reference="The seed article's 'random mask'; cf. dropout on attention",
    params=(BLOCK_P, PER_HEAD),
    uses_seed=True,
    note="The run's seed is shown and shared: giving it back reproduces the pattern exactly.",
)


def _entry(fn, names: tuple[str, ...], **entry: Any) -> Strategy:
    def materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
        return fn(*(params[n] for n in names), ctx)

    return register(Strategy(kind="dynamic", materialize=materialize, uses_scores=True, **entry))


_entry(
    topk, ("k",),
    id="topk", title="Top-k",
    summary="Each query keeps only its k highest-scoring keys.",
    reference="Zhao et al., Explicit Sparse Transformer, 2019",
    params=(Param("k", "int", 4, "keys kept per query row", 1, 4096),),
)
_entry(
    threshold, ("tau",),
    id="threshold", title="Probability threshold",
    summary="Keeps keys whose unmasked attention probability is at least tau (and always the row's maximum).",
    reference="Threshold sparsification of attention; cf. Zhao et al. 2019",
    params=(Param("tau", "float", 0.05, "minimum probability a key needs to stay", 0.0, 1.0),),
)
_entry(
    lsh, ("buckets",),
    id="lsh", title="LSH buckets (Reformer)",
    summary="Queries and keys are hashed by a random rotation; a query sees the keys in its own bucket.",
    reference="Kitaev et al., Reformer, ICLR 2020",
    params=(Param("buckets", "int", 4, "number of hash buckets (rounded down to even)", 2, 64),),
    uses_seed=True,
    note="Queries and keys are hashed separately (pretrained models don't share Q and K). " + _SEED_NOTE,
)
_entry(
    kmeans, ("clusters",),
    id="kmeans", title="k-means routing (Routing Transformer)",
    summary="Queries and keys are clustered together; a query sees the keys of its own cluster.",
    reference="Roy et al., Routing Transformer, TACL 2021",
    params=(Param("clusters", "int", 3, "number of clusters", 2, 64),),
    uses_seed=True,
    note="Five rounds of spherical k-means per head, started from points drawn from the seed. " + _SEED_NOTE,
)
_entry(
    dynamic_weight, ("apply", "strength", "keep"),
    id="dynamic_weight", title="Dynamic weights",
    summary="Per-key weights predicted from the input (Weight ⊙ MaskBase): a soft log-weight bias or a cut-off.",
    reference="The seed article's DynamicMask; Shi et al., Dynamic Mask Attention, arXiv 2508.02124, 2025",
    params=(
        Param("apply", "choice", "bias", "add strength*log(w) or keep the top keys", choices=("bias", "threshold")),
        Param("strength", "float", 1.0, "bias scale (bias mode)", 0.0, 16.0),
        Param("keep", "float", 0.5, "fraction of keys kept (threshold mode)", 0.01, 1.0),
    ),
    note="The predictor is parameter-free: a key's weight is the attention it receives in the unmasked layer. "
    "No trained predictor is bundled.",
)
_entry(
    attention_guided, ("ratio", "target"),
    id="attention_guided", title="Attention-guided (AttMask)",
    summary="Blocks the keys that the unmasked layer attends to most (or least).",
    reference="Kakogeorgiou et al., What to Hide from Your Students (AttMask), ECCV 2022",
    params=(
        Param("ratio", "float", 0.3, "fraction of keys blocked", 0.0, 1.0),
        Param("target", "choice", "most", "block the most or the least attended keys", choices=("most", "least")),
    ),
    note="The reference pass is this layer's own attention without the extra mask (AttMask uses a teacher's).",
)
_entry(
    token_pruning, ("keep", "by"),
    id="token_pruning", title="Token pruning (DynamicViT)",
    summary="At each layer, the least important tokens are dropped as keys; dropped tokens stay dropped.",
    reference="Rao et al., DynamicViT, NeurIPS 2021",
    params=(
        Param("keep", "float", 0.7, "fraction of the remaining tokens kept at each layer", 0.01, 1.0),
        Param("by", "choice", "mean", "importance: attention from the first token or mean attention received",
              choices=("mean", "cls")),
    ),
    note="Importance comes from attention (DynamicViT trains a predictor). Dropped tokens still compute their own "
    "row but nobody attends to them.",
)
