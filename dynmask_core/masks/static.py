"""Static strategies: pure index functions whose matrix depends only on sizes and parameters.

Every factory returns a FlexAttention-style ``mask_mod(b, h, q_idx, kv_idx) -> bool`` written with tensor ops
only, named after its parameters (``sliding_window_r2``). ``True`` = the query may attend to the key.
Windows count a *radius*: key j is allowed for query i iff |i - j| <= radius (HF and attention-gym count
differently; this is the only convention used here).
"""

from __future__ import annotations

import math
import textwrap
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
    parse_pairs,
    register,
)
from dynmask_core.masks.code import FLEX_STATIC, CodeContext, CodePiece, lit, num, wrapped_list
from dynmask_core.masks.plan import MAX_SEED

# ----------------------------------------------------------------------------------------------------------------
# Parameters: the one source of each default (the factories below and the registry both read them)
# ----------------------------------------------------------------------------------------------------------------

RADIUS = Param("radius", "int", 2, "key j is allowed for query i iff |i - j| <= radius", 0, 512)
WINDOW_CAUSAL = Param("causal", "bool", False, "only the window to the left (i - radius <= j <= i)")
WINDOW_SINKS = Param("sinks", "int", 0, "the first `sinks` keys stay visible to every query (attention sinks; "
                     "0 = none)", 0, 4096)
PREFIX = Param("prefix", "int", 4, "number of leading keys everybody may see", 0, 4096)
DILATION = Param("dilation", "int", 2, "stride between visible keys", 1, 64)
STRIDE = Param("stride", "int", 3, "stride l", 1, 512)
PATTERN = Param("pattern", "choice", "strided", "which Sparse Transformer pattern", choices=("strided", "fixed"))
STRIDED_CAUSAL = Param("causal", "bool", True, "keep j <= i as in the paper")
BLOCK = Param("block", "int", 2, "tokens per block", 1, 128)
N_GLOBAL = Param("n_global", "int", 1, "leading blocks that see and are seen by everyone", 0, 64)
N_RANDOM = Param("n_random", "int", 1, "random key blocks per query block", 0, 16)
BIGBIRD_SEED = Param("seed", "int", 0, "fixes the random blocks once (same for every input)", 0, MAX_SEED)
BLOCK_P = Param("p", "float", 0.3, "probability that an entry is blocked (the diagonal is always kept)", 0.0, 1.0)
PATTERN_SEED = Param("seed", "int", 0, "the fixed seed the pattern was drawn from", 0, MAX_SEED)
NEIGHBOURS = Param("radius", "int", 1, "patches within this many rows and columns are visible", 0, 64)
HEADS_OFF = Param("off", "pairs", "", "layer.head pairs to switch off, e.g. '0.3 2.5' (empty: every head the "
                  "plan's layers and heads select)")
ALIBI_SCALE = Param("scale", "float", 1.0, "multiplies the per-head slopes m_h = 2^(-8h/H)", 0.0, 16.0)

# ----------------------------------------------------------------------------------------------------------------
# Factories (the mask functions themselves)
# ----------------------------------------------------------------------------------------------------------------


def full() -> MaskMod:
    """Full attention: every query sees every key (the model's own padding/causal masks still apply).

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(full(), 3, 3)))
    ■■■
    ■■■
    ■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return (q_idx - kv_idx) == (q_idx - kv_idx)

    return named(mask, "none")


def causal() -> MaskMod:
    """Causal: key j is allowed for query i iff j <= i.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(causal(), 5, 5)))
    ■□□□□
    ■■□□□
    ■■■□□
    ■■■■□
    ■■■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return kv_idx <= q_idx

    return named(mask, "causal")


