"""What a forward pass keeps of its attention, within a byte budget.

The full capture keeps every layer's ``(H, Q, K)`` weights: 0.7 GB for SmolLM2 at 512 tokens, over 60 GB at 8,192.
A :class:`CapturePlan` keeps instead, for every layer and head, a few numbers that describe its attention and a
block-pooled map of its weights and of its mask, and the full ``(Q, K)`` weights only for the (layer, head) pairs
being viewed, all within a byte budget. A :class:`LayerRecorder` builds them from the exact weights, one block of
query rows at a time, so the whole matrix never has to exist: the attention function hands each block over as it
computes it (see :func:`dynmask_core.engine.forward`).

Summaries, per layer and head, averaged over the query rows (a row with nothing allowed counts as all zeros):

- ``entropy``: ``-sum_k w log w`` in nats (0: all weight on one key; ``log K``: spread evenly);
- ``distance``: ``sum_k w |q - k|``, the mean attention distance in positions;
- ``sink``: the weight on key 0 (the first token, where many models park attention);
- ``allowed``: the fraction of query-key pairs the mask allowed (the density).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
from torch import Tensor

#: The summaries, in the order of :attr:`CaptureSummary.stats`' last axis.
STATS = ("entropy", "distance", "sink", "allowed")
_FLOAT = 4  # bytes of a float32


@dataclass(frozen=True)
class CapturePlan:
    """What to keep of each layer's attention, and how much memory it may take.

    Attributes:
        budget_bytes: The most that the kept tensors of one pass may take (summaries, pooled maps, full weights).
        full: ``(layer, head)`` pairs whose full ``(Q, K)`` weights and mask are kept, when they fit in half the
            budget (the rest goes to the pooled maps); pairs that do not fit are pooled like the others.
        block: The pooled maps' block size; 0 chooses the smallest power of two that fits the budget.
        rows: ``(first, end)``: only these query rows of the ``full`` pairs are kept (a window to zoom into);
            None keeps every row.
        stop_after: The pass stops once this layer's attention is recorded (a window of one layer needs no
            later layer); the pass then has no output.
    """

    budget_bytes: int = 100 * 2**20
    full: tuple[tuple[int, int], ...] = ()
    block: int = 0
    rows: tuple[int, int] | None = None
    stop_after: int | None = None

    def __post_init__(self) -> None:
        if self.budget_bytes <= 0:
            raise ValueError(f"the capture budget must be positive, got {self.budget_bytes} bytes")
        if self.block < 0:
            raise ValueError(f"the pooled block size must be 0 (automatic) or positive, got {self.block}")
        if self.rows is not None and not 0 <= self.rows[0] < self.rows[1]:
            raise ValueError(f"the rows kept in full must be a (first, end) range with first < end, got {self.rows}")

    def layout(self, n_layers: int, n_heads: int, q_len: int, k_len: int) -> CaptureLayout:
        """The block size and the full pairs that fit this pass's shape within the budget.

        Raises:
            ValueError: when even the summaries and the coarsest useful pooled maps do not fit.
        """
        summaries = n_layers * n_heads * len(STATS) * _FLOAT
        first, end = self.kept_rows(q_len)
        one_full = (end - first) * k_len * (_FLOAT + 1)  # weights (float32) and mask (bool)
        full: list[tuple[int, int]] = []
        room = self.budget_bytes // 2
        for pair in dict.fromkeys(self.full):  # in the order asked, without repeats
            layer, head = pair
            if 0 <= layer < n_layers and 0 <= head < n_heads and room >= one_full:
                full.append(pair)
                room -= one_full
        left = self.budget_bytes - summaries - len(full) * one_full
        block = self.block or _fitting_block(left, n_layers * n_heads, q_len, k_len)
        if block is None or left < _pooled_bytes(n_layers * n_heads, q_len, k_len, block):
            raise ValueError(
                f"a capture budget of {self.budget_bytes / 2**20:.1f} MB cannot hold {n_layers} layers x {n_heads} "
                f"heads of {q_len} tokens, even pooled: raise the budget")
        return CaptureLayout(block=block, full=tuple(full), rows=(first, end))

    def kept_rows(self, q_len: int) -> tuple[int, int]:
        """The query rows ``(first, end)`` of the full pairs, within ``q_len`` rows."""
        if self.rows is None:
            return 0, q_len
        first, end = min(self.rows[0], q_len), min(self.rows[1], q_len)
        if first >= end:
            raise ValueError(f"rows {self.rows[0]}..{self.rows[1] - 1} are outside the {q_len} query rows")
        return first, end


@dataclass(frozen=True)
class CaptureLayout:
    """A plan applied to one pass's shape: the pooled block size, the full pairs kept and their query rows."""

    block: int
    full: tuple[tuple[int, int], ...]
    rows: tuple[int, int] = (0, 0)


