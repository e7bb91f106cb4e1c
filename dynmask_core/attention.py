"""The dynmask attention function, its registration with transformers, and the per-run context.

One attention function (``"dynmask"``) and its mask builder are registered with transformers. The function reads
the current run's plan from a :class:`contextvars.ContextVar`, never from module globals: Streamlit serves many
sessions from threads of one process, and two threads running different plans on one shared model each get exactly
what they would get alone. Outside an :func:`applied` block it behaves like transformers' eager attention.

:func:`applied` is independent of ``torch.inference_mode``: gradients flow through a masked model (attribution),
and a hard-blocked key gets exactly zero gradient through the attention that blocked it.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor
from transformers import AttentionInterface
from transformers.masking_utils import AttentionMaskInterface, eager_mask

from dynmask_core.capture import CaptureLayout, CapturePlan, LayerRecorder
from dynmask_core.masks import ApplyOptions, ComposedMask, MaskContext, MaskOut, masked_softmax
from dynmask_core.masks.plan import IDENTITY_PLAN, MaskPlan

ATTN_IMPLEMENTATION = "dynmask"
SUPPORTED_FAMILIES_MESSAGE = (
    "dynmask needs a model whose attention goes through transformers' attention interface, e.g. BERT, RoBERTa, "
    "DistilBERT, ELECTRA, ModernBERT, GPT-2, Llama/SmolLM2, Mistral, Qwen2, Gemma3, T5, BART, ViT, DeiT, DINOv2, "
    "BEiT, Swin, CLIP, Wav2Vec2, HuBERT, AST, Whisper. Not supported: DeBERTa, BigBird, Longformer, Reformer, "
    "WavLM, SwinV2, GPT-Neo/J, Bloom, Falcon, XLNet."
)


@dataclass
class RunContext:
    """The per-run state the attention function reads and writes: the plan, and what it captured.

    One lives for the duration of an :func:`applied` block, in a :class:`contextvars.ContextVar`.
    """

    plan: MaskPlan
    mask: ComposedMask
    capture: bool | CapturePlan  # True: every layer's full weights; a CapturePlan: summaries within a budget
    names: dict[int, str]
    segment_ids: Tensor | None = None
    geometry: Any = None  # the input's Geometry (patch grid, prefix tokens), or None
    key_padding: Tensor | None = None  # (B, K) bool, True = real token
    layer_of: dict[int, int] = field(default_factory=dict)
    masks: list[tuple[Tensor | None, Tensor | None, tuple[int, int, int]]] = field(default_factory=list)
    attention: list[Tensor] = field(default_factory=list)
    layer_names: list[str] = field(default_factory=list)
    static_cache: dict[tuple, Any] = field(default_factory=dict)  # static masks (and tiles) of this run
    scratch: dict[str, Any] = field(default_factory=dict)
    head_gates: Tensor | None = None  # (L, H) multipliers of each head's weights (head importance), or None
    probe: Any = None  # an AttentionProbe: one layer's weights scaled and made a gradient leaf (attention attribution)
    inspect: Any = None  # an AttentionInspect: one layer's Q, K, V and masks kept (the step-by-step lesson)
    n_layers: int = 0  # the model's attention layers, when known (sizes a budgeted capture)
    layout: CaptureLayout | None = None  # a budgeted capture's layout, fixed at the first layer
    recorders: list[LayerRecorder] = field(default_factory=list)  # a budgeted capture, one per layer
    progress: Callable[[int], None] | None = None  # called with each layer's index once its attention is done

    def recorder(self, layer: int, n_heads: int, q_len: int, k_len: int) -> LayerRecorder | None:
        """The budgeted capture's recorder for ``layer`` in the first pass (None: not budgeted, or a later pass)."""
        if not isinstance(self.capture, CapturePlan) or layer != len(self.recorders):
            return None
        if self.layout is None:
            self.layout = self.capture.layout(max(self.n_layers, 1), n_heads, q_len, k_len)
        rec = LayerRecorder(self.layout, layer, n_heads, q_len, k_len, q_offset=k_len - q_len)
        self.recorders.append(rec)
        return rec


