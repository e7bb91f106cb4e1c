"""Streamlit caching around the core: bounded model cache, results cached by the full recipe.

The only module that decides what is cached. The core knows nothing of Streamlit.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from typing import Any

import streamlit as st

from dynmask_app.state import AppState
from dynmask_core import RunResult, encode_text, load, run
from dynmask_core.engine import MAX_SEED
from dynmask_core.models import LoadedModel

try:  # Streamlit records st.* calls made inside cached functions and replays them on a cache hit; a live
    # progress bar must not be recorded (its placeholder does not exist on the next run).
    from streamlit.runtime.caching.cached_message_replay import in_cached_function as _in_cached
except ImportError:  # pragma: no cover - other Streamlit versions: progress still works, untracked
    _in_cached = None


@st.cache_resource(max_entries=2, show_spinner=False)
def _load_model(model_id: str, _progress: Callable[[str, float], None] | None = None) -> LoadedModel:
    return load(model_id, progress=_progress)


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
            "causal": loaded.task == "causal_lm", "max_tokens": int(loaded.max_tokens)}


def recipe_key(state: AppState, side: str = "main") -> str:
    """The full recipe of one run (model, text, resolved plan incl. seed) as a canonical JSON string."""
    return json.dumps({"model": state.model, "text": state.text, "plan": state.plan(side).to_dict()},
                      sort_keys=True, default=str)


# cache_resource, not cache_data: one shared, read-only RunResult per recipe instead of a pickled copy per hit
# (a 512-token SmolLM2 result is ~0.7 GB); results are never mutated after run().
@st.cache_resource(max_entries=4, show_spinner=False)
def _cached_run(key: str, _state: AppState, side: str) -> RunResult:
    loaded = _load_model(_state.model)
    prepared = encode_text(loaded, _state.text)
    return run(loaded, prepared, _state.plan(side))


def run_recipe(state: AppState, side: str = "main") -> RunResult:
    """Runs (or fetches from the cache) the baseline + masked forward of ``state``.

    Raises:
        ValueError: bad text, parameters or indices (the core's message).
    """
    return _cached_run(recipe_key(state, side), state, side)


def draw_seed() -> int:
    """A fresh seed for a dynamic strategy (put in the recipe and the URL, so the link reproduces it)."""
    return secrets.randbelow(MAX_SEED)