def full_capture_bytes(n_layers: int, n_heads: int, q_len: int, k_len: int, runs: int = 2) -> int:
    """What every layer's weights (float32) and masks (bool) take for ``runs`` passes, captured in full."""
    return runs * n_layers * n_heads * q_len * k_len * (_FLOAT + 1)


def _pooled_bytes(maps: int, q_len: int, k_len: int, block: int) -> int:
    """Two float32 maps (weights, allowed fraction) per layer and head at ``block``."""
    return 2 * maps * math.ceil(q_len / block) * math.ceil(k_len / block) * _FLOAT


def _fitting_block(room: int, maps: int, q_len: int, k_len: int) -> int | None:
    """The smallest power of two whose pooled maps fit in ``room`` bytes (None when none does)."""
    block = 1
    while block <= max(q_len, k_len):
        if _pooled_bytes(maps, q_len, k_len, block) <= room:
            return block
        block *= 2
    return block if _pooled_bytes(maps, q_len, k_len, block) <= room else None


class LayerRecorder:
    """Builds one layer's summaries, pooled maps and full weights from blocks of exact attention weights.

    Args:
        layout: The pass's :class:`CaptureLayout`.
        layer: This layer's index (call order).
        n_heads, q_len, k_len: The layer's shape.
        q_offset: Position of query row 0 among the keys (``k_len - q_len`` for a decoder's new tokens).
    """

    def __init__(self, layout: CaptureLayout, layer: int, n_heads: int, q_len: int, k_len: int,
                 q_offset: int = 0) -> None:
        self.block, self.q_len, self.k_len, self.q_offset = layout.block, q_len, k_len, q_offset
        qb, kb = math.ceil(q_len / self.block), math.ceil(k_len / self.block)
        self.sums = torch.zeros(n_heads, len(STATS), dtype=torch.float64)
        self.pooled = torch.zeros(n_heads, qb, kb, dtype=torch.float32)
        self.pooled_allowed = torch.zeros(n_heads, qb, kb, dtype=torch.float32)
        self.full_heads = [h for (lay, h) in layout.full if lay == layer]
        self.rows = layout.rows if layout.rows[1] > layout.rows[0] else (0, q_len)
        kept = self.rows[1] - self.rows[0]
        self.full = {h: torch.zeros(kept, k_len, dtype=torch.float32) for h in self.full_heads}
        self.full_allowed = {h: torch.zeros(kept, k_len, dtype=torch.bool) for h in self.full_heads}
        self.empty_rows = 0

    def add(self, q_start: int, keys: Tensor | slice, weights: Tensor, allowed: Tensor) -> None:
        """Takes the exact weights of query rows ``q_start ..`` over ``keys`` (all other keys: weight 0, blocked).

        Each row comes in one call, with every key it gives weight to (rows with no weight are counted as empty).

        Args:
            q_start: The first query row of the block.
            keys: The key positions the block covers: a ``slice`` or a 1-D long tensor.
            weights: ``(H, rows, len(keys))`` attention weights (any float dtype).
            allowed: ``(H|1, rows, len(keys))`` bool, what the masks allowed there.
        """
        w = weights.detach().float()
        h, rows, span = w.shape
        device = w.device
        a = allowed.detach().to(device)
        key_pos = (torch.arange(self.k_len)[keys] if isinstance(keys, slice) else keys).to(device).long()
        q_pos = torch.arange(q_start, q_start + rows, device=device)
        dist = (q_pos.view(-1, 1) + self.q_offset - key_pos.view(1, -1)).abs().float()  # (rows, keys)
        sums = torch.zeros(h, len(STATS), dtype=torch.float64)
        sums[:, 0] = torch.special.entr(w).sum(dim=(1, 2)).double().cpu()  # -w log w, 0 where w = 0
        sums[:, 1] = torch.mv(w.reshape(h, -1), dist.reshape(-1)).double().cpu()
        sink = (key_pos == 0).nonzero().flatten()
        if sink.numel():
            sums[:, 2] = w[:, :, sink].sum(dim=(1, 2)).double().cpu()
        sums[:, 3] = a.sum(dim=(1, 2)).double().cpu()  # (1,) when one mask stands for every head
        self.sums += sums
        self.empty_rows += int((w.sum(dim=-1) == 0).sum())
        if span:
            qi, ki = q_pos // self.block, key_pos // self.block
            for target, values in ((self.pooled, w), (self.pooled_allowed, a.float())):
                q_blocks, by_row = _block_sums(values, qi, self.block, dim=1)  # (H|1, row blocks, keys)
                k_blocks, by_key = _block_sums(by_row, ki, self.block, dim=2)  # (H|1, row blocks, key blocks)
                by_key = by_key.cpu().expand(target.shape[0], -1, -1)  # one mask for every head: added to each
                rows_of = target.index_select(1, q_blocks.cpu())
                target.index_copy_(1, q_blocks.cpu(), rows_of.index_add_(2, k_blocks.cpu(), by_key))
        first, end = max(q_start, self.rows[0]), min(q_start + rows, self.rows[1])
        if first < end and self.full_heads:  # the block's rows inside the window kept in full
            src, dst = slice(first - q_start, end - q_start), slice(first - self.rows[0], end - self.rows[0])
            cols = key_pos.cpu()
            for head in self.full_heads:
                self.full[head][dst, cols] = w[head, src].cpu()
                self.full_allowed[head][dst, cols] = a[head if a.shape[0] > 1 else 0, src].cpu()

    def finish(self) -> tuple[Tensor, Tensor, Tensor]:
        """``(H, 4)`` summaries (:data:`STATS`), and the pooled weights and allowed fraction (block means)."""
        stats = self.sums.clone()
        stats[:, :3] /= max(self.q_len, 1)
        stats[:, 3] /= max(self.q_len * self.k_len, 1)
        q_count = _block_counts(self.q_len, self.block)
        k_count = _block_counts(self.k_len, self.block)
        cells = (q_count.view(-1, 1) * k_count.view(1, -1)).float()
        return stats.float(), self.pooled / cells, self.pooled_allowed / cells


