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
from dynmask_core.masks.code import FLEX_SCORES, CodeContext, CodePiece, lit, num
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
# Code templates: each strategy as self-contained PyTorch, parameters baked in (see masks/code.py). The score-based
# ones mirror the functions above operation for operation (tests/core/test_mask_code.py runs both).
# ----------------------------------------------------------------------------------------------------------------


def _random_dynamic_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    prob, per_head = p["p"], p["per_head"]
    name = f"random_dynamic_p{num(prob)}{c.suffix}"
    flex = ("It runs (an index function of the seed, the layer and the head; one BlockMask per layer), but skips "
            "nearly nothing: unstructured random entries leave no 128 x 128 tile empty unless p is almost 1.")
    if not per_head:
        return CodePiece("index", name, f'''
            def {name}(b, h, q_idx, kv_idx):
                """Random (dynamic): each entry is blocked with probability {prob!r}, drawn from the run's seed (SEED),
                one pattern for every layer and head; the diagonal is kept."""
                return (index_hash(SEED, 104_729, q_idx, kv_idx) >= {lit(prob)}) | (q_idx == kv_idx)
        ''', helpers=("index_hash",), flex=flex)
    return CodePiece("index", name, f'''
        def {name}(layer):
            """Random (dynamic): each entry is blocked with probability {prob!r}, drawn from the run's seed (SEED)
            for every layer and head; the diagonal is kept. Returns the mask_mod of `layer`."""

            def mask(b, h, q_idx, kv_idx):
                return (index_hash(SEED, layer, h, q_idx, kv_idx) >= {lit(prob)}) | (q_idx == kv_idx)

            return mask
    ''', per_layer=True, helpers=("index_hash",), flex=flex)


def _topk_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    k = p["k"]
    name = f"topk_k{k}{c.suffix}"
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """Top-k (Zhao et al. 2019): each query row keeps its min({k}, K) highest-scoring allowed keys (ties:
            torch.topk's order)."""
            scores, allowed = masked_scores(scores, allowed)
            idx = scores.topk(min({k}, scores.shape[-1]), dim=-1).indices
            keep = torch.zeros_like(allowed).scatter_(-1, idx, True)
            return keep & allowed, None
    ''', helpers=("masked_scores",), flex=FLEX_SCORES)


def _threshold_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    tau = p["tau"]
    name = f"threshold_tau{num(tau)}{c.suffix}"
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """Probability threshold: keeps the keys whose unmasked probability is >= {tau!r}, and always each row's
            most probable key."""
            probs, allowed = unmasked_probs(scores, allowed)
            top = torch.zeros_like(allowed).scatter_(-1, probs.argmax(dim=-1, keepdim=True), True)
            return ((probs >= {lit(tau)}) | top) & allowed, None
    ''', helpers=("unmasked_probs",), flex=FLEX_SCORES)


