"""The skeleton every page shares: restore the recipe from the URL, draw the sidebar, run, render."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dynmask_app import controls, results, session
from dynmask_app.explain import empty_state


def render_page(page: str, sides: tuple[str, ...], tab: str, title: str, caption: str,
                views: Callable[..., None]) -> None:
    """Draws one page.

    Args:
        page: ``"playground"`` or ``"compare"`` (the recipe's page field).
        sides: Runs the page needs (``("main",)`` or ``("a", "b")``).
        tab: Short name for the browser tab.
        title: Page title.
        caption: One line under the title.
        views: Called as ``views(state, *results)`` once the runs are there.
    """
    st.set_page_config(page_title=f"dynmask: {tab}", page_icon="🎭", layout="wide")
    session.restore_from_url(page)
    st.title(title)
    st.caption(caption)
    notice = results.pending_notice(page, sides)
    controls.recipe_sidebar(page)
    outcome: Any = results.compute(page, sides)
    notice.empty()
    results.show_warnings(page)
    if session.active(page) is None:
        empty_state(page)
    elif outcome is not None:
        state, runs = outcome
        views(state, *(runs[side] for side in sides))
