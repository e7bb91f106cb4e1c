"""Modality adapters: turn user input (text, image, audio) into model inputs plus labels and geometry for plots.

A new kind of input is one new module here that calls :func:`register_modality`, and one import line below.
"""

from dynmask_core.modalities.audio import AudioSource
from dynmask_core.modalities.base import MODALITIES, Geometry, Modality, Prepared, encode, kind_of_model
from dynmask_core.modalities.image import ImageSource
from dynmask_core.modalities.text import MAX_CHARS, TextInput, TextSource, encode_text

KINDS: tuple[str, ...] = tuple(sorted(MODALITIES, key=lambda kind: kind != "text"))  # text first

__all__ = [
    "KINDS", "MAX_CHARS", "MODALITIES", "AudioSource", "Geometry", "ImageSource", "Modality", "Prepared", "TextInput",
    "TextSource", "encode", "encode_text", "kind_of_model",
]
