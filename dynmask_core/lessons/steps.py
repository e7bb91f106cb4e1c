"""Attention, step by step, with a real model's numbers: Q, K, V of one layer and head, the scores, the scaling, the
mask, the softmax and the output, redone from what the layer actually used.

:func:`inspect_layer` runs the model once with an :class:`~dynmask_core.attention.AttentionInspect` on one layer;
:func:`attention_steps` redoes that head's attention from its Q, K and V with a mask (the strategy's, or one the
student edited). With the strategy's own mask the weights equal the engine's run (the page shows the difference).
The mask is applied the correct way (additive -inf: hard); the pitfall rows show what the other ways do.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dynmask_core.attention import AttentionInspect, applied
from dynmask_core.masks import ApplyOptions, MaskPlan, masked_softmax

PITFALL_MODES = ("hard", "naive_multiply", "gate_renorm", "gate")


@dataclass
class Steps:
    """One head's attention, step by step (queries and keys are the input's positions).

    Attributes:
        tokens: One label per position.
        q, k, v: ``(T, D)`` queries, keys, values of the head.
        scale: The score scale (``1/sqrt(D)`` for most models).
        scores: ``(Q, K)`` ``Q K^T``.
        scaled: ``scores * scale``.
        allowed: ``(Q, K)`` bool: what may be attended (the model's own mask AND the mask used here).
        masked: ``scaled`` with ``-inf`` where not allowed.
        weights: ``(Q, K)`` softmax of ``masked`` (an empty row is all 0).
        output: ``(Q, D)`` ``weights @ v``.
    """

    tokens: list[str]
    q: np.ndarray
    k: np.ndarray
    v: np.ndarray
    scale: float
    scores: np.ndarray
    scaled: np.ndarray
    allowed: np.ndarray
    masked: np.ndarray
    weights: np.ndarray
    output: np.ndarray


def inspect_layer(loaded: Any, prepared: Any, plan: MaskPlan, layer: int) -> AttentionInspect:
    """Runs ``loaded`` on ``prepared`` with ``plan`` and keeps layer ``layer``'s attention (batch item 0).

    Raises:
        ValueError: a layer the model does not have.
    """
    n_layers = int(getattr(loaded, "n_layers", 0) or 0)
    if n_layers and not 0 <= layer < n_layers:
        raise ValueError(f"layer must be between 0 and {n_layers - 1} for this model, got {layer}")
    keep = AttentionInspect(layer)
    padding = prepared.inputs.get("attention_mask")
    with torch.inference_mode(), applied(loaded.model, plan.resolved(), segment_ids=prepared.segment_ids,
                                         geometry=prepared.geometry, inspect=keep,
                                         key_padding=None if padding is None else padding.bool()):
        loaded(prepared.inputs)
    if keep.query is None:
        raise ValueError(f"layer {layer} did not run through the dynmask attention")
    return keep


def strategy_mask(keep: AttentionInspect, head: int) -> np.ndarray:
    """``(Q, K)`` bool: the mask the strategy gave this head (all True when it gave none)."""
    q_len, k_len = keep.query.shape[1], keep.key.shape[1]
    if keep.strategy_allowed is None:
        return np.ones((q_len, k_len), dtype=bool)
    m = keep.strategy_allowed
    return m[min(head, m.shape[0] - 1)].numpy().astype(bool)


def model_mask(keep: AttentionInspect, head: int) -> np.ndarray:
    """``(Q, K)`` bool: the model's own mask (padding, causality) for this head."""
    q_len, k_len = keep.query.shape[1], keep.key.shape[1]
    if keep.model_allowed is None:
        return np.ones((q_len, k_len), dtype=bool)
    m = keep.model_allowed
    return np.broadcast_to(m[min(head, m.shape[0] - 1)].numpy().astype(bool), (q_len, k_len)).copy()


def attention_steps(keep: AttentionInspect, head: int, tokens: list[str], mask: np.ndarray | None = None) -> Steps:
    """Redoes one head's attention from its Q, K, V with ``mask`` (default the strategy's), applied hard.

    Raises:
        ValueError: a head the layer does not have, or a mask of the wrong shape.
    """
    n_heads = keep.query.shape[0]
    if not 0 <= head < n_heads:
        raise ValueError(f"head must be between 0 and {n_heads - 1} for this layer, got {head}")
    q = keep.query[head].double().numpy()
    k = keep.key[head].double().numpy()
    v = keep.value[head].double().numpy()
    user = strategy_mask(keep, head) if mask is None else np.asarray(mask, dtype=bool)
    if user.shape != (q.shape[0], k.shape[0]):
        raise ValueError(f"the mask must be {q.shape[0]} x {k.shape[0]} (queries x keys), got "
                         f"{user.shape[0]} x {user.shape[1] if user.ndim > 1 else 1}")
    allowed = user & model_mask(keep, head)
    scores = q @ k.T
    scaled = scores * keep.scale
    masked = np.where(allowed, scaled, -np.inf)
    weights = softmax_rows(masked)
    return Steps(list(tokens), q, k, v, keep.scale, scores, scaled, allowed, masked, weights, weights @ v)


def softmax_rows(x: np.ndarray) -> np.ndarray:
    """Row-wise softmax where ``-inf`` entries get 0 and a row of only ``-inf`` is all 0 (never NaN)."""
    top = np.max(x, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    e = np.where(np.isfinite(x), np.exp(x - top), 0.0)
    total = e.sum(axis=-1, keepdims=True)
    return np.divide(e, total, out=np.zeros_like(e), where=total > 0)


def pitfall(scores: Any, mask: Any) -> dict[str, np.ndarray]:
    """One row of scores under a mask, applied four ways by the engine's own :func:`masked_softmax`:
    ``hard`` (additive -inf), ``naive_multiply`` (softmax(S*M)), ``gate_renorm`` and ``gate`` (multiply after the
    softmax, with and without renormalising)."""
    s = torch.as_tensor(np.asarray(scores, dtype=np.float32)).view(1, 1, 1, -1)
    m = torch.as_tensor(np.asarray(mask, dtype=bool)).view(1, 1, 1, -1)
    everything = torch.ones_like(m)
    options = {"hard": ApplyOptions("hard"), "naive_multiply": ApplyOptions("naive_multiply"),
               "gate_renorm": ApplyOptions("gate", renormalize=True), "gate": ApplyOptions("gate", renormalize=False)}
    return {name: masked_softmax(s, everything, m, None, opt).view(-1).numpy().astype(np.float64)
            for name, opt in options.items()}