@dataclass
class AttentionInspect:
    """Keeps what one layer's attention computed, for batch item 0, so a lesson can redo it step by step.

    Attributes:
        layer: The attention layer (call order) to keep.
        query, key, value: ``(H, Q, D)``, ``(H, K, D)``, ``(H, K, D)`` as the layer used them (after rotary position
            embeddings; keys and values repeated to every query head for grouped-query models).
        scale: The score scale (usually ``1/sqrt(D)``).
        model_allowed: ``(H|1, Q, K)`` bool, the model's own mask (padding, causality), or None (everything allowed).
        strategy_allowed: ``(H|1, Q, K)`` bool, the strategy's mask, or None.
        weights: ``(H, Q, K)``, the attention weights the layer used.
        output: ``(H, Q, D)``, weights x values.
    """

    layer: int
    query: Tensor | None = None
    key: Tensor | None = None
    value: Tensor | None = None
    scale: float = 1.0
    model_allowed: Tensor | None = None
    strategy_allowed: Tensor | None = None
    weights: Tensor | None = None
    output: Tensor | None = None


@dataclass
class AttentionProbe:
    """Replaces the weights ``A`` of one layer by ``alpha_b * A`` (one ``alpha`` per batch item), detached from what
    came before and made a leaf, so ``d score / d (alpha A)`` can be read from :attr:`leaf` after the pass (the
    integrated gradients over attention of Hao et al., AAAI 2021).

    Attributes:
        layer: The attention layer (call order) whose weights are scaled.
        alphas: ``(B,)`` scale of each batch item.
        weights: After the pass, ``A`` of that layer (``(B, H, Q, K)``, detached).
        leaf: After the pass, the scaled weights the rest of the model used (``requires_grad``).
    """

    layer: int
    alphas: Tensor
    weights: Tensor | None = None
    leaf: Tensor | None = None

    def take(self, probs: Tensor) -> Tensor:
        """The scaled weights to use in place of ``probs``."""
        self.weights = probs.detach()
        self.leaf = (self.weights * self.alphas.to(probs.dtype).view(-1, 1, 1, 1)).requires_grad_(True)
        return self.leaf


_ACTIVE: contextvars.ContextVar[RunContext | None] = contextvars.ContextVar("dynmask_run", default=None)


def _model_allowed(module: torch.nn.Module, attention_mask: Tensor | None, q_len: int, k_len: int,
                   state: RunContext | None, device: torch.device) -> Tensor | None:
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


def _strategy_mask(state: RunContext, layer: int, scores: Tensor, query: Tensor,
                   key: Tensor, model_allowed: Tensor | None) -> MaskOut | None:
    """The strategy's mask for this layer (heads outside the plan left free), or None when it adds nothing."""
    plan = state.plan
    if state.mask.is_identity or (plan.layers is not None and layer not in plan.layers):
        return None
    b, h, q_len, k_len = scores.shape
    cache_key = (q_len, k_len, h, model_allowed is None, layer if state.mask.per_layer else None)
    out = state.static_cache.get(cache_key) if state.mask.kind == "static" else None
    if out is None:
        ctx = MaskContext(
            q_len=q_len, k_len=k_len, n_heads=h, layer=layer, seed=int(plan.seed or 0),
            allowed=model_allowed, scores=scores, query=query, key=key,
            segment_ids=state.segment_ids, q_offset=k_len - q_len, run_state=state.scratch,
            grid=getattr(state.geometry, "grid", None), prefix=int(getattr(state.geometry, "prefix", 0) or 0),
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
    gate = None if out.gate is None else torch.where(selected, out.gate, torch.ones_like(out.gate))
    return MaskOut(out.allowed | ~selected, bias, gate)


class PassStopped(Exception):
    """Raised inside a pass once the layer a :class:`~dynmask_core.capture.CapturePlan` stops after is recorded."""


def dynmask_attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
                      attention_mask: Tensor | None, scaling: float | None = None, dropout: float = 0.0,
                      **kwargs: Any) -> tuple[Tensor, Tensor]:
    """Attention with the current run's mask plan applied; registered as ``attn_implementation="dynmask"``.

    Args and result: those of :func:`_attention`. A budgeted capture's ``stop_after`` layer ends the pass
    (:class:`PassStopped`) once it is recorded.
    """
    out = _attention(module, query, key, value, attention_mask, scaling, dropout, **kwargs)
    state = _ACTIVE.get()
    if state is not None and state.progress is not None:
        state.progress(state.layer_of.get(id(module), 0))
    if state is not None and isinstance(state.capture, CapturePlan) and state.capture.stop_after is not None \
            and state.layer_of.get(id(module)) == state.capture.stop_after:
        raise PassStopped(state.capture.stop_after)
    return out