def prefix_lm(prefix: int = PREFIX.default) -> MaskMod:
    """Prefix LM: the first ``prefix`` keys are visible to everyone, the rest causally (j < prefix or j <= i).

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(prefix_lm(2), 5, 5)))
    ■■□□□
    ■■□□□
    ■■■□□
    ■■■■□
    ■■■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return (kv_idx < prefix) | (kv_idx <= q_idx)

    return named(mask, f"prefix_lm_p{prefix}")


def sliding_window(radius: int = RADIUS.default, causal: bool = WINDOW_CAUSAL.default,
                   sinks: int = WINDOW_SINKS.default) -> MaskMod:
    """Sliding window: |i - j| <= radius; the causal variant allows i - radius <= j <= i.

    ``sinks`` keeps the first ``sinks`` keys (j < sinks) visible to every query as well: the attention sinks of
    StreamingLLM (Xiao et al., ICLR 2024), which a causal LM parks much of its attention on. With ``causal`` they
    stay causal too (j <= i). ``sinks=0`` is the plain window.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(sliding_window(1), 5, 5)))
    ■■□□□
    ■■■□□
    □■■■□
    □□■■■
    □□□■■
    >>> print(draw(dense(sliding_window(1, causal=True), 5, 5)))
    ■□□□□
    ■■□□□
    □■■□□
    □□■■□
    □□□■■
    >>> print(draw(dense(sliding_window(1, causal=True, sinks=1), 5, 5)))
    ■□□□□
    ■■□□□
    ■■■□□
    ■□■■□
    ■□□■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        d = q_idx - kv_idx
        window = (d >= 0) & (d <= radius) if causal else d.abs() <= radius
        if sinks <= 0:
            return window
        sink = kv_idx < sinks
        return window | ((sink & (d >= 0)) if causal else sink)

    name = f"sliding_window_r{radius}" + ("_causal" if causal else "") + (f"_s{sinks}" if sinks > 0 else "")
    return named(mask, name)


def dilated(radius: int = RADIUS.default, dilation: int = DILATION.default) -> MaskMod:
    """Dilated window: |i - j| <= radius * dilation and (i - j) mod dilation == 0.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(dilated(1, 2), 5, 5)))
    ■□■□□
    □■□■□
    ■□■□■
    □■□■□
    □□■□■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        d = q_idx - kv_idx
        return (d.abs() <= radius * dilation) & (torch.remainder(d, dilation) == 0)

    return named(mask, f"dilated_r{radius}_d{dilation}")


def strided(stride: int = STRIDE.default, pattern: str = PATTERN.default,
            causal: bool = STRIDED_CAUSAL.default) -> MaskMod:
    """Sparse Transformer patterns (Child et al. 2019) with stride l.

    ``strided``: a local band of the previous l keys, plus every l-th key before it ((i - j) mod l == 0).
    ``fixed``: keys in the same block of l, plus the last key of every block (a "summary" column).
    ``causal`` keeps j <= i (the paper's autoregressive setting); without it both patterns are mirrored.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(strided(2), 5, 5)))
    ■□□□□
    ■■□□□
    ■■■□□
    □■■■□
    ■□■■■
    >>> print(draw(dense(strided(2, "fixed"), 5, 5)))
    ■□□□□
    ■■□□□
    □■■□□
    □■■■□
    □■□■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        d = q_idx - kv_idx
        if pattern == "fixed":
            same_block = torch.div(q_idx, stride, rounding_mode="floor") == torch.div(
                kv_idx, stride, rounding_mode="floor"
            )
            allowed = same_block | (torch.remainder(kv_idx, stride) == stride - 1)
        else:
            allowed = (d.abs() < stride) | (torch.remainder(d, stride) == 0)
        if causal:
            allowed = allowed & (d >= 0)
        return allowed

    return named(mask, f"strided_{pattern}_l{stride}" + ("" if causal else "_bidir"))


def bigbird(block: int = BLOCK.default, n_global: int = N_GLOBAL.default, n_random: int = N_RANDOM.default,
            seed: int = BIGBIRD_SEED.default, kv_len: int = 64) -> MaskMod:
    """BigBird (Zaheer et al. 2020) on blocks of ``block`` tokens: global + sliding window + random blocks.

    Query block a and key block c are allowed iff a or c is one of the first ``n_global`` blocks, or |a - c| <= 1,
    or c is one of the ``n_random`` key blocks drawn for a from ``seed`` (fixed once: the same for every input).
    ``kv_len`` sets how many key blocks exist to draw from.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(bigbird(1, 1, 0, kv_len=5), 5, 5)))
    ■■■■■
    ■■■□□
    ■■■■□
    ■□■■■
    ■□□■■
    """
    n_blocks = max(1, math.ceil(kv_len / block))

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        qb = torch.div(q_idx, block, rounding_mode="floor")
        kb = torch.div(kv_idx, block, rounding_mode="floor")
        allowed = (qb < n_global) | (kb < n_global) | ((qb - kb).abs() <= 1)
        for t in range(n_random):
            pick = (index_hash(seed, qb, t) * n_blocks).long()
            allowed = allowed | (kb == pick)
        return allowed

    return named(mask, f"bigbird_b{block}_g{n_global}_r{n_random}_s{seed}")


def _cell(idx: Tensor, cols: int, prefix: int) -> tuple[Tensor, Tensor, Tensor]:
    """(is a patch, row, column) of token positions on a patch grid with ``prefix`` tokens (CLS) in front."""
    patch = idx - prefix
    return patch >= 0, torch.div(patch, cols, rounding_mode="floor"), torch.remainder(patch, cols)


def neighborhood2d(radius: int = NEIGHBOURS.default, rows: int = 4, cols: int = 4, prefix: int = 1) -> MaskMod:
    """Neighbourhood attention on the patch grid: patch (r, c) sees patches with |r - r'| <= radius and
    |c - c'| <= radius (a square window); prefix tokens (CLS) see and are seen by everyone.

    Tokens: ``prefix`` first, then the ``rows x cols`` patches row by row. A 2 x 2 grid after CLS, radius 0:

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(neighborhood2d(0, 2, 2, 1), 5, 5)))
    ■■■■■
    ■■□□□
    ■□■□□
    ■□□■□
    ■□□□■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        qp, qr, qc = _cell(q_idx, cols, prefix)
        kp, kr, kc = _cell(kv_idx, cols, prefix)
        near = ((qr - kr).abs() <= radius) & ((qc - kc).abs() <= radius)
        return ~qp | ~kp | near

    return named(mask, f"neighborhood2d_r{radius}_{rows}x{cols}")


def axial(rows: int = 4, cols: int = 4, prefix: int = 1) -> MaskMod:
    """Axial attention on the patch grid: patch (r, c) sees the patches of row r and of column c; prefix tokens (CLS)
    see and are seen by everyone. A 2 x 2 grid after CLS:

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(axial(2, 2, 1), 5, 5)))
    ■■■■■
    ■■■■□
    ■■■□■
    ■■□■■
    ■□■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        qp, qr, qc = _cell(q_idx, cols, prefix)
        kp, kr, kc = _cell(kv_idx, cols, prefix)
        return ~qp | ~kp | (qr == kr) | (qc == kc)

    return named(mask, f"axial_{rows}x{cols}")


