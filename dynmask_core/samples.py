"""Bundled sample inputs, by id: shared in links (``input=image&ref=chelsea``) and listed by ``samples [--json]``.

Each modality lists its own (its ``samples``): text: short sentences (and one long enough for the 128+ token views),
also the app's example picker; images: real photos that ship with scikit-image, and pictures from the bundled shape
model's own domain; audio: spoken keywords from the bundled keyword model's held-out voices. Here they are gathered,
kind by kind, and looked up.
"""

from __future__ import annotations

from functools import cache

from dynmask_core.messages import shown
from dynmask_core.modalities import Modality, Sample, modalities
from dynmask_core.modalities.base import ASSETS, suits
from dynmask_core.modalities.text import DEFAULT_TEXT, LONG_EXAMPLE, TEXT_EXAMPLES, long_text, prose_sentences

UPLOAD_PREFIX = "upload:"  # an input named by its content hash (an upload, a file): no link can carry it

__all__ = [
    "ASSETS", "DEFAULT_TEXT", "LONG_EXAMPLE", "SAMPLES", "TEXT_EXAMPLES", "UPLOAD_PREFIX", "Sample", "get_sample",
    "long_text", "prose_sentences", "samples", "samples_for", "suits",
]


@cache
def _listed(modality: Modality) -> tuple[Sample, ...]:
    """A modality's samples, found once."""
    return tuple(modality.samples())


def _all() -> dict[str, Sample]:
    """Every registered kind's samples by id, kind by kind."""
    return {s.id: s for m in modalities() for s in _listed(m)}


SAMPLES: dict[str, Sample] = _all()  # the kinds registered when the core is imported


def samples(modality: str | None = None) -> list[Sample]:
    """Every bundled sample (of one modality), in a stable order."""
    return [s for s in _all().values() if modality is None or s.modality == modality]


def samples_for(modality: str, model: str | None) -> list[Sample]:
    """The samples of ``modality`` worth offering with ``model`` (see :func:`suits`): a bundled model made for some of
    them (the shapes ViTs) gets only those, in the usual order; any other model gets them all."""
    family = samples(modality)
    return [s for s in family if suits(s, model, family)]


def get_sample(sample_id: str, modality: str | None = None) -> Sample:
    """Looks a sample up by id.

    Raises:
        ValueError: an unknown id (or one of another modality), listing the known ids.
    """
    sample = _all().get(sample_id)
    if sample is None or (modality is not None and sample.modality != modality):
        known = ", ".join(s.id for s in samples(modality))
        raise ValueError(f"unknown {modality + ' ' if modality else ''}sample {shown(sample_id)}; known: {known}")
    return sample
