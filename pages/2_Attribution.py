"""dynmask Attribution: what the prediction depended on, with the mask and without it (Captum inside the engine).

Declared in ``dynmask_app/page_registry.py`` (title, defaults, views).
"""

from __future__ import annotations

from dynmask_app.page import render_page

render_page("attribution")
