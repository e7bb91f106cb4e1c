"""Analysis: typed task outputs and how they changed (KL, probability deltas, cosine), per-layer metrics."""

from dynmask_core.analysis.layers import METRICS, allowed_fraction, attention_entropy, layer_table, mask_patterns
from dynmask_core.analysis.outputs import (
    Card,
    Classification,
    Embedding,
    NextToken,
    TaskOutput,
    cosine,
    kl_divergence,
)

__all__ = [
    "METRICS", "Card", "Classification", "Embedding", "NextToken", "TaskOutput", "allowed_fraction",
    "attention_entropy", "cosine", "kl_divergence", "layer_table", "mask_patterns",
]
