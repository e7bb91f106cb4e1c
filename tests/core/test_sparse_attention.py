"""The long-input attention kernels (dynmask_core/sparse_attention.py) against a plain eager reference.

The reference is written here, independently of the module: the dense mask from ``dense(...)``, scores in float64,
``-inf`` on blocked entries, softmax, and NaN rows (nothing allowed) set to 0 -- the project's convention for a
hard-masked empty row (all-zero weights, zero output).
"""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from torch.nn.attention.flex_attention import create_block_mask

from dynmask_core import sparse_attention as sa
from dynmask_core.masks import MaskContext, dense, get_strategy, sliding_window
from tests.core.grids import assert_grid, grid

D = 16
HEADS = 3
LENGTHS = (1, 7, 129, 1000)
TOL = 1e-4


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These tensors are small: on a busy 2-core machine, two intra-op threads mostly wait on each other (10x
    slower per op). One thread for this module, restored afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def strategy(strategy_id: str, q_len: int, k_len: int, **params):
    """The registry's mask_mod for a strategy at these sizes (the path the engine takes)."""
    entry = get_strategy(strategy_id)
    return entry.mask_mod(entry.resolve(params), MaskContext(q_len=q_len, k_len=k_len, n_heads=HEADS))


def head_band(b, h, q_idx, kv_idx):
    """Head h sees |i - j| <= 3h (head 0: the diagonal only): a mask that depends on the head."""
    return (q_idx - kv_idx).abs() <= 3 * h


def with_empty_rows(b, h, q_idx, kv_idx):
    """Causal, but every query i with i % 5 == 2 sees nothing, and so does the whole block 128..255."""
    return (kv_idx <= q_idx) & (q_idx % 5 != 2) & ((q_idx < 128) | (q_idx >= 256))


def masks(q_len: int, k_len: int) -> dict[str, object]:
    """Name -> mask (a mask_mod or a list ANDed), each combined with the decoder's causal mask unless named."""
    causal = sa.causal_mod()
    return {
        "causal": strategy("causal", q_len, k_len),
        "causal&sliding_window": [causal, strategy("sliding_window", q_len, k_len)],
        "causal&sliding_window(r=40,sinks=4)": [causal, strategy("sliding_window", q_len, k_len, radius=40, sinks=4)],
        "causal&bigbird": [causal, strategy("bigbird", q_len, k_len)],
        "causal&bigbird(block=16)": [causal, strategy("bigbird", q_len, k_len, block=16, n_random=2)],
        "causal&strided": [causal, strategy("strided", q_len, k_len)],
        "sliding_window (bidirectional)": strategy("sliding_window", q_len, k_len, radius=5),
        "causal&head_band": [causal, head_band],
        "empty rows": with_empty_rows,
    }


def qkv(q_len: int, k_len: int, batch: int = 1, seed: int = 0):
    g = torch.Generator().manual_seed(seed + 1000 * q_len + k_len)
    return (torch.randn(batch, HEADS, q_len, D, generator=g), torch.randn(batch, HEADS, k_len, D, generator=g),
            torch.randn(batch, HEADS, k_len, D, generator=g))


def allowed_of(mask, q_len: int, k_len: int, q_offset: int = 0) -> torch.Tensor:
    """(1, 1|H, Q, K) bool from dense(...) of the ANDed mask_mods."""
    mods = mask if isinstance(mask, list) else [mask]
    out = torch.ones(1, q_len, k_len, dtype=torch.bool)
    for mod in mods:
        out = out & dense(mod, q_len, k_len, HEADS, q_offset)
    return out.unsqueeze(0)


def reference(query, key, value, allowed, scale):
    """(output float32, weights float64): masked softmax in float64, empty rows all zero."""
    scores = torch.matmul(query.double(), key.double().transpose(-1, -2)) * scale
    weights = torch.softmax(scores.masked_fill(~allowed, -math.inf), dim=-1).nan_to_num(0.0)
    return torch.matmul(weights, value.double()).float(), weights


def close(actual: torch.Tensor, expected: torch.Tensor, what: str) -> None:
    assert actual.shape == expected.shape, what
    assert not torch.isnan(actual).any(), f"{what}: NaN"
    err = (actual.double() - expected.double()).abs().max().item() if actual.numel() else 0.0
    assert err <= TOL, f"{what}: max error {err:.2e}"


def cases():
    for n in LENGTHS:
        for name in masks(n, n):
            yield pytest.param(n, name, id=f"{name}-{n}")


