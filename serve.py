"""How the app is served: ``streamlit run serve.py`` (same flags as before, e.g. ``--server.port 8501``).

Streamlit's ASGI entry point: it serves ``app.py`` and its ``pages/`` exactly as ``streamlit run app.py`` does (same
``.streamlit/config.toml``, flags, health check, websocket), with one middleware in front: Streamlit's hashed frontend
bundle (~8 MB per fresh browser) is served from memory, gzip-compressed once (:mod:`dynmask_app.static_assets`),
instead of being read from disk in 64 KB chunks through Streamlit's whole middleware stack on every fresh browser.
The C allocator is told to give freed memory back (:mod:`dynmask_app.allocator`), so the result budget holds.

``streamlit run app.py`` still works (without that middleware); tests use ``AppTest.from_file("app.py")``.
"""

from __future__ import annotations

import streamlit as st
from starlette.middleware import Middleware

from dynmask_app.allocator import return_freed_memory
from dynmask_app.static_assets import StaticAssetsMiddleware

return_freed_memory()  # freed results go back to the system (dynmask_app/allocator.py)
app = st.App("app.py", middleware=[Middleware(StaticAssetsMiddleware)])
