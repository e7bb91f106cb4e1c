"""Runs a real transformer with a mask plan applied inside every attention layer, and captures what happened.

One attention function (``"dynmask"``) and its mask builder are registered with transformers. The function reads
the current run's plan from a :class:`contextvars.ContextVar`, never from module globals: Streamlit serves many
sessions from threads of one process, and two threads running different plans on one shared model each get exactly
what they would get alone. Outside :func:`forward` the function behaves like transformers' eager attention.
"""

from __future__ import annotations

import contextvars
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from dynmask_core.masks import ApplyOptions, ComposedMask, MaskContext, MaskOut, MaskSpec, masked_softmax

ATTN_IMPLEMENTATION = "dynmask"
MAX_SEED = 2**31 - 1


@dataclass(frozen=True)
class MaskPlan:
    """What to mask, where, and how. Frozen: one plan can be shared between threads.

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

    def resolved(self) -> MaskPlan:
        """Validated copy: parameters complete and coerced, seed drawn if None.

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
            seed = secrets.randbelow(MAX_SEED) if ComposedMask(terms).uses_seed else 0
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


@dataclass
class Capture:
    """What one forward pass recorded.

    Attributes:
        outputs: The model's own return value.
        masks: ``(L, H, Q, K)`` bool, the mask each layer applied (model mask AND the strategy), batch item 0.
        attention: ``(L, H, Q, K)`` float32, the attention weights each layer used, batch item 0.
        layer_names: Module names of the attention layers, in call order.
        empty_rows: Number of (layer, head, query) rows whose weights are all 0 (nothing was allowed).
        seconds: Wall time of the forward pass.
    """

    outputs: Any
    masks: Tensor | None
    attention: Tensor | None
    layer_names: list[str]
    empty_rows: int
    seconds: float


@dataclass
class _RunState:
    plan: MaskPlan
    mask: ComposedMask
    capture: bool
    names: dict[int, str]
    segment_ids: Tensor | None = None
    key_padding: Tensor | None = None  # (B, K) bool, True = real token
    layer_of: dict[int, int] = field(default_factory=dict)
    masks: list[tuple[Tensor | None, Tensor | None, tuple[int, int, int]]] = field(default_factory=list)
    attention: list[Tensor] = field(default_factory=list)
    layer_names: list[str] = field(default_factory=list)
    static_cache: dict[tuple, MaskOut] = field(default_factory=dict)
    scratch: dict[str, Any] = field(default_factory=dict)


_ACTIVE: contextvars.ContextVar[_RunState | None] = contextvars.ContextVar("dynmask_run", default=None)


def _model_allowed(module: torch.nn.Module, attention_mask: Tensor | None, q_len: int, k_len: int,
                   state: _RunState | None, device: torch.device) -> Tensor | None:
    """The model's own mask as bool ``(B, 1, Q, K)``, or None when everything is allowed."""
    causal = bool(getattr(module, "is_causal", False))
    if state is not None and causal and not state.plan.model_causal:
        if state.key_padding is None:
            return None
        return state.key_padding[:, None, None, -k_len:].to(device)
    if attention_mask is not None:
        if attention_mask.dtype == torch.bool:
            return attention_mask
        return attention_mask > torch.finfo(attention_mask.dtype).min / 2
    if causal and q_len > 1:
        q = torch.arange(q_len, device=device).view(-1, 1) + (k_len - q_len)
        return (torch.arange(k_len, device=device).view(1, -1) <= q).view(1, 1, q_len, k_len)
    return None


