"""Every chart of the app is drawn here: plotly figures with their PNG button named after the view, Altair charts,
and in presenter mode both sized for a projector (:mod:`dynmask_core.viz.projector`: text of 18 px and more, every
category label drawn). Figures come shared from the caches: the projector copy is made here, never in place."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app.i18n import PRESENT_KEY, localize_figure
from dynmask_core import viz
from dynmask_core.viz.projector import projector_chart, projector_figure


def presenting() -> bool:
    """Whether this session shows the page in presenter mode."""
    return bool(st.session_state.get(PRESENT_KEY))


def plotly(fig: Any, name: str = "dynmask", key: str | None = None, where: Any = None) -> None:
    """A plotly figure (its words in this session's language, sized for a projector in presenter mode) with its PNG
    button saving ``name``.png. A figure from the figure cache is already translated (nothing is written into it);
    one built for this script run is translated in place."""
    localize_figure(fig)
    config = {**viz.PNG_CONFIG, "toImageButtonOptions": {**viz.PNG_CONFIG["toImageButtonOptions"], "filename": name}}
    (where or st).plotly_chart(projector_figure(fig) if presenting() else fig, config=config, key=key,
                               width="stretch")


def altair(chart: Any, where: Any = None) -> None:
    """An Altair chart (sized for a projector in presenter mode)."""
    (where or st).altair_chart(projector_chart(chart) if presenting() else chart, width="stretch")


def columns(n: int) -> list[Any]:
    """``n`` side-by-side columns for charts, or, in presenter mode, ``n`` full-width blocks one under the other
    (18 px numbers in half a 1024 px page overflow their cells)."""
    return [st.container() for _ in range(n)] if presenting() else list(st.columns(n))