def document(segments: Tensor) -> MaskMod:
    """Block-diagonal over segments (sentences, packed documents): i and j must share a segment id.

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(document(torch.tensor([0, 0, 1, 1, 1])), 5, 5)))
    ■■□□□
    ■■□□□
    □□■■■
    □□■■■
    □□■■■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return segments[q_idx] == segments[kv_idx]

    return named(mask, f"document_n{int(segments.max().item()) + 1 if segments.numel() else 0}")


def random_static(p: float = BLOCK_P.default, seed: int = PATTERN_SEED.default) -> MaskMod:
    """A Bernoulli pattern drawn once from ``seed``: each entry is blocked with probability p, the diagonal kept.

    It is a hash of (seed, i, j), so every input and every run sees the very same pattern (a longer input just sees
    more of it).

    >>> from dynmask_core.masks.base import dense, draw
    >>> print(draw(dense(random_static(0.5, seed=1), 5, 5)))
    ■□■□□
    □■■■■
    ■□■□□
    □■■■□
    □□□□■
    """

    def mask(b: Tensor, h: Tensor, q_idx: Tensor, kv_idx: Tensor) -> Tensor:
        return (index_hash(seed, q_idx, kv_idx) >= p) | (q_idx == kv_idx)

    return named(mask, f"random_static_p{p:g}_s{seed}")


def alibi_slopes(n_heads: int) -> Tensor:
    """ALiBi's head slopes m_h = 2^(-8 (h + 1) / H) (Press et al. 2022), ``(H,)``."""
    return torch.pow(2.0, -8.0 * torch.arange(1, n_heads + 1, dtype=torch.float32) / n_heads)


# ----------------------------------------------------------------------------------------------------------------
# Code templates: each strategy as self-contained PyTorch, parameters baked in (see masks/code.py)
# ----------------------------------------------------------------------------------------------------------------


_BODY = " " * 12  # the indentation of a function body in the templates below


