"""The input part of the recipe editor: text, or an image / audio clip from a bundled sample, an upload, the camera or
the microphone; and the session's store of uploads (an upload is named in the recipe by its content hash, which a
link cannot carry: only this session has the file).
"""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_core.modalities.files import (
    AUDIO_SUFFIXES,
    IMAGE_SUFFIXES,
    read_audio,
    read_image,
)
from dynmask_core.models import PRESETS
from dynmask_core.recipe import UPLOAD_PREFIX
from dynmask_core.samples import samples

UPLOADS = "uploads"  # st.session_state key: {ref: (kind, file name, bytes)}
_ORIGINS = {"image": ("Bundled sample", "Upload a picture", "Camera"),
            "audio": ("Bundled sample", "Upload a recording", "Microphone")}


def available_kinds() -> list[str]:
    """Input kinds the app offers: text, and each kind with a bundled model or bundled samples (a Hugging Face model
    or a local folder of that kind can take them)."""
    return ["text"] + [k for k in ("image", "audio")
                       if any(p.modality == k for p in PRESETS.values()) or samples(k)]


def upload_ref(data: bytes) -> str:
    """How a recipe names an uploaded file: ``upload:`` and 16 hex digits of its SHA-256."""
    return UPLOAD_PREFIX + hashlib.sha256(data).hexdigest()[:16]


def _store(kind: str, name: str, data: bytes) -> str | None:
    """Checks the file decodes, keeps it in the session, returns its ref; shows a message and returns None if not."""
    from dynmask_app.runner import policy

    limit = policy().max_upload_bytes(kind)
    if len(data) > limit:
        messages.error(f"This {'picture' if kind == 'image' else 'recording'} is {len(data) / 2**20:.1f} MB; this "
                       f"server takes up to {limit / 2**20:g} MB. Use a smaller file.")
        return None
    try:
        (read_image if kind == "image" else read_audio)(data, name)
    except ValueError as err:
        messages.error(str(err))
        return None
    ref = upload_ref(data)
    st.session_state.setdefault(UPLOADS, {})[ref] = (kind, name, data)
    return ref


def source_of(state: Any) -> Any:
    """The source of a recipe's input: an upload from this session's store, else the text or bundled sample.

    Raises:
        ValueError: an upload this session does not have (a link from someone else's upload).
    """
    if not state.is_upload:
        return state.source()
    kind, name, data = st.session_state.get(UPLOADS, {}).get(state.input_ref, (None, None, None))
    if data is None:
        return state.source()  # raises: only the session that uploaded it has the file
    from dynmask_core.modalities import AudioSource, ImageSource

    if kind == "image":
        return ImageSource(read_image(data, name))
    wave, rate = read_audio(data, name)
    return AudioSource(wave, rate)


def media_controls(key: str, kind: str) -> str:
    """Sample picker, uploader and camera/microphone for an image or audio input; returns the recipe's ref."""
    origin_key = f"{key}_origin"
    origin = st.radio("From", _ORIGINS[kind], key=origin_key, horizontal=True)
    if origin == _ORIGINS[kind][0]:
        options = samples(kind)
        ids = [s.id for s in options]
        titles = {s.id: s.title for s in options}
        if st.session_state.get(f"{key}_sample") not in ids:
            current = st.session_state.get(key)
            st.session_state[f"{key}_sample"] = current if current in ids else ids[0]
        return st.selectbox("Sample", ids, key=f"{key}_sample", format_func=titles.get)
    if origin == _ORIGINS[kind][1]:
        types = IMAGE_SUFFIXES if kind == "image" else AUDIO_SUFFIXES
        from dynmask_app.runner import policy

        limit = policy().max_upload_mb(kind)  # stated by the label and by the uploader's own "... per file"
        file = st.file_uploader(f"A {'picture' if kind == 'image' else 'recording'} (up to {limit} MB)",
                                type=list(types), key=f"{key}_upload", max_upload_size=limit)
        st.caption("An uploaded file stays in this browser tab: a shared link cannot carry it.")
    elif kind == "image":
        file = st.camera_input("Take a picture", key=f"{key}_camera")
    else:
        file = st.audio_input("Record a word", key=f"{key}_mic")
    if file is None:
        return st.session_state.get(key) if str(st.session_state.get(key, "")).startswith(UPLOAD_PREFIX) else ""
    ref = _store(kind, getattr(file, "name", "the file"), file.getvalue())
    return ref or ""