def _attention(module: torch.nn.Module, query: Tensor, key: Tensor, value: Tensor,
               attention_mask: Tensor | None, scaling: float | None = None, dropout: float = 0.0,
               **kwargs: Any) -> tuple[Tensor, Tensor]:
    """Attention with the current run's mask plan applied.

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
    allowed = _model_allowed(module, attention_mask, q_len, k_len, state, query.device)
    if state is not None and isinstance(state.capture, CapturePlan):
        layer = state.layer_of.setdefault(id(module), len(state.layer_of))
        out = _tiled(state, module, layer, query, key, value, allowed, attention_mask, scale, dropout)
        if out is not None:
            return out, None
    scores = torch.matmul(query, key.transpose(2, 3)) * scale  # (B, H, Q, K)
    additive = attention_mask is not None and attention_mask.dtype != torch.bool
    if additive and not (state is not None and getattr(module, "is_causal", False) and not state.plan.model_causal):
        scores_in = scores + attention_mask
    else:
        scores_in = scores

    strategy = None
    layer = 0
    if state is not None:
        layer = state.layer_of.setdefault(id(module), len(state.layer_of))
        if layer == 0:  # a new forward pass begins: per-pass scratch (e.g. pruned tokens) starts afresh
            state.scratch.clear()
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
    if strategy is not None and strategy.gate is not None:
        probs = probs * strategy.gate.to(probs.dtype)
    if state is not None and state.head_gates is not None and layer < state.head_gates.shape[0]:
        probs = probs * state.head_gates[layer].view(1, h, 1, 1).to(probs.dtype)
    if state is not None and state.probe is not None and state.probe.layer == layer:
        probs = state.probe.take(probs)
    weights = probs  # float32 whatever the model's dtype: what is captured
    probs = probs.to(value.dtype)
    if dropout and module.training:
        probs = torch.nn.functional.dropout(probs, p=dropout)
    out = torch.matmul(probs, value).transpose(1, 2).contiguous()

    if state is not None and state.inspect is not None and state.inspect.layer == layer:
        _keep(state.inspect, query, key, value, scale, allowed, strategy, probs)
    recorder = state.recorder(layer, h, q_len, k_len) if state is not None else None
    if recorder is not None:
        recorder.add(0, slice(None), weights[0], _allowed_of(allowed, strategy, (h, q_len, k_len)))
    elif state is not None and state.capture and layer == len(state.attention):
        # keep references only; the (H, Q, K) masks are assembled once, after the pass
        state.masks.append((allowed[0] if allowed is not None else None,
                            strategy.allowed[0] if strategy is not None else None, (h, q_len, k_len)))
        state.attention.append(weights[0].detach())
        state.layer_names.append(state.names.get(id(module), f"layer{layer}"))
    return out, probs


def _tiled(state: RunContext, module: torch.nn.Module, layer: int, query: Tensor, key: Tensor, value: Tensor,
           allowed: Tensor | None, model_mask: Tensor | None, scale: float, dropout: float) -> Tensor | None:
    """A budgeted capture's layer computed one query block at a time over the key tiles its masks allow, its exact
    weights handed to the layer's recorder as they come (:func:`~dynmask_core.sparse_attention.blockwise_attention`):
    memory follows the mask's density, not Q x K. Output ``(B, Q, H, D)``, or None when the layer needs the eager
    path (a batch, a score-based or soft strategy, a mode other than hard, head gates, a probe, an inspection).

    The mask and its tiles are worked out once per pass for each distinct (strategy, model mask) and reused by
    every layer that has the same ones."""
    from dynmask_core.sparse_attention import DEFAULT_BLOCK, block_layout, blockwise_attention

    b, h, q_len, _ = query.shape
    k_len, offset = key.shape[-2], key.shape[-2] - query.shape[-2]
    if b != 1 or state.head_gates is not None or state.probe is not None or state.inspect is not None \
            or (dropout and module.training) or (allowed is not None and allowed.shape[1] != 1):
        return None
    plan = state.plan
    masked = not state.mask.is_identity and (plan.layers is None or layer in plan.layers)
    if masked and (state.mask.kind != "static" or state.mask.uses_scores or plan.apply.mode != "hard"):
        return None
    cache_key = ("tiled", q_len, k_len, h, masked, layer if masked and state.mask.per_layer else None,
                 None if model_mask is None else id(model_mask))
    tiled = state.static_cache.get(cache_key)
    if tiled is None:
        mods = _tiled_mods(state, layer, masked, allowed, q_len, k_len, h, offset, query.device)
        if mods is None:
            return None
        tiled = (mods, block_layout(mods or None, q_len, k_len, h, DEFAULT_BLOCK, offset, device=query.device))
        state.static_cache[cache_key] = tiled
    mods, layout = tiled
    recorder = state.recorder(layer, h, q_len, k_len)
    if recorder is None:
        return None
    out = blockwise_attention(query, key, value, mods or None, scale, q_offset=offset, layout=layout,
                              on_weights=lambda q0, q1, keys, w, a: recorder.add(q0, keys, w[0], a[0]))
    return out.transpose(1, 2).contiguous()


def _tiled_mods(state: RunContext, layer: int, masked: bool, allowed: Tensor | None, q_len: int, k_len: int,
                h: int, offset: int, device: torch.device) -> list | None:
    """The layer's masks as index functions (ANDed): the strategy's, then the model's own; None when the strategy
    is not an index function."""
    from dynmask_core.sparse_attention import causal_mod

    mods = []
    if masked:
        plan = state.plan
        ctx = MaskContext(q_len=q_len, k_len=k_len, n_heads=h, layer=layer, seed=int(plan.seed or 0),
                          segment_ids=state.segment_ids, q_offset=offset, run_state=state.scratch,
                          grid=getattr(state.geometry, "grid", None),
                          prefix=int(getattr(state.geometry, "prefix", 0) or 0))
        strategy = state.mask.mask_mod(ctx)
        if strategy is None:
            return None
        if plan.heads is not None:  # heads outside the plan keep only the model's own mask
            free = torch.ones(h, dtype=torch.bool, device=device)
            free[[i for i in plan.heads if i < h]] = False
            mods.append(lambda b_, h_, q_, k_, m=strategy: m(b_, h_, q_, k_) | free[h_])
        else:
            mods.append(strategy)
    if allowed is not None:  # the model's own mask (padding, causality, its own windows)
        own = allowed[0, 0]
        causal = torch.ones(q_len, k_len, dtype=torch.bool, device=device).tril(offset)
        if torch.equal(own, causal):  # a decoder's plain causal mask: compared, not looked up
            mods.append(causal_mod())
        elif not bool(own.all()):
            mods.append(lambda b_, h_, q_, k_: own[q_ - offset, k_])
    return mods


def _allowed_of(model_allowed: Tensor | None, strategy: MaskOut | None, shape: tuple[int, int, int]) -> Tensor:
    """(H|1, Q, K) bool, batch item 0: what a layer allowed, the model's own mask AND the strategy's."""
    parts = [m[0] for m in (model_allowed, None if strategy is None else strategy.allowed) if m is not None]
    if not parts:
        return torch.ones((1, *shape[1:]), dtype=torch.bool)
    return parts[0] & parts[1] if len(parts) == 2 else parts[0]


def _keep(inspect: AttentionInspect, query: Tensor, key: Tensor, value: Tensor, scale: float,
          allowed: Tensor | None, strategy: MaskOut | None, probs: Tensor) -> None:
    """Stores batch item 0 of one layer's attention in ``inspect`` (detached, float32, on the CPU)."""
    def first(t: Tensor | None) -> Tensor | None:
        return None if t is None else t[0].detach().float().cpu()

    inspect.query, inspect.key, inspect.value = first(query), first(key), first(value)
    inspect.scale = float(scale)
    inspect.model_allowed = None if allowed is None else allowed[0].detach().cpu()
    inspect.strategy_allowed = None if strategy is None else strategy.allowed.expand(
        1, query.shape[1], query.shape[2], key.shape[2])[0].detach().cpu()
    inspect.weights = first(probs)
    inspect.output = torch.matmul(inspect.weights, inspect.value)


