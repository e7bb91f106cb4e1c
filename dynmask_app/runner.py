"""Caching around the core: models and results in shared caches bounded in bytes, computations taking turns.

The only module that decides what is cached. The core knows nothing of Streamlit. Results are shared, read-only
objects (never a copy per session or per hit); they are never mutated after ``run()``. Pages keep
:class:`~dynmask_app.result_cache.SharedResult` handles, not results (see :mod:`dynmask_app.result_cache`).
"""

from __future__ import annotations

import contextvars
import json
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from dynmask_app import inputs, messages
from dynmask_app.result_cache import ByteLRU, ResultCache, SharedResult, model_nbytes
from dynmask_app.serving import ServingPolicy, count_parameters, load_policy
from dynmask_app.state import AppState
from dynmask_core import MaskPlan, RunResult, encode, load, run
from dynmask_core.attention import AttentionInspect
from dynmask_core.attribution import STEPPED, AttributionResult, attribute, head_importance
from dynmask_core.attribution.heads import HeadImportance
from dynmask_core.capture import CapturePlan
from dynmask_core.engine import AttentionWindow, Capture, attention_window, baseline_pass
from dynmask_core.models import LoadedModel

#: Torch threads per computation (``DYNMASK_TORCH_THREADS``; unset: torch's default, the number of cores). With
#: 1, a 32-token MiniLM run took 0.06 s inside a busy 2-core server instead of 0.26 s (bench/app_latency.py: the
#: OpenMP workers of parallel sessions spin against each other), but its numbers then differ from a run with more
#: threads in the 7th digit; unset, the app's numbers equal the command line's bit for bit.
TORCH_THREADS = int(os.environ.get("DYNMASK_TORCH_THREADS", "0") or 0)


def _threads() -> None:
    """Applies ``DYNMASK_TORCH_THREADS`` to the computing thread (Streamlit runs each script in its own thread)."""
    if TORCH_THREADS > 0 and torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)


def _pin() -> bool:
    """Whether to pin what this thread fetches: only inside a script run, whose thread ends with it (a deferred
    download runs on one of the server's long-lived threads, whose pins would never be released)."""
    return get_script_run_ctx(suppress_warning=True) is not None


@st.cache_resource(show_spinner=False)
def policy() -> ServingPolicy:
    """This server's serving policy, read once at start (``serving.toml`` and ``DYNMASK_*`` variables)."""
    return load_policy()


@st.cache_resource(show_spinner=False)
def model_cache() -> ByteLRU:
    """The server's loaded models, least recently used out past ``model_budget_mb`` (the newest always stays)."""
    return ByteLRU(policy().model_budget, sizeof=model_nbytes, keep_newest=True)


@st.cache_resource(show_spinner=False)
def result_cache() -> ResultCache:
    """The server's one result cache, shared by every session, bounded by ``result_budget_mb``."""
    return ResultCache(policy().result_budget)


@st.cache_resource(show_spinner=False)
def _slots() -> threading.BoundedSemaphore:
    return threading.BoundedSemaphore(policy().parallel_runs)


@contextmanager
def computing(size: int = 0) -> Iterator[None]:
    """Room for ``size`` bytes in the result budget, then one of the ``parallel_runs`` computation slots (each waits
    its turn; in this order, so a thread holding a slot never waits for memory and slots always free up)."""
    with result_cache().room_for(size), _slots():
        _threads()
        yield


def _load_model(model_id: str, progress: Callable[[str, float], None] | None = None) -> LoadedModel:
    """The loaded model from the model cache (pinned to this script run), loaded when missing."""
    def load_checked() -> LoadedModel:
        rules = policy()
        target = rules.check_model(model_id)  # a folder: its resolved path, checked, and exactly what loads below
        rules.check_weights(model_id, target)  # a folder: counted from its weight files' headers, nothing loaded
        try:
            loaded = load(target, progress=progress)
        except ValueError as err:
            raise ValueError(rules.load_error(model_id, err)) from err
        loaded.id = (model_id or "").strip()  # what the user asked for, not the server's path
        rules.check_size(model_id, count_parameters(loaded.model))  # Hub ids: counted once loaded
        return loaded

    return model_cache().get_or_compute(model_id, load_checked, pin=_pin())


