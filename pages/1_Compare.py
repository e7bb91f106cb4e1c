"""dynmask Compare: two strategies on the same input, side by side, with their difference and per-layer numbers.

Declared in ``dynmask_app/page_registry.py`` (title, defaults, views).
"""

from __future__ import annotations

from dynmask_app.page import render_page

render_page("compare")
