"""The prepared-input protocol: one :func:`encode` for every kind of input, and the one place each kind is described.

Each adapter module registers a :class:`Modality`: its kind (``text``, ``image``, ``audio``), the function that
prepares a source of that kind, the model inputs that mean a model takes it (``input_ids``, ``pixel_values``, ...),
the transformers class that loads its processor, and everything else the core knows about the kind: its source class,
its words, its command-line flag, its file reader and limits, its bundled samples, its attribution space and the name
of its attribution overlay. Nothing else in the core branches on the kind: the command line, the samples, the
attribution and the exports ask the registry.

``encode(loaded, source)`` picks the modality of the source's kind, checks that the model takes that kind, and returns
a :class:`Prepared`: the model's keyword tensors, one label per position (for plot axes), segment ids (for the
``document`` strategy) and the geometry the views need (the patch grid and how many prefix tokens such as CLS come
before it; the seconds each audio frame covers).

The loaded model's processor (tokenizer, image processor, feature extractor) is shared by every session of a server;
tokenizers keep truncation/padding state between calls, so each call runs under the model's own lock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import Tensor

ASSETS = Path(__file__).resolve().parents[2] / "assets"


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

    def to_dict(self, n_positions: int) -> dict[str, Any] | None:
        """``{"grid": [rows, cols], "cls": bool, "prefix": int}`` for patches, ``{"frames", "seconds_per_frame",
        "prefix"}`` for frames (plus ``grid`` and ``cls`` for patch models such as AST); None when the positions have
        no place on the input (text). ``prefix`` counts the positions before the first patch or frame (CLS, DIST,
        registers): ``cls`` alone cannot say whether that is 1 or 2."""
        if self.seconds_per_frame is not None:
            frames = self.grid[1] if self.grid is not None else n_positions - self.prefix
            out: dict[str, Any] = {"frames": frames, "seconds_per_frame": self.seconds_per_frame,
                                   "prefix": self.prefix}
            if self.grid is not None:  # AST: frequency x time patches
                out.update(grid=list(self.grid), cls=self.prefix > 0)
            return out
        if self.grid is not None:
            return {"grid": list(self.grid), "cls": self.prefix > 0, "prefix": self.prefix}
        return None


@dataclass
class Prepared:
    """An input ready for the engine.

    Attributes:
        kind: ``text``, ``image``, ``audio`` (a registered kind).
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


@dataclass(frozen=True)
class Sample:
    """One bundled input.

    Attributes:
        id: Short stable id (the link's ``ref`` for image and audio inputs).
        modality: The kind: ``text``, ``image``, ``audio``.
        title: Human name.
        origin: Where it comes from.
        load: Returns the source for :func:`encode`.
        label: The true class, when known.
        inline: The input itself, for a kind whose recipe carries its input (a text sample's text).
        made_for: The bundled models (preset ids) whose own domain this sample is drawn from; empty: a general input
            that any model may be given. A bundled model that some samples are made for knows nothing else (the
            shapes ViTs know six drawn shapes, not photos): see :func:`suits`.
    """

    id: str
    modality: str
    title: str
    origin: str
    load: Callable[[], Any]
    label: str | None = None
    inline: str | None = None
    made_for: tuple[str, ...] = ()

    @property
    def ref(self) -> str:
        """What a recipe's ``input_ref`` holds for this sample: the input itself (text), else the id."""
        return self.id if self.inline is None else self.inline

    def source(self) -> Any:
        """The source, ready for ``encode``."""
        return self.load()


def file_loader(path: Path, read: Callable[[bytes, str], Any]) -> Callable[[], Any]:
    """A sample's ``load``: the bundled file at ``path``, read by ``read(data, name)`` when asked for."""
    def load() -> Any:
        return read(path.read_bytes(), path.name)

    return load