def _strategy_mask(state: _RunState, layer: int, scores: Tensor, query: Tensor,
                   key: Tensor, model_allowed: Tensor | None) -> MaskOut | None:
    """The strategy's mask for this layer (heads outside the plan left free), or None when it adds nothing."""
    plan = state.plan
    if state.mask.is_identity or (plan.layers is not None and layer not in plan.layers):
        return None
    b, h, q_len, k_len = scores.shape
    cache_key = (q_len, k_len, h, model_allowed is None)
    out = state.static_cache.get(cache_key) if state.mask.kind == "static" else None
    if out is None:
        ctx = MaskContext(
            q_len=q_len, k_len=k_len, n_heads=h, layer=layer, seed=int(plan.seed or 0),
            allowed=model_allowed, scores=scores, query=query, key=key,
            segment_ids=state.segment_ids, q_offset=k_len - q_len, run_state=state.scratch,
        )
        out = state.mask.materialize(ctx)
        if state.mask.kind == "static" and not state.mask.uses_scores:
            state.static_cache[cache_key] = out
    if plan.heads is None:
        return out
    selected = torch.zeros(h, dtype=torch.bool, device=scores.device)
    selected[[i for i in plan.heads if i < h]] = True
    selected = selected.view(1, h, 1, 1)
    bias = None if out.bias is None else out.bias * selected
    return MaskOut(out.allowed | ~selected, bias)


