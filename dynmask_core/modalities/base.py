"""The prepared-input protocol: one :func:`encode` for every kind of input, and what it returns.

Each adapter module registers a :class:`Modality`: its kind (``text``, ``image``, ``audio``), the function that
prepares a source of that kind, the model inputs that mean a model takes it (``input_ids``, ``pixel_values``, ...)
and the transformers class that loads its processor. ``encode(loaded, source)`` picks the modality of the source's
kind, checks that the model takes that kind, and returns a :class:`Prepared`: the model's keyword tensors, one
label per position (for plot axes), segment ids (for the ``document`` strategy) and the geometry the views need (the
patch grid and how many prefix tokens such as CLS come before it; the seconds each audio frame covers).

The loaded model's processor (tokenizer, image processor, feature extractor) is shared by every session of a server;
tokenizers keep truncation/padding state between calls, so each call runs under the model's own lock.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import Tensor


@dataclass(frozen=True)
class Geometry:
    """Where the positions of an input lie, for views that draw them on the input.

    Attributes:
        grid: ``(rows, cols)`` of image patches, or None.
        prefix: Positions before the first patch/frame (CLS, distillation or register tokens).
        seconds_per_frame: Audio time each frame covers, or None.
    """

    grid: tuple[int, int] | None = None
    prefix: int = 0
    seconds_per_frame: float | None = None


@dataclass
class Prepared:
    """An input ready for the engine.

    Attributes:
        kind: ``text``, ``image`` or ``audio``.
        inputs: Model keyword tensors (``input_ids``/``attention_mask``, ``pixel_values``, ``input_values``), batch
            of 1, on the model's device.
        labels: One readable label per position (tokens; ``CLS``/``r0c1`` patches; ``0.02s`` frames).
        segment_ids: ``(T,)`` segment (sentence) of each position, or None.
        geometry: Patch grid / frame duration.
        truncated: True when the input was cut to fit.
        n_before: Positions before cutting.
    """

    kind: str
    inputs: dict[str, Tensor]
    labels: list[str]
    segment_ids: Tensor | None = None
    geometry: Geometry = field(default_factory=Geometry)
    truncated: bool = False
    n_before: int = 0

    @property
    def tokens(self) -> list[str]:
        """The position labels (the name the engine and the text views use)."""
        return self.labels

    @property
    def n_tokens_before(self) -> int:
        """Positions before cutting (kept for text callers)."""
        return self.n_before


Adapter = Callable[[Any, Any], Prepared]


@dataclass(frozen=True)
class Modality:
    """One kind of input, registered by its adapter module.

    Attributes:
        kind: ``text``, ``image``, ``audio``: the recipe's ``input_kind`` and each source's ``kind``.
        prepare: ``prepare(loaded, source) -> Prepared`` (called under the model's processor lock).
        input_names: The model's ``main_input_name`` values that mean a model takes this kind.
        processor: The transformers ``Auto*`` class that loads the model's processor for this kind.
    """

    kind: str
    prepare: Adapter
    input_names: tuple[str, ...]
    processor: str


MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    """Adds a modality (its kind must be new)."""
    if modality.kind in MODALITIES:
        raise ValueError(f"input kind {modality.kind!r} is already registered")
    MODALITIES[modality.kind] = modality
    return modality


def kind_of_model(model: Any) -> str:
    """The input kind a transformers model takes, from its ``main_input_name`` (text when unknown)."""
    name = getattr(model, "main_input_name", "input_ids")
    return next((m.kind for m in MODALITIES.values() if name in m.input_names), "text")


def encode(loaded: Any, source: Any) -> Prepared:
    """Prepares ``source`` (a ``TextSource``, ``ImageSource``, ...; a ``str`` is text) for ``loaded``.

    Raises:
        ValueError: the model does not take this kind of input, or the input is empty or unreadable.
    """
    if isinstance(source, str):
        from dynmask_core.modalities.text import TextSource

        source = TextSource(source)
    kind = getattr(source, "kind", None)
    if kind not in MODALITIES:
        raise ValueError(f"unknown input kind {kind!r}; dynmask takes {', '.join(MODALITIES)}")
    takes = getattr(loaded, "modality", "text")
    if kind != takes:
        raise ValueError(f"{loaded.id} is a{'n' if takes[0] in 'aeiou' else ''} {takes} model: it cannot take "
                         f"{kind} input. Give it {takes} input, or pick a model made for {kind}.")
    with loaded.processor_lock:
        return MODALITIES[kind].prepare(loaded, source)
