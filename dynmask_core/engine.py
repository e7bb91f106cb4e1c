"""Runs a real transformer with a mask plan applied inside every attention layer, and captures what happened.

The attention function and the per-run context live in :mod:`dynmask_core.attention` (tiny, reused by attribution
and lessons); the plan lives with the masks (:mod:`dynmask_core.masks.plan`). This module orchestrates: one
captured :func:`forward`, and :func:`run` = baseline + masked forward + the task output's comparison.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import torch
from torch import Tensor

from dynmask_core.analysis.outputs import TaskOutput
from dynmask_core.attention import (
    ATTN_IMPLEMENTATION,
    SUPPORTED_FAMILIES_MESSAGE,
    PassStopped,
    RunContext,
    applied,
    dynmask_attention,
    takes_custom_attention,
)
from dynmask_core.capture import STATS, CapturePlan, CaptureSummary
from dynmask_core.masks.plan import IDENTITY_PLAN, MAX_SEED, MaskPlan
from dynmask_core.messages import N_, Message

__all__ = [
    "ATTN_IMPLEMENTATION", "IDENTITY_PLAN", "MAX_SEED", "SUPPORTED_FAMILIES_MESSAGE", "AttentionWindow", "Capture",
    "MaskPlan", "RunResult", "applied", "attach", "attention_window", "baseline_pass", "dynmask_attention", "forward",
    "run",
]


@dataclass
class Capture:
    """What one forward pass recorded.

    Attributes:
        outputs: What the call returned (the model's own output, or a task output for a loaded model).
        masks: ``(L, H, Q, K)`` bool, the mask each layer applied (model mask AND the strategy), batch item 0.
        attention: ``(L, H, Q, K)`` float32, the attention weights each layer used, batch item 0.
        layer_names: Module names of the attention layers, in call order.
        empty_rows: Number of (layer, head, query) rows whose weights are all 0 (nothing was allowed).
        seconds: Wall time of the forward pass.
        summary: What a budgeted capture kept (:class:`~dynmask_core.capture.CaptureSummary`); then ``masks`` and
            ``attention`` are None.
    """

    outputs: Any
    masks: Tensor | None
    attention: Tensor | None
    layer_names: list[str]
    empty_rows: int
    seconds: float
    summary: CaptureSummary | None = None


def forward(model: torch.nn.Module, inputs: Mapping[str, Tensor], plan: MaskPlan = IDENTITY_PLAN, *,
            capture: bool | CapturePlan = True, segment_ids: Tensor | None = None, geometry: Any = None,
            call=None, progress: Callable[[int], None] | None = None) -> Capture:
    """One forward pass of ``model`` with ``plan`` applied inside every attention layer, without gradients.

    For gradients, use :func:`~dynmask_core.attention.applied` directly around your own forward.

    Args:
        model: A transformers model loaded with ``attn_implementation="dynmask"``.
        inputs: Keyword tensors for the model (``input_ids``/``attention_mask``, ``pixel_values``, ...).
        plan: A *resolved* plan (see :meth:`MaskPlan.resolved`); the identity plan adds no mask.
        capture: Record masks and attention weights: ``True`` in full, a
            :class:`~dynmask_core.capture.CapturePlan` as summaries and pooled maps within its byte budget.
        segment_ids: ``(K,)`` segment of each position, for the ``document`` strategy.
        geometry: The input's patch grid and prefix tokens, for the 2-D strategies.
        call: What to call instead of ``model(**inputs)`` (e.g. a loaded model with its task head); gets ``inputs``.
        progress: Called with each layer's index once its attention is computed.

    Returns:
        The :class:`Capture` of this pass.

    Raises:
        ValueError: when the model never called the dynmask attention (unsupported family or wrong implementation).
    """
    padding = inputs.get("attention_mask")
    start = time.perf_counter()
    with torch.inference_mode(), applied(model, plan, capture=capture, segment_ids=segment_ids, geometry=geometry,
                                         key_padding=None if padding is None else padding.bool(),
                                         progress=progress) as ctx:
        try:
            outputs = call(inputs) if call is not None else model(**inputs)
        except PassStopped:  # a capture plan's last layer is recorded: nothing after it is needed
            outputs = None
    seconds = time.perf_counter() - start
    if not ctx.layer_of:
        impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
        raise ValueError(
            f"{type(model).__name__} did not route attention through the dynmask function (attn_implementation="
            f"{impl!r}). {SUPPORTED_FAMILIES_MESSAGE}"
        )
    if isinstance(capture, CapturePlan):
        summary = CaptureSummary.of(ctx.recorders)
        names = [ctx.names.get(i, f"layer{n}") for i, n in sorted(ctx.layer_of.items(), key=lambda kv: kv[1])]
        return Capture(outputs, None, None, names[:len(ctx.recorders)], summary.empty_rows, seconds, summary)
    masks, attention, empty_rows = _captured(ctx) if capture else (None, None, 0)
    return Capture(outputs, masks, attention, ctx.layer_names, empty_rows, seconds)


def _captured(ctx: RunContext) -> tuple[Tensor | None, Tensor | None, int]:
    """Stacks what the layers recorded into ``(L, H, Q, K)`` masks and weights (None when layer shapes differ)."""
    if not ctx.attention or any(t.shape != ctx.attention[0].shape for t in ctx.attention):
        return None, None, 0
    # (L, H, Q, K), filled layer by layer and each layer's capture dropped once copied: a long input's peak memory is
    # one copy of the weights, not two (torch.stack would hold every layer's capture and the stack at once)
    attention = torch.empty((len(ctx.attention), *ctx.attention[0].shape), dtype=torch.float32)
    for i in range(len(ctx.attention)):
        attention[i] = ctx.attention[i]
        ctx.attention[i] = None
    masks = torch.empty(attention.shape, dtype=torch.bool)
    for i, parts in enumerate(ctx.masks):
        masks[i] = _effective(*parts)
    empty_rows = int((attention.sum(dim=-1) == 0).sum())  # rows that really got no weight, in any mode
    return masks, attention, empty_rows


def _effective(model_allowed: Tensor | None, strategy_allowed: Tensor | None, shape: tuple[int, int, int]) -> Tensor:
    """(H, Q, K) bool: what one layer allowed, the model's own mask AND the strategy's."""
    device = next((t.device for t in (model_allowed, strategy_allowed) if t is not None), torch.device("cpu"))
    out = torch.ones(shape, dtype=torch.bool, device=device)
    if model_allowed is not None:
        out = out & model_allowed
    if strategy_allowed is not None:
        out = out & strategy_allowed
    return out


def attach(model: torch.nn.Module) -> torch.nn.Module:
    """Switches an already-loaded model to the dynmask attention.

    Raises:
        ValueError: naming the supported families when the model's family cannot take a custom attention.
    """
    if not takes_custom_attention(type(model)):
        raise ValueError(f"{type(model).__name__} cannot take a custom attention function. "
                         + SUPPORTED_FAMILIES_MESSAGE)
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    return model


@dataclass
class RunResult:
    """Everything one masked run and its unmasked baseline produced.

    Attributes:
        model_id: The model's id.
        tokens: One label per position.
        plan: The resolved plan (with the seed actually used).
        masks: ``(L, H, Q, K)`` bool, the masks applied (model's own mask outside the plan).
        attention: ``(L, H, Q, K)`` float32, masked run.
        baseline_attention: ``(L, H, Q, K)`` float32, run with no extra mask.
        baseline_masks: ``(L, H, Q, K)`` bool, the model's own masks.
        output: Task output of the masked run.
        baseline_output: Task output of the baseline run.
        metrics: Change metrics (``baseline_output.compare(output)``).
        timings: Seconds per step.
        layer_names: Attention module names in call order.
        empty_rows: Query rows with nothing allowed (their attention is all 0).
        truncated: Whether the input was cut to fit.
        kind: Input kind (``text``, ``image``, ``audio``).
        geometry: The input's patch grid / frame duration (:class:`~dynmask_core.modalities.Geometry`), or None.
        hidden: ``(T,)`` bool, the positions an input-masking strategy hid from the masked run, or None.
        summary, baseline_summary: With a capture budget, what each run kept (summaries, pooled maps, the full
            weights of the pairs asked for); then ``masks``, ``attention`` and their baselines are None.
    """

    model_id: str
    tokens: list[str]
    plan: MaskPlan
    masks: Tensor
    attention: Tensor
    baseline_attention: Tensor
    baseline_masks: Tensor
    output: TaskOutput
    baseline_output: TaskOutput
    metrics: dict[str, Any]
    timings: dict[str, float]
    layer_names: list[str]
    empty_rows: int = 0
    truncated: bool = False
    kind: str = "text"
    geometry: Any = None
    hidden: Tensor | None = None
    summary: CaptureSummary | None = None
    baseline_summary: CaptureSummary | None = None

    @property
    def budgeted(self) -> bool:
        """Whether the run kept summaries and pooled maps (a capture budget) rather than every weight."""
        return self.summary is not None

    @property
    def shape(self) -> tuple[int, int, int, int]:
        """``(layers, heads, queries, keys)`` of the attention, captured in full or not."""
        if self.attention is not None:
            return tuple(self.attention.shape)
        s = self.summary
        return (*s.stats.shape[:2], s.q_len, s.k_len)

    @property
    def seed(self) -> int:
        """The seed the run used (shown and shared so a dynamic mask can be reproduced)."""
        return int(self.plan.seed or 0)

    @property
    def outputs(self) -> dict[str, Any]:
        """JSON-ready summary of the masked run's output."""
        return self.output.summary()

    @property
    def baseline_outputs(self) -> dict[str, Any]:
        """JSON-ready summary of the baseline run's output."""
        return self.baseline_output.summary()

    def geometry_dict(self) -> dict[str, Any] | None:
        """Where the positions lie on the input (see :meth:`~dynmask_core.modalities.Geometry.to_dict`): ``{"grid",
        "cls", "prefix"}`` for images, ``{"frames", "seconds_per_frame", "prefix"}`` for audio (plus ``grid`` and
        ``cls`` for patch models such as AST), None for text."""
        return None if self.geometry is None else self.geometry.to_dict(len(self.tokens))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no big arrays)."""
        layers, heads, q, k = self.shape
        record = {
            "model": self.model_id,
            "input_kind": self.kind,
            "geometry": self.geometry_dict(),
            "tokens": self.tokens,
            "shape": {"layers": layers, "heads": heads, "queries": q, "keys": k},
            "strategy": self.plan.to_dict(),
            "seed": self.seed,
            "outputs": {"masked": self.outputs, "baseline": self.baseline_outputs},
            "metrics": self.metrics,
            "empty_rows": self.empty_rows,
            "hidden_positions": None if self.hidden is None else torch.nonzero(self.hidden).flatten().tolist(),
            "truncated": self.truncated,
            "timings": self.timings,
            "layer_names": self.layer_names,
        }
        if self.summary is not None:
            record["capture"] = {"budgeted": True, "block": self.summary.block, "stats": list(STATS),
                                 "full": [list(pair) for pair in self.summary.full],
                                 "bytes": self.summary.nbytes + self.baseline_summary.nbytes}
        return record


#: ``progress(stage, fraction)`` of a run: what is being computed, and the share of the run done (0 to 1).
Progress = Callable[[str, float], None]


def _layers_done(progress: Progress | None, stage: str, n_layers: int, start: float, span: float
                 ) -> Callable[[int], None] | None:
    """A per-layer callback reporting ``stage`` from ``start`` to ``start + span`` of the run."""
    if progress is None:
        return None
    total = max(int(n_layers or 0), 1)
    return lambda layer: progress(Message("{stage}: layer {n} of {total}", stage=Message(stage),
                                          n=min(layer + 1, total), total=total),
                                  start + span * min(layer + 1, total) / total)


def baseline_pass(loaded: Any, prepared: Any, capture: bool | CapturePlan = True, progress: Progress | None = None,
                  span: float = 1.0) -> Capture:
    """The run with no extra mask (the model's own masks only) that :func:`run` compares against. It depends on the
    model, the input and the capture only, never on the plan: a caller may keep it for other plans on the same
    input (an 8,192-token SmolLM2 baseline is three quarters of a sliding-window run's time). ``progress``: as in
    :func:`run`, over the first ``span`` of it."""
    return forward(loaded.model, prepared.inputs, IDENTITY_PLAN, segment_ids=prepared.segment_ids,
                   geometry=prepared.geometry, call=loaded, capture=capture,
                   progress=_layers_done(progress, N_("baseline pass (no extra mask)"), getattr(loaded, "n_layers", 0),
                                         0.0, span))


def run(loaded: Any, prepared: Any, plan: MaskPlan, capture: bool | CapturePlan = True,
        baseline: Capture | None = None, progress: Progress | None = None) -> RunResult:
    """Runs ``loaded`` on ``prepared`` input twice: with ``plan`` and without any extra mask (the baseline).

    Args:
        loaded: A :class:`~dynmask_core.models.LoadedModel` (callable on inputs, returning a task output).
        prepared: A :class:`~dynmask_core.modalities.Prepared` input.
        plan: The mask plan; it is validated here (and its seed drawn when None and used).
        capture: ``True``: every layer's weights and masks in full; a :class:`~dynmask_core.capture.CapturePlan`:
            summaries and pooled maps within its budget (each run), the full weights of the pairs it names.
        baseline: The :func:`baseline_pass` of this model, input and capture, when the caller kept one; else it
            is run here.
        progress: Called as ``progress(stage, fraction)`` after each layer of each pass (the baseline's half
            first, unless it was given).

    Raises:
        ValueError: bad plan parameters, or a layer/head index outside the model.
    """
    start = time.perf_counter()
    plan = plan.resolved()
    _check_indices(plan, loaded)
    where = {"segment_ids": prepared.segment_ids, "geometry": prepared.geometry, "call": loaded, "capture": capture}
    masked_inputs, hidden = hide_input(plan, prepared, loaded.model)
    base = baseline if baseline is not None else baseline_pass(loaded, prepared, capture, progress, span=0.5)
    done = 0.0 if baseline is not None else 0.5  # the share of the run's progress already reported
    masked = forward(loaded.model, masked_inputs, plan, **where,
                     progress=_layers_done(progress, N_("masked pass"), getattr(loaded, "n_layers", 0), done,
                                           1.0 - done))
    if not isinstance(capture, CapturePlan) and (masked.attention is None or base.attention is None):
        raise ValueError("the model's attention layers have different shapes; this view needs equal layers")
    result = RunResult(
        model_id=str(getattr(loaded, "id", type(loaded.model).__name__)),
        tokens=list(prepared.labels),
        plan=plan,
        masks=masked.masks,
        attention=masked.attention,
        baseline_attention=base.attention,
        baseline_masks=base.masks,
        output=masked.outputs,
        baseline_output=base.outputs,
        metrics=base.outputs.compare(masked.outputs),
        timings={"baseline_forward_s": base.seconds, "masked_forward_s": masked.seconds},
        layer_names=masked.layer_names,
        empty_rows=masked.empty_rows,
        truncated=bool(prepared.truncated),
        kind=prepared.kind,
        geometry=prepared.geometry,
        hidden=hidden,
        summary=masked.summary,
        baseline_summary=base.summary,
    )
    result.timings["total_s"] = time.perf_counter() - start
    return result


@dataclass(frozen=True)
class AttentionWindow:
    """Query rows ``first .. end - 1`` of one layer and head at full resolution, masked run and baseline.

    Attributes:
        layer, head: Where.
        rows: ``(first, end)``, the query rows.
        attention, baseline_attention: ``(end - first, K)`` float32 weights.
        masks, baseline_masks: ``(end - first, K)`` bool, what each run allowed.
        seconds: The time both passes took (each stops after ``layer``).
    """

    layer: int
    head: int
    rows: tuple[int, int]
    attention: Tensor
    baseline_attention: Tensor
    masks: Tensor
    baseline_masks: Tensor
    seconds: float

    @property
    def nbytes(self) -> int:
        """Bytes held by its tensors."""
        return sum(t.numel() * t.element_size()
                   for t in (self.attention, self.baseline_attention, self.masks, self.baseline_masks))


def attention_window(loaded: Any, prepared: Any, plan: MaskPlan, layer: int, head: int,
                     rows: tuple[int, int]) -> AttentionWindow:
    """Rows of one layer and head's attention at full resolution, without keeping (or computing) the rest.

    The same passes as :func:`run` (same plan, seed and input, so the same weights), each stopped once ``layer`` is
    recorded and keeping only ``rows`` of ``head``: zooming into a long input's heatmap (a run with a capture budget
    keeps pooled maps only).

    Args:
        loaded: The model.
        prepared: The input, as given to :func:`run`.
        plan: The run's plan, *resolved* (its seed drawn).
        layer, head: Which attention.
        rows: ``(first, end)`` query rows (cut to the input's length).

    Raises:
        ValueError: a layer/head outside the model, rows outside the input, or a plan without its seed.
    """
    if plan.mask().uses_seed and plan.seed is None:
        raise ValueError("resolve the plan first (its seed decides the mask the run used)")
    plan = plan.resolved()
    _check_indices(replace(plan, layers=(int(layer),), heads=(int(head),)), loaded)
    q_len = len(prepared.labels)
    first, end = max(0, int(rows[0])), min(int(rows[1]), q_len)
    if first >= end:
        raise ValueError(f"rows {rows[0]}..{rows[1] - 1} are outside the input's {q_len} positions")
    keep = CapturePlan(budget_bytes=4 * (end - first) * q_len * 5 + 2**20, full=((int(layer), int(head)),),
                       block=max(q_len, 1), rows=(first, end), stop_after=int(layer))
    where = {"segment_ids": prepared.segment_ids, "geometry": prepared.geometry, "call": loaded, "capture": keep}
    masked_inputs, _ = hide_input(plan, prepared, loaded.model)
    base = forward(loaded.model, prepared.inputs, IDENTITY_PLAN, **where)
    masked = forward(loaded.model, masked_inputs, plan, **where)
    pair = (int(layer), int(head))
    if pair not in masked.summary.full or pair not in base.summary.full:
        raise ValueError(f"layer {layer}, head {head} was not recorded: this model's layers differ in shape")
    return AttentionWindow(int(layer), int(head), (first, end), masked.summary.full[pair],
                           base.summary.full[pair], masked.summary.full_allowed[pair],
                           base.summary.full_allowed[pair], base.seconds + masked.seconds)


def hide_input(plan: MaskPlan, prepared: Any, model: Any = None) -> tuple[Mapping[str, Tensor], Tensor | None]:
    """The masked run's input: the plan's input-masking strategies applied in turn, and the positions they hid."""
    inputs, hidden = prepared.inputs, None
    for entry, params in plan.mask().hides:
        inputs, h = entry.hide(params, replace(prepared, inputs=dict(inputs)), int(plan.seed or 0), model)
        hidden = h if hidden is None else hidden | h
    return inputs, hidden


def _check_indices(plan: MaskPlan, loaded: Any) -> None:
    n_layers, n_heads = int(getattr(loaded, "n_layers", 0) or 0), int(getattr(loaded, "n_heads", 0) or 0)
    if n_layers and plan.layers is not None and max(plan.layers, default=-1) >= n_layers:
        raise ValueError(f"layers must be between 0 and {n_layers - 1} for this model, got {list(plan.layers)}")
    if n_heads and plan.heads is not None and max(plan.heads, default=-1) >= n_heads:
        raise ValueError(f"heads must be between 0 and {n_heads - 1} for this model, got {list(plan.heads)}")