def folder_samples(folder: Path, kind: str, origin: str, read: Callable[[bytes, str], Any],
                   made_for: tuple[str, ...] = ()) -> list[Sample]:
    """Samples listed in ``folder/samples.json`` (``[{"id", "file", "title", "label"}]``), when the folder exists;
    each file is read by ``read(data, name)`` (its kind's reader) when loaded; ``made_for``: see :class:`Sample`."""
    index = folder / "samples.json"
    if not index.is_file():
        return []
    return [Sample(row["id"], kind, row["title"], origin, file_loader(folder / row["file"], read), row.get("label"),
                   made_for=made_for)
            for row in json.loads(index.read_text("utf-8"))]


def suits(sample: Sample, model: str | None, family: Sequence[Sample]) -> bool:
    """Whether ``sample`` is worth offering with ``model``: a bundled model that some of ``family`` (the samples of
    the same kind) were made for is offered only those; any other model (another bundled one, a Hugging Face id, a
    folder) is offered every sample."""
    if not model or not any(model in s.made_for for s in family):
        return True
    return model in sample.made_for


@dataclass(frozen=True)
class FileReader:
    """How files of one kind are read (uploads, command-line paths, bundled samples).

    Attributes:
        suffixes: File name endings it takes, without the dot (``png``, ``wav``): what an uploader offers.
        max_bytes: The largest file it reads: a path or an upload is refused past it, before decoding.
        read: ``read(data, name) -> source`` for :func:`encode`; raises ``ValueError`` (one line naming the file,
            see :mod:`dynmask_core.modalities.files`) for a bad file.
    """

    suffixes: tuple[str, ...]
    max_bytes: int
    read: Callable[[bytes, str], Any]


Adapter = Callable[[Any, Any], Prepared]


def _no_samples() -> list[Sample]:
    return []


@dataclass(frozen=True)
class Modality:
    """One kind of input, registered by its adapter module: everything the core knows about the kind.

    Words are plain English; the app translates them through its catalogue.

    Attributes:
        kind: ``text``, ``image``, ``audio``: the recipe's ``input_kind`` and each source's ``kind``.
        prepare: ``prepare(loaded, source) -> Prepared`` (called under the model's processor lock).
        input_names: The model's ``main_input_name`` values that mean a model takes this kind (and that it prepares).
        processor: The transformers ``Auto*`` class that loads the model's processor for this kind.
        source: The source class (``ImageSource``): what :func:`encode` takes for this kind.
        label: The kind as a choice (``Image``); default the kind, capitalised.
        noun: One input of the kind (``picture``); default the kind.
        plural: Several (``pictures``); default the noun and an ``s``.
        upload_noun: One file of the kind, with its article (``a picture``, as in "Upload a picture"); ``""`` when
            the kind has no files.
        cli_flag: The command-line flag that gives such an input (``--image``); default ``--`` and the kind.
        cli_help: The flag's help.
        inline: The recipe carries the input itself (text; the flag takes the input), not a sample id or an
            upload's hash (the flag takes a PATH, read by ``reader``).
        reader: How its files are read, or None (no files).
        samples: ``samples() -> [Sample]``: its bundled inputs, found when the samples are first listed.
        space: ``space(loaded, prepared, inputs) -> Space`` (:mod:`dynmask_core.attribution.spaces`): what an
            attribution perturbs, its baseline and how cells sum back to positions; None: no attribution.
        overlay_name: What its attribution's overlay map is called in exported files (``attribution_pixels.npy``).
        order: Where the kind comes in lists (input-kind choices, command-line flags, samples).
    """

    kind: str
    prepare: Adapter
    input_names: tuple[str, ...]
    processor: str
    source: type
    label: str = ""
    noun: str = ""
    plural: str = ""
    upload_noun: str = ""
    cli_flag: str = ""
    cli_help: str = ""
    inline: bool = False
    reader: FileReader | None = None
    samples: Callable[[], list[Sample]] = _no_samples
    space: Callable[[Any, Prepared, Mapping[str, Tensor]], Any] | None = None
    overlay_name: str = "map"
    order: int = 100

    def __post_init__(self) -> None:
        for name, default in (("label", self.kind.capitalize()), ("noun", self.kind), ("cli_flag", f"--{self.kind}")):
            if not getattr(self, name):
                object.__setattr__(self, name, default)
        if not self.plural:
            object.__setattr__(self, "plural", self.noun + "s")