def _lsh_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    buckets = p["buckets"]
    half = max(1, buckets // 2)
    name = f"lsh_b{buckets}{c.suffix}"
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """LSH buckets (Reformer, Kitaev et al. 2020): queries and keys (normalised, hashed separately) go to
            bucket argmax([xR, -xR]) of {2 * half} buckets, R a random rotation drawn from the run's seed and the
            layer; query i may attend to key j iff their buckets match, and always to itself."""
            q = torch.nn.functional.normalize(query.float(), dim=-1)  # (B, H, Q, D)
            k = torch.nn.functional.normalize(key.float(), dim=-1)  # (B, H, K, D)
            rot = torch.randn(q.shape[-1], {half}, generator=generator(layer, 11)).to(q.device)

            def bucket(x):
                proj = x @ rot
                return torch.cat([proj, -proj], dim=-1).argmax(dim=-1)

            same = bucket(q).unsqueeze(-1) == bucket(k).unsqueeze(-2)  # (B, H, Q, K)
            allowed = allowed.expand_as(same)
            return (same | diagonal(scores.shape[-2], scores.shape[-1], scores.device)) & allowed, None
    ''', helpers=("generator", "diagonal"), needs_qk=True,
        flex="Not from the scores, but from the hashed queries and keys: a mask_mod comparing bucket ids "
             "(bq[b, h, q] == bk[b, h, kv]) can build a BlockMask per layer and input, yet it skips tiles only when "
             "the tokens are sorted by bucket first (as Reformer does); unsorted, buckets are scattered over every "
             "tile.")


def _kmeans_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    clusters = p["clusters"]
    name = f"kmeans_c{clusters}{c.suffix}"
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state, iters=5):
            """k-means routing (Routing Transformer, Roy et al. 2021): the normalised queries and keys of each head are
            clustered together into {clusters} clusters (spherical k-means, 5 rounds, started from points drawn from
            the run's seed and the layer); query i may attend to key j iff they share a cluster, and to itself."""
            q_len = scores.shape[-2]
            q = torch.nn.functional.normalize(query.float(), dim=-1)
            k = torch.nn.functional.normalize(key.float(), dim=-1)
            points = torch.cat([q, k], dim=-2)  # (B, H, Q+K, D)
            n = points.shape[-2]
            c = min({clusters}, n)
            start = torch.randperm(n, generator=generator(layer, 23))[:c].to(points.device)
            centroids = points[..., start, :]  # (B, H, C, D)
            for _ in range(iters):
                assign = (points @ centroids.transpose(-1, -2)).argmax(dim=-1)  # (B, H, N)
                onehot = torch.nn.functional.one_hot(assign, c).to(points.dtype)  # (B, H, N, C)
                sums = onehot.transpose(-1, -2) @ points  # (B, H, C, D)
                counts = onehot.sum(dim=-2).unsqueeze(-1)  # (B, H, C, 1)
                centroids = torch.where(counts > 0, torch.nn.functional.normalize(sums, dim=-1), centroids)
            assign = (points @ centroids.transpose(-1, -2)).argmax(dim=-1)
            cq, ck = assign[..., :q_len], assign[..., q_len:]
            same = cq.unsqueeze(-1) == ck.unsqueeze(-2)
            allowed = allowed.expand_as(same)
            return (same | diagonal(q_len, scores.shape[-1], scores.device)) & allowed, None
    ''', helpers=("generator", "diagonal"), needs_qk=True,
        flex="Not from the scores, but from the clustered queries and keys: a mask_mod comparing cluster ids can "
             "build a BlockMask per layer and input, and it skips tiles only when the tokens are sorted by cluster "
             "(as the Routing Transformer does); unsorted, clusters are scattered over every tile.")


def _dynamic_weight_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    how, strength, keep = p["apply"], p["strength"], p["keep"]
    if how == "bias":
        name = f"dynamic_weight_bias{num(strength)}{c.suffix}"
        what = f"adds {strength!r} * log(w_j) to every score (soft: it blocks nothing)"
        tail = (f"bias = {lit(strength)} * torch.log(weights.clamp(min=1e-6))\n"
                f"{_BODY}return allowed, bias.expand_as(allowed)")
        helpers: tuple[str, ...] = ("key_salience",)
    else:
        name = f"dynamic_weight_keep{num(keep)}{c.suffix}"
        what = f"keeps the top {keep!r} of the keys by w_j (and each query's own position)"
        tail = f"return rows(top_keys(weights, {lit(keep)}), q_len, k_len) & allowed, None"
        helpers = ("key_salience", "top_keys", "rows")
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """Dynamic weights (Weight x MaskBase): w_j = the attention key j receives in the unmasked layer (mean over
            queries, / the row maximum, per head); this {what}."""
            weights = key_salience(scores, allowed)  # (B, H, 1, K)
            q_len, k_len = scores.shape[-2:]
            allowed = allowed.expand(weights.shape[0], weights.shape[1], q_len, k_len)
            {tail}
    ''', helpers=helpers,
        flex=FLEX_SCORES + " (The bias form is a score_mod of per-key weights, but they come from the full "
                           "unmasked attention.)")


def _attention_guided_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    ratio, target = p["ratio"], p["target"]
    name = f"attention_guided_{target}{num(ratio)}{c.suffix}"
    sign = "sal" if target == "least" else "-sal"
    kept = (f"rows(top_keys({sign}, 1.0 - {lit(ratio)}), q_len, k_len)" if ratio < 1.0
            else "diagonal(q_len, k_len, scores.device).expand(1, 1, -1, -1)")
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """Attention-guided (AttMask, Kakogeorgiou et al. 2022): blocks, for every query, the {ratio!r} of the keys
            this layer's own unmasked attention (averaged over heads and queries) attends to {target}; each query
            keeps its own position."""
            q_len, k_len = scores.shape[-2:]
            sal = key_salience(scores, allowed).mean(dim=1, keepdim=True)  # (B, 1, 1, K)
            kept = {kept}
            out = kept & allowed
            return out.expand(out.shape[0], scores.shape[1], q_len, k_len), None
    ''', helpers=("key_salience", "top_keys", "rows", "diagonal"), flex=FLEX_SCORES)


