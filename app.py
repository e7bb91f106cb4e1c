"""dynmask Playground: apply an attention-mask strategy inside a real transformer and see what it did.

Run with ``streamlit run app.py``. The page is thin: read the recipe (sidebar), run it (cached), render.
"""

from __future__ import annotations

import streamlit as st

from dynmask_app import controls, results, session, views
from dynmask_app.explain import empty_state

PAGE = "playground"

st.set_page_config(page_title="dynmask: Playground", page_icon="🎭", layout="wide")
session.restore_from_url(PAGE)
st.title("Attention masks, inside a real model")
st.caption("Pick a text, a model and a mask strategy, then press Run. The model runs with and without your "
           "mask; everything you see is what the model actually used.")
notice = results.pending_notice(PAGE, ("main",))
controls.recipe_sidebar(PAGE)
outcome = results.compute(PAGE, ("main",))
notice.empty()
results.show_warnings(PAGE)
if session.active(PAGE) is None:
    empty_state(PAGE)
elif outcome is not None:
    state, runs = outcome
    views.result_views(state, runs["main"])
