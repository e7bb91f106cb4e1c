"""Streamlit caching around the core: bounded model cache, results cached by the full recipe within a byte budget.

The only module that decides what is cached. The core knows nothing of Streamlit. Results are shared, read-only
objects (never a pickled copy per hit); they are never mutated after ``run()``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st
import torch

from dynmask_app import inputs
from dynmask_app.result_cache import ResultCache, budget_from_env
from dynmask_app.serving import ServingPolicy, count_parameters, folder_parameters, is_folder, load_policy
from dynmask_app.state import AppState
from dynmask_core import MaskPlan, RunResult, encode, load, run
from dynmask_core.attention import AttentionInspect
from dynmask_core.attribution import STEPPED, AttributionResult, attribute, head_importance
from dynmask_core.attribution.heads import HeadImportance
from dynmask_core.models import PRESETS, LoadedModel

#: Torch threads per computation (``DYNMASK_TORCH_THREADS``; unset: torch's default, the number of cores). With
#: 1, a 32-token MiniLM run took 0.06 s inside a busy 2-core server instead of 0.26 s (bench/app_latency.py: the
#: OpenMP workers of parallel sessions spin against each other), but its numbers then differ from a run with more
#: threads in the 7th digit; unset, the app's numbers equal the command line's bit for bit.
TORCH_THREADS = int(os.environ.get("DYNMASK_TORCH_THREADS", "0") or 0)


def _threads() -> None:
    """Applies ``DYNMASK_TORCH_THREADS`` to the computing thread (Streamlit runs each script in its own thread)."""
    if TORCH_THREADS > 0 and torch.get_num_threads() != TORCH_THREADS:
        torch.set_num_threads(TORCH_THREADS)


try:  # Streamlit records st.* calls made inside cached functions and replays them on a cache hit; a live
    # progress bar must not be recorded (its placeholder does not exist on the next run).
    from streamlit.runtime.caching.cached_message_replay import in_cached_function as _in_cached
except ImportError:  # pragma: no cover - other Streamlit versions: progress still works, untracked
    _in_cached = None


@st.cache_resource(show_spinner=False)
def policy() -> ServingPolicy:
    """This server's serving policy, read once at start (``serving.toml`` and ``DYNMASK_*`` variables)."""
    return load_policy()


@st.cache_resource(max_entries=2, show_spinner=False)
def _load_model(model_id: str, _progress: Callable[[str, float], None] | None = None) -> LoadedModel:
    rules = policy()
    rules.check_model(model_id)
    if model_id not in PRESETS and is_folder(model_id):
        counted = folder_parameters(Path(model_id).expanduser())
        if counted is not None:
            rules.check_size(model_id, counted)  # before loading a single weight
    try:
        loaded = load(model_id, progress=_progress)
    except ValueError as err:
        raise ValueError(rules.load_error(model_id, err)) from err
    rules.check_size(model_id, count_parameters(loaded.model))
    return loaded


def get_model(model_id: str, where: Any = None) -> LoadedModel:
    """The loaded model (cached, at most 2 in memory), with a live progress bar while it loads.

    Args:
        model_id: Bundled id, Hugging Face id or folder.
        where: Container for the progress bar (default the main area).

    Raises:
        ValueError: the core's readable message (unknown id, unsupported family...).
    """
    box = (where or st).empty()
    shown = {"started": False}

    def progress(stage: str, fraction: float) -> None:
        def draw() -> None:
            box.progress(min(1.0, max(0.0, float(fraction))), text=f"Loading {model_id}: {stage}")

        shown["started"] = True
        if _in_cached is None:
            draw()
            return
        token = _in_cached.set(False)
        try:
            draw()
        finally:
            _in_cached.reset(token)

    try:
        return _load_model(model_id, _progress=progress)
    finally:
        box.empty()


def model_facts(loaded: LoadedModel) -> dict[str, Any]:
    """What the controls need to know: sizes, task, whether the model is causal."""
    return {"n_layers": int(loaded.n_layers), "n_heads": int(loaded.n_heads), "task": loaded.task,
            "causal": loaded.causal, "max_tokens": int(loaded.max_tokens), "modality": loaded.modality,
            "labels": list(loaded.labels)}


def recipe_key(state: AppState, plan: MaskPlan) -> str:
    """The full recipe of one run (model, input, resolved plan incl. seed) as a canonical JSON string."""
    return json.dumps({"model": state.model, "input": [state.input_kind, state.input_ref], "plan": plan.to_dict()},
                      sort_keys=True, default=str)


@st.cache_resource(show_spinner=False)
def result_cache() -> ResultCache:
    """The server's one result cache, shared by every session (bounded in bytes, see :mod:`result_cache`)."""
    return ResultCache(budget_from_env())


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
        _threads()
        loaded = _load_model(state.model)
        return attribute(loaded, encode(loaded, inputs.source_of(state)), plan, state.attr_method,
                         state.attr_target, state.attr_steps, progress=progress)

    return result_cache().get_or_compute(attribution_key(state, plan), compute)


def head_importance_recipe(state: AppState, plan: MaskPlan) -> HeadImportance:
    """Head importance (gradient of head gates) for the page's target, masked vs unmasked (cached)."""
    def compute() -> HeadImportance:
        _threads()
        loaded = _load_model(state.model)
        return head_importance(loaded, encode(loaded, inputs.source_of(state)), plan, state.attr_target)

    return result_cache().get_or_compute(attribution_key(state, plan, "heads"), compute)


def inspect_recipe(state: AppState, plan: MaskPlan, layer: int) -> AttentionInspect:
    """One layer's queries, keys, values and masks under the recipe's plan (cached; the step-by-step lesson)."""
    from dynmask_core.lessons.steps import inspect_layer

    def compute() -> AttentionInspect:
        _threads()
        loaded = _load_model(state.model)
        return inspect_layer(loaded, encode(loaded, inputs.source_of(state)), plan, layer)

    return result_cache().get_or_compute(recipe_key(state, plan) + f'{{"inspect": {int(layer)}}}', compute)


def run_recipe(state: AppState, plan: MaskPlan) -> RunResult:
    """Runs (or fetches from the cache) the baseline + masked forward of one side of a resolved recipe.

    Raises:
        ValueError: bad input or parameters (the core's message).
    """
    def compute() -> RunResult:
        _threads()
        loaded = _load_model(state.model)
        return run(loaded, encode(loaded, inputs.source_of(state)), plan)

    return result_cache().get_or_compute(recipe_key(state, plan), compute)