def _block_sums(values: Tensor, block_of: Tensor, block: int, dim: int) -> tuple[Tensor, Tensor]:
    """Sums ``values`` along ``dim`` (one entry per position, ascending positions) by the block ``block_of`` gives
    each: the blocks present and their sums. Whole aligned blocks (what query blocks and key tiles of a multiple of
    ``block`` give) are summed by a reshape, anything else by an index add."""
    n = block_of.numel()
    dim = dim % values.dim()
    if n % block == 0:
        groups = block_of.view(-1, block)
        if bool((groups == groups[:, :1]).all()):
            shape = (*values.shape[:dim], n // block, block, *values.shape[dim + 1:])
            return groups[:, 0], values.reshape(shape).sum(dim + 1)
    present, inverse = torch.unique_consecutive(block_of, return_inverse=True)
    shape = list(values.shape)
    shape[dim] = present.numel()
    return present, values.new_zeros(shape).index_add_(dim, inverse, values)


def _block_counts(n: int, block: int) -> Tensor:
    """How many positions each block of ``block`` holds (the last may hold fewer)."""
    starts = torch.arange(0, n, block)
    return torch.clamp(n - starts, max=block)


@dataclass
class CaptureSummary:
    """What a budgeted pass kept, for every layer and head.

    Attributes:
        block: The pooled maps' block size (1: not pooled).
        stats: ``(L, H, 4)`` float32 summaries in :data:`STATS` order.
        pooled: ``(L, H, ceil(Q/block), ceil(K/block))`` float32, the mean weight in each block.
        pooled_allowed: The same shape, the fraction of each block the masks allowed.
        full: ``(layer, head) -> (rows, K)`` float32 weights kept in full (``rows``: every query, or the plan's).
        full_allowed: ``(layer, head) -> (rows, K)`` bool masks kept in full.
        rows: The query rows ``(first, end)`` of ``full``.
        q_len, k_len: The attention's shape.
    """

    block: int
    stats: Tensor
    pooled: Tensor
    pooled_allowed: Tensor
    q_len: int
    k_len: int
    empty_rows: int = 0
    rows: tuple[int, int] = (0, 0)
    full: dict[tuple[int, int], Tensor] = field(default_factory=dict)
    full_allowed: dict[tuple[int, int], Tensor] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Bytes held by its tensors."""
        tensors = [self.stats, self.pooled, self.pooled_allowed, *self.full.values(), *self.full_allowed.values()]
        return sum(t.numel() * t.element_size() for t in tensors)

    def stat(self, name: str) -> Tensor:
        """``(L, H)`` values of one summary (one of :data:`STATS`)."""
        return self.stats[:, :, STATS.index(name)]

    @staticmethod
    def of(recorders: list[LayerRecorder]) -> CaptureSummary:
        """Stacks the layers' recorders (all of one shape) into one summary."""
        parts = [r.finish() for r in recorders]
        first = recorders[0]
        summary = CaptureSummary(
            block=first.block, stats=torch.stack([p[0] for p in parts]), pooled=torch.stack([p[1] for p in parts]),
            pooled_allowed=torch.stack([p[2] for p in parts]), q_len=first.q_len, k_len=first.k_len,
            empty_rows=sum(r.empty_rows for r in recorders), rows=first.rows)
        for layer, rec in enumerate(recorders):
            for head in rec.full_heads:
                summary.full[(layer, head)] = rec.full[head]
                summary.full_allowed[(layer, head)] = rec.full_allowed[head]
        return summary