AttentionInterface.register(ATTN_IMPLEMENTATION, dynmask_attention)
AttentionMaskInterface.register(ATTN_IMPLEMENTATION, eager_mask)


@contextmanager
def applied(model: torch.nn.Module, plan: MaskPlan = IDENTITY_PLAN, *, capture: bool | CapturePlan = False,
            segment_ids: Tensor | None = None, key_padding: Tensor | None = None,
            geometry: Any = None, head_gates: Tensor | None = None,
            probe: AttentionProbe | None = None, inspect: AttentionInspect | None = None,
            progress: Callable[[int], None] | None = None) -> Iterator[RunContext]:
    """Applies ``plan`` inside every attention layer of ``model`` for the code run inside the block.

    Any forward works inside: with or without gradients, one pass or many (Captum). Nothing global changes: the
    plan lives in this thread's context only.

    Args:
        model: A transformers model whose attention is ``"dynmask"`` (see :func:`dynmask_core.engine.attach`).
        plan: A *resolved* plan (see :meth:`MaskPlan.resolved`).
        capture: Record masks and attention weights of the first pass (batch item 0): ``True`` every layer's in
            full, a :class:`~dynmask_core.capture.CapturePlan` summaries and pooled maps within its budget.
        segment_ids: ``(K,)`` segment of each position, for the ``document`` strategy.
        key_padding: ``(B, K)`` bool, True = real token; needed when a causal LM is let see the future.
        geometry: The input's :class:`~dynmask_core.modalities.Geometry` (for the 2-D strategies), or None.
        head_gates: ``(L, H)`` multipliers of each head's weights (give them ``requires_grad`` for head importance).
        probe: An :class:`AttentionProbe` scaling one layer's weights (attention attribution).
        inspect: An :class:`AttentionInspect` keeping one layer's queries, keys, values and masks (lessons).
        progress: Called with each layer's index once its attention is computed (a long pass's progress bar).

    Yields:
        The :class:`RunContext`; after the block, ``ctx.layer_of`` tells whether any attention layer ran.
    """
    state = RunContext(plan=plan, mask=plan.mask(), capture=capture, names=attention_names(model),
                       segment_ids=segment_ids, key_padding=key_padding, geometry=geometry,
                       head_gates=head_gates, probe=probe, inspect=inspect, n_layers=_layer_count(model),
                       progress=progress)
    token = _ACTIVE.set(state)
    try:
        yield state
    finally:
        _ACTIVE.reset(token)


