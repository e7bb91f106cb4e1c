"""Composing strategies with ``and`` / ``or`` into one mask for a layer.

``causal & sliding_window(radius=2)`` keeps what both allow; ``causal | prefix_lm(prefix=4)`` what either allows.
Terms fold left to right. When every operator is ``and``, score-based terms (top-k, threshold, ...) are evaluated
last and choose only among the keys the other terms allow: "top-4 of the causal keys", not "top-4, then causal".
Soft biases (ALiBi, dynamic weights) of all terms are added; head gates (``head_gate``) multiply.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from torch import Tensor

from dynmask_core.masks.base import MaskContext, MaskMod, MaskOut, Strategy, get_strategy

Op = Literal["and", "or"]
OPS: tuple[str, ...] = ("and", "or")


@dataclass(frozen=True)
class MaskSpec:
    """One strategy with its parameters, and how it joins the terms before it (``op`` is ignored on the first)."""

    strategy: str
    params: Mapping[str, Any] = field(default_factory=dict)
    op: Op = "and"

    def entry(self) -> Strategy:
        """The registry entry (raises ValueError for an unknown id)."""
        return get_strategy(self.strategy)

    def resolved(self) -> MaskSpec:
        """A copy with validated, complete parameters."""
        if self.op not in OPS:
            raise ValueError(f"composition must be 'and' or 'or', got {self.op!r}")
        return MaskSpec(self.strategy, self.entry().resolve(self.params), self.op)

    def label(self) -> str:
        """``sliding_window(radius=3)``-style name."""
        return self.entry().label(self.params)


class ComposedMask:
    """A resolved chain of :class:`MaskSpec` terms that materialises one layer's mask."""

    def __init__(self, terms: Sequence[MaskSpec]):
        if not terms:
            raise ValueError("a mask needs at least one strategy")
        self.terms = tuple(t.resolved() for t in terms)
        self._entries = tuple(t.entry() for t in self.terms)
        self.kind = "dynamic" if any(e.kind == "dynamic" for e in self._entries) else "static"
        self.uses_seed = any(e.uses_seed for e in self._entries)
        self.uses_scores = any(e.uses_scores for e in self._entries)
        self.per_layer = any(e.per_layer for e in self._entries)
        self.is_identity = all(t.strategy == "none" or e.hide is not None for t, e in zip(self.terms, self._entries)) \
            and all(t.op == "and" for t in self.terms[1:])
        #: Input-masking terms: (entry, params), applied to the input of the masked run (see masks/inputs.py).
        self.hides = tuple((e, t.params) for t, e in zip(self.terms, self._entries) if e.hide is not None)

    def label(self) -> str:
        """``causal & topk(k=2)``."""
        out = self.terms[0].label()
        for t in self.terms[1:]:
            out += (" & " if t.op == "and" else " | ") + t.label()
        return out

    def materialize(self, ctx: MaskContext) -> MaskOut:
        """Evaluates every term on ``ctx`` and combines them.

        Returns:
            ``MaskOut`` with ``allowed`` broadcastable to ``(B, H, Q, K)`` and the summed soft ``bias`` (or None).
        """
        order = list(range(len(self.terms)))
        if all(t.op == "and" for t in self.terms[1:]):
            order.sort(key=lambda i: self._entries[i].uses_scores)
        allowed: Tensor | None = None
        bias: Tensor | None = None
        gate: Tensor | None = None
        for i in order:
            term, entry = self.terms[i], self._entries[i]
            narrowed = ctx if allowed is None or term.op == "or" else ctx.with_allowed(ctx.model_allowed() & allowed)
            out = entry.materialize(term.params, narrowed)
            if allowed is None:
                allowed = out.allowed
            elif term.op == "and":
                allowed = allowed & out.allowed
            else:
                allowed = allowed | out.allowed
            if out.bias is not None:
                bias = out.bias if bias is None else bias + out.bias
            if out.gate is not None:  # head gates multiply, whatever the operator
                gate = out.gate if gate is None else gate * out.gate
        assert allowed is not None
        return MaskOut(allowed, bias, gate)


    def mask_mod(self, ctx: MaskContext) -> MaskMod | None:
        """The whole chain as one index function (terms folded left to right with their operators), or None when a
        term is not an index function (score-based, soft, input-masking). Same cells as :meth:`materialize`."""
        if any(e.mask_mod is None or e.hide is not None for e in self._entries):
            return None
        mods = [e.mask_mod(t.params, ctx) for t, e in zip(self.terms, self._entries)]
        ops = [t.op for t in self.terms[1:]]

        def chained(b: Tensor, h: Tensor, q: Tensor, k: Tensor) -> Tensor:
            out = mods[0](b, h, q, k)
            for op, mod in zip(ops, mods[1:]):
                out = (out & mod(b, h, q, k)) if op == "and" else (out | mod(b, h, q, k))
            return out

        return chained


def compose(*terms: MaskSpec | str) -> ComposedMask:
    """Builds a :class:`ComposedMask` from specs or bare ids: ``compose("causal", MaskSpec("topk", {"k": 2}))``."""
    return ComposedMask([MaskSpec(t) if isinstance(t, str) else t for t in terms])
