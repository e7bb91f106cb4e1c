"""dynmask Compare: two strategies on the same input, side by side, with their difference and per-layer numbers."""

from __future__ import annotations

import streamlit as st

from dynmask_app import controls, results, session
from dynmask_app.compare_views import compare_views
from dynmask_app.explain import empty_state

PAGE = "compare"

st.set_page_config(page_title="dynmask: Compare", page_icon="🎭", layout="wide")
session.restore_from_url(PAGE)
st.title("Compare two strategies")
st.caption("Same text, same model, two masks. A static mask depends only on sizes; a dynamic one on the input, "
           "the scores or a seed.")
notice = results.pending_notice(PAGE, ("a", "b"))
controls.recipe_sidebar(PAGE)
outcome = results.compute(PAGE, ("a", "b"))
notice.empty()
results.show_warnings(PAGE)
if session.active(PAGE) is None:
    empty_state(PAGE)
elif outcome is not None:
    state, runs = outcome
    compare_views(state, runs["a"], runs["b"])
