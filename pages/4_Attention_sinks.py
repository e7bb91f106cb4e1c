"""dynmask lesson: attention sinks (a sliding window with and without the first token) on SmolLM2.

Declared in ``dynmask_app/page_registry.py`` (title, defaults, views).
"""

from __future__ import annotations

from dynmask_app.page import render_page

render_page("sinks")
