"""Strategies as code you can paste: the pieces each registry entry's ``code`` template returns.

Every registered :class:`~dynmask_core.masks.base.Strategy` has a ``code(params, ctx) -> CodePiece`` template: the
Python source of that strategy with its parameters (and, where the strategy depends on the run, the run's seed, its
patch grid, its segments, its length) baked in as literals. :mod:`dynmask_core.mask_code` assembles the pieces of a
plan into one self-contained file (only ``torch``, ``transformers``, ``numpy`` and the standard library).

A piece is one of four kinds:

- ``index``: ``def NAME(b, h, q_idx, kv_idx) -> bool tensor``, a FlexAttention ``mask_mod`` (tensor ops only, so it
  runs under ``vmap`` and in ``create_block_mask``). With ``per_layer``, ``NAME(layer)`` returns the layer's function.
- ``soft``: ``def NAME(score, b, h, q_idx, kv_idx) -> score``, a FlexAttention ``score_mod`` adding a bias; it blocks
  nothing (ALiBi).
- ``scores``: ``def NAME(scores, allowed, query, key, layer, state) -> (allowed, bias)``: the mask from this layer's
  scaled scores ``(B, H, Q, K)`` (no mask added), the keys already allowed ``(B|1, 1|H, Q, K)`` (the model's own mask,
  narrowed by the ``and`` terms before it), the queries and keys ``(B, H, Q|K, D)``, the layer (call order) and a dict
  that lives for one forward pass. ``bias`` is an additive float tensor or None.
- ``input``: ``def NAME(inputs, model) -> inputs``: the strategy hides part of the input itself (pixels, spectrogram
  bands, frame spans) and masks no attention.

The helpers a piece names (:data:`HELPERS`) are written once into the file; the templates mirror the library's own
functions operation for operation, and ``tests/core/test_mask_code.py`` runs every one against the engine.
"""

from __future__ import annotations

import inspect
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

PieceKind = Literal["index", "soft", "scores", "input"]


@dataclass(frozen=True)
class CodeContext:
    """What a template may bake in besides its parameters: the run's sizes, seed and input geometry.

    Attributes:
        n_heads: Query heads per layer.
        q_len: Queries of the run (its positions).
        k_len: Keys of the run.
        seed: The run's seed (dynamic strategies draw from it, and only from it).
        grid: ``(rows, cols)`` of the image's patches, or None.
        prefix: Positions before the first patch or frame (CLS).
        segment_ids: Segment of each position (the ``document`` strategy), or None (one segment).
        key_padding: Per key, True = a real token, when the run's input had padding; None = no padding.
        frames: Audio frames of a frame model (``w2v2_spans``), or None.
        suffix: Appended to every name the piece defines (``""``, or ``_2`` for a strategy's second term in a chain).
    """

    n_heads: int
    q_len: int
    k_len: int
    seed: int = 0
    grid: tuple[int, int] | None = None
    prefix: int = 0
    segment_ids: tuple[int, ...] | None = None
    key_padding: tuple[bool, ...] | None = None
    frames: int | None = None
    suffix: str = ""


@dataclass(frozen=True)
class CodePiece:
    """The source of one strategy term, parameters baked in.

    Attributes:
        kind: ``index``, ``soft``, ``scores`` or ``input`` (see the module docstring).
        name: The function the source defines (the generated file calls it).
        source: Python source defining ``name`` (and the module-level constants in ``constants``).
        per_layer: ``name(layer)`` returns that layer's function (the mask differs from layer to layer).
        helpers: Names of :data:`HELPERS` the source calls.
        constants: Module-level tensors the source defines (moved with the file's ``to_device``).
        gate: For ``index`` pieces that switch heads off: a function ``gate(layer, n_heads) -> (1, H, 1, 1)`` float
            multiplying each head's weights after the softmax, or None.
        needs_qk: The piece reads the layer's queries and keys (not only the scores).
        flex: Whether FlexAttention can run it block-sparse, and why not when it cannot (one sentence).
    """

    kind: PieceKind
    name: str
    source: str
    per_layer: bool = False
    helpers: tuple[str, ...] = ()
    constants: tuple[str, ...] = ()
    gate: str | None = None
    needs_qk: bool = False
    flex: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "source", textwrap.dedent(self.source).strip("\n") + "\n")


