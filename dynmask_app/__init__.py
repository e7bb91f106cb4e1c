"""Streamlit glue of the dynmask app: state <-> URL, cached runs, generated widgets, views.

Pages (``app.py``, ``pages/``) stay thin and import from here; figures come from :mod:`dynmask_core.viz`.
"""
