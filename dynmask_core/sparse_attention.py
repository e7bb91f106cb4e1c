"""Attention kernels for long inputs under static masks: dense SDPA, FlexAttention, and an exact blockwise path.

Every function takes ``query (B, H, Q, D)``, ``key`` and ``value (B, H, K, D)`` (grouped-query K/V heads already
repeated to H), a float ``scale``, and a description of what is allowed, and returns the output ``(B, H, Q, D)`` in
the query's dtype. All of them compute the same thing as the eager path of :mod:`dynmask_core.attention` with hard
masking (:func:`dynmask_core.masks.apply.masked_softmax`)::

    weights = softmax(where(allowed, Q Kᵀ * scale, finfo(float32).min))   # in float32
    weights[row] = 0            for every row in which nothing is allowed (zero output, never NaN, never uniform)
    output = weights @ V

Masks follow the project's convention (``True`` = this query may attend to this key) and FlexAttention's index
signature ``mask_mod(b, h, q_idx, kv_idx) -> bool tensor``. ``q_idx`` handed to a mask_mod by the functions here is
the *absolute* position ``q + q_offset`` (as :func:`dynmask_core.masks.base.dense` does), so a decoder running the
last Q of K positions (a cache holds the first ``K - Q``) passes ``q_offset = K - Q``. The model's own causal mask
is one more mask_mod, ANDed with the strategy's: ``and_masks(causal_mod(), strategy_mod)``, or a list
``[causal_mod(), strategy_mod]`` wherever a mask_mod is taken. A mask_mod may use ``b`` (padding, say): it is
evaluated with ``b`` = 0 when ``batch=1`` and with every batch index otherwise.

Tiles: queries and keys are cut into ``block``-sized blocks; tile (i, j) is query block i against key block j.
:func:`block_layout` says which tiles have *any* allowed entry and which are *full* (every entry allowed; a tile
cut short by the end of the sequence is never counted full, as in ``create_block_mask``)::

    sliding_window(radius=1), Q = K = 8, block = 2       tiles (f = full, a = some allowed, . = none)
    ■■□□□□□□                                             f a . .
    ■■■□□□□□                                             a f a .
    □■■■□□□□                                             . a f a
    □□■■■□□□                                             . . a f
    □□□■■■□□
    □□□□■■■□
    □□□□□■■■
    □□□□□□■■

What each path costs (B = 1, H heads, n = keys in the tiles one query block touches):

* :func:`sdpa_attention`: the dense (Q, K) bool mask, plus what SDPA makes of it (``bench/long_context.py``
  measures it); time for every Q x K entry, whatever the density.
* :func:`flex_attention` (compiled): O(H x Q x D) plus the BlockMask's small tile tables; time for the tiles with
  an allowed entry, after a compile (below). Eager flex materialises the full scores.
* :func:`blockwise_attention`: O(H x block x n) for the scores and weights, plus a ``(block, K)`` bool row (and
  the mask_mod's index temporaries) to evaluate the mask when no layout is given; time for the tiles with an
  allowed entry plus one mask evaluation per (query, key) entry.

FlexAttention on the CPU (torch 2.13.0+cpu):

* ``torch.compile(flex_attention)`` works on the CPU (inductor generates a C++ kernel with gcc) and is exact to
  ~1e-6 in float32. The first compile in a process takes seconds even with inductor's on-disk cache warm, and far
  longer cold (first ever run on a machine); after that, a new mask_mod (another function, or the same function with
  other closure values, e.g. another radius), another BlockMask head count, or a second sequence length (which
  turns on dynamic shapes) each recompile. Dynamo keeps at most
  ``torch._dynamo.config.recompile_limit`` (8) variants of ``flex_attention``; past that it falls back to the
  unfused eager implementation with a warning. :func:`compiled_flex` caches the compiled function per process.
* Eager (uncompiled) ``flex_attention`` runs, warns, and *materialises the full (B, H, Q, K) scores*: no saving in
  memory, and slower than SDPA with a dense mask. Use it only to check the compiled path.
* ``create_block_mask`` (not compiled) materialises the dense (B, H, Q, K) mask and its int64 index temporaries
  (GBs at 8k); :func:`flex_block_mask` builds the same BlockMask from :func:`block_layout`, one query-block row of
  tiles at a time.
* Rows with nothing allowed: both paths give output 0 (log-sum-exp -inf), checked by the tests. The compiled
  CPU kernel refuses ``return_lse=True`` ("torch.compile on CPU only supports inference and `return_lse` is not
  supported yet"), so only the eager path double-checks with the log-sum-exp. The compiled CPU kernel is
  inference-only (no backward); with gradients :func:`flex_attention` runs eager flex, whose backward on the CPU
  raises NotImplementedError.
* A mask_mod that creates tensors inside (``torch.tensor(...)``, ``torch.zeros(())``) does not compile: the mask
  lowering fails with "'Tensor' object has no attribute 'get_dtype'". The project's ``index_hash`` does this, so
  ``bigbird`` and ``random_static`` run eager flex (correct, unfused). Deriving its constants from the index
  tensors (``x = idx.long() * 0``, ints used as Python ints) gives the identical hash and compiles.
"""