@pytest.mark.parametrize(("n", "name"), list(cases()))
def test_every_path_matches_the_eager_reference(n, name):
    mask = masks(n, n)[name]
    query, key, value = qkv(n, n)
    scale = D**-0.5
    allowed = allowed_of(mask, n, n)
    expected, weights = reference(query, key, value, allowed, scale)

    close(sa.eager_attention(query, key, value, allowed, scale), expected, "eager")
    close(sa.sdpa_attention(query, key, value, allowed, scale), expected, "sdpa")
    close(sa.flex_attention(query, key, value, mask, scale, compiled=False), expected, "flex (eager)")

    got = torch.zeros_like(weights)
    seen = []

    def on_weights(q_start, q_end, keys, w, ok):
        assert w.dtype == torch.float32 and w.shape == (1, HEADS, q_end - q_start, keys.numel())
        assert torch.equal(keys, torch.unique(keys)), "keys must be ascending and unique"
        assert torch.equal(ok.expand(1, HEADS, -1, -1), allowed[:, :, q_start:q_end][..., keys].expand_as(w))
        got[:, :, q_start:q_end, keys] = w.double()
        seen.append((q_start, q_end))

    out = sa.blockwise_attention(query, key, value, mask, scale, block=64, on_weights=on_weights)
    close(out, expected, "blockwise")
    close(got, weights, "blockwise weights")
    assert seen == [(s, min(n, s + 64)) for s in range(0, n, 64)], "every query block, in order"

    layout = sa.block_layout(mask, n, n, HEADS, 64)
    close(sa.blockwise_attention(query, key, value, mask, scale, block=64, layout=layout), expected,
          "blockwise with a layout")
    assert layout.density == pytest.approx(allowed.expand(1, HEADS, n, n).double().mean().item(), abs=1e-12)


@pytest.mark.parametrize("name", ["causal&sliding_window", "causal&bigbird", "causal&strided", "causal&head_band",
                                  "empty rows"])
def test_queries_after_a_cache(name):
    """Q < K: the last 100 of 1000 positions, q_offset = 900 (a decoder whose cache holds the first 900 keys)."""
    q_len, k_len, offset = 100, 1000, 900
    mask = masks(q_len, k_len)[name]
    query, key, value = qkv(q_len, k_len)
    allowed = allowed_of(mask, q_len, k_len, offset)
    expected, weights = reference(query, key, value, allowed, 0.3)
    close(sa.sdpa_attention(query, key, value, allowed, 0.3), expected, "sdpa")
    close(sa.flex_attention(query, key, value, mask, 0.3, offset, compiled=False), expected, "flex (eager)")
    got = torch.zeros_like(weights)

    def on_weights(q_start, q_end, keys, w, ok):
        got[:, :, q_start:q_end, keys] = w.double()

    close(sa.blockwise_attention(query, key, value, mask, 0.3, offset, block=32, on_weights=on_weights),
          expected, "blockwise")
    close(got, weights, "blockwise weights")


def test_masks_that_depend_on_the_batch_item():
    """A padding mask_mod (keys past each item's length are blocked) sees every batch index."""
    n = 70
    lengths = torch.tensor([70, 33])
    query, key, value = qkv(n, n, batch=2)

    def padding(b, h, q_idx, kv_idx):
        return kv_idx < lengths[b]

    mask = [sa.causal_mod(), padding]
    mods = sa.as_mask_mod(mask)
    allowed = sa.evaluate(mods, torch.arange(n), torch.arange(n), HEADS, batch=2)
    assert allowed.shape == (2, 1, n, n)
    expected, _ = reference(query, key, value, allowed, 0.25)
    close(sa.sdpa_attention(query, key, value, allowed, 0.25), expected, "sdpa")
    close(sa.blockwise_attention(query, key, value, mask, 0.25, block=16), expected, "blockwise")
    layout = sa.block_layout(mask, n, n, HEADS, 16, batch=2)
    assert layout.any.shape == (2, 1, 5, 5)
    close(sa.blockwise_attention(query, key, value, mask, 0.25, block=16, layout=layout), expected,
          "blockwise with a layout")
    close(sa.flex_attention(query, key, value, mask, 0.25, block=16, compiled=False), expected, "flex (eager)")


