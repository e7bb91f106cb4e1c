"""Per-session bookkeeping: the Run protocol of each page, reading the recipe from and writing it to the URL.

A page's protocol: the sidebar's edits are kept as a *draft*; Run (or a click that must be carried out after an edit,
*run pending*; or a model to be tried again, *retry*) makes the draft the *active* recipe; the results area resolves
it, warns once (*checked*) and keeps the *shown* results' handles; a result whose input the sidebar no longer has is
*withdrawn*. :class:`PageSession` names each of these, typed, in one place; the functions below are its verbs.

Keys in ``st.session_state`` are namespaced by page (each page's ``ns`` in the page registry) because widget state
of one page is dropped while another page is shown.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import replace
from typing import Any

import streamlit as st

from dynmask_app import missing_page
from dynmask_app.i18n import PRESENT_KEY, SESSION_KEY
from dynmask_app.page_registry import OTHER_PAGE_IDS, PAGES
from dynmask_app.state import AppState


def ns_of(page: str) -> str:
    """Session-state prefix of a page."""
    return PAGES[page].ns


class _Slot:
    """One named entry of a page's session state (``<ns>.<name>``), with the value it reads as when unset."""

    def __init__(self, default: Any = None, factory: Any = None) -> None:
        self.default, self.factory = default, factory

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, session: PageSession | None, owner: type) -> Any:
        if session is None:
            return self
        key = session.key(self.name)
        if key in session.store:
            return session.store[key]
        if self.factory is not None:  # a mutable value kept from its first read
            session.store[key] = self.factory()
            return session.store[key]
        return self.default

    def __set__(self, session: PageSession, value: Any) -> None:
        session.store[session.key(self.name)] = value

    def __delete__(self, session: PageSession) -> None:
        key = session.key(self.name)
        if key in session.store:
            del session.store[key]


class PageSession:
    """The Run protocol of one page in one browser session, as named, typed properties.

    ``store`` is ``st.session_state`` (default), or a test's ``AppTest.session_state``.
    """

    #: The link was read (once per session and page).
    restored: bool = _Slot(False)
    #: The recipe whose result the page shows (None before the first Run).
    active: AppState | None = _Slot(None)
    #: The shown result is hidden: the sidebar's input or recipe no longer matches it.
    withdrawn: bool = _Slot(False)
    #: Warnings about the link or the model check, shown above the results until the next Run.
    warnings: list[str] = _Slot(factory=list)
    #: The active recipe's warnings from the model check were added (once per Run).
    checked: bool = _Slot(False)
    #: The handles of the results shown (keys and how to recompute them, never tensors), per side.
    shown: dict[str, Any] | None = _Slot(None)
    #: The sidebar's values and the picked model's facts, kept at each edit; Run turns them into the recipe.
    draft: tuple[dict[str, Any], dict[str, Any] | None] = _Slot(({}, None))
    #: Run was clicked in the same instant as an edit: the next whole-page run carries it out.
    run_pending: bool = _Slot(False)
    #: A model that failed is to be tried once more (the Run that asked for it reruns the whole page).
    retry: bool = _Slot(False)
    #: Models that failed to load in this session: id -> the message (not retried until Run).
    failed: dict[str, str] = _Slot(factory=dict)
    #: The picked model's facts (layers, heads, task, ...), the last that loaded.
    facts: dict[str, Any] | None = _Slot(None)

    def __init__(self, page: str, store: MutableMapping[str, Any] | None = None) -> None:
        self.page = page
        self.ns = ns_of(page)
        self.store = st.session_state if store is None else store

    def key(self, name: str) -> str:
        """The session-state key of one of the page's entries (widgets use it too: ``<ns>.<name>``)."""
        return f"{self.ns}.{name}"

    def take(self, name: str) -> Any:
        """Reads a one-shot flag (``run_pending``, ``retry``) and clears it."""
        value = getattr(self, name)
        delattr(self, name)
        return value


def fit_view(layer: int, head: int, n_layers: int, n_heads: int) -> tuple[int, int]:
    """The shown layer and head for a model of ``n_layers`` x ``n_heads``: one it lacks becomes 0 (as the core's
    :func:`~dynmask_core.recipe.policy.fit_to_model` does for a link)."""
    return (layer if layer < n_layers else 0), (head if head < n_heads else 0)


