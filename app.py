"""dynmask Playground: apply an attention-mask strategy inside a real transformer and see what it did.

Served by ``streamlit run serve.py`` (``streamlit run app.py`` works too). The page is thin: read the recipe
(sidebar), run it (cached), render; its title, defaults and views are declared in ``dynmask_app/page_registry.py``.
"""

from __future__ import annotations

from dynmask_app.page import render_page

render_page("playground")