def get_model(model_id: str, where: Any = None) -> LoadedModel:
    """The loaded model (cached within the model budget), with a live progress bar while it loads.

    Args:
        model_id: Bundled id, Hugging Face id or folder.
        where: Container for the progress bar (default the main area).

    Raises:
        ValueError: the core's readable message (unknown id, unsupported family...).
    """
    hit = model_cache().get(model_id, pin=_pin())
    if hit is not None:
        return hit
    box = (where or st).empty()

    def progress(stage: str, fraction: float) -> None:
        box.progress(min(1.0, max(0.0, float(fraction))), text=messages.plain(f"Loading {model_id}: {stage}"))

    try:
        return _load_model(model_id, progress)
    finally:
        box.empty()


def model_facts(loaded: LoadedModel) -> dict[str, Any]:
    """What the controls need to know: sizes, task, whether the model is causal."""
    return {"n_layers": int(loaded.n_layers), "n_heads": int(loaded.n_heads), "task": loaded.task,
            "causal": loaded.causal, "max_tokens": int(loaded.max_tokens), "modality": loaded.modality,
            "context": max(int(getattr(loaded, "context", 0) or 0), int(loaded.max_tokens)),
            "labels": list(loaded.labels)}


def recipe_key(state: AppState, plan: MaskPlan) -> str:
    """The full recipe of one run (model, input, resolved plan incl. seed) as a canonical JSON string."""
    recipe = {"model": state.model, "input": [state.input_kind, state.input_ref], "plan": plan.to_dict()}
    if state.max_tokens and state.input_kind == "text":  # only then: the keys of every other recipe stay as they were
        recipe["tokens"] = int(state.max_tokens)
    return json.dumps(recipe, sort_keys=True, default=str)


def attribution_key(state: AppState, plan: MaskPlan, what: str = "attribution") -> str:
    """The key of an attribution (or head importance) of one run: the run's key plus method, target and steps."""
    steps = state.attr_steps if state.attr_method in STEPPED else None
    extra = {"what": what, "target": state.attr_target}
    if what == "attribution":
        extra.update(method=state.attr_method, steps=steps)
    return recipe_key(state, plan) + json.dumps(extra, sort_keys=True)


def attribute_recipe(state: AppState, plan: MaskPlan, progress: Callable[[float, str], None] | None = None
                     ) -> AttributionResult:
    """The attribution of the page's method and target, masked vs unmasked (cached like runs, by the full recipe).

    ``progress(fraction, what)`` is called during the computation; raising from it cancels (nothing is cached).

    Raises:
        ValueError: a bad target, or a method this model cannot take.
    """
    def compute() -> AttributionResult:
        with computing():
            loaded = _load_model(state.model)
            return attribute(loaded, encode(loaded, inputs.source_of(state)), plan, state.attr_method,
                             state.attr_target, state.attr_steps, progress=progress)

    return result_cache().get_or_compute(attribution_key(state, plan), compute, pin=_pin())


def head_importance_recipe(state: AppState, plan: MaskPlan) -> HeadImportance:
    """Head importance (gradient of head gates) for the page's target, masked vs unmasked (cached)."""
    def compute() -> HeadImportance:
        with computing():
            loaded = _load_model(state.model)
            return head_importance(loaded, encode(loaded, inputs.source_of(state)), plan, state.attr_target)

    return result_cache().get_or_compute(attribution_key(state, plan, "heads"), compute, pin=_pin())


def inspect_recipe(state: AppState, plan: MaskPlan, layer: int) -> AttentionInspect:
    """One layer's queries, keys, values and masks under the recipe's plan (cached; the step-by-step lesson)."""
    from dynmask_core.lessons.steps import inspect_layer

    def compute() -> AttentionInspect:
        with computing():
            loaded = _load_model(state.model)
            return inspect_layer(loaded, encode(loaded, inputs.source_of(state)), plan, layer)

    return result_cache().get_or_compute(recipe_key(state, plan) + f'{{"inspect": {int(layer)}}}', compute, pin=_pin())


