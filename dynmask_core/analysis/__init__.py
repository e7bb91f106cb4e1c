"""Analysis: typed task outputs and how they changed (KL, probability deltas, cosine), per-layer metrics."""

from dynmask_core.analysis.layers import allowed_fraction, attention_entropy, layer_table, mask_patterns
from dynmask_core.analysis.outputs import Classification, Embedding, NextToken

__all__ = [
    "Classification", "Embedding", "NextToken", "allowed_fraction", "attention_entropy", "layer_table", "mask_patterns",
]