def _full_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    return CodePiece("index", f"full{c.suffix}", f'''
        def full{c.suffix}(b, h, q_idx, kv_idx):
            """None (full attention): every query may attend to every key."""
            return (q_idx - kv_idx) == (q_idx - kv_idx)
    ''', flex="Yes, trivially: nothing is blocked, so no tile is skipped (only the model's own mask can be).")


def _padding_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    flex = "Yes: a key-padding index function; tiles of padding keys are skipped."
    if c.key_padding is None:
        return CodePiece("index", f"padding{c.suffix}", f'''
            def padding{c.suffix}(b, h, q_idx, kv_idx):
                """Padding: padding keys are blocked. This run's input had no padding, so every key is real (inside
                apply() the model's own padding mask still applies to every input)."""
                return kv_idx >= 0
        ''', flex=flex)
    return CodePiece("index", f"padding{c.suffix}", f'''
        def padding{c.suffix}(b, h, q_idx, kv_idx):
            """Padding: the keys that are padding in this run's input (KEY_PADDING, True = a real token) are
            blocked."""
            return KEY_PADDING[kv_idx]
    ''', constants=("KEY_PADDING",), flex=flex)


def _causal_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    return CodePiece("index", f"causal{c.suffix}", f'''
        def causal{c.suffix}(b, h, q_idx, kv_idx):
            """Causal: key j is allowed for query i iff j <= i."""
            return kv_idx <= q_idx
    ''', flex=FLEX_STATIC + " About half the tiles (above the diagonal) are empty.")


def _prefix_lm_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    n = p["prefix"]
    return CodePiece("index", f"prefix_lm_p{n}{c.suffix}", f'''
        def prefix_lm_p{n}{c.suffix}(b, h, q_idx, kv_idx):
            """Prefix LM: the first {n} keys are visible to everyone, the rest causally (j < {n} or j <= i)."""
            return (kv_idx < {n}) | (kv_idx <= q_idx)
    ''', flex=FLEX_STATIC)


def _sliding_window_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    r, causal_, sinks = p["radius"], p["causal"], p["sinks"]
    name = f"sliding_window_r{r}" + ("_causal" if causal_ else "") + (f"_s{sinks}" if sinks > 0 else "") + c.suffix
    rule = f"i - {r} <= j <= i" if causal_ else f"|i - j| <= {r}"
    window = f"(d >= 0) & (d <= {r})" if causal_ else f"d.abs() <= {r}"
    if sinks <= 0:
        body, doc = f"return {window}", ""
    else:
        sink = f"((kv_idx < {sinks}) & (d >= 0))" if causal_ else f"(kv_idx < {sinks})"
        body = f"window = {window}\n{_BODY}return window | {sink}"
        doc = f", plus the first {sinks} key{'s' if sinks > 1 else ''} (attention sinks)"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Sliding window: key j is allowed for query i iff {rule}{doc}."""
            d = q_idx - kv_idx
            {body}
    ''', flex=FLEX_STATIC + " Only the tiles along the band (and the sink column) are computed.")


def _dilated_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    r, dil = p["radius"], p["dilation"]
    name = f"dilated_r{r}_d{dil}{c.suffix}"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Dilated window: |i - j| <= {r} * {dil} and (i - j) mod {dil} == 0."""
            d = q_idx - kv_idx
            return (d.abs() <= {r * dil}) & (torch.remainder(d, {dil}) == 0)
    ''', flex="Yes: tiles outside the band are skipped; tiles inside it are computed in full and masked (the gaps "
                 "of a dilation are finer than a tile).")


def _strided_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    l_, pattern, causal_ = p["stride"], p["pattern"], p["causal"]
    name = f"strided_{pattern}_l{l_}" + ("" if causal_ else "_bidir") + c.suffix
    if pattern == "fixed":
        rule = f"same block of {l_}, or the last key of every block"
        body = (f"same_block = torch.div(q_idx, {l_}, rounding_mode=\"floor\") == torch.div(kv_idx, {l_}, "
                f"rounding_mode=\"floor\")\n{_BODY}allowed = same_block | (torch.remainder(kv_idx, {l_}) == {l_ - 1})")
    else:
        rule = f"|i - j| < {l_}, or (i - j) mod {l_} == 0"
        body = f"allowed = (d.abs() < {l_}) | (torch.remainder(d, {l_}) == 0)"
    tail = "return allowed & (d >= 0)" if causal_ else "return allowed"
    if pattern == "fixed" and not causal_:
        body = body.replace(f"\n{_BODY}", f"\n{_BODY}", 1)
        first = "# blocks of the stride, and the last key of every block"
    else:
        first = "d = q_idx - kv_idx"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Sparse Transformer {pattern} pattern (Child et al. 2019): {rule}{", and j <= i" if causal_ else ""}."""
            {first}
            {body}
            {tail}
    ''', flex="Yes: the local band's tiles and the strided columns' tiles are computed, the rest skipped (the "
                 "strided columns touch every tile row, so the saving is about the band's).")


