"""The skeleton every page shares: restore the recipe from the URL, draw the sidebar, then the Run button and the
results (a fragment, so a Run reruns only that part).

A page file is a few lines: ``render_page("<id>")``; everything else about the page is in its registry entry.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app import missing_page, session
from dynmask_app.editor import controls, display, widgets
from dynmask_app.i18n import t
from dynmask_app.page_registry import page as page_spec
from dynmask_app.views import results


def render_page(page: str) -> None:
    """Draws the page declared as ``page`` in :mod:`dynmask_app.page_registry`."""
    spec = page_spec(page)
    st.set_page_config(page_title=f"dynmask: {t(spec.tab)}", page_icon="🎭", layout="wide")
    opened = session.restore_from_url(page)
    if opened is not None:
        widgets.load_widgets(session.ns_of(page), opened, force=True)
    display.keep_in_sync(page)
    display.apply_presenter()
    st.title(t(spec.title))
    st.caption(t(spec.caption))
    notice = results.pending_notice(page)  # a link just opened: said while the sidebar loads its model
    controls.recipe_sidebar(page)
    notice.empty()
    if quick_run(page):
        results_area(page)
    else:
        results_in_page(page)


def quick_run(page: str) -> bool:
    """Whether a Run reruns the results area alone: on pages that allow it, except while the active recipe reads past
    the usual 512 tokens (minutes of work: a Run of the whole page can interrupt it, a click in a fragment would
    wait for it to end)."""
    state = session.active(page)
    return page_spec(page).quick_run and not (state is not None and state.max_tokens > 0)


def results_in_page(page: str) -> None:
    """The Run button, then the active recipe's results."""
    spec = page_spec(page)
    session.draw_whole_page_if_needed()
    controls.run_button(page)
    if session.in_fragment_run() and not quick_run(page):
        st.rerun(scope="app")  # this Run reads a long text: computed in a run of the whole page (see quick_run)
    if session.withdrawn(page):  # the sidebar's input or recipe cannot run, and the last result is not of it
        st.info(t("**No result shown.** The recipe in the sidebar cannot run as it is (no input yet, a file that "
                  "could not be read, or a Run that was refused), and the last result was of another input or "
                  "recipe, so it is hidden. Fix the sidebar, then press **Run**."))
        return
    notice = results.pending_notice(page)
    outcome: Any = results.compute(page)
    notice.empty()
    results.show_warnings(page)
    missing_page.show(page)
    if session.active(page) is None:
        st.info(t(spec.empty))
    elif outcome is not None:
        state, runs = outcome
        spec.view_function()(state, *(runs[side] for side in spec.sides))


#: The results as a fragment: a Run reruns this part of the page alone (the sidebar, unchanged by a Run, is neither
#: rebuilt by the server nor sent again nor redrawn by the browser); editing the sidebar or opening a link reruns
#: the whole page, and this with it.
results_area = st.fragment(results_in_page)