from __future__ import annotations

import functools
import re
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dynmask_core.masks.base import MaskMod, named

#: ``on_weights(q_start, q_end, keys, weights, allowed)``: see :func:`blockwise_attention`.
WeightsCallback = Callable[[int, int, Tensor, Tensor, Tensor], None]
MaskLike = MaskMod | Sequence[MaskMod] | None

DEFAULT_BLOCK = 128


# ----------------------------------------------------------------------------------------------------------------
# Mask functions
# ----------------------------------------------------------------------------------------------------------------


def causal_mod(q_offset: int = 0) -> MaskMod:
    """The decoder's own mask as a mask_mod: key j is allowed for query i iff j <= i + q_offset.

    The functions of this module already add their ``q_offset`` to ``q_idx``, so with them use ``causal_mod()``;
    pass ``q_offset`` only when handing the function to something that counts queries from 0 (raw
    ``create_block_mask``). Q = 2 queries at positions 2, 3 of K = 4 keys:

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(causal_mod(2), 2, 4)))
    ■■■□
    ■■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return kv_idx <= q_idx + q_offset

    return named(mask, "causal" if q_offset == 0 else f"causal_o{q_offset}")


def and_masks(*mods: MaskMod) -> MaskMod:
    """A mask_mod allowing what every one of ``mods`` allows (``True`` everywhere when given none).

    >>> from dynmask_core.masks.base import dense, draw
    >>> from dynmask_core.masks.static import sliding_window
    >>> print(draw(dense(and_masks(causal_mod(), sliding_window(1)), 3, 3)))
    ■□□
    ■■□
    □■■
    """
    mods = tuple(mods)

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        out = (q_idx - kv_idx) == (q_idx - kv_idx)  # all True, broadcast over q and k
        for mod in mods:
            out = out & mod(b, h, q_idx, kv_idx)
        return out

    return named(mask, "&".join(getattr(m, "__name__", "mask") for m in mods) or "none")


def as_mask_mod(mask_mod: MaskLike) -> MaskMod:
    """One mask_mod from a mask_mod, a list of them (ANDed) or None (everything allowed)."""
    if mask_mod is None:
        return and_masks()
    if callable(mask_mod):
        return mask_mod
    mods = list(mask_mod)
    return mods[0] if len(mods) == 1 else and_masks(*mods)


def evaluate(mask_mod: MaskMod, q_pos: Tensor, k_pos: Tensor, n_heads: int = 1, batch: int = 1) -> Tensor:
    """The mask_mod on the grid ``q_pos x k_pos`` (1-D absolute positions), vectorised.

    Returns:
        ``(Bm, Hm, len(q_pos), len(k_pos))`` bool, ``Bm`` = 1 unless the mask depends on ``b`` (then ``batch``),
        ``Hm`` = 1 unless it depends on ``h`` (then ``n_heads``); the last two dimensions are materialised.
    """
    device = q_pos.device
    b = torch.zeros((), dtype=torch.long, device=device) if batch == 1 else \
        torch.arange(batch, device=device).view(-1, 1, 1, 1)
    h = torch.arange(n_heads, device=device).view(-1, 1, 1)
    out = torch.as_tensor(mask_mod(b, h, q_pos.view(-1, 1), k_pos.view(1, -1)), device=device)
    if out.dtype != torch.bool:
        out = out != 0
    out = out.reshape((1,) * (4 - out.dim()) + tuple(out.shape))
    return out.expand(out.shape[0], out.shape[1], q_pos.numel(), k_pos.numel())


# ----------------------------------------------------------------------------------------------------------------
# Tiles
# ----------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BlockLayout:
    """Which (query block, key block) tiles of a mask have an allowed entry, and which are fully allowed.

    Attributes:
        q_len, k_len: Q and K.
        block: Tile side (the last tile of each axis may be shorter).
        q_offset: Absolute position of query 0.
        any: ``(Bm, Hm, nQ, nK)`` bool, the tile has at least one allowed entry (``Bm``/``Hm`` are 1 unless the
            mask depends on the batch item / the head).
        full: ``(Bm, Hm, nQ, nK)`` bool, every entry of the tile is allowed (edge tiles cut short: never full).
        allowed_entries: Allowed (query, key) entries summed over the ``Bm x Hm`` evaluated masks.
    """

    q_len: int
    k_len: int
    block: int
    q_offset: int
    any: Tensor
    full: Tensor
    allowed_entries: int

    @property
    def density(self) -> float:
        """Fraction of the Q x K entries allowed (averaged over heads / batch items when the mask depends on them)."""
        b, h = self.any.shape[:2]
        return self.allowed_entries / max(1, b * h * self.q_len * self.k_len)

    @property
    def tile_density(self) -> float:
        """Fraction of tiles with an allowed entry (what a tile-skipping kernel pays for)."""
        return float(self.any.float().mean()) if self.any.numel() else 0.0

    def row_tiles(self, i: int) -> Tensor:
        """Key-tile indices (ascending) with an allowed entry for query block ``i``, any batch item or head."""
        return self.any[:, :, i].flatten(0, 1).any(0).nonzero().flatten()

    def row_full(self, i: int) -> bool:
        """True when every tile that query block ``i`` touches is full for every head (no mask to apply)."""
        row = self.any[:, :, i]
        return bool((self.full[:, :, i] == row).all()) and bool((row == row[:1, :1]).all())


def block_layout(mask_mod: MaskLike, q_len: int, k_len: int, n_heads: int = 1, block: int = DEFAULT_BLOCK,
                 q_offset: int = 0, *, batch: int = 1, device: torch.device | str = "cpu") -> BlockLayout:
    """The tiles of ``mask_mod`` on Q queries (absolute positions ``q_offset ...``) x K keys.

    The mask_mod is evaluated vectorised, one row of tiles at a time: the largest temporaries are
    ``(Bm, Hm, block, K)`` (bool, and whatever index arithmetic the mask_mod does on that grid, int64 for the
    project's strategies): ~9 MB per int64 temporary at K = 8192 and block = 128, never the Q x K matrix.

    Returns:
        A :class:`BlockLayout`; ``Hm`` = ``n_heads`` only if the mask depends on the head.
    """
    if block < 1 or q_len < 0 or k_len < 0:
        raise ValueError(f"block must be >= 1 and lengths >= 0, got block={block}, Q={q_len}, K={k_len}")
    mod = as_mask_mod(mask_mod)
    n_q, n_k = -(-q_len // block), -(-k_len // block)
    k_pos = torch.arange(k_len, device=device)
    rows_any, rows_full, counts = [], [], []
    for i in range(n_q):
        q0, q1 = i * block, min(q_len, (i + 1) * block)
        m = evaluate(mod, torch.arange(q0, q1, device=device) + q_offset, k_pos, n_heads, batch)
        a, f = _tiles(m, block, n_k)
        rows_any.append(a)
        rows_full.append(f)
        counts.append((int(m.sum()), m.shape[0] * m.shape[1]))
    bm = max((r.shape[0] for r in rows_any), default=1)
    hm = max((r.shape[1] for r in rows_any), default=1)
    if not rows_any:  # Q = 0
        empty = torch.zeros(1, 1, 0, n_k, dtype=torch.bool, device=device)
        return BlockLayout(q_len, k_len, block, q_offset, empty, empty, 0)
    any_ = torch.stack([r.expand(bm, hm, n_k) for r in rows_any], dim=2)
    full = torch.stack([r.expand(bm, hm, n_k) for r in rows_full], dim=2)
    count = sum(c * (bm * hm // planes) for c, planes in counts)  # a row that broadcast stands for bm x hm masks
    return BlockLayout(q_len, k_len, block, q_offset, any_, full, count)


def _tiles(m: Tensor, block: int, n_k: int) -> tuple[Tensor, Tensor]:
    """(any, full) per key tile of one row of tiles ``m (Bm, Hm, q, K)``: each ``(Bm, Hm, nK)``."""
    bm, hm, q, k = m.shape
    pad = n_k * block - k
    if pad:
        m = torch.nn.functional.pad(m, (0, pad), value=False)
    tiles = m.reshape(bm, hm, q, n_k, block)
    any_ = tiles.any(dim=4).any(dim=2)
    full = tiles.all(dim=4).all(dim=2) if q == block else torch.zeros_like(any_)
    return any_, full


def _tile_keys(tiles: Tensor, block: int, k_len: int) -> tuple[Tensor, slice | None]:
    """Key positions (ascending) covered by key tiles ``tiles``, and a slice when they are one contiguous run."""
    if tiles.numel() == 0:
        return tiles.new_zeros(0), slice(0, 0)
    first, last = int(tiles[0]), int(tiles[-1])
    if last - first + 1 == tiles.numel():
        stop = min(k_len, (last + 1) * block)
        return torch.arange(first * block, stop, device=tiles.device), slice(first * block, stop)
    keys = (tiles.view(-1, 1) * block + torch.arange(block, device=tiles.device)).flatten()
    return keys[keys < k_len], None


# ----------------------------------------------------------------------------------------------------------------
# Dense references: eager and SDPA
# ----------------------------------------------------------------------------------------------------------------


def _check(query: Tensor, key: Tensor, value: Tensor) -> None:
    if query.dim() != 4 or key.shape != value.shape or key.shape[:2] != query.shape[:2] \
            or key.shape[-1] != query.shape[-1]:
        raise ValueError(f"expected query (B, H, Q, D) and key/value (B, H, K, D) with equal B, H, D; got "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")


def eager_attention(query: Tensor, key: Tensor, value: Tensor, allowed: Tensor | None, scale: float,
                    return_weights: bool = False) -> Tensor | tuple[Tensor, Tensor]:
    """The eager path with a dense mask (what ``dynmask_attention`` does): full ``(B, H, Q, K)`` float32 weights.

    Args:
        allowed: bool broadcastable to ``(B, H, Q, K)``, or None (everything allowed).
        return_weights: Also return the float32 weights.
    """
    _check(query, key, value)
    scores = (torch.matmul(query, key.transpose(-1, -2)) * scale).float()
    if allowed is not None:
        scores = scores.masked_fill_(~allowed, torch.finfo(scores.dtype).min)
    weights = torch.softmax(scores, dim=-1)
    if allowed is not None:
        has_any = allowed.any(dim=-1, keepdim=True)
        if not bool(has_any.all()):
            weights = weights * has_any
    out = torch.matmul(weights.to(value.dtype), value).to(query.dtype)
    return (out, weights) if return_weights else out


def sdpa_attention(query: Tensor, key: Tensor, value: Tensor, allowed: Tensor | None, scale: float) -> Tensor:
    """``torch.nn.functional.scaled_dot_product_attention`` with a dense boolean mask; empty rows give 0.

    SDPA leaves NaN (or garbage) in rows where nothing is allowed; those rows are set to 0 (``torch.where``, so a
    NaN cannot leak through a multiplication).

    Args:
        allowed: bool broadcastable to ``(B, H, Q, K)`` (``(Q, K)``, ``(1, 1, Q, K)``, ``(1, H, Q, K)``...), or None.
    """
    _check(query, key, value)
    if allowed is not None and allowed.dtype != torch.bool:
        raise ValueError(f"allowed must be a bool mask (True = may attend), got {allowed.dtype}")
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=allowed, scale=scale)
    if allowed is not None:
        has_any = allowed.any(dim=-1, keepdim=True)
        if not bool(has_any.all()):
            out = torch.where(has_any, out, torch.zeros((), dtype=out.dtype, device=out.device))
    return out.to(query.dtype)


# ----------------------------------------------------------------------------------------------------------------
# FlexAttention
# ----------------------------------------------------------------------------------------------------------------


#: mask_mod name -> why compiling flex with it failed (per process): later calls with it go eager at once.
COMPILE_FAILED: dict[str, str] = {}


def error_line(exc: BaseException) -> str:
    """The telling line of a (long, multi-line) compile error: the first ``SomethingError: ...`` line."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    telling = next((line for line in lines if re.match(r"^[\w.]+(Error|Exception): ", line)), None)
    return f"{type(exc).__name__}: {telling or (lines[0] if lines else '')}"


def _compile_failed(name: str, exc: Exception) -> None:
    COMPILE_FAILED[name] = error_line(exc)[:300]
    warnings.warn(f"compiled flex_attention failed for mask {name!r} ({COMPILE_FAILED[name]}); it runs eagerly "
                  "(unfused, full scores) for this mask from now on", RuntimeWarning, stacklevel=3)


@functools.cache
def compiled_flex() -> Callable[..., object]:
    """``torch.compile(flex_attention)``, made once per process (compiling is lazy: the first call pays)."""
    from torch.nn.attention.flex_attention import flex_attention as flex

    return torch.compile(flex)


def _offset_mod(mod: MaskMod, q_offset: int) -> MaskMod:
    if q_offset == 0:
        return mod

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return mod(b, h, q_idx + q_offset, kv_idx)

    return named(mask, f"{getattr(mod, '__name__', 'mask')}_o{q_offset}")


def flex_block_mask(mask_mod: MaskLike, q_len: int, k_len: int, n_heads: int = 1, block: int = DEFAULT_BLOCK,
                    q_offset: int = 0, *, layout: BlockLayout | None = None, batch: int = 1):
    """A FlexAttention ``BlockMask`` for ``mask_mod``, built from :func:`block_layout` (no dense Q x K mask).

    It holds the same tiles as ``create_block_mask(mask_mod shifted by q_offset, Bm, Hm, Q, K, BLOCK_SIZE=block)``;
    the BlockMask's own mask_mod counts queries from 0, so it is the shifted one.
    """
    from torch.nn.attention.flex_attention import BlockMask

    mod = as_mask_mod(mask_mod)
    if layout is None:
        layout = block_layout(mod, q_len, k_len, n_heads, block, q_offset, batch=batch)
    partial = layout.any & ~layout.full

    def table(tiles: Tensor) -> tuple[Tensor, Tensor]:
        count = tiles.sum(dim=-1).to(torch.int32)
        order = torch.argsort((~tiles).to(torch.int8), dim=-1, stable=True).to(torch.int32)
        return count, order

    kv_num, kv_idx = table(partial)
    full_num, full_idx = table(layout.full)
    return BlockMask.from_kv_blocks(kv_num, kv_idx, full_num, full_idx, BLOCK_SIZE=layout.block,
                                    mask_mod=_offset_mod(mod, layout.q_offset), seq_lengths=(q_len, k_len))


def flex_attention(query: Tensor, key: Tensor, value: Tensor, mask_mod: MaskLike, scale: float,
                   q_offset: int = 0, *, block: int = DEFAULT_BLOCK, compiled: bool = True,
                   block_mask=None, layout: BlockLayout | None = None, fallback: bool = True) -> Tensor:
    """``torch.nn.attention.flex_attention`` under ``mask_mod``; rows with nothing allowed give 0.

    Args:
        mask_mod: A mask_mod, a list of them (ANDed) or None; ``q_idx`` is absolute (``q_offset`` added).
        compiled: Use :func:`compiled_flex` (the fused kernel). False runs eager flex, which materialises the full
            scores (a reference only). Eager is also used when gradients are wanted (the compiled CPU kernel is
            inference-only) and, after a warning, for a mask_mod (by ``__name__``) whose compilation failed
            (:data:`COMPILE_FAILED` says why).
        block_mask: A ``BlockMask`` made earlier for these sizes (e.g. by :func:`flex_block_mask`): reuse it
            across layers; else one is built from ``layout`` or from the mask_mod.
        layout: A :func:`block_layout` of the mask for these sizes, to build the BlockMask from.
        fallback: When compiling fails, run eager flex (True) or raise (False: e.g. where the full scores eager
            flex materialises would not fit).
    """
    from torch.nn.attention.flex_attention import AuxRequest
    from torch.nn.attention.flex_attention import flex_attention as flex

    _check(query, key, value)
    b, h, q_len, _ = query.shape
    if block_mask is None:
        block_mask = flex_block_mask(mask_mod, q_len, key.shape[-2], h, block, q_offset, layout=layout, batch=b)
    grad = torch.is_grad_enabled() and any(t.requires_grad for t in (query, key, value))
    name = getattr(block_mask.mask_mod, "__name__", "mask")
    if compiled and not grad and name not in COMPILE_FAILED:
        try:
            # return_lse is refused by the compiled CPU kernel in torch 2.13; rows with nothing allowed come out 0
            return compiled_flex()(query, key, value, block_mask=block_mask, scale=scale).to(query.dtype)
        except Exception as exc:  # noqa: BLE001  (inductor missing a compiler, an op the mask lowering lacks...)
            _compile_failed(name, exc)
            if not fallback:
                raise
    elif compiled and not fallback:
        raise RuntimeError(f"compiled flex is not available here: "
                           f"{'gradients are wanted' if grad else COMPILE_FAILED[name]}")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*flex_attention called without torch.compile.*")
        out, aux = flex(query, key, value, block_mask=block_mask, scale=scale, return_aux=AuxRequest(lse=True))
    empty = torch.isneginf(aux.lse) | torch.isnan(aux.lse)  # (B, H, Q): no allowed key
    out = torch.where(empty.unsqueeze(-1), torch.zeros((), dtype=out.dtype, device=out.device), out)
    return out.to(query.dtype)


# ----------------------------------------------------------------------------------------------------------------
# Blockwise exact attention
# ----------------------------------------------------------------------------------------------------------------


def blockwise_attention(query: Tensor, key: Tensor, value: Tensor, mask_mod: MaskLike, scale: float,
                        q_offset: int = 0, block: int = DEFAULT_BLOCK, on_weights: WeightsCallback | None = None,
                        *, layout: BlockLayout | None = None, stats: dict | None = None) -> Tensor:
    """Exact eager attention, one query block at a time, over only the key tiles with an allowed entry.

    For query block ``[q_start, q_end)`` it finds the key tiles any head allows (from ``layout``, or by evaluating
    the mask_mod on that block's ``(block, K)`` row), takes those keys (a view when they are one contiguous run,
    a gather otherwise), and computes scores ``(B, H, q_end - q_start, n)``, the hard-masked float32 softmax over
    them (rows with nothing allowed: all 0) and the weights @ V. Every weight outside the covered keys is exactly 0
    in the eager path too (it only ever blocks them), so nothing is lost: memory is O(B x H x block x n) and time
    follows the tiles the mask touches. Heads share the union of their tiles.

    Args:
        mask_mod: A mask_mod, a list of them (ANDed: e.g. ``[causal_mod(), strategy]``), or None.
        q_offset: Absolute position of query 0 (``K - Q`` in a decoder with a cache).
        block: Query and key tile side.
        on_weights: Called once per query block, in order, with ``(q_start, q_end, keys, weights, allowed)``:

            * ``q_start, q_end``: ints, the rows ``[q_start, q_end)`` of this block (0-based; add ``q_offset``
              for absolute positions);
            * ``keys``: ``(n,)`` int64 absolute key positions covered, ascending and unique (``n`` may be 0);
            * ``weights``: ``(B, H, q_end - q_start, n)`` float32, the exact eager weights on those keys (the
              weights on every other key are exactly 0); rows of one block sum to 1, or to 0 when nothing is
              allowed;
            * ``allowed``: ``(Bm, Hm, q_end - q_start, n)`` bool (``Bm``, ``Hm`` 1 or B, H: broadcast it), the
              mask on those keys; every key outside ``keys`` is blocked.

            A caller can then keep per-row summaries (entropy ``-(w * log w).sum(-1)``, mean distance
            ``(w * (q - keys).abs()).sum(-1)``, the share on key 0 ``w[..., keys == 0]``, the fraction allowed
            ``allowed.sum(-1) / K``), block-pooled maps (``index_add_`` over ``keys // pool``), or full rows for
            chosen heads (``row[..., keys] = w[:, head]``) without the full matrix. It runs after the block's
            output is made, so changing the tensors in place changes nothing; they are not reused afterwards.
        layout: A :func:`block_layout` of this mask for these sizes and ``block`` (compute it once per forward and
            pass it to every layer). Without it the mask is evaluated row by row here (no extra pass).
        stats: If given, filled with ``tiles`` (tiles visited, summed over query blocks), ``keys`` (keys covered,
            summed) and ``largest`` (the most elements of any scores tensor made).

    Returns:
        ``(B, H, Q, D)`` in the query's dtype.
    """
    _check(query, key, value)
    b, h, q_len, d = query.shape
    k_len = key.shape[-2]
    mod = as_mask_mod(mask_mod)
    if layout is not None and (layout.q_len, layout.k_len, layout.block, layout.q_offset) != \
            (q_len, k_len, block, q_offset):
        raise ValueError(f"the layout is for Q={layout.q_len}, K={layout.k_len}, block={layout.block}, "
                         f"q_offset={layout.q_offset}; this call has {q_len}, {k_len}, {block}, {q_offset}")
    n_k = -(-k_len // block)
    out = torch.zeros(b, h, q_len, d, dtype=value.dtype, device=query.device)
    k_all = torch.arange(k_len, device=query.device)
    neg = torch.finfo(torch.float32).min
    tally = {"tiles": 0, "keys": 0, "largest": 0}
    for i in range(-(-q_len // block)):
        q0, q1 = i * block, min(q_len, (i + 1) * block)
        q_pos = torch.arange(q0, q1, device=query.device) + q_offset
        if layout is None:
            row = evaluate(mod, q_pos, k_all, h, b)  # (Bm, Hm, q, K)
            tiles = _tiles(row, block, n_k)[0].flatten(0, 1).any(0).nonzero().flatten()
            keys, run = _tile_keys(tiles, block, k_len)
            allowed = row[..., run] if run is not None else row.index_select(-1, keys)
            no_mask = False
        else:
            tiles = layout.row_tiles(i)
            keys, run = _tile_keys(tiles, block, k_len)
            no_mask = layout.row_full(i)
            allowed = None if no_mask else evaluate(mod, q_pos, keys, h, b)
        tally["tiles"] += tiles.numel()
        tally["keys"] += keys.numel()
        if keys.numel() == 0:
            if on_weights is not None:
                on_weights(q0, q1, keys, query.new_zeros(b, h, q1 - q0, 0, dtype=torch.float32),
                           torch.zeros(1, 1, q1 - q0, 0, dtype=torch.bool, device=query.device))
            continue
        k_blk = key[:, :, run] if run is not None else key.index_select(2, keys)
        v_blk = value[:, :, run] if run is not None else value.index_select(2, keys)
        scores = (torch.matmul(query[:, :, q0:q1], k_blk.transpose(-1, -2)) * scale).float()
        tally["largest"] = max(tally["largest"], scores.numel())
        if allowed is not None:
            scores.masked_fill_(~allowed, neg)
        weights = torch.softmax(scores, dim=-1)
        if allowed is not None:
            has_any = allowed.any(dim=-1, keepdim=True)
            if not bool(has_any.all()):
                weights = weights * has_any
        out[:, :, q0:q1] = torch.matmul(weights.to(value.dtype), v_blk)
        if on_weights is not None:  # after the output is made: what the callback does to the tensors changes nothing
            if allowed is None:
                allowed = torch.ones(1, 1, q1 - q0, keys.numel(), dtype=torch.bool, device=query.device)
            on_weights(q0, q1, keys, weights, allowed)
    if stats is not None:
        stats.update(tally)
    return out.to(query.dtype)


def mask_density(mask_mod: MaskLike, q_len: int, k_len: int, n_heads: int = 1, q_offset: int = 0) -> float:
    """Fraction of the Q x K entries ``mask_mod`` allows (averaged over heads), without a dense matrix."""
    return block_layout(mask_mod, q_len, k_len, n_heads, DEFAULT_BLOCK, q_offset).density


__all__ = [
    "COMPILE_FAILED", "DEFAULT_BLOCK", "BlockLayout", "and_masks", "as_mask_mod", "block_layout", "blockwise_attention",
    "causal_mod", "compiled_flex", "eager_attention", "error_line", "evaluate", "flex_attention", "flex_block_mask",
    "mask_density", "sdpa_attention",
]
