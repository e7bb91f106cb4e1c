"""Analysis: output deltas (KL, probability change, cosine) between the masked and the baseline run."""

from dynmask_core.analysis.compare import compare, cosine, describe_change, kl_divergence, summarize

__all__ = ["compare", "cosine", "describe_change", "kl_divergence", "summarize"]
