"""A mask plan: what to mask (a chain of strategies), where (layers, heads), how (apply mode) and with which seed.

Frozen, so one plan can be shared between threads. :func:`draw_seed` is the one place a fresh seed is drawn.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from dynmask_core.masks.apply import ApplyOptions
from dynmask_core.masks.compose import ComposedMask, MaskSpec

MAX_SEED = 2**31 - 1  # seeds are in [0, MAX_SEED]


def draw_seed() -> int:
    """A fresh seed for a recipe whose strategy uses one (recorded and shared, so the run reproduces)."""
    return secrets.randbelow(MAX_SEED)


@dataclass(frozen=True)
class MaskPlan:
    """What to mask, where, and how.

    Attributes:
        terms: The strategy chain (``causal & sliding_window(radius=2)``); ``(MaskSpec("none"),)`` = no extra mask.
        layers: Attention layers (call order, 0-based) the mask applies to; None = all.
        heads: Query heads the mask applies to; None = all.
        apply: How the mask meets the scores (hard, bias, gate, naive_multiply).
        seed: Seed for dynamic strategies; None = draw a fresh one per run when a strategy uses it (recorded in the
            result), else 0.
        model_causal: Keep a causal model's own causal mask. False lets a causal LM see the future (padding stays).
    """

    terms: tuple[MaskSpec, ...] = (MaskSpec("none"),)
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    apply: ApplyOptions = field(default_factory=ApplyOptions)
    seed: int | None = None
    model_causal: bool = True

    @classmethod
    def of(cls, strategy: str = "none", params: Mapping[str, Any] | None = None,
           compose: Sequence[tuple[str, str, Mapping[str, Any] | None]] = (), **kwargs: Any) -> MaskPlan:
        """Convenience constructor: ``MaskPlan.of("topk", {"k": 2}, compose=[("and", "causal", None)], mode="hard")``.

        ``mode``, ``beta`` and ``renormalize`` keyword arguments go into :class:`ApplyOptions`.
        """
        apply_kw = {k: kwargs.pop(k) for k in ("mode", "beta", "renormalize") if k in kwargs}
        terms = [MaskSpec(strategy, dict(params or {}))]
        terms += [MaskSpec(sid, dict(p or {}), op) for op, sid, p in compose]  # type: ignore[arg-type]
        return cls(terms=tuple(terms), apply=ApplyOptions(**apply_kw), **kwargs)

    @property
    def uses_seed(self) -> bool:
        """Whether a strategy of the plan draws on the seed."""
        return self.mask().uses_seed

    def resolved(self) -> MaskPlan:
        """Validated copy: parameters complete and coerced; the seed drawn if None and used, else 0 when unused.

        Raises:
            ValueError: with a message that says what is allowed.
        """
        if self.seed is not None and not (0 <= int(self.seed) <= MAX_SEED):
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        for name, values in (("layers", self.layers), ("heads", self.heads)):
            if values is not None and any(int(v) < 0 for v in values):
                raise ValueError(f"{name} must be non-negative indices, got {list(values)}")
        terms = tuple(t.resolved() for t in self.terms)
        if self.seed is not None:
            seed = int(self.seed)
        else:  # only a strategy that uses the seed gets a fresh one; the others record 0
            seed = draw_seed() if ComposedMask(terms).uses_seed else 0
        return replace(self, terms=terms, seed=seed)

    def mask(self) -> ComposedMask:
        """The composed mask of this plan."""
        return ComposedMask(self.terms)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (ids, params, ops, layers, heads, mode, seed)."""
        return {
            "terms": [{"op": t.op, "strategy": t.strategy, "params": dict(t.params)} for t in self.terms],
            "label": self.mask().label(),
            "kind": self.mask().kind,
            "layers": None if self.layers is None else list(self.layers),
            "heads": None if self.heads is None else list(self.heads),
            "mode": self.apply.mode,
            "beta": self.apply.beta,
            "renormalize": self.apply.renormalize,
            "seed": self.seed,
            "model_causal": self.model_causal,
        }


IDENTITY_PLAN = MaskPlan()
