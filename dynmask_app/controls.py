"""The sidebar recipe editor of each page, run as a fragment: editing reruns only the sidebar, nothing is
computed until Run (the "equivalent" of a form that still lets parameter widgets follow the chosen strategy)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from dynmask_app import runner, session
from dynmask_app.state import AppState
from dynmask_app.widgets import (
    OP_LABELS,
    load_widgets,
    model_controls,
    strategy_controls,
    text_controls,
    where_how_controls,
)


def _model_facts(ns: str, model_id: str, box: Any) -> dict[str, Any] | None:
    """Loads the picked model (cached) to learn its layers/heads/task; shows the error in ``box`` (one place, so a
    retry replaces it) and returns the last good facts when it fails. A failing id is not retried until Run."""
    failed = st.session_state.setdefault(f"{ns}.failed", {})
    if model_id in failed:
        box.error(failed[model_id])
        return st.session_state.get(f"{ns}.facts")
    try:
        facts = runner.model_facts(runner.get_model(model_id, where=box))
    except ValueError as err:
        failed[model_id] = str(err)
        box.error(str(err))
        return st.session_state.get(f"{ns}.facts")
    except Exception as err:  # noqa: BLE001 - never show a traceback
        failed[model_id] = f"Could not load {model_id!r}: {type(err).__name__}: {err}"
        box.error(failed[model_id])
        return st.session_state.get(f"{ns}.facts")
    st.session_state[f"{ns}.facts"] = {**facts, "model": model_id}
    box.caption(f"{model_id}: {facts['n_layers']} layers x {facts['n_heads']} heads, task: {facts['task']}")
    return st.session_state[f"{ns}.facts"]


def recipe_sidebar(page: str) -> None:
    """Draws the recipe editor in the sidebar; on Run validates it, activates it and reruns the app."""
    ns = session.ns_of(page)
    load_widgets(ns, session.active(page) or AppState.default(page))
    with st.sidebar:
        _navigation()
        _editor(page, ns)


def _navigation() -> None:
    """Links to both pages (skipped when a page is run on its own, e.g. ``streamlit run pages/1_Compare.py``)."""
    try:
        st.page_link("app.py", label="Playground", icon="🎛️")
        st.page_link("pages/1_Compare.py", label="Compare two strategies", icon="⚖️")
    except StreamlitAPIException:
        pass


@st.fragment
def _editor(page: str, ns: str) -> None:
    st.subheader("Recipe")
    text = text_controls(ns)
    model_id = model_controls(ns)
    model_box = st.empty()
    facts = _model_facts(ns, model_id, model_box)
    if page == "compare":
        s1, p1 = strategy_controls(ns, "p1", f"{ns}.s1", "Strategy A (left)")
        s2, p2 = strategy_controls(ns, "p2", f"{ns}.s2", "Strategy B (right)")
        op = "none"
    else:
        s1, p1 = strategy_controls(ns, "p1", f"{ns}.s1", "Mask strategy")
        op = st.radio("Combine with a second strategy", list(OP_LABELS), key=f"{ns}.op",
                      format_func=OP_LABELS.get, horizontal=False)
        s2, p2 = ("none", {})
        if op != "none":
            s2, p2 = strategy_controls(ns, "p2", f"{ns}.s2", "Second strategy")
    with st.expander("Where and how to apply it", expanded=True):
        how = where_how_controls(ns, facts)  # the last model that loaded, if the picked one failed
    clicked = st.button("Run", type="primary", key=f"{ns}.run", width="stretch")
    if not clicked:
        return
    if st.session_state.get(f"{ns}.failed", {}).pop(model_id, None) is not None:
        facts = _model_facts(ns, model_id, model_box)  # try once more; on failure the error shows and nothing changes
        if facts is None or facts.get("model") != model_id:
            return
    current = session.active(page)
    layer, head = (current.layer, current.head) if current else (0, 0)
    if facts:
        layer, head = (layer if layer < facts["n_layers"] else 0), (head if head < facts["n_heads"] else 0)
    try:
        state = AppState(page=page, model=model_id, text=text, strategy=s1, params=p1, op=op, strategy2=s2,
                         params2=p2, layer=layer, head=head, **how)
        if state.seed is None and state.uses_seed():
            state = replace(state, seed=runner.draw_seed())
    except ValueError as err:
        st.error(str(err))
        return
    session.activate(state)
    st.rerun(scope="app")
