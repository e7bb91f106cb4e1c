"""The skeleton every page shares: restore the recipe from the URL, draw the sidebar, then the Run button and the
results (a fragment, so a Run reruns only that part).

A page file is a few lines: ``render_page("<id>")``; everything else about the page is in its registry entry.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import controls, display, results, session
from dynmask_app.i18n import t
from dynmask_app.page_registry import page as page_spec


def render_page(page: str) -> None:
    """Draws the page declared as ``page`` in :mod:`dynmask_app.page_registry`."""
    spec = page_spec(page)
    st.set_page_config(page_title=f"dynmask: {spec.tab}", page_icon="🎭", layout="wide")
    session.restore_from_url(page)
    display.keep_in_sync(page)
    display.apply_presenter()
    st.title(t(spec.title))
    st.caption(t(spec.caption))
    notice = results.pending_notice(page)  # a link just opened: said while the sidebar loads its model
    controls.recipe_sidebar(page)
    notice.empty()
    results_area(page)


@st.fragment
def results_area(page: str) -> None:
    """The Run button, then the active recipe's results. A fragment: a Run reruns this part of the page alone (the
    sidebar, unchanged by a Run, is neither rebuilt by the server nor sent again nor redrawn by the browser).
    Editing the sidebar or opening a link reruns the whole page, and this with it."""
    spec = page_spec(page)
    controls.run_button(page)
    notice = results.pending_notice(page)
    outcome: Any = results.compute(page)
    notice.empty()
    results.show_warnings(page)
    if session.active(page) is None:
        st.info(t(spec.empty))
    elif outcome is not None:
        state, runs = outcome
        spec.view_function()(state, *(runs[side] for side in spec.sides))
