"""How the page is shown, not what it computes: the language and presenter mode (large type, high contrast).

Both are recipe fields (``lang=``, ``present=`` in the link), so a shared link opens in the teacher's language and
projector style. They apply at once (no Run): the switches sit above the recipe editor and update the active recipe
and the address in place. Before any recipe is active they are kept in the session and join the first Run's recipe.
"""

from __future__ import annotations

from collections.abc import Callable

import streamlit as st

from dynmask_app import session
from dynmask_app.i18n import LANGS, PRESENT_KEY, SESSION_KEY, t

#: Always: the page links in the sidebar wrap instead of ending in "…" ("Lesson: static vs dynamic MLM mas…").
_BASE_CSS = """
<style>
[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"] span,
[data-testid="stSidebar"] [data-testid="stPageLink-NavLink"] p { white-space: normal !important;
  overflow: visible !important; text-overflow: clip !important; }
</style>
"""
_PRESENTER_CSS = """
<style>
html { font-size: 21px; }
[data-testid="stAppViewContainer"], [data-testid="stSidebar"] { color: #000; }
[data-testid="stCaptionContainer"], [data-testid="stCaptionContainer"] p { color: #111 !important; font-size: 0.95rem; }
[data-testid="stMetricValue"] { font-size: 2.6rem; }
h1 { font-size: 2.6rem !important; }
/* a projector is often 1024 px wide: the page's own side margins (5rem each) left 515 px of content, where four
   metrics read "77.…", "KL（基…" and "0…"; here the content takes the width, a row of columns too narrow for large
   type wraps onto the next line, and a metric's label, number and change are never cut short */
[data-testid="stMainBlockContainer"] { padding-left: 1.5rem !important; padding-right: 1.5rem !important;
  max-width: 100% !important; }
[data-testid="stHorizontalBlock"] { flex-wrap: wrap !important; }
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"] { min-width: min(13rem, 100%) !important; }
/* charts side by side (Compare's A and B) squeezed a 14-token heatmap into 320 px at 1024 px: its key labels ran
   into each other and its title was cut; a chart's column is at least 28rem (588 px), else it takes its own row */
[data-testid="stHorizontalBlock"] > [data-testid="stColumn"]:has([data-testid="stPlotlyChart"]) {
  min-width: min(28rem, 100%) !important; }
[data-testid="stMetricValue"] div, [data-testid="stMetricLabel"] p, [data-testid="stMetricLabel"] div,
[data-testid="stMetricDelta"] div { white-space: normal !important; overflow: visible !important;
  text-overflow: clip !important; }
</style>
"""


def keep_in_sync(page: str) -> None:
    """The active recipe carries the session's language and presenter mode (they are session-wide: set on one page,
    they hold on the others, and the address says so)."""
    state = session.active(page)
    if state is not None and (state.lang, state.present) != (prefs()["lang"], prefs()["present"]):
        session.replace_active(page, **prefs())


def prefs() -> dict[str, object]:
    """The display fields to put into a new recipe (``lang``, ``present``)."""
    return {"lang": st.session_state.get(SESSION_KEY, "en"), "present": bool(st.session_state.get(PRESENT_KEY))}


def display_controls(page: str) -> None:
    """The language and presenter switches of a recipe page (in the sidebar, above the recipe); applied at once,
    and written into the active recipe (so into its link)."""
    def to_recipe() -> None:
        if session.active(page) is not None:
            session.replace_active(page, **prefs())

    switches(session.ns_of(page), to_recipe)


def switches(ns: str, after_change: Callable[[], None] | None = None) -> None:
    """The language segmented control and the presenter toggle, keyed under ``ns``; ``after_change`` runs after the
    session's values changed (e.g. to write them into a link)."""
    def changed() -> None:
        st.session_state[SESSION_KEY] = st.session_state[f"{ns}.lang"] or st.session_state.get(SESSION_KEY, "en")
        st.session_state[PRESENT_KEY] = bool(st.session_state[f"{ns}.present"])
        if after_change is not None:
            after_change()

    st.session_state[f"{ns}.lang"] = st.session_state.get(SESSION_KEY, "en")
    st.session_state[f"{ns}.present"] = bool(st.session_state.get(PRESENT_KEY))
    # one row each: side by side in a 300 px sidebar, the toggle's label was cut to "Pr…" and, in presenter mode,
    # the language control showed one of its two buttons
    st.segmented_control(t("Language"), list(LANGS), key=f"{ns}.lang", format_func=LANGS.get, on_change=changed,
                         label_visibility="collapsed")
    st.toggle(t("Presenter"), key=f"{ns}.present", on_change=changed,
              help=t("Large type and high contrast, for a projector. It rides in the link."))


def apply_presenter() -> None:
    """Sidebar labels shown whole (always), and large type and high contrast when presenter mode is on."""
    st.markdown(_BASE_CSS + (_PRESENTER_CSS if st.session_state.get(PRESENT_KEY) else ""), unsafe_allow_html=True)
