"""dynmask Playground: apply an attention-mask strategy inside a real transformer and see what it did.

Run with ``streamlit run app.py``. The page is thin: read the recipe (sidebar), run it (cached), render.
"""

from __future__ import annotations

from dynmask_app.page import render_page
from dynmask_app.views import result_views

render_page(
    "playground", ("main",), "Playground", "Attention masks, inside a real model",
    "Pick a text, a model and a mask strategy, then press Run. The model runs with and without your mask; "
    "everything you see is what the model actually used.",
    result_views,
)
