"""The sidebar recipe editor of each page, run as a fragment: editing reruns only the editor, nothing is computed
until Run (the "equivalent" of a form that still lets parameter widgets follow the chosen strategy). The Run button
heads the results area (:func:`dynmask_app.page.results_area`, another fragment): a Run is one script run of that
area, which turns the editor's draft into the active recipe and computes it.

The widgets are generated from the recipe's field declarations (:func:`dynmask_app.editor.widgets.field_widget`), in
declared order: the recipe itself first, then the "where and how" group in an expander.
"""

from __future__ import annotations

from typing import Any

import streamlit as st
from streamlit.errors import StreamlitAPIException

from dynmask_app import messages, session
from dynmask_app.editor import display
from dynmask_app.editor.widgets import field_widget, load_widgets
from dynmask_app.i18n import error_text, t
from dynmask_app.page_registry import OTHER_PAGES, PAGES
from dynmask_app.page_registry import page as page_spec
from dynmask_app.server import resources, runner
from dynmask_app.session import PageSession, fit_view
from dynmask_app.state import AppState
from dynmask_core.messages import N_, Message, error_message, shown
from dynmask_core.modalities import modality

_TWO_SIDED_LABELS = {"strategy": N_("Strategy A (left)"), "strategy2": N_("Strategy B (right)")}
_SECTIONS = {"where": "Where and how to apply it", "explain": "What to explain (attribution)"}


def _model_facts(ps: PageSession, model_id: str, box: Any) -> dict[str, Any] | None:
    """Loads the picked model (cached) to learn its layers/heads/task; shows the error in ``box`` (one place, so a
    retry replaces it) and returns the last good facts when it fails. A failing id is not retried until Run."""
    failed = ps.failed
    if model_id in failed:
        messages.error(t(failed[model_id]), box)
        return ps.facts
    try:
        facts = runner.model_facts(runner.get_model(model_id, where=box))
    except ValueError as err:
        failed[model_id] = error_message(err)  # shown in the session's language, whichever it is then
        messages.error(t(failed[model_id]), box)
        return ps.facts
    except Exception as err:  # noqa: BLE001 - never show a traceback
        failed[model_id] = Message("Could not load {model}: {error}", model=shown(model_id),
                                   error=f"{type(err).__name__}: {err}")
        messages.error(t(failed[model_id]), box)
        return ps.facts
    ps.facts = {**facts, "model": model_id}
    box.caption(messages.plain(t("{model}: {layers} layers x {heads} heads, task: {task}", model=model_id,
                                 layers=facts["n_layers"], heads=facts["n_heads"], task=t(facts["task"]))))
    return ps.facts


def recipe_sidebar(page: str) -> None:
    """Draws the sidebar: the pages, the display switches, the recipe editor and what this server allows (the Run
    button is :func:`run_button`, in the results area)."""
    ns = page_spec(page).ns
    load_widgets(ns, session.active(page) or AppState.default(page))
    with st.sidebar:
        navigation()
        display.display_controls(page)
        _editor(page, ns)
        _about_server()


def _about_server() -> None:
    """What this server allows (its serving policy), for the teacher and the curious student."""
    with st.expander(t("About this server")):
        try:
            rows = resources.policy().rows()
        except ValueError as err:
            messages.error(error_text(err))
            return
        st.markdown("\n".join(f"- **{t(name)}**: {messages.plain(t(value))}" for name, value in rows))
        st.caption(t("Set by the operator in serving.toml or DYNMASK_* environment variables; see the README."))


def navigation() -> None:
    """Links to every page (skipped when a page is run on its own, e.g. ``streamlit run pages/1_Compare.py``)."""
    try:
        for spec in PAGES.values():
            st.page_link(spec.file, label=t(spec.nav), icon=spec.icon)
        for file, nav, icon in OTHER_PAGES:
            st.page_link(file, label=t(nav), icon=icon)
    except StreamlitAPIException:
        pass