def _bigbird_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    blk, g, r, seed = p["block"], p["n_global"], p["n_random"], p["seed"]
    n_blocks = max(1, math.ceil(c.k_len / blk))
    name = f"bigbird_b{blk}_g{g}_r{r}_s{seed}{c.suffix}"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """BigBird (Zaheer et al. 2020) on blocks of {blk} tokens: query block a sees key block c iff a or c is one
            of the first {g} blocks, or |a - c| <= 1, or c is one of the {r} random blocks drawn for a from seed {seed}
            out of {n_blocks} blocks (this run's {c.k_len} keys)."""
            qb = torch.div(q_idx, {blk}, rounding_mode="floor")
            kb = torch.div(kv_idx, {blk}, rounding_mode="floor")
            allowed = (qb < {g}) | (kb < {g}) | ((qb - kb).abs() <= 1)
            for t in range({r}):
                pick = (index_hash({seed}, qb, t) * {n_blocks}).long()
                allowed = allowed | (kb == pick)
            return allowed
    ''', helpers=("index_hash",),
        flex="Yes: it is block-sparse by design (global, window and random blocks); with block = the tile size "
             "(128) every empty tile is skipped.")


def _document_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    segments = list(c.segment_ids) if c.segment_ids is not None else [0] * c.k_len
    const = f"SEGMENTS{c.suffix}"
    header = (f"# The segment (sentence) of each position of this run's input.\n"
              f"{const} = torch.tensor({wrapped_list(segments)}, dtype=torch.long)\n\n")
    return CodePiece("index", f"document{c.suffix}", header + textwrap.dedent(f'''
        def document{c.suffix}(b, h, q_idx, kv_idx):
            """Document / sentence blocks: i and j must share a segment ({const})."""
            return {const}[q_idx] == {const}[kv_idx]
    '''), constants=(const,), flex="Yes: block-diagonal; with segments of a tile or more, off-diagonal tiles are "
                                    "skipped (packed documents are its use on GPUs).")


def _random_static_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    prob, seed = p["p"], p["seed"]
    name = f"random_static_p{num(prob)}_s{seed}{c.suffix}"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Random (static): each entry is blocked with probability {prob!r} by a hash of (seed {seed}, i, j),
            drawn once and reused for every input; the diagonal is kept."""
            return (index_hash({seed}, q_idx, kv_idx) >= {lit(prob)}) | (q_idx == kv_idx)
    ''', helpers=("index_hash",),
        flex="It runs, but skips nearly nothing: a 128 x 128 tile holds an allowed entry unless p is almost 1 "
             "(unstructured sparsity saves no tiles).")


def _grid_of(c: CodeContext, strategy: str) -> tuple[int, int, int]:
    if c.grid is None:
        raise ValueError(f"{strategy} works on a 2-D grid of image patches: run it on an image input")
    return int(c.grid[0]), int(c.grid[1]), int(c.prefix)