# ----------------------------------------------------------------------------------------------------------------
# Literals
# ----------------------------------------------------------------------------------------------------------------


def lit(value: Any) -> str:
    """A Python literal that reads back to exactly ``value`` (floats by ``repr``: they round-trip)."""
    if isinstance(value, bool) or value is None:
        return repr(value)
    if isinstance(value, float):
        if math.isinf(value) or math.isnan(value):
            raise ValueError(f"no literal for {value!r}")
        return repr(value)
    if isinstance(value, (int, str)):
        return repr(value)
    if isinstance(value, (tuple, list)):
        inner = ", ".join(lit(v) for v in value)
        return f"({inner},)" if isinstance(value, tuple) and len(value) == 1 else (
            f"({inner})" if isinstance(value, tuple) else f"[{inner}]")
    raise TypeError(f"no literal for {type(value).__name__}")


def ident(text: str) -> str:
    """A readable identifier from a label: ``threshold_tau0.05`` -> ``threshold_tau0_05``."""
    out = re.sub(r"[^0-9A-Za-z_]+", "_", str(text)).strip("_")
    return out if out and not out[0].isdigit() else f"m_{out}"


def num(value: float) -> str:
    """A float for a function name: ``0.3`` -> ``0_3``."""
    return re.sub(r"[^0-9A-Za-z]+", "_", f"{value:g}")


def bool_rows(matrix: Sequence[Sequence[Any]], indent: int = 4) -> str:
    """A 0/1 matrix as a literal list of rows, one row per line."""
    pad = " " * indent
    return "[\n" + "".join(f"{pad}[{', '.join('1' if v else '0' for v in row)}],\n" for row in matrix) + "]"


def wrapped_list(values: Sequence[Any], indent: int = 4, width: int = 110) -> str:
    """A literal list, wrapped to ``width`` columns."""
    body = textwrap.fill(", ".join(lit(v) for v in values), width=width - indent, initial_indent=" " * indent,
                         subsequent_indent=" " * indent, break_on_hyphens=False, break_long_words=False)
    return "[\n" + body + ",\n]" if values else "[]"


# ----------------------------------------------------------------------------------------------------------------
# Helpers shared by pieces (written once into the generated file)
# ----------------------------------------------------------------------------------------------------------------