def dynmask_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                      attention_mask: Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      **kwargs: Any) -> tuple[Tensor, Tensor]:
    """Attention with the current run's mask plan applied; registered as ``attn_implementation="dynmask"``.

    Args:
        module: The attention module calling us.
        query: ``(B, H, Q, D)``.
        key: ``(B, Hkv, K, D)`` (Hkv < H for grouped-query attention).
        value: ``(B, Hkv, K, D)``.
        attention_mask: Additive float ``(B, 1, Q, K)`` from transformers' mask builder, or None.
        scaling: Score scale (1/sqrt(D) when None).
        dropout: Attention dropout probability (training only).

    Returns:
        Output ``(B, Q, H, D)`` and weights ``(B, H, Q, K)``.
    """
    state = _ACTIVE.get()
    b, h, q_len, d = query.shape
    if key.shape[1] != h:  # grouped-query attention: repeat K/V heads
        key = key.repeat_interleave(h // key.shape[1], dim=1)
        value = value.repeat_interleave(h // value.shape[1], dim=1)
    k_len = key.shape[-2]
    if attention_mask is not None:
        attention_mask = attention_mask[:, :, :, :k_len]
    scale = d**-0.5 if scaling is None else scaling
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # (B, H, Q, K)
    allowed = _model_allowed(module, attention_mask, q_len, k_len, state, query.device)
    additive = attention_mask is not None and attention_mask.dtype != torch.bool
    if additive and not (state is not None and getattr(module, "is_causal", False) and not state.plan.model_causal):
        scores_in = scores + attention_mask
    else:
        scores_in = scores

    strategy = None
    layer = 0
    if state is not None:
        layer = state.layer_of.setdefault(id(module), len(state.layer_of))
        strategy = _strategy_mask(state, layer, scores, query, key, allowed)

    if strategy is None and allowed is None:
        probs = torch.softmax(scores_in, dim=-1, dtype=torch.float32)
    else:
        model_allowed = allowed if allowed is not None else torch.ones(
            1, 1, q_len, k_len, dtype=torch.bool, device=query.device)
        probs = masked_softmax(
            scores_in.float(), model_allowed,
            None if strategy is None else strategy.allowed,
            None if strategy is None else strategy.bias,
            state.plan.apply if state is not None else ApplyOptions(),
        )
    probs = probs.to(value.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()

    if state is not None and state.capture and layer == len(state.attention):
        # keep references only; the (H, Q, K) masks are assembled once, after the pass
        state.masks.append((allowed[0] if allowed is not None else None,
                            strategy.allowed[0] if strategy is not None else None, (h, q_len, k_len)))
        state.attention.append(probs[0].detach())
        state.layer_names.append(state.names.get(id(module), f"layer{layer}"))
    return out, probs


AttentionInterface.register(ATTN_IMPLEMENTATION, dynmask_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, eager_mask)


def forward(model: torch.nn.Module, inputs: Mapping[str, Tensor], plan: MaskPlan = IDENTITY_PLAN, *,
            capture: bool = True, segment_ids: Tensor | None = None, call=None) -> Capture:
    """One forward pass of ``model`` with ``plan`` applied inside every attention layer.

    Args:
        model: A transformers model loaded with ``attn_implementation="dynmask"``.
        inputs: Keyword tensors for the model (``input_ids``/``attention_mask``, ``pixel_values``, ...).
        plan: A *resolved* plan (see :meth:`MaskPlan.resolved`); the identity plan adds no mask.
        capture: Record masks and attention weights.
        segment_ids: ``(K,)`` segment of each position, for the ``document`` strategy.
        call: What to call instead of ``model(**inputs)`` (e.g. a task head wrapper); gets ``inputs``.

    Returns:
        The :class:`Capture` of this pass.

    Raises:
        ValueError: when the model never called the dynmask attention (unsupported family or wrong implementation).
    """
    padding = inputs.get("attention_mask")
    state = _RunState(
        plan=plan, mask=plan.mask(), capture=capture, names=_attention_names(model), segment_ids=segment_ids,
        key_padding=None if padding is None else padding.bool(),
    )
    token = _ACTIVE.set(state)
    start = time.perf_counter()
    try:
        with torch.inference_mode():
            outputs = call(inputs) if call is not None else model(**inputs)
    finally:
        _ACTIVE.reset(token)
    seconds = time.perf_counter() - start
    if not state.layer_of:
        impl = getattr(getattr(model, "config", None), "_attn_implementation", None)
        raise ValueError(
            f"{type(model).__name__} did not route attention through the dynmask function (attn_implementation="
            f"{impl!r}). {SUPPORTED_FAMILIES_MESSAGE}"
        )
    masks = attention = None
    empty_rows = 0
    if capture and _same_shapes(state.attention):
        attention = torch.stack(state.attention).float().cpu()  # (L, H, Q, K)
        masks = torch.stack([_effective(*parts) for parts in state.masks]).cpu()  # (L, H, Q, K)
        empty_rows = int((attention.sum(dim=-1) == 0).sum())  # rows that really got no weight, in any mode
    return Capture(outputs, masks, attention, state.layer_names, empty_rows, seconds)


def _effective(model_allowed: Tensor | None, strategy_allowed: Tensor | None, shape: tuple[int, int, int]) -> Tensor:
    """(H, Q, K) bool: what one layer allowed, the model's own mask AND the strategy's."""
    out = torch.ones(shape, dtype=torch.bool, device=(model_allowed if model_allowed is not None else
                                                        strategy_allowed if strategy_allowed is not None else
                                                        torch.empty(0)).device)
    if model_allowed is not None:
        out = out & model_allowed
    if strategy_allowed is not None:
        out = out & strategy_allowed
    return out


SUPPORTED_FAMILIES_MESSAGE = (
    "dynmask needs a model whose attention goes through transformers' attention interface, e.g. BERT, RoBERTa, "
    "DistilBERT, ELECTRA, ModernBERT, GPT-2, Llama/SmolLM2, Mistral, Qwen2, Gemma3, T5, BART, ViT, DeiT, DINOv2, "
    "BEiT, Swin, CLIP, Wav2Vec2, HuBERT, AST, Whisper. Not supported: DeBERTa, BigBird, Longformer, Reformer, "
    "WavLM, SwinV2, GPT-Neo/J, Bloom, Falcon, XLNet."
)


def _same_shapes(tensors: list[Tensor]) -> bool:
    return bool(tensors) and all(t.shape == tensors[0].shape for t in tensors)


def _attention_names(model: torch.nn.Module) -> dict[int, str]:
    """id(module) -> qualified name, for modules that look like attention layers (computed once per model)."""
    names = model.__dict__.get("_dynmask_attention_names")
    if names is None:
        names = {id(m): n for n, m in model.named_modules() if "attention" in type(m).__name__.lower()}
        model.__dict__["_dynmask_attention_names"] = names
    return names


def attach(model: torch.nn.Module) -> torch.nn.Module:
    """Switches an already-loaded model to the dynmask attention.

    Raises:
        ValueError: naming the supported families when the model's family cannot take a custom attention.
    """
    if not getattr(model, "_supports_attention_backend", False):
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
        outputs: Task output of the masked run (JSON-ready).
        baseline_outputs: Task output of the baseline run.
        metrics: Change metrics (see :func:`dynmask_core.analysis.compare`).
        timings: Seconds per step.
        layer_names: Attention module names in call order.
        empty_rows: Query rows with nothing allowed (their attention is all 0).
        truncated: Whether the input was cut to fit.
    """

    model_id: str
    tokens: list[str]
    plan: MaskPlan
    masks: Tensor
    attention: Tensor
    baseline_attention: Tensor
    baseline_masks: Tensor
    outputs: dict[str, Any]
    baseline_outputs: dict[str, Any]
    metrics: dict[str, Any]
    timings: dict[str, float]
    layer_names: list[str]
    empty_rows: int = 0
    truncated: bool = False

    @property
    def seed(self) -> int:
        """The seed the run used (shown and shared so a dynamic mask can be reproduced)."""
        return int(self.plan.seed or 0)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary (no big arrays)."""
        layers, heads, q, k = self.attention.shape
        return {
            "model": self.model_id,
            "tokens": self.tokens,
            "shape": {"layers": layers, "heads": heads, "queries": q, "keys": k},
            "strategy": self.plan.to_dict(),
            "seed": self.seed,
            "outputs": {"masked": self.outputs, "baseline": self.baseline_outputs},
            "metrics": self.metrics,
            "empty_rows": self.empty_rows,
            "truncated": self.truncated,
            "timings": self.timings,
            "layer_names": self.layer_names,
        }


def run(loaded: Any, prepared: Any, plan: MaskPlan) -> RunResult:
    """Runs ``loaded`` on ``prepared`` input twice: with ``plan`` and without any extra mask (the baseline).

    Args:
        loaded: A :class:`~dynmask_core.models.LoadedModel` (callable on inputs, returning task tensors).
        prepared: A prepared input with ``inputs``, ``tokens``, ``segment_ids`` (e.g. :class:`TextInput`).
        plan: The mask plan; it is validated and its seed drawn here when None.

    Raises:
        ValueError: bad plan parameters, or a layer/head index outside the model.
    """
    from dynmask_core.analysis import compare, summarize

    start = time.perf_counter()
    plan = plan.resolved()
    _check_indices(plan, loaded)
    segments = getattr(prepared, "segment_ids", None)
    base = forward(loaded.model, prepared.inputs, IDENTITY_PLAN, segment_ids=segments, call=loaded)
    masked = forward(loaded.model, prepared.inputs, plan, segment_ids=segments, call=loaded)
    if masked.attention is None or base.attention is None:
        raise ValueError("the model's attention layers have different shapes; this view needs equal layers")
    labels = tuple(getattr(loaded, "labels", ()) or ())
    tokenizer = getattr(loaded, "tokenizer", None)
    result = RunResult(
        model_id=str(getattr(loaded, "id", type(loaded.model).__name__)),
        tokens=list(getattr(prepared, "tokens", [])),
        plan=plan,
        masks=masked.masks,
        attention=masked.attention,
        baseline_attention=base.attention,
        baseline_masks=base.masks,
        outputs=summarize(masked.outputs, labels, tokenizer),
        baseline_outputs=summarize(base.outputs, labels, tokenizer),
        metrics=compare(base.outputs, masked.outputs, labels),
        timings={"baseline_forward_s": base.seconds, "masked_forward_s": masked.seconds},
        layer_names=masked.layer_names,
        empty_rows=masked.empty_rows,
        truncated=bool(getattr(prepared, "truncated", False)),
    )
    result.timings["total_s"] = time.perf_counter() - start
    return result


def _check_indices(plan: MaskPlan, loaded: Any) -> None:
    n_layers, n_heads = int(getattr(loaded, "n_layers", 0) or 0), int(getattr(loaded, "n_heads", 0) or 0)
    if n_layers and plan.layers is not None and max(plan.layers, default=-1) >= n_layers:
        raise ValueError(f"layers must be between 0 and {n_layers - 1} for this model, got {list(plan.layers)}")
    if n_heads and plan.heads is not None and max(plan.heads, default=-1) >= n_heads:
        raise ValueError(f"heads must be between 0 and {n_heads - 1} for this model, got {list(plan.heads)}")
