"""Per-session bookkeeping: the active recipe of each page, reading it from and writing it to the URL.

Keys in ``st.session_state`` are namespaced by page (each page's ``ns`` in the page registry) because widget state
of one page is dropped while another page is shown.
"""

from __future__ import annotations

from dataclasses import replace

import streamlit as st

from dynmask_app import missing_page
from dynmask_app.i18n import PRESENT_KEY, SESSION_KEY
from dynmask_app.page_registry import OTHER_PAGE_IDS, PAGES
from dynmask_app.state import AppState
from dynmask_app.widgets import load_widgets


def ns_of(page: str) -> str:
    """Session-state prefix of a page."""
    return PAGES[page].ns


def restore_from_url(page: str) -> None:
    """Once per session and page: reads the link (if any), fills the widgets and makes it the active recipe.

    A link for the other page switches to it (keeping the link). Warnings about bad values are kept and shown
    until the next Run.
    """
    ns = ns_of(page)
    if st.session_state.get(f"{ns}.restored"):
        return
    st.session_state[f"{ns}.restored"] = True
    asked = missing_page.asked_path()  # a mistyped address: Streamlit runs the main page instead
    if asked:
        missing_page.remember("path", asked)
    qp = st.query_params.to_dict()
    if not qp:
        return
    wanted = qp.get("page", page)
    if wanted != page and wanted in PAGES:
        st.session_state[f"{ns}.restored"] = False
        st.switch_page(PAGES[wanted].file, query_params=qp)
    if wanted in OTHER_PAGE_IDS:  # the MLM lab's own link, opened without its address
        st.session_state[f"{ns}.restored"] = False
        st.switch_page(OTHER_PAGE_IDS[wanted], query_params=qp)
    if wanted not in PAGES:  # said once, by the page (missing_page.show), instead of the recipe's own warning
        missing_page.remember("link", wanted)
        qp = {k: v for k, v in qp.items() if k != "page"}
    state, warnings = AppState.from_query_params(qp, page=page)
    st.session_state[SESSION_KEY] = state.lang  # the link's language and presenter mode hold for the session
    st.session_state[PRESENT_KEY] = state.present
    load_widgets(ns, state, force=True)
    st.session_state[f"{ns}.active"] = state
    st.session_state.pop(f"{ns}.withdrawn", None)
    st.session_state[f"{ns}.warnings"] = warnings
    st.session_state[f"{ns}.checked"] = False
    write_url(state)  # the canonical form: every value the page now uses


def active(page: str) -> AppState | None:
    """The recipe whose result the page shows (None before the first Run)."""
    return st.session_state.get(f"{ns_of(page)}.active")


def activate(state: AppState) -> None:
    """Makes ``state`` the page's active recipe (after Run) and writes it to the URL."""
    ns = ns_of(state.page)
    st.session_state[f"{ns}.active"] = state
    st.session_state.pop(f"{ns}.withdrawn", None)
    st.session_state[f"{ns}.warnings"] = []
    missing_page.forget()  # a page asked for that does not exist: said until this Run
    st.session_state[f"{ns}.checked"] = False
    write_url(state)


def withdraw(page: str) -> bool:
    """Hides the page's result: the sidebar's input or recipe no longer matches it and cannot run as it is (a Run
    refused before running, an upload that failed or was removed, another input kind with nothing picked yet). The
    result stays hidden, in its place a note, until a Run (or a link) makes a recipe active again: a result is only
    ever shown for the input it belongs to. Returns whether a shown result was hidden just now."""
    ns = ns_of(page)
    if active(page) is None or st.session_state.get(f"{ns}.withdrawn"):
        return False
    st.session_state[f"{ns}.withdrawn"] = True
    st.session_state.pop(f"{ns}.shown", None)
    return True


def withdrawn(page: str) -> bool:
    """Whether the page's result is hidden (see :func:`withdraw`)."""
    return bool(st.session_state.get(f"{ns_of(page)}.withdrawn")) and active(page) is not None


def set_view(page: str, layer: int, head: int) -> None:
    """Changes the shown layer/head of the active recipe and in the URL."""
    state = active(page)
    if state is None or (state.layer, state.head) == (layer, head):
        return
    state = state.with_view(layer, head)
    st.session_state[f"{ns_of(page)}.active"] = state
    write_url(state)


def replace_active(page: str, **changes) -> AppState | None:
    """Replaces fields of the active recipe (e.g. a new seed) and updates the URL."""
    state = active(page)
    if state is None:
        return None
    state = replace(state, **changes)
    st.session_state[f"{ns_of(page)}.active"] = state
    write_url(state)
    return state


def write_url(state: AppState) -> None:
    """Puts the recipe in the address bar (only when it changed, to avoid needless browser history)."""
    wanted = state.to_query_params()
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def warnings(page: str) -> list[str]:
    """Warnings about the link or the model check, shown above the results."""
    return list(st.session_state.get(f"{ns_of(page)}.warnings", []))


def add_warnings(page: str, extra: list[str]) -> None:
    """Adds warnings (e.g. layers the model lacks)."""
    key = f"{ns_of(page)}.warnings"
    st.session_state[key] = [*st.session_state.get(key, []), *extra]


#: Set by a button's callback in the results area that changed the recipe (or the sidebar's widgets): the page must
#: be drawn whole, sidebar included, even when the click reran only the results area (a fragment).
WHOLE_PAGE_KEY = "dm.whole_page"


def need_whole_page() -> None:
    """Asks for the next script run to draw the whole page (see :data:`WHOLE_PAGE_KEY`)."""
    st.session_state[WHOLE_PAGE_KEY] = True


def in_fragment_run() -> bool:
    """Whether this script run draws fragments only (a click in one), not the whole page."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return bool(ctx is not None and ctx.fragment_ids_this_run)


def draw_whole_page_if_needed() -> None:
    """In a fragment run: reruns the whole page when asked for (:func:`need_whole_page`)."""
    if st.session_state.pop(WHOLE_PAGE_KEY, False) and in_fragment_run():
        st.rerun(scope="app")
