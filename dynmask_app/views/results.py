"""Running the active recipe of a page: load the model, resolve the recipe against it, run (cached), report errors.

Errors never reach the user as a traceback: ``ValueError`` shows its message, anything else a short
"Something went wrong" line; the inputs and the sidebar stay as they were.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

import streamlit as st

from dynmask_app import messages, session
from dynmask_app.i18n import error_text, t
from dynmask_app.server import keys, resources, runner
from dynmask_app.server.result_cache import SharedResult
from dynmask_app.session import PageSession
from dynmask_app.state import AppState
from dynmask_core.recipe import resolve

log = logging.getLogger(__name__)


def compute(page: str) -> tuple[AppState, dict[str, SharedResult]] | None:
    """Results of the page's active recipe, one per side (``main`` or ``a``/``b``), as shared handles that read like
    the result; None before the first Run or after an error (shown as a message)."""
    state = session.active(page)
    if state is None:
        return None
    ps = PageSession(page)
    if state.model in ps.failed:
        # The sidebar tried this model in this same script run (a link that names it) and says why under the model
        # picker: the message is shown there once, not repeated here, and the model is not tried a second time.
        st.info(t("**No result.** The model in the sidebar could not be loaded; the message under the model picker "
                  "says why. Pick another model there, then press **Run**."))
        return None
    try:
        if state.input_kind == "text":
            resources.policy().check_text(state.input_ref)
            resources.policy().check_tokens(state.max_tokens)
        loaded = runner.get_model(state.model)
        resolved = resolve(state, loaded)  # the one place the seed is drawn and indices are checked
        if resolved.recipe != state:
            state = session.replace_active(page, **{k: v for k, v in resolved.recipe.values().items()
                                                    if getattr(state, k) != v})
        if not ps.checked:
            session.add_warnings(page, list(resolved.warnings))
            ps.checked = True
        handles = {side: runner.shared_run(state, plan, side) for side, plan in resolved.plans.items()}
        long = t("Running the model twice on up to {n} tokens: without and with the mask. Past 512 tokens this takes "
                 "a while on a CPU (8,192 tokens of SmolLM2: about 5 minutes; another strategy on the same text about "
                 "2).", n=f"{state.max_tokens:,}")
        # a long run draws its pass and layer; a short one only the spinner (each update is a message to the page)
        with st.spinner(long if state.max_tokens else t("Running the model twice: without and with the mask...")), \
                runner.reporting(st.empty()) if state.max_tokens else contextlib.nullcontext():
            for handle in handles.values():
                handle.resolve()  # computed here (or found in the shared cache), so errors show in this place
        ps.shown = handles  # handles (keys), never the tensors
    except ValueError as err:
        del ps.shown  # nothing is shown: no earlier result under the message
        messages.error(error_text(err))
        return None
    except Exception as err:  # noqa: BLE001 - the user sees one line, the log keeps the traceback
        del ps.shown
        log.exception("run failed")
        messages.error(t("Something went wrong: {error}", error=f"{type(err).__name__}: {str(err)[:300]}"))
        return None
    return state, handles


def pending_notice(page: str) -> Any:
    """A main-area note while the active recipe's model loads for a result not computed yet (e.g. a link just
    opened on a fresh server); returns something to ``.empty()`` once :func:`compute` is done.

    With the model already loaded nothing is drawn here (a note drawn and removed on every Run would push the
    results down and back, and say "Loading" for a model that is not loading): a longer run shows
    :func:`compute`'s spinner (after half a second) or its progress bar."""
    state = session.active(page)
    if state is None or session.withdrawn(page) or state.model in resources.model_cache() or not _pending(state):
        return _NO_NOTICE
    box = st.empty()
    box.info(t("Loading **{model}** and running the recipe... The first load of a model takes a moment (smollm2 "
               "converts its weights once, ~15-30 s); the progress bar is in the sidebar.",
               model=messages.plain(state.model)))
    return box


class _NoNotice:
    """What :func:`pending_notice` returns when it drew nothing."""

    def empty(self) -> None:
        """Nothing to remove."""


_NO_NOTICE = _NoNotice()


def show_warnings(page: str) -> None:
    """The warnings about the opened link or indices the model lacks (shown literally, summarised when many)."""
    messages.warnings([t(w) for w in session.warnings(page)])


def _pending(state: AppState) -> bool:
    """Whether some side of ``state`` has no computed result yet (a seed still to draw counts)."""
    if state.seed is None and state.uses_seed():
        return True
    cache = resources.result_cache()
    return any(keys.recipe_key(state, state.plan(side).resolved(), side) not in cache for side in state.sides())
