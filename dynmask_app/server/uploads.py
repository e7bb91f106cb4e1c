"""This session's uploads: a file is named in the recipe by its content hash (``upload:`` + 16 hex digits), which a
link cannot carry: only the session that uploaded it has the file. The store checks a file before keeping it and
turns a recipe's input into the source the core encodes."""

from __future__ import annotations

import hashlib
from typing import Any

import streamlit as st

from dynmask_app.server import resources
from dynmask_core.messages import Message
from dynmask_core.modalities import modality
from dynmask_core.modalities.files import read_file
from dynmask_core.recipe import UPLOAD_PREFIX

UPLOADS = "uploads"  # st.session_state key: {ref: (kind, file name, bytes)}


def upload_ref(data: bytes) -> str:
    """How a recipe names an uploaded file: ``upload:`` and 16 hex digits of its SHA-256."""
    return UPLOAD_PREFIX + hashlib.sha256(data).hexdigest()[:16]


def keep(kind: str, name: str, data: bytes) -> str:
    """Checks that the file is within this server's limit and decodes, keeps it in the session, returns its ref.

    Raises:
        ValueError: too large, or not a file of that kind (the reader's one-line message).
    """
    limit = resources.policy().max_upload_bytes(kind)
    if len(data) > limit:
        raise ValueError(Message("This {noun} is {size:.1f} MB; this server takes up to {limit:g} MB. Use a smaller "
                                 "file.", noun=Message(modality(kind).noun), size=len(data) / 2**20,
                                 limit=limit / 2**20))
    read_file(kind, data, name)
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
    return read_file(kind, data, name)