def _layer_count(model: torch.nn.Module) -> int:
    """The attention layers one forward pass calls, from the model's config (0 when it does not say)."""
    config = getattr(model, "config", None)
    config = getattr(config, "text_config", None) or config
    return int(getattr(config, "num_hidden_layers", 0) or 0)


def attention_names(model: torch.nn.Module) -> dict[int, str]:
    """id(module) -> qualified name, for modules that look like attention layers (computed once per model)."""
    names = model.__dict__.get("_dynmask_attention_names")
    if names is None:
        names = {id(m): n for n, m in model.named_modules() if "attention" in type(m).__name__.lower()}
        model.__dict__["_dynmask_attention_names"] = names
    return names


@functools.cache
def takes_custom_attention(model_cls: type) -> bool:
    """Whether a transformers model class routes its attention through the attention interface.

    The class flag ``_supports_attention_backend`` says so for most families; some that do route through it
    (Wav2Vec2, HuBERT) leave the flag off, so the modeling module's use of ``ALL_ATTENTION_FUNCTIONS`` counts too.
    Families that compute attention their own way (DeBERTa, BigBird, Longformer, ...) have neither.
    """
    if getattr(model_cls, "_supports_attention_backend", False):
        return True
    try:
        return "ALL_ATTENTION_FUNCTIONS" in inspect.getsource(inspect.getmodule(model_cls))
    except (OSError, TypeError):  # no source to read: trust the flag
        return False
