"""Modality adapters: turn user input (text, image, audio) into model inputs plus labels and geometry for plots.

Each kind is ONE module here that calls :func:`register_modality` with everything the core knows about the kind
(see :class:`Modality`). Every module of this package is imported below, so a new module is all a new kind needs.
"""

import importlib
import pkgutil

from dynmask_core.modalities.audio import AudioSource
from dynmask_core.modalities.base import (
    KIND_LABELS,
    KINDS,
    MODALITIES,
    FileReader,
    Geometry,
    Modality,
    Prepared,
    Sample,
    encode,
    kind_of_model,
    kinds,
    modalities,
    modality,
    register_modality,
    takes,
    unregister_modality,
)
from dynmask_core.modalities.image import ImageSource
from dynmask_core.modalities.text import MAX_CHARS, TextSource, encode_text

__all__ = [
    "KINDS", "KIND_LABELS", "MAX_CHARS", "MODALITIES", "AudioSource", "FileReader", "Geometry", "ImageSource",
    "Modality", "Prepared", "Sample", "TextSource", "encode", "encode_text", "kind_of_model", "kinds",
    "modalities", "modality", "register_modality", "takes", "unregister_modality",
]

for _module in pkgutil.iter_modules(__path__):  # the kinds without a name exported here register themselves too
    importlib.import_module(f"{__name__}.{_module.name}")