def _neighborhood2d_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    rows, cols, prefix = _grid_of(c, "neighborhood2d")
    r = p["radius"]
    name = f"neighborhood2d_r{r}_{rows}x{cols}{c.suffix}"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Neighbourhood attention on the {rows} x {cols} patch grid after {prefix} prefix token(s): patch (r, c)
            sees patches with |r - r'| <= {r} and |c - c'| <= {r}; prefix tokens see and are seen by everyone."""
            qp, kp = q_idx - {prefix}, kv_idx - {prefix}
            qr, qc = torch.div(qp, {cols}, rounding_mode="floor"), torch.remainder(qp, {cols})
            kr, kc = torch.div(kp, {cols}, rounding_mode="floor"), torch.remainder(kp, {cols})
            near = ((qr - kr).abs() <= {r}) & ((qc - kc).abs() <= {r})
            return (qp < 0) | (kp < 0) | near
    ''', flex="Yes: a 2-D window; tiles of far-apart patch rows are skipped once the grid spans several tiles "
                 "(NATTEN-style kernels do better).")


def _axial_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    rows, cols, prefix = _grid_of(c, "axial")
    name = f"axial_{rows}x{cols}{c.suffix}"
    return CodePiece("index", name, f'''
        def {name}(b, h, q_idx, kv_idx):
            """Axial attention on the {rows} x {cols} patch grid after {prefix} prefix token(s): patch (r, c) sees its
            own row and its own column; prefix tokens see and are seen by everyone."""
            qp, kp = q_idx - {prefix}, kv_idx - {prefix}
            qr, qc = torch.div(qp, {cols}, rounding_mode="floor"), torch.remainder(qp, {cols})
            kr, kc = torch.div(kp, {cols}, rounding_mode="floor"), torch.remainder(kp, {cols})
            return (qp < 0) | (kp < 0) | (qr == kr) | (qc == kc)
    ''', flex="It runs, but skips few tiles: the column part touches every tile row (the row-major layout); "
                 "axial models run rows and columns as two separate attentions instead.")


def _alibi_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    scale = p["scale"]
    name = f"alibi_s{num(scale)}{c.suffix}"
    const = f"ALIBI_SLOPES{c.suffix}"
    return CodePiece("soft", name, f'''
        # ALiBi's head slopes m_h = 2^(-8 (h + 1) / H) (Press et al. 2022), H = {c.n_heads}.
        {const} = torch.pow(2.0, -8.0 * torch.arange(1, {c.n_heads} + 1, dtype=torch.float32) / {c.n_heads})


        def {name}(score, b, h, q_idx, kv_idx):
            """ALiBi (a FlexAttention score_mod): adds -{scale!r} * m_h * |i - j|; blocks nothing."""
            return score - {lit(scale)} * {const}[h] * (q_idx - kv_idx).abs()
    ''', constants=(const,), flex="A score_mod, not a mask: FlexAttention runs it, but it blocks nothing, so "
                                    "no tile is skipped.")


def _head_gate_code(p: Mapping[str, Any], c: CodeContext) -> CodePiece:
    pairs = parse_pairs(p["off"]) if p["off"] else ()
    layers: dict[int, list[int]] = {}
    for layer, head in pairs:
        layers.setdefault(layer, []).append(head)
    name = f"head_gate{c.suffix}"
    if pairs:
        table = "{" + ", ".join(f"{k}: {lit(tuple(v))}" for k, v in sorted(layers.items())) + "}"
        off_of = f"HEADS_OFF{c.suffix}.get(layer, ())"
        header = f"# Heads switched off, per layer (layer.head pairs {p['off']!r}).\nHEADS_OFF{c.suffix} = {table}\n\n"
        what = f"the heads HEADS_OFF{c.suffix} names for the layer are"
    else:
        off_of = f"tuple(range({c.n_heads}))"
        header = ""
        what = "every head (of the layers and heads the plan covers) is"
    return CodePiece("index", name, header + textwrap.dedent(f'''
        def {name}(layer):
            """Head gate (Michel et al. 2019): {what} switched off:
            its rows allow nothing, and {name}_gate multiplies its weights by 0 after the softmax (off in every
            apply mode)."""
            off = {off_of}

            def mask(b, h, q_idx, kv_idx):
                is_off = h < 0
                for head in off:
                    is_off = is_off | (h == head)
                return ~is_off & (q_idx >= 0) & (kv_idx >= 0)

            return mask


        def {name}_gate(layer, n_heads):
            """(1, H, 1, 1) float: 0 for the heads switched off in this layer, 1 for the others."""
            off = {off_of}
            gate = torch.ones(n_heads, dtype=torch.float32)
            gate[[head for head in off if head < n_heads]] = 0.0
            return gate.view(1, n_heads, 1, 1)
    '''), per_layer=True, gate=f"{name}_gate",
        flex="Yes: a head whose rows are all blocked has every tile skipped (FlexAttention gives its rows 0, as here).")


# ----------------------------------------------------------------------------------------------------------------
# Registry entries
# ----------------------------------------------------------------------------------------------------------------


_VASWANI = "Vaswani et al., Attention Is All You Need, NeurIPS 2017"

index_strategy(
    lambda p, ctx: full(),
    id="none", kind="static", title="None (full attention)",
    summary="Every query may attend to every key; only the model's own padding and causal masks apply.",
    reference=_VASWANI, params=(), code=_full_code,
)


def _padding_materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
    # A key is padding when no query of the model's own mask may see it.
    return MaskOut(ctx.model_allowed().any(dim=-2, keepdim=True))


register(Strategy(
    id="padding", kind="static", title="Padding",
    summary="Keys that are padding are blocked (the model applies this itself; shown explicitly here).",
    reference=_VASWANI, params=(), materialize=_padding_materialize, code=_padding_code,
    note="Static per batch: it depends on which positions are padding, not on their content.",
))
index_strategy(
    lambda p, ctx: causal(),
    id="causal", kind="static", title="Causal",
    summary="Query i sees keys j <= i: no peeking at the future.",
    reference="Vaswani et al. 2017; Radford et al., GPT, 2018", params=(), code=_causal_code,
)
index_strategy(
    lambda p, ctx: prefix_lm(p["prefix"]),
    id="prefix_lm", kind="static", title="Prefix LM",
    summary="The first `prefix` tokens are visible to all (bidirectional); the rest is causal.",
    reference="Dong et al., UniLM, NeurIPS 2019; Raffel et al., T5, JMLR 2020",
    params=(PREFIX,), code=_prefix_lm_code,
)
index_strategy(
    lambda p, ctx: sliding_window(p["radius"], p["causal"], p["sinks"]),
    id="sliding_window", kind="static", title="Sliding window",
    summary="Each query sees only keys within `radius` positions (|i - j| <= radius), plus the first `sinks` keys.",
    reference="Beltagy et al., Longformer, 2020; Jiang et al., Mistral 7B, 2023; sinks: Xiao et al., "
              "Efficient Streaming Language Models with Attention Sinks (StreamingLLM), ICLR 2024",
    params=(RADIUS, WINDOW_CAUSAL, WINDOW_SINKS), code=_sliding_window_code,
    note="`sinks` keeps the first keys visible to every query (StreamingLLM's attention sinks): a causal LM parks "
         "much of its attention on token 0, and a window that drops it can break the model.",
)
index_strategy(
    lambda p, ctx: dilated(p["radius"], p["dilation"]),
    id="dilated", kind="static", title="Dilated window",
    summary="A window with gaps: every `dilation`-th key within radius*dilation.",
    reference="Beltagy et al., Longformer, 2020; Ding et al., LongNet, 2023",
    params=(RADIUS, DILATION), code=_dilated_code,
)
index_strategy(
    lambda p, ctx: strided(p["stride"], p["pattern"], p["causal"]),
    id="strided", kind="static", title="Strided / fixed (Sparse Transformer)",
    summary="A local band plus every l-th key (strided), or blocks plus summary columns (fixed).",
    reference="Child et al., Generating Long Sequences with Sparse Transformers, 2019",
    params=(STRIDE, PATTERN, STRIDED_CAUSAL), code=_strided_code,
)
index_strategy(
    lambda p, ctx: bigbird(p["block"], p["n_global"], p["n_random"], p["seed"], ctx.k_len),
    id="bigbird", kind="static", title="BigBird",
    summary="Blocks of tokens: a few global blocks, a sliding window of blocks, and random blocks fixed by a seed.",
    reference="Zaheer et al., Big Bird: Transformers for Longer Sequences, NeurIPS 2020",
    params=(BLOCK, N_GLOBAL, N_RANDOM, BIGBIRD_SEED), code=_bigbird_code,
    note="The random blocks are drawn once from the seed, so the pattern is static.",
)


def _segments(ctx: MaskContext) -> Tensor:
    if ctx.segment_ids is None:
        return torch.zeros(ctx.k_len, dtype=torch.long, device=ctx.device)
    return ctx.segment_ids.to(ctx.device)


index_strategy(
    lambda p, ctx: document(_segments(ctx)),
    id="document", kind="static", title="Document / sentence blocks",
    summary="Tokens attend only within their own segment (a sentence here; packed documents in training).",
    reference="Krell et al., Efficient Sequence Packing without Cross-contamination, 2021",
    params=(), code=_document_code,
    note="Static per input: segments come from the input's sentence boundaries. Inputs without them form one segment.",
)
index_strategy(
    lambda p, ctx: random_static(p["p"], p["seed"]),
    id="random_static", kind="static", title="Random (static)",
    summary="Each entry is blocked with probability p, drawn ONCE from a fixed seed and reused for every input.",
    reference="The seed article's 'random mask', done statically",
    params=(BLOCK_P, PATTERN_SEED), code=_random_static_code,
)
def _grid(ctx: MaskContext, strategy: str) -> tuple[int, int, int]:
    """(rows, cols, prefix) of the input's patch grid, or a message saying the strategy needs one."""
    if ctx.grid is None:
        raise ValueError(f"{strategy} works on a 2-D grid of image patches: run it on an image input "
                         "(for text or audio frames, try sliding_window)")
    rows, cols = ctx.grid
    return int(rows), int(cols), int(ctx.prefix)


