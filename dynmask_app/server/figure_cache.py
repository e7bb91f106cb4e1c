"""Built plotly figures shared by every session of the server: a class on one link builds each figure once.

Building plotly figures was the main cost of opening an already computed link: every script run of every session
rebuilt them. Here a figure is built once per result, view and view arguments, then handed to every session that
shows it.

Key of a figure: ``(result key, view, args)``. The result key is the run's recipe
(:func:`dynmask_app.server.keys.recipe_key`: model, input, resolved plan incl. seed), which determines its numbers (that
is what makes a shared link show the same view); ``view`` names the figure (``"head.mask"``, ``"model_view"``...),
``args`` holds every other value the figure depends on (layer, head, titles, sizes, opacity...). Titles are in
``args``, so a translated title keys itself; the language is in the key too: a figure is built, and its words
translated (:func:`dynmask_app.i18n.localize_figure`), once per language.

Bounded in bytes by the serving policy's ``figure_budget_mb`` (default 64), least recently used first out
(a :class:`~dynmask_app.server.result_cache.ByteLRU`). A figure's size is measured once, when stored: the length of its
plotly JSON (what Streamlit sends for it); the Python objects of a 512-token heatmap hold about 0.9 to 1.7 times
that (measured with tracemalloc). Cached figures are shared: callers never mutate them (``st.plotly_chart(fig,
config=...)`` does not; Streamlit serialises a copy). A few small numbers derived from a whole result (the count
of distinct mask patterns) are kept the same way.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import streamlit as st

from dynmask_app.i18n import current, localize_figure
from dynmask_app.server import resources
from dynmask_app.server.keys import recipe_key
from dynmask_app.server.result_cache import ByteLRU


def figure_size(fig: Any) -> int:
    """Bytes a figure weighs: the length of its plotly JSON (0 for None; a tuple of figures: their sum)."""
    if fig is None:
        return 0
    if isinstance(fig, (tuple, list)):
        return sum(figure_size(f) for f in fig)
    if isinstance(fig, (int, float, str)):  # a small derived number kept next to the figures
        return len(str(fig))
    import plotly.io

    return len(plotly.io.to_json(fig, validate=False))


def figure_cache(budget: int) -> ByteLRU:
    """A figure cache of ``budget`` bytes."""
    return ByteLRU(budget, sizeof=figure_size)


@st.cache_resource(show_spinner=False)
def shared() -> ByteLRU:
    """The server's one figure cache, shared by every session."""
    return figure_cache(resources.policy().figure_budget)


def result_id(state: Any, result: Any) -> str:
    """What identifies a result: its recipe (model, input, resolved plan incl. seed), which fixes its numbers."""
    key = getattr(result, "key", None)  # a session's SharedResult handle carries it
    if isinstance(key, str):
        return key
    return recipe_key(state, result.plan)


def figure(state: Any, result: Any, view: str, args: tuple, build: Callable[[], Any],
           cache: ByteLRU | None = None) -> Any:
    """The figure ``view`` of ``result`` for ``args`` (every value it depends on besides the result), built by
    ``build`` only when no session built it yet. Never mutate what it returns.

    ``cache``: the cache to use (default :func:`shared`); a callable run outside the script's thread (a deferred
    download) passes the one it captured (and sets the language it captured: :func:`dynmask_app.i18n.using`).
    """
    lang = current()

    def built() -> Any:
        made = build()
        for fig in made if isinstance(made, (tuple, list)) else (made,):
            localize_figure(fig, lang)  # before it is shared: nobody translates it in place afterwards
        return made

    return (cache or shared()).get_or_compute((result_id(state, result), view, args, lang), built)
