"""Head importance from the gradient of head gates (Michel, Levy & Neubig, NeurIPS 2019).

Every head's attention weights are multiplied by a gate ``xi_h = 1`` (:func:`~dynmask_core.attention.applied`'s
``head_gates``); the importance of a head is ``|d target / d xi_h|`` on this input: how much the target would move if
the head were turned down a little. Heads that the plan switched off (``head_gate``) have weights 0, so their gates
get gradient 0. Michel et al. average over a dataset and normalise per layer; here it is one input, unnormalised, so
a class sees which heads THIS prediction leans on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from dynmask_core.attention import applied
from dynmask_core.attribution.targets import Target, resolve_target, scorer
from dynmask_core.masks.plan import IDENTITY_PLAN, MaskPlan


@dataclass
class HeadImportance:
    """``(L, H)`` importance of every head, with the plan (``masked``) and without it (``baseline``)."""

    masked: np.ndarray
    baseline: np.ndarray
    target: Target

    def to_dict(self) -> dict[str, Any]:
        return {"target": self.target.label, "masked": self.masked.tolist(), "baseline": self.baseline.tolist()}


def head_importance(loaded: Any, prepared: Any, plan: MaskPlan, target: str = "predicted") -> HeadImportance:
    """``|d target / d gate|`` per head for the masked and the unmasked model (one forward and backward each).

    Raises:
        ValueError: a bad target (see :func:`~dynmask_core.attribution.targets.resolve_target`).
    """
    from dynmask_core.engine import forward, hide_input

    plan = plan.resolved()
    base = forward(loaded.model, prepared.inputs, IDENTITY_PLAN, capture=False, segment_ids=prepared.segment_ids,
                   geometry=prepared.geometry, call=loaded)
    tgt = resolve_target(loaded, target, base.outputs)
    score = scorer(loaded, tgt)
    masked_inputs, _ = hide_input(plan, prepared, loaded.model)
    out = []
    for side_plan, inputs in ((plan, masked_inputs), (IDENTITY_PLAN, prepared.inputs)):
        padding = inputs.get("attention_mask")
        gates = torch.ones(max(1, int(loaded.n_layers)), max(1, int(loaded.n_heads)), device=loaded.device,
                           requires_grad=True)
        with torch.enable_grad(), applied(loaded.model, side_plan, segment_ids=prepared.segment_ids,
                                          geometry=prepared.geometry, head_gates=gates,
                                          key_padding=None if padding is None else padding.bool()):
            value = score(inputs)[0]
            (grad,) = torch.autograd.grad(value, gates)
        out.append(grad.abs().detach().double().cpu().numpy())
    return HeadImportance(out[0], out[1], tgt)


def least_important(importance: np.ndarray, n: int, already_off: tuple[tuple[int, int], ...] = ()
                    ) -> tuple[tuple[int, int], ...]:
    """The ``n`` heads (``(layer, head)``) with the smallest importance, ties broken by position, plus the heads
    already switched off (they stay off)."""
    off = set(already_off)
    order = sorted(((float(v), (int(i), int(j))) for (i, j), v in np.ndenumerate(importance) if (i, j) not in off))
    return tuple(sorted(off | {pair for _, pair in order[: max(0, int(n))]}))