def _token_pruning_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    keep, by = p["keep"], p["by"]
    name = f"token_pruning_{by}{num(keep)}{c.suffix}"
    how = "attention from the first token" if by == "cls" else "mean attention received"
    importance = ("unmasked_probs(scores, allowed)[0][..., :1, :].mean(dim=1, keepdim=True)" if by == "cls"
                  else "key_salience(scores, allowed).mean(dim=1, keepdim=True)")
    return CodePiece("scores", name, f'''
        def {name}(scores, allowed, query, key, layer, state):
            """Token pruning (DynamicViT, Rao et al. 2021): at every layer the plan covers, the {keep!r} of the
            still-alive tokens with the highest importance ({how}, averaged over heads) stay; pruned
            tokens stay pruned for the rest of the forward pass (`state` lives for one pass). Token 0 is never pruned;
            a query always sees itself."""
            q_len, k_len = scores.shape[-2:]
            importance = {importance}  # (B, 1, 1, K)
            alive = state.get("token_pruning_alive")
            if alive is None or alive.shape[-1] != k_len:
                alive = torch.ones_like(importance, dtype=torch.bool)
            importance = importance.clone()
            importance[..., 0] = float("inf")
            now_alive = top_keys(importance, {lit(keep)}, alive)  # (B, 1, 1, K)
            state["token_pruning_alive"] = now_alive
            out = rows(now_alive, q_len, k_len) & allowed
            return out.expand(out.shape[0], scores.shape[1], q_len, k_len), None
    ''', helpers=("unmasked_probs", "key_salience", "top_keys", "rows"),
        flex="No: which tokens survive depends on this layer's attention; once chosen, the pruned tokens are better "
             "dropped from the sequence (as DynamicViT does) than masked, which saves more than any BlockMask.")


_BODY = " " * 12  # the indentation of a function body in the templates above


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
    uses_seed=True, code=_random_dynamic_code,
    note="The run's seed is shown and shared: giving it back reproduces the pattern exactly.",
)


def _entry(fn, names: tuple[str, ...], **entry: Any) -> Strategy:
    def materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
        return fn(*(params[n] for n in names), ctx)

    return register(Strategy(kind="dynamic", materialize=materialize, uses_scores=True, **entry))


_entry(
    topk, ("k",), code=_topk_code,
    id="topk", title="Top-k",
    summary="Each query keeps only its k highest-scoring keys.",
    reference="Zhao et al., Explicit Sparse Transformer, 2019",
    params=(Param("k", "int", 4, "keys kept per query row", 1, 4096),),
)
_entry(
    threshold, ("tau",), code=_threshold_code,
    id="threshold", title="Probability threshold",
    summary="Keeps keys whose unmasked attention probability is at least tau (and always the row's maximum).",
    reference="Threshold sparsification of attention; cf. Zhao et al. 2019",
    params=(Param("tau", "float", 0.05, "minimum probability a key needs to stay", 0.0, 1.0),),
)
_entry(
    lsh, ("buckets",), code=_lsh_code,
    id="lsh", title="LSH buckets (Reformer)",
    summary="Queries and keys are hashed by a random rotation; a query sees the keys in its own bucket.",
    reference="Kitaev et al., Reformer, ICLR 2020",
    params=(Param("buckets", "int", 4, "number of hash buckets (rounded down to even)", 2, 64),),
    uses_seed=True,
    note="Queries and keys are hashed separately (pretrained models don't share Q and K). " + _SEED_NOTE,
)
_entry(
    kmeans, ("clusters",), code=_kmeans_code,
    id="kmeans", title="k-means routing (Routing Transformer)",
    summary="Queries and keys are clustered together; a query sees the keys of its own cluster.",
    reference="Roy et al., Routing Transformer, TACL 2021",
    params=(Param("clusters", "int", 3, "number of clusters", 2, 64),),
    uses_seed=True,
    note="Five rounds of spherical k-means per head, started from points drawn from the seed. " + _SEED_NOTE,
)
_entry(
    dynamic_weight, ("apply", "strength", "keep"), code=_dynamic_weight_code,
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
    attention_guided, ("ratio", "target"), code=_attention_guided_code,
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
    token_pruning, ("keep", "by"), code=_token_pruning_code,
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
