"""Per-layer numbers computed from the captures (no model output needed).

* attention entropy: mean over heads and query rows of ``-sum_k p log p`` (nats); fully blocked rows are skipped.
  Lower = sharper attention. A row spread evenly over n keys has entropy log(n).
* allowed fraction: share of the ``(H, Q, K)`` entries the mask allows (the model's own mask included).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from dynmask_core._arrays import as_array
from dynmask_core.messages import N_

METRICS: dict[str, str] = {
    "entropy": N_("Attention entropy per layer (nats, mean over heads and rows)"),
    "allowed": N_("Fraction of entries the mask allows, per layer"),
}


def attention_entropy(attention: Any) -> np.ndarray:
    """Mean attention entropy per layer.

    Args:
        attention: ``(L, H, Q, K)`` float attention weights.

    Returns:
        ``(L,)`` float64 nats; rows whose weights are all 0 are left out of the mean.
    """
    a = as_array(attention, np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(a > 0, -a * np.log(a), 0.0)
    rows = terms.sum(axis=-1)  # (L, H, Q)
    alive = a.sum(axis=-1) > 0
    counts = alive.sum(axis=(1, 2))
    return np.where(counts > 0, (rows * alive).sum(axis=(1, 2)) / np.maximum(counts, 1), 0.0)


def allowed_fraction(masks: Any) -> np.ndarray:
    """Fraction of allowed entries per layer: ``(L, H, Q, K)`` bool -> ``(L,)`` float64."""
    m = as_array(masks).astype(bool)
    return m.reshape(m.shape[0], -1).mean(axis=1)


def mask_patterns(masks: Any) -> int:
    """Number of distinct ``(Q, K)`` patterns among the ``L x H`` masks (1 = the same everywhere); pooled masks
    (the fraction allowed in each block, floats) are compared as they are."""
    m = as_array(masks)
    if m.dtype != bool and m.dtype.kind == "f":
        return len({row.tobytes() for row in m.reshape(m.shape[0] * m.shape[1], -1)})
    m = m.astype(bool)
    flat = np.packbits(m.reshape(m.shape[0] * m.shape[1], -1), axis=1)
    return len({row.tobytes() for row in flat})


def layer_table(runs: Mapping[str, tuple[Any, Any]]) -> pd.DataFrame:
    """Long table of per-layer metrics for several runs.

    Args:
        runs: ``{run name: (attention (L, H, Q, K), masks (L, H, Q, K))}``.

    Returns:
        DataFrame with columns ``run``, ``layer``, ``metric`` (a key of :data:`METRICS`), ``value``.
    """
    rows = []
    for name, (attention, masks) in runs.items():
        for metric, values in (("entropy", attention_entropy(attention)), ("allowed", allowed_fraction(masks))):
            rows += [{"run": name, "layer": i, "metric": metric, "value": float(v)} for i, v in enumerate(values)]
    return pd.DataFrame(rows, columns=["run", "layer", "metric", "value"])