#: Where the run computed in this script run reports its progress (set by :func:`reporting`), or None.
_REPORT: contextvars.ContextVar[Callable[[str, float], None] | None] = contextvars.ContextVar("report", default=None)


@contextmanager
def reporting(box: Any) -> Iterator[None]:
    """Runs computed inside the block draw their progress (pass and layer) in ``box``, an ``st.empty()``."""
    def show(stage: str, fraction: float) -> None:
        box.progress(min(1.0, max(0.0, float(fraction))), text=f"Running the model: {stage}")

    token = _REPORT.set(show)
    try:
        yield
    finally:
        _REPORT.reset(token)
        box.empty()


def run_recipe(state: AppState, plan: MaskPlan, key: str | None = None) -> RunResult:
    """Runs (or fetches from the cache) the baseline + masked forward of one side of a resolved recipe.

    The result is pinned to the calling script run; keep :func:`shared_run` handles between runs instead.

    Raises:
        ValueError: bad input or parameters (the core's message).
    """
    def compute() -> RunResult:
        loaded = _load_model(state.model)
        prepared = encode(loaded, inputs.source_of(state))
        capture = capture_plan(loaded, len(prepared.labels))
        report = _REPORT.get()
        base = baseline_recipe(state, loaded, prepared, capture) if isinstance(capture, CapturePlan) else None
        with computing(estimated_bytes(loaded, len(prepared.labels), capture)):
            return run(loaded, prepared, plan, capture=capture, baseline=base, progress=report)

    return result_cache().get_or_compute(key or recipe_key(state, plan), compute, pin=_pin())


def baseline_recipe(state: AppState, loaded: LoadedModel, prepared: Any, capture: CapturePlan) -> Capture:
    """A long input's baseline pass, cached apart from its runs: every strategy tried on the same long text shares
    it (it depends on the model, the input and the capture, not on the mask), so only the masked pass is new."""
    def compute() -> Capture:
        with computing(estimated_bytes(loaded, len(prepared.labels), capture) // 2):
            return baseline_pass(loaded, prepared, capture, _REPORT.get())

    key = json.dumps({"baseline": [state.model, state.input_kind, state.input_ref, int(state.max_tokens)],
                      "capture": capture.budget_bytes})
    return result_cache().get_or_compute(key, compute, pin=_pin())


def capture_plan(loaded: LoadedModel, n_tokens: int) -> bool | CapturePlan:
    """What a run keeps of its attention: everything up to the model's usual limit (512 tokens; every result so
    far), past it per-head summaries and pooled maps within the server's capture budget (half for each pass)."""
    if n_tokens <= int(loaded.max_tokens):
        return True
    return CapturePlan(budget_bytes=policy().capture_budget // 2)


def window_recipe(state: AppState, plan: MaskPlan, layer: int, head: int, rows: tuple[int, int]) -> AttentionWindow:
    """Query rows of one layer and head at full resolution, masked and baseline (cached like runs): the zoom into a
    long input's pooled heatmaps. ``plan`` is the run's resolved plan.

    Raises:
        ValueError: rows outside the input, or indices outside the model.
    """
    def compute() -> AttentionWindow:
        loaded = _load_model(state.model)
        prepared = encode(loaded, inputs.source_of(state))
        with computing(4 * (rows[1] - rows[0]) * len(prepared.labels) * 5):
            return attention_window(loaded, prepared, plan, layer, head, rows)

    return result_cache().get_or_compute(window_key(state, plan, layer, head, rows), compute, pin=_pin())


def window_key(state: AppState, plan: MaskPlan, layer: int, head: int, rows: tuple[int, int]) -> str:
    """The key of one zoom window of a run: the run's key plus where."""
    return recipe_key(state, plan) + json.dumps({"window": [int(layer), int(head), int(rows[0]), int(rows[1])]})


def shared_run(state: AppState, plan: MaskPlan) -> SharedResult:
    """A handle on one side's result that a session may keep: the key and how to (re)compute it, no tensors."""
    key = recipe_key(state, plan)
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
