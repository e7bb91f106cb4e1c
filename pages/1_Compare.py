"""dynmask Compare: two strategies on the same input, side by side, with their difference and per-layer numbers."""

from __future__ import annotations

from dynmask_app.compare_views import compare_views
from dynmask_app.page import render_page

render_page(
    "compare", ("a", "b"), "Compare", "Compare two strategies",
    "Same text, same model, two masks. A static mask depends only on sizes; a dynamic one on the input, the scores "
    "or a seed.",
    compare_views,
)
