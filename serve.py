"""How the app is served: ``streamlit run serve.py`` (same flags as before, e.g. ``--server.port 8501``).

Streamlit's ASGI entry point: it serves ``app.py`` and its ``pages/`` exactly as ``streamlit run app.py`` does (same
``.streamlit/config.toml``, flags, health check, websocket), with one middleware in front: Streamlit's hashed frontend
bundle (~8 MB per fresh browser) is served from memory, gzip-compressed once (:mod:`dynmask_app.server.static_assets`),
instead of being read from disk in 64 KB chunks through Streamlit's whole middleware stack on every fresh browser.
The C allocator is told to give freed memory back (:mod:`dynmask_app.server.allocator`), so the result budget holds.

``streamlit run app.py`` still works (without that middleware); tests use ``AppTest.from_file("app.py")``.
"""

from __future__ import annotations

import os

# Idle OpenMP workers sleep instead of spinning (read when torch loads its OpenMP runtime, so before any import of
# torch). A spinning worker competes for the cores with the server's other threads and the sessions' work: a 32-token
# MiniLM run took 0.25 s inside the server on two cores instead of 0.06 s with it (bench/app_latency.py); same
# threads, so the same numbers as the command line, bit for bit.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

from dynmask_app.server.allocator import return_freed_memory  # noqa: E402
from dynmask_app.server.static_assets import StaticAssetsMiddleware  # noqa: E402

return_freed_memory()  # freed results go back to the system (dynmask_app/server/allocator.py)
app = st.App("app.py", middleware=[Middleware(StaticAssetsMiddleware)])
