"""Where an attribution lives for an input (:class:`Space`), and how it is summed back to the model's positions.

Each input kind's modality says what its attribution perturbs (its ``space``, in its module under
:mod:`dynmask_core.modalities`): text its input *embeddings* (the model is called with ``inputs_embeds``, baseline
the padding token's), images ``pixel_values`` (baseline 0; a per-pixel map is kept for the overlay), audio its input
features (an AST spectrogram or a waveform; baseline 0; a per-frame curve for spectrograms). Each gives a
:class:`Space`: the tensor, its baseline, and which position each cell belongs to.

Additive methods (IG, input x gradient, saliency) SUM over a position's cells; occlusion, whose every cell carries the
change of the whole window, takes their MEAN. Prefix tokens (CLS, distillation) have no input cells and get 0.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
from torch import Tensor


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
