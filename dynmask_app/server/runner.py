"""Caching around the core: models and results in shared caches bounded in bytes, computations taking turns.

The only module that decides what is cached. The core knows nothing of Streamlit. Results are shared, read-only
objects (never a copy per session or per hit); they are never mutated after ``run()``. Pages keep
:class:`~dynmask_app.server.result_cache.SharedResult` handles, not results (see
:mod:`dynmask_app.server.result_cache`).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dynmask_app import messages
from dynmask_app.i18n import t
from dynmask_app.server import keys, resources, uploads
from dynmask_app.server.result_cache import SharedResult
from dynmask_app.server.serving import count_parameters
from dynmask_app.state import AppState
from dynmask_core import MaskPlan, RunResult, encode, load, run
from dynmask_core.attention import AttentionInspect
from dynmask_core.attribution import AttributionResult, attribute, head_importance
from dynmask_core.attribution.heads import HeadImportance
from dynmask_core.capture import CapturePlan
from dynmask_core.engine import AttentionWindow, Capture, attention_window, baseline_pass
from dynmask_core.models import LoadedModel


def _pin() -> bool:
    """Whether to pin what this thread fetches: only inside a script run, whose thread ends with it (a deferred
    download runs on one of the server's long-lived threads, whose pins would never be released)."""
    return get_script_run_ctx(suppress_warning=True) is not None


def load_model(model_id: str, progress: Callable[[str, float], None] | None = None) -> LoadedModel:
    """The loaded model from the model cache (pinned to this script run), loaded when missing."""
    def load_checked() -> LoadedModel:
        rules = resources.policy()
        target = rules.check_model(model_id)  # a folder: its resolved path, checked, and exactly what loads below
        rules.check_weights(model_id, target)  # a folder: counted from its weight files' headers, nothing loaded
        try:
            loaded = load(target, progress=progress)
        except ValueError as err:
            raise ValueError(rules.load_error(model_id, err)) from err
        loaded.id = (model_id or "").strip()  # what the user asked for, not the server's path
        rules.check_size(model_id, count_parameters(loaded.model))  # Hub ids: counted once loaded
        return loaded

    return resources.model_cache().get_or_compute(model_id, load_checked, pin=_pin())


def get_model(model_id: str, where: Any = None) -> LoadedModel:
    """The loaded model (cached within the model budget), with a live progress bar while it loads.

    Args:
        model_id: Bundled id, Hugging Face id or folder.
        where: Container for the progress bar (default the main area).

    Raises:
        ValueError: the core's readable message (unknown id, unsupported family...).
    """
    hit = resources.model_cache().get(model_id, pin=_pin())
    if hit is not None:
        return hit
    box = (where or st).empty()

    def progress(stage: str, fraction: float) -> None:
        box.progress(min(1.0, max(0.0, float(fraction))),
                     text=messages.plain(t("Loading {model}: {stage}", model=model_id, stage=t(stage))))

    try:
        return load_model(model_id, progress)
    finally:
        box.empty()


def model_facts(loaded: LoadedModel) -> dict[str, Any]:
    """What the controls need to know: sizes, task, whether the model is causal."""
    return {"n_layers": int(loaded.n_layers), "n_heads": int(loaded.n_heads), "task": loaded.task,
            "causal": loaded.causal, "max_tokens": int(loaded.max_tokens), "modality": loaded.modality,
            "context": max(int(getattr(loaded, "context", 0) or 0), int(loaded.max_tokens)),
            "labels": list(loaded.labels)}


def attribute_recipe(state: AppState, plan: MaskPlan, progress: Callable[[float, str], None] | None = None
                     ) -> AttributionResult:
    """The attribution of the page's method and target, masked vs unmasked (cached like runs, by the full recipe).

    ``progress(fraction, what)`` is called during the computation; raising from it cancels (nothing is cached).

    Raises:
        ValueError: a bad target, or a method this model cannot take.
    """
    def compute() -> AttributionResult:
        with resources.computing():
            loaded = load_model(state.model)
            return attribute(loaded, encode(loaded, uploads.source_of(state)), plan, state.attr_method,
                             state.attr_target, state.attr_steps, progress=progress)

    return resources.result_cache().get_or_compute(keys.attribution_key(state, plan), compute, pin=_pin())


def head_importance_recipe(state: AppState, plan: MaskPlan) -> HeadImportance:
    """Head importance (gradient of head gates) for the page's target, masked vs unmasked (cached)."""
    def compute() -> HeadImportance:
        with resources.computing():
            loaded = load_model(state.model)
            return head_importance(loaded, encode(loaded, uploads.source_of(state)), plan, state.attr_target)

    return resources.result_cache().get_or_compute(keys.attribution_key(state, plan, "heads"), compute, pin=_pin())


def inspect_recipe(state: AppState, plan: MaskPlan, layer: int) -> AttentionInspect:
    """One layer's queries, keys, values and masks under the recipe's plan (cached; the step-by-step lesson)."""
    from dynmask_core.lessons.steps import inspect_layer

    def compute() -> AttentionInspect:
        with resources.computing():
            loaded = load_model(state.model)
            return inspect_layer(loaded, encode(loaded, uploads.source_of(state)), plan, layer)

    return resources.result_cache().get_or_compute(keys.inspect_key(state, plan, layer), compute, pin=_pin())


#: Where the run computed in this script run reports its progress (set by :func:`reporting`), or None.
_REPORT: contextvars.ContextVar[Callable[[str, float], None] | None] = contextvars.ContextVar("report", default=None)


@contextmanager
def reporting(box: Any) -> Iterator[None]:
    """Runs computed inside the block draw their progress (pass and layer) in ``box``, an ``st.empty()``."""
    def show(stage: str, fraction: float) -> None:
        box.progress(min(1.0, max(0.0, float(fraction))), text=t("Running the model: {stage}", stage=t(stage)))

    token = _REPORT.set(show)
    try:
        yield
    finally:
        _REPORT.reset(token)
        box.empty()


def run_recipe(state: AppState, plan: MaskPlan, key: str | None = None, side: str = "main") -> RunResult:
    """Runs (or fetches from the cache) the baseline + masked forward of one side of a resolved recipe.

    The result is pinned to the calling script run; keep :func:`shared_run` handles between runs instead.

    Raises:
        ValueError: bad input or parameters (the core's message).
    """
    def compute() -> RunResult:
        loaded = load_model(state.model)
        prepared = encode(loaded, uploads.source_of(state))
        capture = capture_plan(loaded, len(prepared.labels))
        report = _REPORT.get()
        base = baseline_recipe(state, loaded, prepared, capture) if isinstance(capture, CapturePlan) else None
        with resources.computing(estimated_bytes(loaded, len(prepared.labels), capture)):
            return run(loaded, prepared, plan, capture=capture, baseline=base, progress=report)

    return resources.result_cache().get_or_compute(key or keys.recipe_key(state, plan, side), compute, pin=_pin())


def baseline_recipe(state: AppState, loaded: LoadedModel, prepared: Any, capture: CapturePlan) -> Capture:
    """A long input's baseline pass, cached apart from its runs: every strategy tried on the same long text shares
    it (it depends on the model, the input and the capture, not on the mask), so only the masked pass is new."""
    def compute() -> Capture:
        with resources.computing(estimated_bytes(loaded, len(prepared.labels), capture) // 2):
            return baseline_pass(loaded, prepared, capture, _REPORT.get())

    key = keys.baseline_key(state, capture)
    return resources.result_cache().get_or_compute(key, compute, pin=_pin())


def capture_plan(loaded: LoadedModel, n_tokens: int) -> bool | CapturePlan:
    """What a run keeps of its attention: everything up to the model's usual limit (512 tokens; every result so
    far), past it per-head summaries and pooled maps within the server's capture budget (half for each pass)."""
    if n_tokens <= int(loaded.max_tokens):
        return True
    return CapturePlan(budget_bytes=resources.policy().capture_budget // 2)


def window_recipe(state: AppState, plan: MaskPlan, layer: int, head: int, rows: tuple[int, int]) -> AttentionWindow:
    """Query rows of one layer and head at full resolution, masked and baseline (cached like runs): the zoom into a
    long input's pooled heatmaps. ``plan`` is the run's resolved plan.

    Raises:
        ValueError: rows outside the input, or indices outside the model.
    """
    def compute() -> AttentionWindow:
        loaded = load_model(state.model)
        prepared = encode(loaded, uploads.source_of(state))
        with resources.computing(4 * (rows[1] - rows[0]) * len(prepared.labels) * 5):
            return attention_window(loaded, prepared, plan, layer, head, rows)

    return resources.result_cache().get_or_compute(keys.window_key(state, plan, layer, head, rows), compute, pin=_pin())


def shared_run(state: AppState, plan: MaskPlan, side: str = "main") -> SharedResult:
    """A handle on one side's result that a session may keep: the key and how to (re)compute it, no tensors."""
    key = keys.recipe_key(state, plan, side)
    return SharedResult(key, lambda: run_recipe(state, plan, key))


def estimated_bytes(loaded: LoadedModel, n_tokens: int, capture: bool | CapturePlan = True) -> int:
    """What a run holds at its peak. Captured in full, per layer, head and query-key cell: its result's attention
    (float32) and masks (bool) of both runs, 10 bytes, plus the strategy's masks and the forward pass while it runs,
    measured at about 2 more (512-token SmolLM2: result 708 MB, peak 830 MB over what the process held before).
    With a capture budget: what both passes keep, plus what the forward pass holds while it runs, measured at about
    3 bytes per head and query-key cell (an 8,192-token SmolLM2 run with a sliding window peaked at 2.66 GB, of which
    the model 0.54 GB: 1.8 GB for 9 x 8,192² cells; a score-based strategy's eager layers hold more)."""
    if isinstance(capture, CapturePlan):
        return 2 * capture.budget_bytes + int(loaded.n_heads) * int(n_tokens) ** 2 * 3
    return int(loaded.n_layers) * int(loaded.n_heads) * int(n_tokens) ** 2 * 12
