"""The four ways a mask can be applied to attention scores, and what each does to a row.

=================  ========================================  ==============================================
mode               formula                                   note
=================  ========================================  ==============================================
``hard``           softmax(S + B + where(M, 0, finfo.min))   blocks exactly: blocked weights are 0
``bias``           softmax(S + B + where(M, 0, -beta))       soft: blocked keys are pushed down by beta
``gate``           P * M * exp(B), optionally renormalised   after softmax; no renorm shrinks the output
``naive_multiply`` softmax(S * M + B)                        the pitfall: does NOT block (scores [2,1,3],
                                                             mask [1,1,0] -> [.665,.245,.090])
=================  ========================================  ==============================================

S = scaled scores, M = the strategy's allowed mask, B = its soft bias (0 when none). The model's own mask
(padding, causality) is always applied hard, in every mode. A row in which nothing is allowed gets all-zero weights
(so that query's attention output is 0), never NaN: the same choice as FlexAttention.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

Mode = Literal["hard", "bias", "gate", "naive_multiply"]
MODES: dict[str, str] = {
    "hard": "Hard (additive -inf): blocked keys get exactly 0 weight. The correct way to block.",
    "bias": "Soft bias: blocked keys get -beta added to their score; they keep a little weight.",
    "gate": "Gate after softmax: weights are multiplied by the mask (optionally renormalised).",
    "naive_multiply": "Naive multiply softmax(S*M) - a common tutorial bug: blocked keys are NOT blocked.",
}


@dataclass(frozen=True)
class ApplyOptions:
    """How the strategy's mask meets the scores.

    Attributes:
        mode: One of :data:`MODES`.
        beta: Penalty added to blocked keys in ``bias`` mode.
        renormalize: In ``gate`` mode, rescale each row to sum to 1 again.
    """

    mode: Mode = "hard"
    beta: float = 8.0
    renormalize: bool = True

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not (0.0 <= self.beta <= 1e4):
            raise ValueError(f"beta must be between 0 and 10000, got {self.beta}")


def masked_softmax(scores: Tensor, model_allowed: Tensor, user_allowed: Tensor | None, bias: Tensor | None,
                   options: ApplyOptions) -> Tensor:
    """Attention probabilities under the model's mask and the strategy's mask.

    Args:
        scores: ``(B, H, Q, K)`` float32 scaled scores, with the model's additive mask already added.
        model_allowed: ``(B, 1|H, Q, K)`` bool, the model's own mask (always applied hard).
        user_allowed: ``(B|1, 1|H, Q, K)`` bool from the strategy, or None for "no extra mask".
        bias: soft additive bias broadcastable to ``(B, H, Q, K)``, or None.
        options: The apply mode.

    Returns:
        ``(B, H, Q, K)`` float32 probabilities; rows with nothing allowed are all zero.
    """
    neg = torch.finfo(scores.dtype).min
    if user_allowed is None:
        if bias is not None:
            scores = scores + bias
        probs = torch.softmax(scores.masked_fill(~model_allowed, neg), dim=-1)
        return _zero_empty_rows(probs, model_allowed)

    mode = options.mode
    if mode == "naive_multiply":
        scores = scores * user_allowed.to(scores.dtype)
    if bias is not None and mode != "gate":
        scores = scores + bias
    if mode == "hard":
        allowed = model_allowed & user_allowed
        return _zero_empty_rows(torch.softmax(scores.masked_fill(~allowed, neg), dim=-1), allowed)
    if mode == "bias":
        scores = scores - options.beta * (~user_allowed).to(scores.dtype)
    probs = _zero_empty_rows(torch.softmax(scores.masked_fill(~model_allowed, neg), dim=-1), model_allowed)
    if mode == "gate":
        gate = user_allowed.to(probs.dtype)
        if bias is not None:
            gate = gate * torch.exp(bias)
        probs = probs * gate
        if options.renormalize:
            total = probs.sum(dim=-1, keepdim=True)
            probs = torch.where(total > 0, probs / total.clamp(min=torch.finfo(probs.dtype).tiny), probs)
    return probs


def _zero_empty_rows(probs: Tensor, allowed: Tensor) -> Tensor:
    """Rows where nothing is allowed come out of softmax uniform; make them all zero instead."""
    has_any = allowed.any(dim=-1, keepdim=True)
    if bool(has_any.all()):
        return probs
    return probs * has_any


def weights_code(options: ApplyOptions) -> str:
    """The source of ``weights(scores, model_allowed, strategy)``: :func:`masked_softmax` with this apply mode baked
    in, operation for operation, for the file :mod:`dynmask_core.mask_code` writes.

    ``strategy`` is None (the layer keeps only the model's own mask) or ``(allowed, bias)`` (``bias`` may be None).
    """
    mode = options.mode
    head = {
        "hard": "Hard: softmax(S + B + where(A & M, 0, min)); blocked keys get exactly 0 weight.",
        "bias": f"Soft bias: softmax(S + B - {options.beta!r} * (1 - M)) under the model's own mask A; blocked keys "
                "keep a little weight.",
        "gate": "Gate after the softmax: P * M * exp(B), P = softmax(S) under the model's own mask A"
                + (", renormalised to sum to 1 again." if options.renormalize else " (not renormalised: rows shrink)."),
        "naive_multiply": "Naive multiply (the pitfall, as the run used it): softmax(S * M + B); a blocked key's score "
                          "becomes 0, it is NOT blocked.",
    }[mode]
    lines = ["allowed, bias = strategy"]
    if mode == "naive_multiply":
        lines.append("scores = scores * allowed.to(scores.dtype)")
    if mode != "gate":
        lines += ["if bias is not None:", "    scores = scores + bias"]
    if mode == "hard":
        lines += ["allowed = model_allowed & allowed",
                  "return zero_empty_rows(torch.softmax(scores.masked_fill(~allowed, neg), dim=-1), allowed)"]
    else:
        if mode == "bias":
            lines.append(f"scores = scores - {options.beta!r} * (~allowed).to(scores.dtype)")
        lines.append("probs = zero_empty_rows(torch.softmax(scores.masked_fill(~model_allowed, neg), dim=-1), "
                     "model_allowed)")
        if mode == "gate":
            lines += ["gate = allowed.to(probs.dtype)", "if bias is not None:", "    gate = gate * torch.exp(bias)",
                      "probs = probs * gate"]
            if options.renormalize:
                lines += ["total = probs.sum(dim=-1, keepdim=True)",
                          "probs = torch.where(total > 0, probs / total.clamp(min=torch.finfo(probs.dtype).tiny), "
                          "probs)"]
        lines.append("return probs")
    body = "\n".join("    " + line for line in lines)
    head = textwrap.fill(head, width=116, initial_indent="    ", subsequent_indent="    ").strip()
    return f'''def weights(scores, model_allowed, strategy):
    """Attention weights (float32) from the scores under the model's own mask and the strategy's.

    {head}
    The model's own mask (padding, causality) is always applied hard. A row with nothing allowed gets all-zero
    weights (its query's output is 0), never NaN.
    """
    neg = torch.finfo(scores.dtype).min
    if strategy is None:  # a layer the plan leaves alone: the model's own mask only
        return zero_empty_rows(torch.softmax(scores.masked_fill(~model_allowed, neg), dim=-1), model_allowed)
{body}


def zero_empty_rows(probs, allowed):
    """Rows where nothing is allowed come out of softmax uniform: make them all zero instead."""
    has_any = allowed.any(dim=-1, keepdim=True)
    if bool(has_any.all()):
        return probs
    return probs * has_any
'''
