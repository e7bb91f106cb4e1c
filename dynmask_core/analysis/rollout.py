"""Attention rollout and per-patch values: where a model looked, on its input.

Attention rollout (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL 2020): average each layer's
attention over heads, add the residual connection as the identity (``0.5 A + 0.5 I``), renormalise the rows, and
multiply the layers together; row ``q`` of the product says how much each input position reached position ``q``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from dynmask_core._arrays import as_array


def rollout(attention: Any, residual: float = 0.5) -> np.ndarray:
    """Attention rollout through all layers.

    Args:
        attention: ``(L, H, Q, K)`` weights with Q == K (a fully blocked row is all 0; the identity keeps it).
        residual: Weight of the identity (the skip connection) in each layer.

    Returns:
        ``(Q, K)`` float64; each row sums to 1.
    """
    a = as_array(attention, np.float64).mean(axis=1)  # (L, Q, K)
    n = a.shape[-1]
    out = np.eye(n)
    for layer in a:
        mixed = (1.0 - residual) * layer + residual * np.eye(n)
        mixed = mixed / mixed.sum(axis=-1, keepdims=True)
        out = mixed @ out
    return out


def on_grid(row: Any, grid: tuple[int, int], prefix: int) -> np.ndarray:
    """One row of weights over positions ``(K,)`` as the patch grid ``(rows, cols)`` (prefix tokens dropped).

    >>> on_grid([0.5, 0.1, 0.2, 0.3, 0.4], (2, 2), 1).tolist()
    [[0.1, 0.2], [0.3, 0.4]]
    """
    values = as_array(row, np.float64).reshape(-1)
    rows, cols = grid
    return values[prefix: prefix + rows * cols].reshape(rows, cols)