def restore_from_url(page: str) -> AppState | None:
    """Once per session and page: reads the link (if any) and makes it the active recipe; returns it (the caller
    fills the sidebar's widgets with it), or None when no link was read.

    A link for the other page switches to it (keeping the link). Warnings about bad values are kept and shown
    until the next Run.
    """
    ps = PageSession(page)
    if ps.restored:
        return None
    ps.restored = True
    asked = missing_page.asked_path()  # a mistyped address: Streamlit runs the main page instead
    if asked:
        missing_page.remember("path", asked)
    qp = st.query_params.to_dict()
    if not qp:
        return None
    wanted = qp.get("page", page)
    if wanted != page and wanted in PAGES:
        ps.restored = False
        st.switch_page(PAGES[wanted].file, query_params=qp)
    if wanted in OTHER_PAGE_IDS:  # the MLM lab's own link, opened without its address
        ps.restored = False
        st.switch_page(OTHER_PAGE_IDS[wanted], query_params=qp)
    if wanted not in PAGES:  # said once, by the page (missing_page.show), instead of the recipe's own warning
        missing_page.remember("link", wanted)
        qp = {k: v for k, v in qp.items() if k != "page"}
    state, warnings = AppState.from_query_params(qp, page=page)
    st.session_state[SESSION_KEY] = state.lang  # the link's language and presenter mode hold for the session
    st.session_state[PRESENT_KEY] = state.present
    _start(ps, state, warnings)
    return state


def _write(ps: PageSession, state: AppState) -> AppState:
    """The one writer of a page's active recipe: the session, then the address bar (the canonical form)."""
    ps.active = state
    write_url(state)
    return state


def _start(ps: PageSession, state: AppState, warnings: list[str]) -> None:
    """A new active recipe (a Run or a link): shown again if withdrawn, its warnings, its model check to come."""
    del ps.withdrawn
    ps.warnings = list(warnings)
    ps.checked = False
    _write(ps, state)


def active(page: str) -> AppState | None:
    """The recipe whose result the page shows (None before the first Run)."""
    return PageSession(page).active


def activate(state: AppState) -> None:
    """Makes ``state`` the page's active recipe (after Run) and writes it to the URL."""
    missing_page.forget()  # a page asked for that does not exist: said until this Run
    _start(PageSession(state.page), state, [])


def withdraw(page: str) -> bool:
    """Hides the page's result: the sidebar's input or recipe no longer matches it and cannot run as it is (a Run
    refused before running, an upload that failed or was removed, another input kind with nothing picked yet). The
    result stays hidden, in its place a note, until a Run (or a link) makes a recipe active again: a result is only
    ever shown for the input it belongs to. Returns whether a shown result was hidden just now."""
    ps = PageSession(page)
    if ps.active is None or ps.withdrawn:
        return False
    ps.withdrawn = True
    del ps.shown
    return True


def withdrawn(page: str) -> bool:
    """Whether the page's result is hidden (see :func:`withdraw`)."""
    ps = PageSession(page)
    return bool(ps.withdrawn) and ps.active is not None


def set_view(page: str, layer: int, head: int) -> None:
    """Changes the shown layer/head of the active recipe and in the URL."""
    ps = PageSession(page)
    state = ps.active
    if state is None or (state.layer, state.head) == (layer, head):
        return
    _write(ps, state.with_view(layer, head))


def replace_active(page: str, **changes) -> AppState | None:
    """Replaces fields of the active recipe (e.g. a new seed) and updates the URL."""
    ps = PageSession(page)
    if ps.active is None:
        return None
    return _write(ps, replace(ps.active, **changes))


def write_url(state: AppState) -> None:
    """Puts the recipe in the address bar (only when it changed, to avoid needless browser history)."""
    wanted = state.to_query_params()
    if st.query_params.to_dict() != wanted:
        st.query_params.from_dict(wanted)


def warnings(page: str) -> list[str]:
    """Warnings about the link or the model check, shown above the results."""
    return list(PageSession(page).warnings)


def add_warnings(page: str, extra: list[str]) -> None:
    """Adds warnings (e.g. layers the model lacks)."""
    ps = PageSession(page)
    ps.warnings = [*ps.warnings, *extra]


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