MODALITIES: dict[str, Modality] = {}


def register_modality(modality: Modality) -> Modality:
    """Adds a modality (its kind must be new)."""
    if modality.kind in MODALITIES:
        raise ValueError(f"input kind {modality.kind!r} is already registered")
    MODALITIES[modality.kind] = modality
    return modality


def unregister_modality(kind: str) -> Modality:
    """Removes a registered modality (a test's or a plug-in's) and returns it."""
    return MODALITIES.pop(kind)


def modalities() -> tuple[Modality, ...]:
    """The registered modalities, in their ``order`` (then in the order they were registered)."""
    return tuple(sorted(MODALITIES.values(), key=lambda m: m.order))


def kinds() -> tuple[str, ...]:
    """The registered kinds, in order (``text`` first)."""
    return tuple(m.kind for m in modalities())


def modality(kind: str) -> Modality:
    """The modality of ``kind``.

    Raises:
        ValueError: a kind no module registered.
    """
    if kind not in MODALITIES:
        raise ValueError(f"unknown input kind {kind!r}; dynmask takes {', '.join(kinds())}")
    return MODALITIES[kind]


class _Kinds(Sequence[str]):
    """The registered kinds, read afresh on every use: a kind registered later is a choice too."""

    def __getitem__(self, index: Any) -> Any:
        return kinds()[index]

    def __len__(self) -> int:
        return len(MODALITIES)

    def __iter__(self) -> Iterator[str]:
        return iter(kinds())

    def __contains__(self, kind: object) -> bool:
        return kind in MODALITIES

    def __repr__(self) -> str:
        return repr(kinds())


class _Labels(Mapping[str, str]):
    """Each registered kind's ``label``, read afresh on every use."""

    def __getitem__(self, kind: str) -> str:
        return MODALITIES[kind].label

    def __iter__(self) -> Iterator[str]:
        return iter(kinds())

    def __len__(self) -> int:
        return len(MODALITIES)


#: The recipe's ``input_kind`` choices and their labels, live views of the registry.
KINDS: Sequence[str] = _Kinds()
KIND_LABELS: Mapping[str, str] = _Labels()


def kind_of_model(model: Any) -> str:
    """The input kind a transformers model takes, from its ``main_input_name`` (text when unknown)."""
    name = getattr(model, "main_input_name", "input_ids")
    return next((m.kind for m in modalities() if name in m.input_names), "text")


def takes(loaded: Any, kind: str) -> bool:
    """Whether ``loaded`` takes inputs of ``kind``: its own kind, or a kind that prepares the model's main input (a
    kind that builds ``input_ids`` feeds a text model)."""
    main = getattr(getattr(loaded, "model", None), "main_input_name", None)
    return kind == getattr(loaded, "modality", "text") or main in modality(kind).input_names


def encode(loaded: Any, source: Any) -> Prepared:
    """Prepares ``source`` (a ``TextSource``, ``ImageSource``, ...: any registered kind's source) for ``loaded``.

    Raises:
        ValueError: the model does not take this kind of input, or the input is empty or unreadable.
    """
    kind = getattr(source, "kind", None)
    if kind not in MODALITIES:
        raise ValueError(f"{type(source).__name__} is not an input source: encode takes "
                         f"{', '.join(m.source.__name__ for m in modalities())}")
    if not takes(loaded, kind):
        own = getattr(loaded, "modality", "text")
        raise ValueError(f"{loaded.id} is a{'n' if own[0] in 'aeiou' else ''} {own} model: it cannot take "
                         f"{kind} input. Give it {own} input, or pick a model made for {kind}.")
    with loaded.processor_lock:
        return MODALITIES[kind].prepare(loaded, source)
