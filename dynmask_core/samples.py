"""Bundled sample inputs, by id: shared in links (``input=image&ref=chelsea``) and listed by ``samples [--json]``.

Text: short sentences (and one long enough for the 128+ token views) - also the app's example picker. Images: real
photos that ship with scikit-image, and pictures from the bundled shape model's own domain. Audio: spoken keywords
from the bundled keyword model's held-out voices.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dynmask_core.messages import shown

ASSETS = Path(__file__).resolve().parents[1] / "assets"
UPLOAD_PREFIX = "upload:"  # an input named by its content hash (an upload, a file): no link can carry it

TEXT_EXAMPLES: dict[str, str] = {
    "Sentiment: a clear positive review": "The film was surprisingly good, and the acting was great.",
    "Sentiment: negation far from its word": "I expected to hate this film, but honestly it was not bad at all.",
    "Sentiment: a clear negative review": "The service was slow, the food was cold, and nobody apologised.",
    "Next token: a fact (try smollm2)": "The capital of France is",
    "Next token: who is 'he'? (try smollm2)": "Alice gave Bob the book because he asked for it. Later, Bob thanked",
    "Two sentences (try the document mask)": "The cat sat on the mat. Then the dog chased it out of the house.",
    "Long paragraph (~150 tokens, model view pooling)": (
        "Attention lets every token look at every other token, which is why transformers read long contexts so "
        "well and also why they get slow: the cost grows with the square of the length. Sparse attention masks "
        "trade a little accuracy for a lot of speed. A sliding window keeps only the neighbours, a dilated window "
        "skips some of them, and global tokens such as the first one connect distant parts of the text. Dynamic "
        "masks go further and decide, for each input, which keys are worth keeping: the largest scores, the same "
        "hash bucket, or the same cluster. In this lab you can apply each of them inside a real model, see the "
        "pattern that was actually used, and measure how much the prediction changed."
    ),
}
DEFAULT_TEXT = next(iter(TEXT_EXAMPLES.values()))


def prose_sentences(text: str) -> list[str]:
    """The prose sentences of one help topic: paragraphs not indented (code and grammar are), headings' underlines
    dropped, split at sentence ends."""
    sentences = []
    for block in re.split(r"\n\s*\n", text):
        if not block.strip() or block[:1].isspace():
            continue
        lines = [line.strip() for line in block.splitlines() if not re.fullmatch(r"[*=\-~^]+", line.strip())]
        paragraph = " ".join(line for line in lines if line)
        sentences += [s for s in re.split(r"(?<=[.!?:;])\s+", paragraph) if s]
    return sentences


def long_text(topics: tuple[str, ...] = ("types", "execmodel")) -> str:
    """A long prose text for the long-input example: Python's own help on its type hierarchy and its execution
    model (``pydoc_data.topics``, no download; ~42,000 characters, ~9,000 SmolLM2 tokens with Python 3.11)."""
    from pydoc_data.topics import topics as help_topics

    return " ".join(" ".join(prose_sentences(help_topics[name])) for name in topics if name in help_topics)


#: The long example's title (picked, it fills the text; raise *Tokens to read* to read past 512).
LONG_EXAMPLE = "Long text (~9,000 tokens: Python's help on its types; raise Tokens to read)"
TEXT_EXAMPLES[LONG_EXAMPLE] = long_text()

_PHOTOS = {  # scikit-image's bundled photos: id -> (loader name, title)
    "chelsea": ("chelsea", "Chelsea the cat (photo, scikit-image)"),
    "coffee": ("coffee", "A cup of coffee (photo, scikit-image)"),
    "astronaut": ("astronaut", "Astronaut Eileen Collins (photo, scikit-image)"),
    "rocket": ("rocket", "A rocket on its launch pad (photo, scikit-image)"),
    "camera": ("camera", "The cameraman (greyscale photo, scikit-image)"),
}


@dataclass(frozen=True)
class Sample:
    """One bundled input.

    Attributes:
        id: Short stable id (the link's ``ref`` for image and audio inputs).
        modality: ``text``, ``image`` or ``audio``.
        title: Human name.
        origin: Where it comes from.
        label: The true class, when known.
        load: Returns the source for :func:`~dynmask_core.modalities.encode`.
    """

    id: str
    modality: str
    title: str
    origin: str
    load: Callable[[], Any]
    label: str | None = None

    def source(self) -> Any:
        """The source, ready for ``encode``."""
        return self.load()


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def _text(text: str) -> Callable[[], Any]:
    def load() -> Any:
        from dynmask_core.modalities import TextSource

        return TextSource(text)

    return load


def _photo(name: str) -> Callable[[], Any]:
    def load() -> Any:
        import skimage.data

        from dynmask_core.modalities import ImageSource

        return ImageSource(getattr(skimage.data, name)())

    return load


def _image_file(path: Path) -> Callable[[], Any]:
    def load() -> Any:
        from dynmask_core.modalities import ImageSource
        from dynmask_core.modalities.files import read_image

        return ImageSource(read_image(path.read_bytes(), path.name))

    return load


def _audio_file(path: Path) -> Callable[[], Any]:
    def load() -> Any:
        from dynmask_core.modalities import AudioSource
        from dynmask_core.modalities.files import read_audio

        wave, rate = read_audio(path.read_bytes(), path.name)
        return AudioSource(wave, rate)

    return load


def _from_folder(folder: Path, modality: str, origin: str) -> list[Sample]:
    """Samples listed in ``folder/samples.json`` (``[{"id", "file", "title", "label"}]``), when the folder exists."""
    index = folder / "samples.json"
    if not index.is_file():
        return []
    make = _image_file if modality == "image" else _audio_file
    return [Sample(row["id"], modality, row["title"], origin, make(folder / row["file"]), row.get("label"))
            for row in json.loads(index.read_text("utf-8"))]


_SPEECH = ("en/hello_world", "en/counting", "en/quick_brown_fox", "fr/bonjour_monde", "es/hola_mundo")


def _real_speech() -> list[Sample]:
    """Real recorded speech from the ``pytest-audioeval`` wheel (MIT), when it is installed (``scripts/dev.sh``)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("pytest-audioeval")
    except metadata.PackageNotFoundError:
        return []
    out = []
    for name in _SPEECH:
        wav = Path(str(dist.locate_file(f"pytest_audioeval/samples/audio/{name}.wav")))
        text = wav.with_suffix(".txt")
        if wav.is_file():
            said = text.read_text("utf-8").strip() if text.is_file() else name
            out.append(Sample(f"speech-{name.replace('/', '-').replace('_', '-')}", "audio",
                              f"Real speech ({name[:2]}): \"{said[:40]}\"", "pytest-audioeval (MIT)",
                              _audio_file(wav)))
    return out


def _all() -> dict[str, Sample]:
    items = [Sample(f"text-{_slug(title)}", "text", title, "written for dynmask", _text(text))
             for title, text in TEXT_EXAMPLES.items()]
    items += [Sample(sid, "image", title, "scikit-image", _photo(name)) for sid, (name, title) in _PHOTOS.items()]
    items += _from_folder(ASSETS / "samples" / "shapes", "image", "drawn by scripts/train_shapes_vit.py")
    items += _from_folder(ASSETS / "samples" / "keywords", "audio", "spoken by espeak-ng (scripts/make_keywords.py)")
    items += _real_speech()
    return {s.id: s for s in items}


SAMPLES: dict[str, Sample] = _all()


def samples(modality: str | None = None) -> list[Sample]:
    """Every bundled sample (of one modality), in a stable order."""
    return [s for s in SAMPLES.values() if modality is None or s.modality == modality]


def get_sample(sample_id: str, modality: str | None = None) -> Sample:
    """Looks a sample up by id.

    Raises:
        ValueError: an unknown id (or one of another modality), listing the known ids.
    """
    sample = SAMPLES.get(sample_id)
    if sample is None or (modality is not None and sample.modality != modality):
        known = ", ".join(s.id for s in samples(modality))
        raise ValueError(f"unknown {modality + ' ' if modality else ''}sample {shown(sample_id)}; known: {known}")
    return sample
