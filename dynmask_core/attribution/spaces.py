"""Where an attribution lives for each input kind, and how it is summed back to the model's positions.

- text: the input *embeddings* ``(1, T, D)`` (the word embeddings; position embeddings are added inside the model).
  The model is called with ``inputs_embeds``, which is exactly integrated gradients on the embedding layer
  (Captum's ``LayerIntegratedGradients``) without a hook on the layer: the model is shared by every session of the
  server, and a hook would reach into the others' runs. Baseline: the embeddings of the padding token (special
  tokens kept), one position per token.
- image: ``pixel_values`` ``(1, C, H, W)``; baseline all 0 (the processor's mean colour). A position (patch) gets the
  sum over its pixels; a per-pixel map (channels summed) is kept for the overlay.
- audio: the model's input features: an AST log-mel spectrogram ``(1, frames, mel bins)`` or a waveform
  ``(1, samples)``; baseline 0. A position gets the sum over the cells it covers (a spectrogram cell goes to the
  patch whose stride window holds it, so every cell is counted once); a per-frame curve (mel bins summed) is kept.

Additive methods (IG, input x gradient, saliency) SUM over a position's cells; occlusion, whose every cell carries the
change of the whole window, takes their MEAN. Prefix tokens (CLS, distillation) have no input cells and get 0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

ID_KEYS = ("input_ids",)


@dataclass
class Space:
    """The tensor an attribution method perturbs, its baseline, and the way back to positions.

    Attributes:
        key: The model keyword the tensor goes to (``inputs_embeds``, ``pixel_values``, ``input_values``).
        value: ``(1, ...)`` the input.
        baseline: ``(1, ...)`` the reference input ("nothing").
        rest: The other model inputs (batch 1; expanded to the batch size at each call).
        owner: ``(cells...)`` long, the position each cell (everything after the batch and, for text, the last
            dimension) belongs to; -1 = none.
        n_positions: Number of positions (prefix included).
        window: Occlusion window (one position, or one patch / time slice), without the batch dimension.
        kind: The input kind.
        cell_axes: Axes of an attribution ``(1, ...)`` summed away to reach ``owner``'s shape.
        map_axes: Axes summed away for the overlay map (pixels ``(H, W)``; frames ``(T,)``), or None for text.
    """

    key: str
    value: Tensor
    baseline: Tensor
    rest: dict[str, Tensor]
    owner: Tensor
    n_positions: int
    window: tuple[int, ...]
    kind: str
    cell_axes: tuple[int, ...] = ()
    map_axes: tuple[int, ...] | None = None
    notes: list[str] = field(default_factory=list)

    def inputs(self, x: Tensor) -> dict[str, Tensor]:
        """Model keyword inputs with ``x`` (a batch of B) in place of the input; the rest expanded to B."""
        b = x.shape[0]
        out = {k: (v.expand(b, *v.shape[1:]) if v.shape[0] == 1 and b > 1 else v) for k, v in self.rest.items()}
        out[self.key] = x
        return out

    def positions(self, attr: Tensor, reduce: str = "sum", owner: Tensor | None = None) -> np.ndarray:
        """``(T,)`` float64: an attribution ``(1, ...)`` summed (or averaged) over each position's cells."""
        cells = attr[0].detach().double()
        if self.cell_axes:
            cells = cells.sum(dim=self.cell_axes) if reduce == "sum" else cells.mean(dim=self.cell_axes)
        owner = (self.owner if owner is None else owner).to(cells.device).reshape(-1)
        flat = cells.reshape(-1)
        keep = owner >= 0
        total = torch.zeros(self.n_positions, dtype=torch.float64, device=cells.device)
        total.index_add_(0, owner[keep], flat[keep])
        if reduce == "mean":
            count = torch.zeros(self.n_positions, dtype=torch.float64, device=cells.device)
            count.index_add_(0, owner[keep], torch.ones_like(flat[keep]))
            total = torch.where(count > 0, total / count.clamp(min=1), total)
        return total.cpu().numpy()

    def covered_owner(self) -> Tensor:
        """``owner`` with the cells no occlusion window reaches set to -1 (windows tile from the start; a
        remainder shorter than a window is never occluded, so it must not dilute a position's mean)."""
        dims = self.value.dim() - 1
        summed = {a % dims for a in self.cell_axes}
        window = [self.window[i] for i in range(dims) if i not in summed]  # the window along the owner's axes
        shape = self.owner.shape
        keep = torch.ones(shape, dtype=torch.bool)
        for i, (n, w) in enumerate(zip(shape, window)):
            idx = torch.arange(n).view([-1 if j == i else 1 for j in range(len(shape))])
            keep &= idx < (n // w) * w
        return torch.where(keep, self.owner, torch.full_like(self.owner, -1))

    def overlay(self, attr: Tensor, reduce: str = "sum") -> np.ndarray | None:
        """The map drawn on the input: pixels ``(H, W)`` or frames ``(T,)``; None for text."""
        if self.map_axes is None:
            return None
        cells = attr[0].detach().double()
        cells = cells.sum(dim=self.map_axes) if reduce == "sum" else cells.mean(dim=self.map_axes)
        return cells.cpu().numpy()


def space_of(loaded: Any, prepared: Any, inputs: Mapping[str, Tensor]) -> Space:
    """The attribution space of ``prepared`` (its model inputs given as ``inputs``, e.g. after input masking).

    Raises:
        ValueError: an input the attribution methods cannot perturb.
    """
    if prepared.kind == "text":
        return _text(loaded, prepared, inputs)
    if prepared.kind == "image":
        return _image(loaded, prepared, inputs)
    if prepared.kind == "audio":
        return _audio(loaded, prepared, inputs)
    raise ValueError(f"attribution does not know {prepared.kind} inputs")


def baseline_token_id(tokenizer: Any) -> int:
    """The token that stands for "no word": padding, else unknown, else end of sequence, else 0."""
    for name in ("pad_token_id", "unk_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def _text(loaded: Any, prepared: Any, inputs: Mapping[str, Tensor]) -> Space:
    ids = inputs["input_ids"]
    embed = loaded.model.get_input_embeddings()
    tok = loaded.tokenizer
    special = set(getattr(tok, "all_special_ids", []) or [])
    base_ids = ids.clone()
    fill = baseline_token_id(tok)
    for i, t in enumerate(ids[0].tolist()):
        if t not in special:
            base_ids[0, i] = fill
    with torch.no_grad():
        value, baseline = embed(ids).detach(), embed(base_ids).detach()
    rest = {k: v for k, v in inputs.items() if k not in ID_KEYS}
    t = ids.shape[1]
    return Space("inputs_embeds", value, baseline, rest, torch.arange(t), t, (1, value.shape[-1]), "text",
                 cell_axes=(-1,))


def _image(loaded: Any, prepared: Any, inputs: Mapping[str, Tensor]) -> Space:
    pixels = inputs["pixel_values"]
    _, c, h, w = pixels.shape
    rows, cols = prepared.geometry.grid
    prefix = int(prepared.geometry.prefix)
    ph, pw = h // rows, w // cols
    r = torch.clamp(torch.arange(h) // ph, max=rows - 1).view(-1, 1)
    col = torch.clamp(torch.arange(w) // pw, max=cols - 1).view(1, -1)
    owner = prefix + r * cols + col  # (H, W)
    owner = torch.where((torch.arange(h).view(-1, 1) < rows * ph) & (torch.arange(w).view(1, -1) < cols * pw),
                        owner, torch.full_like(owner, -1))
    rest = {k: v for k, v in inputs.items() if k != "pixel_values"}
    return Space("pixel_values", pixels.detach(), torch.zeros_like(pixels), rest, owner, len(prepared.labels),
                 (c, ph, pw), "image", cell_axes=(0,), map_axes=(0,))


def _audio(loaded: Any, prepared: Any, inputs: Mapping[str, Tensor]) -> Space:
    key = "input_values" if "input_values" in inputs else "input_features"
    values = inputs[key]
    rest = {k: v for k, v in inputs.items() if k != key}
    geometry = prepared.geometry
    prefix = int(geometry.prefix)
    n_positions = len(prepared.labels)
    if values.dim() == 3 and geometry.grid is not None:  # AST: (1, frames, mel bins), patches over both
        cfg = loaded.model.config
        rows, cols = geometry.grid
        frames, bins = values.shape[1], values.shape[2]
        ts, fs = int(cfg.time_stride), int(cfg.frequency_stride)
        t_col = torch.clamp(torch.arange(frames) // ts, max=cols - 1).view(-1, 1)
        f_row = torch.clamp(torch.arange(bins) // fs, max=rows - 1).view(1, -1)
        owner = prefix + f_row * cols + t_col  # (frames, bins)
        return Space(key, values.detach(), torch.zeros_like(values), rest, owner, n_positions, (ts, bins),
                     "audio", map_axes=(1,))
    if values.dim() == 2:  # a waveform (Wav2Vec2, HuBERT): samples -> frames
        samples = values.shape[1]
        frames = max(1, n_positions - prefix)
        per = max(1, samples // frames)
        owner = prefix + torch.clamp(torch.arange(samples) // per, max=frames - 1)
        space = Space(key, values.detach(), torch.zeros_like(values), rest, owner, n_positions, (per,), "audio",
                      map_axes=None)
        return space
    raise ValueError(f"attribution does not know audio features shaped {tuple(values.shape)}")
