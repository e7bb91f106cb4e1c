"""Running the active recipe of a page: load the model, check indices against it, run (cached), report errors.

Errors never reach the user as a traceback: ``ValueError`` shows its message, anything else a short
"Something went wrong" line; the inputs and the sidebar stay as they were.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import streamlit as st

from dynmask_app import runner, session
from dynmask_app.state import AppState
from dynmask_core import RunResult

log = logging.getLogger(__name__)


def compute(page: str, sides: tuple[str, ...]) -> tuple[AppState, dict[str, RunResult]] | None:
    """Results of the page's active recipe, one per side (``main`` or ``a``/``b``); None before the first Run or
    after an error (shown with ``st.error``)."""
    state = session.active(page)
    if state is None:
        return None
    ns = session.ns_of(page)
    try:
        loaded = runner.get_model(state.model)
        if not st.session_state.get(f"{ns}.checked"):
            checked, warnings = state.check_model(loaded.n_layers, loaded.n_heads, loaded.task == "causal_lm",
                                                  state.model)
            if checked.seed is None and checked.uses_seed():
                checked = replace(checked, seed=runner.draw_seed())
            if checked != state:
                state = session.replace_active(page, **{k: getattr(checked, k) for k in
                                                        ("layers", "heads", "layer", "head", "model_causal",
                                                         "seed")})
            session.add_warnings(page, warnings)
            st.session_state[f"{ns}.checked"] = True
        memo = st.session_state.get(f"{ns}.memo", {})  # this session's current results: no cache copy per rerun
        keys = {side: runner.recipe_key(state, side) for side in sides}
        with st.spinner("Running the model twice: without and with the mask..."):
            results = {side: memo.get(keys[side]) or runner.run_recipe(state, side) for side in sides}
        st.session_state[f"{ns}.memo"] = {keys[side]: results[side] for side in sides}
    except ValueError as err:
        st.error(str(err))
        return None
    except Exception as err:  # noqa: BLE001 - the user sees one line, the log keeps the traceback
        log.exception("run failed")
        st.error(f"Something went wrong: {type(err).__name__}: {str(err)[:300]}")
        return None
    return state, results


def pending_notice(page: str, sides: tuple[str, ...]) -> Any:
    """A main-area note while a recipe that has no result yet loads and runs (e.g. a link just opened);
    returns the placeholder, which :func:`compute`'s caller empties afterwards."""
    box = st.empty()
    state = session.active(page)
    if state is not None:
        memo = st.session_state.get(f"{session.ns_of(page)}.memo", {})
        if any(runner.recipe_key(state, side) not in memo for side in sides):
            box.info(f"Loading **{state.model}** and running the recipe... The first load of a model takes "
                     "a moment (smollm2 converts its weights once, ~15-30 s); the progress bar is in the sidebar.")
    return box


def show_warnings(page: str) -> None:
    """The warnings about the opened link or indices the model lacks."""
    for text in session.warnings(page):
        st.warning(text)
