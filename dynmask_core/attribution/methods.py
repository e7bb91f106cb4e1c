"""Attribution of a masked model against the unmasked one: what the prediction depended on, position by position.

Gradient methods use Captum 0.9's public API on the real model, run inside :func:`~dynmask_core.attention.applied`,
so gradients flow through the mask plan: the attribution is that of the MASKED model. Attention methods read the
attention the engine applied. Both sides (masked, unmasked) explain the same target, so they share one scale.

========================  ===============================================================================
method                    what it computes
========================  ===============================================================================
``ig``                    Integrated Gradients (Sundararajan et al., 2017) from a baseline input (padding /
                          mean colour / silence), Gauss-Legendre with ``steps`` points; convergence delta
``saliency``              |d target / d input| (Simonyan et al., 2014), summed per position
``input_x_gradient``      input x gradient (Shrikumar et al., 2016)
``occlusion``             the drop of the target when one word / patch / time slice is replaced by the
                          baseline (Zeiler & Fergus, 2014)
``rollout``               attention rollout (Abnar & Zuidema, ACL 2020): the row of the position(s) the output
                          reads (CLS, the last token, or the mean of all for mean-pooled models)
``attention_attribution`` integrated gradients over each layer's attention weights (Hao et al., AAAI 2021):
                          A * mean_k d target / d (alpha_k A), summed over layers, heads and queries per key
========================  ===============================================================================

Each method is one :class:`AttributionMethod` in :data:`ATTRIBUTION_METHODS` (its id, title, help, whether it takes
steps or reads attention, and the function computing one side); :func:`attribute` dispatches through it, and the old
names (:data:`METHODS`, :data:`METHOD_HELP`, :data:`STEPPED`, :data:`ATTENTION_METHODS`) are read from it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynmask_core.attention import AttentionProbe, applied
from dynmask_core.attribution.spaces import Space, space_of
from dynmask_core.attribution.targets import Target, resolve_target, scorer
from dynmask_core.masks.plan import IDENTITY_PLAN, MaskPlan

#: Integration steps unless asked otherwise. 128, because at 64 two of the bundled sentiment examples missed the
#: change by more than DELTA_WARN on MiniLM with the Attribution page's default strategy (the negation example by
#: 7.3%, the negative review by 6.2%); at 128 every bundled example stays under 1% on its kind's default model
#: (MiniLM, the shapes ViT, the keyword spotter; measured, and
#: ``tests/core/test_attribution.py::test_the_bundled_examples_converge_at_the_default_steps``). Not every model
#: converges this way: on SmolLM2 with that strategy, "who is 'he'?" still missed by 1493% (masked) at 512 steps while
#: its unmasked side reached 0.3%. Links carry their ``steps=``, so a link made at 64 still computes at 64.
DEFAULT_STEPS = 128
#: A convergence delta above this share of the change: the split is not faithful yet (the app suggests more steps).
DELTA_WARN = 0.05
MAX_STEPS = 512
CELL_BUDGET = 8192  # positions x batch items per forward pass (bounds memory on long inputs)
OCCLUSION_BATCH = 8  # occluded copies per forward pass on short inputs

ProgressFn = Callable[[float, str], None]


#: A change of the target (a probability, a cosine) below this is "almost nothing to explain".
NEAR_ZERO_CHANGE = 1e-3


class Cancelled(Exception):
    """Raised by a progress callback to stop an attribution (the partial work is dropped)."""


@dataclass
class Side:
    """One side's attribution.

    Attributes:
        positions: ``(T,)`` score per position.
        overlay: Pixels ``(H, W)`` (images) or frames ``(frames,)`` (AST audio), or None.
        score: The target's value on the input.
        reference_score: The target's value on the baseline input (IG), or None.
        delta: IG's convergence delta (sum of attributions minus the change of the target), or None.
        layer_deltas: attention attribution: per layer, the sum of its attributions minus (F(A) - F(0 A)).
        heads: ``(L, H)`` attention attribution per head (summed over queries and keys), or None.
    """

    positions: np.ndarray
    overlay: np.ndarray | None = None
    score: float = math.nan
    reference_score: float | None = None
    delta: float | None = None
    layer_deltas: list[float] | None = None
    heads: np.ndarray | None = None

    @property
    def change(self) -> float | None:
        """The change of the target from the baseline input to this one (what IG shares out), or None."""
        return None if self.reference_score is None else self.score - self.reference_score

    def relative_delta(self) -> float | None:
        """The convergence delta as a share of the change; None when there is no delta, or when the change is below
        :data:`NEAR_ZERO_CHANGE` (a delta of 1e-4 on a change of 6e-8 read as "167201.3% of the change": with almost
        nothing to share out, a share says nothing)."""
        change = self.change
        if self.delta is None or change is None or abs(change) < NEAR_ZERO_CHANGE:
            return None
        return abs(self.delta) / abs(change)


@dataclass
class AttributionResult:
    """The masked and the unmasked attribution of one recipe, method and target."""

    method: str
    target: Target
    steps: int | None
    positions: list[str]
    masked: Side
    baseline: Side
    kind: str
    reduce: str
    seconds: float
    geometry: Any = None
    hidden: list[int] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """What ``attribution.json`` holds."""
        t = self.target
        return {
            "method": self.method,
            "method_title": get_method(self.method).title,
            "target": t.spec if t.spec != "predicted" else t.label,
            "target_requested": t.spec,
            "target_label": t.label,
            "target_kind": t.kind,
            "target_index": t.index,
            "target_description": t.describe(),
            "steps": self.steps,
            "convergence_delta": self.masked.delta,
            "baseline_convergence_delta": self.baseline.delta,
            "layer_convergence_delta": None if self.masked.layer_deltas is None else {
                "masked": self.masked.layer_deltas, "baseline": self.baseline.layer_deltas},
            "score": {"masked": self.masked.score, "baseline": self.baseline.score},
            "reference_score": {"masked": self.masked.reference_score, "baseline": self.baseline.reference_score},
            "input_kind": self.kind,
            "positions": self.positions,
            "masked": self.masked.positions.tolist(),
            "baseline": self.baseline.positions.tolist(),
            "reduce": self.reduce,
            "hidden_positions": self.hidden,
            "notes": self.notes,
            "seconds": self.seconds,
        }


def _one_pass(steps: int, n_positions: int, n_layers: int) -> int:
    return 1


@dataclass(frozen=True)
class AttributionMethod:
    """One attribution method: how the recipe, the CLI and the app name it, and how one side is computed.

    Attributes:
        id: The method's id (``--method``, the link's ``method=``).
        title: Human name.
        help: What it computes, in a sentence or two (the app's caption, the recipe's choice help).
        run: ``run(runner, steps) -> Side``: one side's attribution (:class:`SideRunner`); ``steps`` is
            :data:`DEFAULT_STEPS` for a method that is not ``stepped``.
        passes: ``passes(steps, n_positions, n_layers)``: the forward passes one side takes (the progress bar).
        stepped: It takes integration steps (``--steps``): only then do the steps change its numbers.
        attention: It reads attention weights, not input gradients (so it scores positions, not pixels).
        capture: It reads the attention of a forward pass: the identity-plan pass made to resolve the target
            captures it, and the baseline side reuses it.
        reduce: How a position's cells are joined: ``sum`` (additive methods) or ``mean`` (occlusion).
    """

    id: str
    title: str
    help: str
    run: Callable[[SideRunner, int], Side]
    passes: Callable[[int, int, int], int] = _one_pass
    stepped: bool = False
    attention: bool = False
    capture: bool = False
    reduce: str = "sum"


class _Progress:
    def __init__(self, callback: ProgressFn | None, total: int, what: str) -> None:
        self.callback, self.total, self.done, self.what = callback, max(1, total), 0, what

    def tick(self, n: int = 1) -> None:
        self.done += n
        if self.callback is not None:
            self.callback(min(1.0, self.done / self.total), self.what)


def get_method(method: str) -> AttributionMethod:
    """The registered method ``method``.

    Raises:
        ValueError: an unknown method (naming the known ones).
    """
    if method not in ATTRIBUTION_METHODS:
        raise ValueError(f"unknown attribution method {method!r}; choose one of: {', '.join(ATTRIBUTION_METHODS)}")
    return ATTRIBUTION_METHODS[method]


def check_method(method: str, steps: int | None) -> int | None:
    """Validates a method and its steps; returns the steps it uses (None for methods without steps).

    Raises:
        ValueError: an unknown method or steps outside 1..MAX_STEPS.
    """
    if not get_method(method).stepped:
        return None
    n = DEFAULT_STEPS if steps is None else steps
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_STEPS:
        raise ValueError(f"steps must be a whole number between 1 and {MAX_STEPS}, got {steps!r}")
    return n


def attribute(loaded: Any, prepared: Any, plan: MaskPlan, method: str, target: str = "predicted",
              steps: int | None = None, progress: ProgressFn | None = None) -> AttributionResult:
    """Attributes the target to the input positions, for the masked model (``plan``) and the unmasked one.

    Args:
        loaded: The :class:`~dynmask_core.models.LoadedModel`.
        prepared: The encoded input (:func:`~dynmask_core.modalities.encode`).
        plan: The mask plan (resolved here; its input-masking strategies hide positions of the masked side's input).
        method: The id of a registered method (:data:`ATTRIBUTION_METHODS`).
        target: ``predicted``, a class label, a token, or ``similar:<sentence>`` (see :mod:`.targets`).
        steps: Integration steps of a ``stepped`` method (``ig``, ``attention_attribution``; default
            :data:`DEFAULT_STEPS`).
        progress: Called as ``progress(fraction, what)``; may raise (e.g. :class:`Cancelled`) to stop.

    Raises:
        ValueError: a bad method, steps or target, or a model whose layers this method cannot read.
    """
    from dynmask_core.engine import forward, hide_input

    start = time.perf_counter()
    n_steps = check_method(method, steps)
    how = get_method(method)
    plan = plan.resolved()
    masked_inputs, hidden = hide_input(plan, prepared, loaded.model)
    base_capture = forward(loaded.model, prepared.inputs, IDENTITY_PLAN, capture=how.capture,
                           segment_ids=prepared.segment_ids, geometry=prepared.geometry, call=loaded)
    tgt = resolve_target(loaded, target, base_capture.outputs)
    sides: dict[str, Side] = {}
    n_layers = max(1, int(loaded.n_layers or 1))
    per_side = _forwards(method, n_steps, prepared, n_layers)
    tracker = _Progress(progress, 2 * per_side, how.title)
    for name, side_plan, inputs in (("masked", plan, masked_inputs), ("baseline", IDENTITY_PLAN, prepared.inputs)):
        sides[name] = attribute_side(loaded, prepared, side_plan, tgt, method, n_steps, inputs, tracker,
                                     base_capture if name == "baseline" and how.capture else None)
    notes = []
    if how.attention and prepared.kind != "text":
        notes.append("attention methods score positions (patches, frames), not pixels")
    return AttributionResult(
        method=method, target=tgt, steps=n_steps, positions=list(prepared.labels), masked=sides["masked"],
        baseline=sides["baseline"], kind=prepared.kind, reduce=how.reduce, seconds=time.perf_counter() - start,
        geometry=prepared.geometry, hidden=[] if hidden is None else torch.nonzero(hidden).flatten().tolist(),
        notes=notes,
    )


def attribute_side(loaded: Any, prepared: Any, plan: MaskPlan, target: Target, method: str, steps: int | None,
                   inputs: Any = None, tracker: Any = None, capture: Any = None) -> Side:
    """One side of :func:`attribute`: ``method`` for ``target`` with ``plan`` (resolved) applied, on ``inputs``
    (default the prepared input). ``capture``: an identity-plan capture of the same input to reuse (a method with
    ``capture``, rollout)."""
    how = get_method(method)
    inputs = prepared.inputs if inputs is None else inputs
    tracker = tracker or _Progress(None, 1, method)
    runner = SideRunner(loaded, prepared, plan, target, space_of(loaded, prepared, inputs), tracker, inputs, capture)
    return how.run(runner, steps or DEFAULT_STEPS)


def internal_batch(n_positions: int, steps: int) -> int:
    """Batch items per forward pass: all steps at once on short inputs, fewer on long ones."""
    return max(1, min(steps, CELL_BUDGET // max(1, n_positions)))


def _forwards(method: str, steps: int | None, prepared: Any, n_layers: int) -> int:
    """Forward passes one side takes (for the progress bar)."""
    return get_method(method).passes(steps or DEFAULT_STEPS, len(prepared.labels), n_layers)


class SideRunner:
    """One side of an attribution, what a method's ``run`` gets: the model under one plan, one target, one space.

    Attributes:
        loaded: The :class:`~dynmask_core.models.LoadedModel`.
        prepared: The encoded input.
        plan: The side's plan (resolved).
        target: What is explained.
        space: Where the attribution lives (:class:`~dynmask_core.attribution.spaces.Space`).
        inputs: The side's model inputs (the masked side's may hide positions).
        capture: An identity-plan capture of the same input to reuse (a ``capture`` method's baseline side), or None.
    """

    def __init__(self, loaded: Any, prepared: Any, plan: MaskPlan, target: Target, space: Space,
                 tracker: _Progress, inputs: Any = None, capture: Any = None) -> None:
        self.loaded, self.prepared, self.plan, self.target, self.space = loaded, prepared, plan, target, space
        self.tracker, self.capture = tracker, capture
        self.inputs = prepared.inputs if inputs is None else inputs
        self.score = scorer(loaded, target)
        padding = space.rest.get("attention_mask")
        self.where = {"segment_ids": prepared.segment_ids, "geometry": prepared.geometry,
                      "key_padding": None if padding is None else padding.bool()}

    def run(self, x: Tensor, **extra: Any) -> Tensor:
        """The target for each batch item of ``x`` under the side's plan (gradients allowed)."""
        self.tracker.tick()
        with applied(self.loaded.model, self.plan, **self.where, **extra):
            return self.score(self.space.inputs(x))

    def side(self, attr: Tensor, reduce: str = "sum", delta: float | None = None, reference: bool = False,
             covered: bool = False) -> Side:
        """The :class:`Side` of ``attr`` (one value per cell of the space's input): per position and for the
        overlay, with the target's value on the input, and on the baseline input when ``reference``.

        Args:
            attr: ``(1, ...)`` like :attr:`Space.value`.
            reduce: ``sum`` or ``mean`` over a position's cells.
            delta: A convergence delta to report.
            reference: Also score the baseline input (what IG's change is measured from).
            covered: Cells go to the position whose occlusion window covers them (occlusion).
        """
        space = self.space
        with torch.no_grad():
            score = float(self.run(space.value)[0])
            reference_score = float(self.run(space.baseline)[0]) if reference else None
        owner = space.covered_owner() if covered else None
        return Side(space.positions(attr, reduce, owner), space.overlay(attr, reduce), score, reference_score, delta)


# ------------------------------------------------------------------------------------------------ the methods


def _integrated_gradients(runner: SideRunner, steps: int) -> Side:
    from captum.attr import IntegratedGradients

    space = runner.space
    with torch.enable_grad():
        attr, delta = IntegratedGradients(runner.run).attribute(
            space.value, baselines=space.baseline, n_steps=steps, method="gausslegendre",
            internal_batch_size=internal_batch(space.n_positions, steps), return_convergence_delta=True)
    return runner.side(attr, delta=float(delta.reshape(-1)[0]), reference=True)


def _ig_passes(steps: int, n_positions: int, n_layers: int) -> int:
    return math.ceil(steps / internal_batch(n_positions, steps)) + 2


def _saliency(runner: SideRunner, steps: int) -> Side:
    from captum.attr import Saliency

    with torch.enable_grad():
        attr = Saliency(runner.run).attribute(runner.space.value.clone().requires_grad_(True), abs=True)
    return runner.side(attr)


def _input_x_gradient(runner: SideRunner, steps: int) -> Side:
    from captum.attr import InputXGradient

    with torch.enable_grad():
        attr = InputXGradient(runner.run).attribute(runner.space.value.clone().requires_grad_(True))
    return runner.side(attr)


def _occlusion(runner: SideRunner, steps: int) -> Side:
    from captum.attr import Occlusion

    space = runner.space
    with torch.enable_grad():
        attr = Occlusion(runner.run).attribute(
            space.value, sliding_window_shapes=space.window, strides=space.window, baselines=space.baseline,
            perturbations_per_eval=internal_batch(space.n_positions, OCCLUSION_BATCH))
    return runner.side(attr, "mean", covered=True)


def _occlusion_passes(steps: int, n_positions: int, n_layers: int) -> int:
    return math.ceil(n_positions / internal_batch(n_positions, OCCLUSION_BATCH)) + 1


def _rollout(runner: SideRunner, steps: int) -> Side:
    from dynmask_core.analysis.rollout import rollout
    from dynmask_core.engine import forward

    capture = runner.capture
    if capture is None:
        capture = forward(runner.loaded.model, runner.inputs, runner.plan, segment_ids=runner.prepared.segment_ids,
                          geometry=runner.prepared.geometry, call=runner.loaded)
    runner.tracker.tick()
    if capture.attention is None:
        raise ValueError("rollout needs attention layers of one shape; this model's differ")
    matrix = rollout(capture.attention)
    rows = readout_rows(runner.loaded, runner.prepared, runner.inputs)
    score = _output_score(capture.outputs, runner.target)
    return Side(matrix[rows].mean(axis=0), None, score)


def _attention_attribution(runner: SideRunner, steps: int) -> Side:
    """Hao et al.: for each layer, integrate the gradient along alpha * A from 0 to A (midpoint rule)."""
    space = runner.space
    x = space.value
    with torch.no_grad(), applied(runner.loaded.model, runner.plan, **runner.where) as ctx:
        runner.tracker.tick()
        full = float(runner.score(space.inputs(x))[0])
        n_layers = len(ctx.layer_of)
    alphas = torch.cat([(torch.arange(steps, dtype=torch.float32) + 0.5) / steps, torch.zeros(1)])
    per_key = torch.zeros(space.n_positions, dtype=torch.float64)
    heads, layer_deltas = [], []
    chunk = internal_batch(space.n_positions, len(alphas))
    for layer in range(n_layers):
        grad_sum = weights = None
        zero_score = math.nan
        for lo in range(0, len(alphas), chunk):
            a = alphas[lo: lo + chunk].to(x.device)
            probe = AttentionProbe(layer, a)
            with torch.enable_grad():
                s = runner.run(x.expand(len(a), *x.shape[1:]), probe=probe)
                (g,) = torch.autograd.grad(s.sum(), probe.leaf)
            real = a > 0
            part = g[real].double().sum(dim=0)
            grad_sum = part if grad_sum is None else grad_sum + part
            weights = probe.weights[0].double()
            if bool((~real).any()):
                zero_score = float(s.detach()[~real][0])
        attr = weights * grad_sum / steps  # (H, Q, K)
        per_key += attr.sum(dim=(0, 1)).cpu()
        heads.append(attr.sum(dim=(1, 2)).cpu().numpy())
        layer_deltas.append(float(attr.sum()) - (full - zero_score))
    return Side(per_key.numpy(), None, full, None, None, layer_deltas, np.stack(heads) if heads else None)


def _attention_attribution_passes(steps: int, n_positions: int, n_layers: int) -> int:
    n = steps + 1  # the steps and alpha = 0
    return n_layers * math.ceil(n / internal_batch(n_positions, n)) + 1


def readout_rows(loaded: Any, prepared: Any, inputs: Any) -> list[int]:
    """The positions the output is read from: the last token (causal models), the prefix tokens of a classifier
    (CLS, and DIST for AST/DeiT), the first token of a text classifier, else every real position (mean pooling)."""
    t = len(prepared.labels)
    causal = loaded.task == "causal_lm" or any(getattr(m, "is_causal", False) for m in loaded.model.modules())
    padding = inputs.get("attention_mask")
    real = list(range(t)) if padding is None else torch.nonzero(padding[0].bool()).flatten().tolist()
    if causal:
        return [real[-1]]
    prefix = int(getattr(prepared.geometry, "prefix", 0) or 0)
    if loaded.task == "classifier" and prefix:
        return list(range(prefix))
    if loaded.task == "classifier" and prepared.kind == "text":
        return [0]
    return real


def _output_score(output: Any, target: Target) -> float:
    """The target's value from a task output (rollout's sides report it too)."""
    if target.kind in ("class", "token"):
        return float(output.probs[target.index])
    vector = getattr(output, "embedding", None)
    if vector is None:
        vector = getattr(output, "vector", None)
    return float(vector.float() @ target.reference) if vector is not None else math.nan


# ------------------------------------------------------------------------------------------------ the registry

#: Every method, in the order the app and ``--help`` list them. A new method is one entry (and its ``run``).
ATTRIBUTION_METHODS: dict[str, AttributionMethod] = {}


def register_method(method: AttributionMethod) -> AttributionMethod:
    """Adds ``method`` to :data:`ATTRIBUTION_METHODS` (the recipe's choices are read when it is imported).

    Raises:
        ValueError: an id that is already registered.
    """
    if method.id in ATTRIBUTION_METHODS:
        raise ValueError(f"attribution method {method.id!r} is already registered")
    ATTRIBUTION_METHODS[method.id] = method
    return method


for _method in (
    AttributionMethod(
        "ig", "Integrated gradients",
        "The target's change from a neutral input (padding, mean colour, silence) to this one, shared among the "
        "positions; the parts add up to that change (the convergence delta says how well).",
        _integrated_gradients, stepped=True, passes=_ig_passes),
    AttributionMethod(
        "saliency", "Saliency (|gradient|)",
        "How strongly the target reacts to a small change of each position (size only, no sign).", _saliency),
    AttributionMethod(
        "input_x_gradient", "Input x gradient",
        "The input times its gradient: a one-step, signed first-order estimate.", _input_x_gradient),
    AttributionMethod(
        "occlusion", "Occlusion",
        "Replace one word / patch / time slice by the neutral input and measure the drop of the target.",
        _occlusion, reduce="mean", passes=_occlusion_passes),
    AttributionMethod(
        "rollout", "Attention rollout",
        "Attention multiplied through the layers (with the skip connections), read from the position(s) the output "
        "comes from. Attention, not gradients.",
        _rollout, attention=True, capture=True),
    AttributionMethod(
        "attention_attribution", "Attention attribution (IG over attention)",
        "Integrated gradients over each layer's attention weights (Hao et al., AAAI 2021): which attention links "
        "the target depended on, summed per key position.",
        _attention_attribution, stepped=True, attention=True, passes=_attention_attribution_passes),
):
    register_method(_method)
del _method

# Views of the registry as it is at import, for the recipe's choices and the app (the names they always had).
METHODS: dict[str, str] = {m.id: m.title for m in ATTRIBUTION_METHODS.values()}  # id -> title
METHOD_HELP: dict[str, str] = {m.id: m.help for m in ATTRIBUTION_METHODS.values()}  # id -> one line of help
STEPPED: tuple[str, ...] = tuple(m.id for m in ATTRIBUTION_METHODS.values() if m.stepped)  # they take --steps
ATTENTION_METHODS: tuple[str, ...] = tuple(m.id for m in ATTRIBUTION_METHODS.values() if m.attention)
