"""Helpers shared by the mask tests: literal ■/□ matrices and a causal model mask."""

from __future__ import annotations

import torch

from dynmask_core.masks import draw


def grid(*rows: str) -> torch.Tensor:
    """A (Q, K) bool matrix from rows of ■ (allowed) and □ (blocked)."""
    assert len({len(r) for r in rows}) == 1, "ragged literal"
    return torch.tensor([[c == "■" for c in row] for row in rows], dtype=torch.bool)


def assert_grid(actual: torch.Tensor, expected: torch.Tensor) -> None:
    """Equal bool matrices, drawn side by side on failure."""
    assert actual.dtype == torch.bool
    assert torch.equal(actual, expected), f"\nexpected:\n{draw(expected)}\ngot:\n{draw(actual)}"


def causal_allowed(q: int, k: int | None = None) -> torch.Tensor:
    """(1, 1, Q, K) bool, bottom-right aligned like a model with a cache."""
    k = q if k is None else k
    i = torch.arange(q).view(-1, 1) + (k - q)
    return (torch.arange(k).view(1, -1) <= i).view(1, 1, q, k)
