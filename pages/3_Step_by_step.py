"""dynmask lesson: attention step by step (Q, K, V, scores, scaling, mask, softmax, output) on a real model.

Declared in ``dynmask_app/page_registry.py`` (title, defaults, views).
"""

from __future__ import annotations

from dynmask_app.page import render_page

render_page("steps")