index_strategy(
    lambda p, ctx: neighborhood2d(p["radius"], *_grid(ctx, "neighborhood2d")),
    id="neighborhood2d", kind="static", title="Neighbourhood 2-D (images)",
    summary="Each patch sees the patches within `radius` rows and columns of it on the image grid; CLS is global.",
    reference="Hassani et al., Neighborhood Attention Transformer, CVPR 2023; Liu et al., Swin, ICCV 2021",
    params=(NEIGHBOURS,), code=_neighborhood2d_code,
    note="Images only: it needs the patch grid. Static per image size.", inputs=("image",),
)
index_strategy(
    lambda p, ctx: axial(*_grid(ctx, "axial")),
    id="axial", kind="static", title="Axial (images)",
    summary="Each patch sees the patches of its own row and its own column of the image grid; CLS is global.",
    reference="Ho et al., Axial Attention in Multidimensional Transformers, 2019",
    params=(), code=_axial_code,
    note="Images only: it needs the patch grid. Two axial layers in a row connect every pair of patches.",
    inputs=("image",),
)


def _alibi_materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
    pos_q = torch.arange(ctx.q_len, device=ctx.device).view(-1, 1) + ctx.q_offset
    pos_k = torch.arange(ctx.k_len, device=ctx.device).view(1, -1)
    distance = (pos_q - pos_k).abs().float()  # (Q, K)
    slopes = alibi_slopes(ctx.n_heads).to(ctx.device).view(1, -1, 1, 1)
    bias = -params["scale"] * slopes * distance  # (1, H, Q, K)
    allowed = torch.ones(1, 1, ctx.q_len, ctx.k_len, dtype=torch.bool, device=ctx.device)
    return MaskOut(allowed, bias)