def test_compiled_flex_matches_the_reference():
    """torch.compile(flex_attention) on the CPU: one compile, one mask with every awkward feature at once."""
    n, offset = 300, 29

    def mask(b, h, q_idx, kv_idx):  # causal window per head (radius 3h + 2), empty rows, queries after a cache
        return (kv_idx <= q_idx) & (q_idx - kv_idx <= 3 * h + 2) & (q_idx % 7 != 3) & ((q_idx < 150) | (q_idx > 290))

    query, key, value = qkv(n - offset, n)
    allowed = allowed_of(mask, n - offset, n, offset)
    assert not allowed.any(-1).all(), "the case needs empty rows"
    expected, _ = reference(query, key, value, allowed, 0.2)
    failed_before = dict(sa.COMPILE_FAILED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = sa.flex_attention(query, key, value, mask, 0.2, offset, block=64)
    assert failed_before == sa.COMPILE_FAILED, "the compile failed: the eager fallback ran"
    close(out, expected, "flex (compiled)")


@pytest.mark.parametrize("name", ["causal&sliding_window(r=40,sinks=4)", "causal&bigbird(block=16)",
                                  "causal&head_band", "empty rows", "causal&strided"])
@pytest.mark.parametrize(("q_len", "k_len", "offset"), [(129, 129, 0), (1000, 1000, 0), (100, 1000, 900)])
def test_block_mask_has_the_tiles_of_create_block_mask(name, q_len, k_len, offset):
    mask = masks(q_len, k_len)[name]
    mods = sa.as_mask_mod(mask)

    def shifted(b, h, q_idx, kv_idx):
        return mods(b, h, q_idx + offset, kv_idx)

    mine = sa.flex_block_mask(mask, q_len, k_len, HEADS, 64, offset)
    theirs = create_block_mask(shifted, 1, HEADS, q_len, k_len, device="cpu", BLOCK_SIZE=64)
    assert torch.equal(mine.to_dense().expand_as(theirs.to_dense()), theirs.to_dense())
    layout = sa.block_layout(mask, q_len, k_len, HEADS, 64, offset)
    full = torch.zeros_like(layout.any.expand(1, HEADS, -1, -1))
    for h in range(HEADS):
        for i in range(theirs.full_kv_num_blocks.shape[2]):
            count = int(theirs.full_kv_num_blocks[0, h, i])
            full[0, h, i, theirs.full_kv_indices[0, h, i, :count].long()] = True
    assert torch.equal(layout.full.expand_as(full), full), "full tiles as create_block_mask counts them"


def test_layout_of_a_small_window():
    """The drawing in the module docstring: radius 1, Q = K = 8, block 2."""
    layout = sa.block_layout(sliding_window(1), 8, 8, 1, 2)
    tiles = [["f" if f else "a" if a else "." for a, f in zip(ra, rf)]
             for ra, rf in zip(layout.any[0, 0].tolist(), layout.full[0, 0].tolist())]
    assert [" ".join(r) for r in tiles] == ["f a . .", "a f a .", ". a f a", ". . a f"]
    assert layout.density == pytest.approx(22 / 64)
    assert layout.tile_density == pytest.approx(10 / 16)
    assert layout.row_tiles(1).tolist() == [0, 1, 2]


def test_layout_of_a_head_dependent_mask_is_per_head():
    layout = sa.block_layout(head_band, 64, 64, HEADS, 8)
    assert layout.any.shape == (1, HEADS, 8, 8)
    assert layout.any[0, 0].sum() == 8 and layout.any[0, 2].sum() == 22  # diagonal; radius 6 reaches one tile over
    assert sa.block_layout(sliding_window(2), 64, 64, HEADS, 8).any.shape == (1, 1, 8, 8)


def test_blockwise_memory_does_not_grow_with_q_times_k():
    """A causal sliding window: the largest scores tensor stays the same from 1000 to 4000 tokens, and the tiles
    visited grow with Q (about 2 per query block), not with Q x K."""
    mask = [sa.causal_mod(), sliding_window(radius=2)]
    seen = {}
    for n in (1000, 4000):
        query, key, value = qkv(n, n)
        stats = {}
        sa.blockwise_attention(query, key, value, mask, 0.25, block=128, stats=stats)
        layout = sa.block_layout(mask, n, n, 1, 128)
        with_layout = {}
        sa.blockwise_attention(query, key, value, mask, 0.25, block=128, stats=with_layout, layout=layout)
        assert with_layout == stats
        seen[n] = stats
        n_blocks = math.ceil(n / 128)
        assert stats["tiles"] <= 2 * n_blocks
        assert stats["largest"] <= HEADS * 128 * 256
    assert seen[4000]["largest"] == seen[1000]["largest"]
    assert seen[4000]["tiles"] < 5 * seen[1000]["tiles"]
    assert seen[4000]["keys"] < 5 * seen[1000]["keys"]


def test_summaries_from_the_callback_need_no_full_matrix():
    """Per-row entropy, mean distance, share on key 0 and fraction allowed, and a full row for one head, computed
    from the blocks handed to on_weights, equal the same quantities of the full reference matrix."""
    n = 300
    mask = [sa.causal_mod(), strategy("sliding_window", n, n, radius=20, sinks=1)]
    query, key, value = qkv(n, n)
    allowed = allowed_of(mask, n, n)
    _, weights = reference(query, key, value, allowed, 0.25)
    entropy, distance, sink, frac = (torch.zeros(HEADS, n, dtype=torch.float64) for _ in range(4))
    row_head1 = torch.zeros(n, n, dtype=torch.float64)

    def on_weights(q_start, q_end, keys, w, ok):
        w = w[0].double()
        positions = torch.arange(q_start, q_end).view(-1, 1)
        entropy[:, q_start:q_end] = -(w * torch.log(w.clamp_min(1e-300))).sum(-1)
        distance[:, q_start:q_end] = (w * (positions - keys).abs()).sum(-1)
        sink[:, q_start:q_end] = w[..., keys == 0].sum(-1)
        frac[:, q_start:q_end] = ok[0].expand(HEADS, -1, -1).sum(-1) / n
        row_head1[q_start:q_end, keys] = w[1]

    sa.blockwise_attention(query, key, value, mask, 0.25, block=64, on_weights=on_weights)
    w = weights[0]
    positions = torch.arange(n).view(-1, 1)
    close(entropy, -(w * torch.log(w.clamp_min(1e-300))).sum(-1), "entropy")
    close(distance, (w * (positions - torch.arange(n)).abs()).sum(-1), "distance")
    close(sink, w[..., 0], "share on key 0")
    close(frac, allowed[0].expand(HEADS, -1, -1).sum(-1) / n, "fraction allowed")
    close(row_head1, w[1], "head 1's full rows")


def test_empty_rows_are_zero_not_nan_nor_uniform():
    query, key, value = qkv(10, 10)
    allowed = torch.ones(10, 10, dtype=torch.bool)
    allowed[3] = False
    out = sa.sdpa_attention(query, key, value, allowed, 0.25)
    assert not out.isnan().any() and torch.all(out[:, :, 3] == 0) and torch.all(out[:, :, 4] != 0)
    out, w = sa.eager_attention(query, key, value, allowed, 0.25, return_weights=True)
    assert torch.all(w[:, :, 3] == 0) and torch.all(out[:, :, 3] == 0)


def test_nothing_allowed_at_all():
    query, key, value = qkv(7, 7)

    def nothing(b, h, q_idx, kv_idx):
        return q_idx < -1

    calls = []
    out = sa.blockwise_attention(query, key, value, nothing, 0.25, block=4,
                                 on_weights=lambda *args: calls.append(args[2].numel()))
    assert torch.all(out == 0) and calls == [0, 0]
    assert torch.all(sa.flex_attention(query, key, value, nothing, 0.25, compiled=False) == 0)
    assert sa.block_layout(nothing, 7, 7).density == 0.0


def test_dtypes_and_argument_checks():
    query, key, value = (t.double() for t in qkv(9, 9))
    mask = [sa.causal_mod(), sliding_window(1)]
    assert sa.blockwise_attention(query, key, value, mask, 0.3).dtype == torch.float64
    assert sa.sdpa_attention(query, key, value, allowed_of(mask, 9, 9), 0.3).dtype == torch.float64
    with pytest.raises(ValueError, match="layout is for"):
        sa.blockwise_attention(query, key, value, mask, 0.3, layout=sa.block_layout(mask, 9, 9, block=4))
    with pytest.raises(ValueError, match="bool mask"):
        sa.sdpa_attention(query, key, value, allowed_of(mask, 9, 9).float(), 0.3)
    with pytest.raises(ValueError, match=r"\(B, H, Q, D\)"):
        sa.sdpa_attention(query[0], key, value, None, 0.3)


def test_and_masks_and_causal_mod():
    both = sa.and_masks(sa.causal_mod(), sliding_window(1))
    assert both.__name__ == "causal&sliding_window_r1"
    assert_grid(dense(both, 4, 4)[0], grid("■□□□", "■■□□", "□■■□", "□□■■"))
    assert_grid(dense(sa.causal_mod(2), 2, 4)[0], grid("■■■□", "■■■■"))
    assert bool(dense(sa.and_masks(), 2, 3).all())
    assert sa.as_mask_mod([both]) is both
