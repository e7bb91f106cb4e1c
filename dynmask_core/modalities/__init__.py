"""Modality adapters: turn user input into model inputs plus labels for plots."""

from dynmask_core.modalities.text import MAX_CHARS, TextInput, encode_text

__all__ = ["MAX_CHARS", "TextInput", "encode_text"]