register(Strategy(
    id="alibi", kind="static", title="ALiBi (soft)",
    summary="A soft bias -m_h * |i - j| per head: far keys are penalised, nothing is blocked.",
    reference="Press et al., Train Short, Test Long (ALiBi), ICLR 2022",
    params=(ALIBI_SCALE,),
    materialize=_alibi_materialize, code=_alibi_code,
    note="A soft mask: it adds a bias, it blocks nothing. On a model not trained with ALiBi it is an extra bias.",
))


def _head_gate_materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
    """Heads switched off in this layer: their rows allow nothing and their weights are multiplied by 0."""
    h = ctx.n_heads
    if params["off"]:
        off = torch.zeros(h, dtype=torch.bool, device=ctx.device)
        heads = [head for layer, head in parse_pairs(params["off"]) if layer == ctx.layer and head < h]
        off[heads] = True
    else:
        off = torch.ones(h, dtype=torch.bool, device=ctx.device)
    allowed = (~off).view(1, h, 1, 1).expand(1, h, ctx.q_len, ctx.k_len)
    return MaskOut(allowed, None, (~off).to(torch.float32).view(1, h, 1, 1))


register(Strategy(
    id="head_gate", kind="static", title="Head gate (switch heads off)",
    summary="Whole heads are switched off: their attention output is 0. Name layer.head pairs, or leave `off` "
            "empty and pick layers and heads below.",
    reference="Michel, Levy & Neubig, Are Sixteen Heads Really Better than One?, NeurIPS 2019",
    params=(HEADS_OFF,), materialize=_head_gate_materialize, per_layer=True, code=_head_gate_code,
    note="The gate multiplies the head's weights after the softmax, so a head is off in every apply mode. "
         "The Attribution page ranks heads by the gradient of their gates and switches the least important off.",
))