def _editor_fields(page: str, ns: str) -> tuple[dict[str, Any], dict[str, Any] | None, Any]:
    """Draws every field's widget; returns the values, the model facts and the box under the model picker."""
    two_sided = "b" in page_spec(page).sides
    values: dict[str, Any] = {}
    facts: dict[str, Any] | None = PageSession(page).facts
    model_box = None
    sections: dict[str, Any] = {}
    for spec in AppState.fields_spec():
        if spec.widget is None or (two_sided and spec.name == "op") or not spec.used_on(page):
            continue
        second = spec.of == "strategy2" or spec.name == "strategy2"
        if second and not two_sided and values.get("op", "none") == "none":
            continue
        if spec.group and spec.group not in sections:
            sections[spec.group] = st.expander(t(_SECTIONS[spec.group]), expanded=True)
        with sections[spec.group] if spec.group else st.container():
            label = _TWO_SIDED_LABELS.get(spec.name) if two_sided else None  # translated by field_widget
            values[spec.name] = field_widget(spec, ns, facts, values, label)
        if spec.widget == "model":
            model_box = st.empty()
            facts = _model_facts(PageSession(page), values["model"], model_box)
    return values, facts, model_box


@st.fragment
def _editor(page: str, ns: str) -> None:
    """The recipe's widgets. Editing reruns only this fragment; what they hold is kept as the page's draft, which the
    Run button (:func:`run_button`) turns into the recipe."""
    st.subheader(t("Recipe"))
    values, facts, _ = _editor_fields(page, ns)
    ps = PageSession(page)
    ps.draft = (values, facts)
    # An upload that failed or was removed, or another input kind with nothing picked yet: the shown result is of an
    # input the sidebar no longer has, so it is hidden (the results area, drawn before this edit, is redrawn below).
    hidden = _no_input(values) and session.withdraw(page)
    if session.in_fragment_run() and st.session_state.get(ps.key("run")):
        # Run was clicked in the same instant as an edit left its field (a quick click or a tap after typing): the
        # browser sent both in one rerun, of this fragment only. The draft is now up to date; the whole page reruns
        # and :func:`run_button` carries out the click.
        ps.run_pending = True
        st.rerun(scope="app")
    if hidden and session.in_fragment_run():
        st.rerun(scope="app")  # once: the result is withdrawn until the next Run


def run_button(page: str) -> None:
    """Run: validates the sidebar's draft and makes it the active recipe; the rest of this same script run (of the
    results area) computes it.

    A model that failed to load is tried again by the editor, whose message sits in one place under the model
    picker: that Run reruns the whole page (:func:`_retry_model` marks it), then activates the recipe."""
    ps = PageSession(page)
    clicked = st.button(t("Run"), type="primary", key=ps.key("run"), width=200, on_click=_retry_model, args=(page,))
    if clicked and ps.take("retry"):
        ps.run_pending = True
        st.rerun(scope="app")
    if ps.take("run_pending") or clicked:
        _activate(ps)


def _no_input(values: dict[str, Any]) -> bool:
    """Whether the editor's values lack an input: a picture or recording kind with nothing picked, uploaded or
    recorded (or an upload that could not be read)."""
    return not modality(values.get("input_kind", "text")).inline and not values.get("input_ref")


def _activate(ps: PageSession) -> None:
    """Makes the editor's draft the active recipe, or says why not; then the result shown so far, of another input
    or recipe, is hidden (:func:`dynmask_app.session.withdraw`), never left under the message."""
    page = ps.page
    values, facts = ps.draft
    if not values:
        return
    model_id = values["model"]
    if _no_input(values):
        messages.error(t("Upload {what} first, or pick a bundled sample.",
                         what=t(modality(values["input_kind"]).upload_noun)))
        session.withdraw(page)
        return
    if model_id in ps.failed:
        session.withdraw(page)
        return  # it was tried again just now (the fragment above) and failed: its message is under the picker
    current = ps.active
    layer, head = (current.layer, current.head) if current else (0, 0)
    if facts:
        layer, head = fit_view(layer, head, facts["n_layers"], facts["n_heads"])
    try:
        state = AppState(page=page, layer=layer, head=head, **display.prefs(), **values)
    except ValueError as err:
        messages.error(error_text(err))
        session.withdraw(page)
        return
    session.activate(state)


def _retry_model(page: str) -> None:
    """Before the Run's script run: a model that failed to load is to be tried once more (by the editor, which draws
    its message in one place; :func:`run_button` reruns the whole page for it)."""
    ps = PageSession(page)
    custom = str(st.session_state.get(ps.key("model_custom"), "") or "").strip()
    model_id = custom or st.session_state.get(ps.key("model"))
    if ps.failed.pop(model_id, None) is not None:
        ps.retry = True
