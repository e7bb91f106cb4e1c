"""The input part of the recipe editor: text, or an image / audio clip from a bundled sample, an upload, the camera or
the microphone (kept in the session's store: :mod:`dynmask_app.server.uploads`).
"""

from __future__ import annotations

import streamlit as st

from dynmask_app import messages
from dynmask_app.kinds import kind_views
from dynmask_app.server import resources, uploads
from dynmask_core.modalities import kinds, modality
from dynmask_core.modalities.base import FileReader
from dynmask_core.models import PRESETS
from dynmask_core.recipe import UPLOAD_PREFIX
from dynmask_core.samples import samples

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
        messages.error(str(err))
        return None


def media_controls(key: str, kind: str) -> str:
    """Sample picker, uploader and camera/microphone for an input read from a file (a picture, a recording); returns
    the recipe's ref."""
    views = kind_views(kind)
    origins = views.origins if file_reader_of(kind) is not None else views.origins[:1]
    origin = st.radio("From", origins, key=f"{key}_origin", horizontal=True) if len(origins) > 1 else origins[0]
    if origin == origins[0]:
        options = samples(kind)
        ids = [s.id for s in options]
        titles = {s.id: s.title for s in options}
        if st.session_state.get(f"{key}_sample") not in ids:
            current = st.session_state.get(key)
            st.session_state[f"{key}_sample"] = current if current in ids else ids[0]
        return st.selectbox("Sample", ids, key=f"{key}_sample", format_func=titles.get)
    if origin == origins[1]:
        limit = resources.policy().max_upload_mb(kind)  # stated by the label and by the uploader's own "... per file"
        file = st.file_uploader(f"A {modality(kind).noun} (up to {limit} MB)", type=list(file_reader_of(kind).suffixes),
                                key=f"{key}_upload", max_upload_size=limit)
        st.caption("An uploaded file stays in this browser tab: a shared link cannot carry it.")
    else:
        live, suffix = _LIVE[views.live]
        file = live(views.live_label, key=f"{key}_{suffix}")
    if file is None:
        return st.session_state.get(key) if str(st.session_state.get(key, "")).startswith(UPLOAD_PREFIX) else ""
    ref = _store(kind, getattr(file, "name", "the file"), file.getvalue())
    return ref or ""


def file_reader_of(kind: str) -> FileReader | None:
    """The reader of ``kind``'s files, or None for a kind not read from files."""
    return modality(kind).reader
