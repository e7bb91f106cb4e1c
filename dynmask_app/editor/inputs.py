"""The input part of the recipe editor: text, or an image / audio clip from a bundled sample, an upload, the camera or
the microphone (kept in the session's store: :mod:`dynmask_app.server.uploads`).
"""

from __future__ import annotations

import streamlit as st

from dynmask_app import messages
from dynmask_app.editor.choices import choice
from dynmask_app.i18n import error_text, t, translate
from dynmask_app.kinds import kind_views
from dynmask_app.server import resources, uploads
from dynmask_core.modalities import kinds, modality
from dynmask_core.modalities.base import FileReader
from dynmask_core.models import PRESETS, default_model
from dynmask_core.recipe import UPLOAD_PREFIX
from dynmask_core.samples import samples, samples_for

#: The live capture widgets a kind may name (:attr:`dynmask_app.kinds.KindViews.live`), with their key suffixes.
_LIVE = {"camera": (st.camera_input, "camera"), "microphone": (st.audio_input, "mic")}


def available_kinds() -> list[str]:
    """Input kinds the app offers: text, and each kind with a bundled model or bundled samples (a Hugging Face model
    or a local folder of that kind can take them)."""
    return ["text"] + [k for k in kinds() if k != "text"
                       and (any(p.modality == k for p in PRESETS.values()) or samples(k))]


def _store(kind: str, name: str, data: bytes) -> str | None:
    """Keeps an upload in the session's store and returns its ref; shows the message and returns None if refused."""
    try:
        return uploads.keep(kind, name, data)
    except ValueError as err:
        messages.error(error_text(err))
        return None


def chosen_model(ns: str, kind: str) -> str:
    """The model the page's model picker holds for ``kind`` (drawn after the input): the free field's id, else the
    bundled pick, or the bundled model the picker will switch to when the pick takes another kind of input."""
    custom = (st.session_state.get(f"{ns}.model_custom") or "").strip()
    if custom:
        return custom
    picked = st.session_state.get(f"{ns}.model")
    preset = PRESETS.get(picked) if isinstance(picked, str) else None
    return picked if preset is not None and preset.modality == kind else default_model(kind)


def media_controls(key: str, kind: str) -> str:
    """Sample picker, uploader and camera/microphone for an input read from a file (a picture, a recording); returns
    the recipe's ref.

    The picker lists the samples worth giving the chosen model (:func:`dynmask_core.samples.samples_for`: a bundled
    shapes model gets its shapes, not photos). A sample the recipe already holds stays listed even when it is not
    one of those (a link that gives a photo to a shapes model opens as it was, with a note)."""
    views = kind_views(kind)
    origins = views.origins if file_reader_of(kind) is not None else views.origins[:1]
    origin = (choice("radio", t("From"), origins, key=f"{key}_origin", horizontal=True, label_of=translate,
                     fallback=origins[0]) if len(origins) > 1 else origins[0])
    if origin == origins[0]:
        model = chosen_model(key.rsplit(".", 1)[0], kind)
        everything = {s.id: s for s in samples(kind)}
        options = samples_for(kind, model)
        ids = [s.id for s in options]
        held = st.session_state.get(f"{key}_sample")
        if held not in ids and held in everything:  # kept, not swapped: the recipe names it
            ids.append(held)
        titles = {sid: everything[sid].title for sid in ids}
        if st.session_state.get(f"{key}_sample") not in ids:
            current = st.session_state.get(key)
            st.session_state[f"{key}_sample"] = current if current in ids else ids[0]
        chosen = choice("select", t("Sample"), ids, key=f"{key}_sample",
                        label_of=lambda sid, lang: translate(titles[sid], lang))
        if chosen not in {s.id for s in options}:
            st.caption(t("This sample is not one this model was made for: it knows only what it was trained on, and "
                         "it will still pick one of its answers. Its own examples are in the list above."))
        return chosen
    if origin == origins[1]:
        limit = resources.policy().max_upload_mb(kind)  # stated by the label and by the uploader's own "... per file"
        file = st.file_uploader(t("A {noun} (up to {limit} MB)", noun=t(modality(kind).noun), limit=limit),
                                type=list(file_reader_of(kind).suffixes), key=f"{key}_upload", max_upload_size=limit)
        st.caption(t("An uploaded file stays in this browser tab: a shared link cannot carry it."))
    else:
        live, suffix = _LIVE[views.live]
        file = live(t(views.live_label), key=f"{key}_{suffix}")
    if file is None:
        return st.session_state.get(key) if str(st.session_state.get(key, "")).startswith(UPLOAD_PREFIX) else ""
    ref = _store(kind, getattr(file, "name", "the file"), file.getvalue())
    return ref or ""


def file_reader_of(kind: str) -> FileReader | None:
    """The reader of ``kind``'s files, or None for a kind not read from files."""
    return modality(kind).reader
