"""The attribution space of a prepared input: its modality's ``space`` builder gives the tensor an attribution method
perturbs, its baseline and the way back to positions (:class:`~dynmask_core.modalities.space.Space`, defined with
the modalities, which build it).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import Tensor

from dynmask_core.modalities.base import modality
from dynmask_core.modalities.space import Space

__all__ = ["Space", "space_of"]


def space_of(loaded: Any, prepared: Any, inputs: Mapping[str, Tensor]) -> Space:
    """The attribution space of ``prepared`` (its model inputs given as ``inputs``, e.g. after input masking), as its
    kind's modality builds it.

    Raises:
        ValueError: an input the attribution methods cannot perturb.
    """
    build = modality(prepared.kind).space
    if build is None:
        raise ValueError(f"attribution does not know {prepared.kind} inputs")
    return build(loaded, prepared, inputs)
