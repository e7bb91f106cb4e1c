"""The app's one table per kind of input: where the input comes from (the editor) and what is drawn on it (the
views). Everything else about a kind (its files and limits, samples, attribution space, words) is the core's
:class:`~dynmask_core.modalities.Modality`.

A kind without an entry here still works in the app: it is picked from its bundled samples, and its results are
the generic heatmaps and the attribution's per-position scores. Views are named ``"module:function"`` and imported
on first use (as in :mod:`dynmask_app.page_registry`): the table sits below the views it names.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dynmask_core.messages import N_


@dataclass(frozen=True)
class KindViews:
    """How the app offers and draws one kind of input.

    Attributes:
        kind: The core's kind (``text``, ``image``, ``audio``).
        origins: The editor's "From" choices: bundled sample, upload, and the live capture (camera, microphone);
            empty for a kind typed in the sidebar (text).
        live: The live capture widget: ``camera``, ``microphone`` or None; live_label: its label.
        input_tabs: The Playground's tabs drawn on the input itself, first among the tabs: ``(title,
            "module:function")``, each called as ``draw(state, result, layer, head, ns)``.
        attribution: The Attribution page's view of the scores on the input, ``"module:function"`` called as
            ``draw(state, result, attr, ns, scale)``; None: the per-position scores alone.
        scores_open: Whether the attribution's per-position scores start open (text: they read like the input).
    """

    kind: str
    origins: tuple[str, ...] = ()
    live: str | None = None
    live_label: str = ""
    input_tabs: tuple[tuple[str, str], ...] = ()
    attribution: str | None = None
    scores_open: bool = False


KIND_VIEWS: dict[str, KindViews] = {k.kind: k for k in (
    KindViews("text", attribution="dynmask_app.views.attribution:on_text", scores_open=True),
    KindViews("image", origins=(N_("Bundled sample"), N_("Upload a picture"), N_("Camera")), live="camera",
              live_label=N_("Take a picture"),
              input_tabs=((N_("On the image"), "dynmask_app.views.image:image_tab"),
                          (N_("Rollout"), "dynmask_app.views.image:rollout_tab")),
              attribution="dynmask_app.views.attribution:on_image"),
    KindViews("audio", origins=(N_("Bundled sample"), N_("Upload a recording"), N_("Microphone")), live="microphone",
              live_label=N_("Record a word"),
              input_tabs=((N_("On the sound"), "dynmask_app.views.audio:audio_tab"),
                          (N_("Rollout"), "dynmask_app.views.audio:audio_rollout_tab")),
              attribution="dynmask_app.views.attribution:on_audio"),
)}


def kind_views(kind: str) -> KindViews:
    """The app's entry for ``kind`` (a kind with none gets the generic views)."""
    return KIND_VIEWS.get(kind) or KindViews(kind, origins=("Bundled sample",))


def view(name: str) -> Callable[..., Any]:
    """The function a ``"module:function"`` names (imported on first use)."""
    module, _, function = name.partition(":")
    return getattr(importlib.import_module(module), function)