_HELPER_SOURCE: dict[str, str] = {
    "masked_scores": '''
        def masked_scores(scores, allowed):
            """Scores (float32) with the keys that are not allowed at float32's minimum, and the allowed mask, both
            (B, H, Q, K)."""
            scores = scores.float()
            allowed = allowed.expand_as(scores)
            return scores.masked_fill(~allowed, torch.finfo(torch.float32).min), allowed
    ''',
    "unmasked_probs": '''
        def unmasked_probs(scores, allowed):
            """Softmax of the scores under the allowed keys only: what this layer attends to without the strategy."""
            scores, allowed = masked_scores(scores, allowed)
            return torch.softmax(scores, dim=-1) * allowed, allowed
    ''',
    "diagonal": '''
        def diagonal(q_len, k_len, device):
            """(Q, K) bool: each query's own key position (the queries are the last q_len of the keys)."""
            q = torch.arange(q_len, device=device).view(-1, 1) + (k_len - q_len)
            k = torch.arange(k_len, device=device).view(1, -1)
            return q == k
    ''',
    "generator": '''
        def generator(layer, salt):
            """The random generator of one layer, drawn from the run's seed (the same seed gives the same mask)."""
            gen = torch.Generator(device="cpu")
            gen.manual_seed((SEED * 1_000_003 + layer * 7919 + salt) % (2**63 - 1))
            return gen
    ''',
    "key_salience": '''
        def key_salience(scores, allowed):
            """(B, H, 1, K) float in (0, 1]: the attention each key receives in the unmasked layer, averaged over the
            queries, divided by the row's maximum."""
            probs, allowed = unmasked_probs(scores, allowed)
            received = probs.sum(dim=-2, keepdim=True) / allowed.sum(dim=-2, keepdim=True).clamp(min=1)
            return received / received.amax(dim=-1, keepdim=True).clamp(min=1e-12)
    ''',
    "top_keys": '''
        def top_keys(weights, keep, alive=None):
            """(B, H|1, 1, K) bool: the ceil(keep * n_alive) alive keys with the largest weight (ties: the first)."""
            if alive is None:
                alive = torch.ones_like(weights, dtype=torch.bool)
            n_keep = torch.ceil(keep * alive.sum(dim=-1, keepdim=True).double() - 1e-9).long().clamp(min=1)
            order = weights.masked_fill(~alive, float("-inf")).argsort(dim=-1, descending=True, stable=True)
            positions = torch.arange(weights.shape[-1], device=weights.device).expand_as(order)
            rank = torch.empty_like(order).scatter_(-1, order, positions)
            return (rank < n_keep) & alive
    ''',
    "rows": '''
        def rows(keys, q_len, k_len):
            """A per-key choice (..., 1, K) for every query row, each query keeping its own position."""
            return keys.expand(*keys.shape[:-2], q_len, k_len) | diagonal(q_len, k_len, keys.device)
    ''',
    "hide_pixels": '''
        def hide_pixels(inputs, hidden_patches):
            """Pixel values with the hidden (rows, cols) patches set to 0 (the normalised mean)."""
            pixels = inputs["pixel_values"].clone()  # (1, C, H, W)
            rows, cols = hidden_patches.shape
            ph, pw = pixels.shape[-2] // rows, pixels.shape[-1] // cols
            cover = hidden_patches.repeat_interleave(ph, 0).repeat_interleave(pw, 1).to(pixels.device)
            pixels[..., : rows * ph, : cols * pw] = pixels[..., : rows * ph, : cols * pw].masked_fill(cover, 0.0)
            return {**inputs, "pixel_values": pixels}
    ''',
    "input_generator": '''
        def input_generator(salt):
            """The random generator of an input-hiding strategy, drawn from the run's seed."""
            return torch.Generator().manual_seed((SEED * 1_000_003 + salt) % (2**63 - 1))
    ''',
}
#: Helpers that call other helpers (written before them).
_HELPER_NEEDS: dict[str, tuple[str, ...]] = {
    "unmasked_probs": ("masked_scores",),
    "key_salience": ("unmasked_probs",),
    "rows": ("diagonal",),
}


def helper_source(name: str) -> str:
    """The source of one helper (``index_hash`` is the library's own function, copied)."""
    if name == "index_hash":
        from dynmask_core.masks.base import index_hash

        return inspect.getsource(index_hash)
    return textwrap.dedent(_HELPER_SOURCE[name]).strip("\n") + "\n"


def helpers_for(names: Sequence[str]) -> list[str]:
    """``names`` and the helpers they call, each once, dependencies first."""
    out: list[str] = []

    def add(name: str) -> None:
        for dep in _HELPER_NEEDS.get(name, ()):
            add(dep)
        if name not in out:
            out.append(name)

    for name in names:
        add(name)
    return out


#: FlexAttention notes shared by several pieces.
FLEX_SCORES = ("No: the mask depends on this layer's scores, which must be computed in full before the mask is "
               "known; a BlockMask could only be built afterwards from the dense mask, and nothing is skipped.")
FLEX_STATIC = "Yes: a pure index function; create_block_mask skips every tile it leaves empty."
