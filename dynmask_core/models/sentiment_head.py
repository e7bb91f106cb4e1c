"""A two-class sentiment head on top of MiniLM sentence embeddings.

The head follows the sentence-transformers recipe for all-MiniLM-L6-v2:
mean-pool the last hidden states over non-padding tokens, L2-normalise the
pooled vector, then apply a single linear layer (logistic regression).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import Tensor

HIDDEN_SIZE = 384
DEFAULT_LABELS: tuple[str, ...] = ("negative", "positive")


def mean_pool(last_hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
    """Averages token vectors over the non-padding positions.

    Args:
        last_hidden: Final hidden states, shape (B, T, D).
        attention_mask: 1 for real tokens and 0 for padding, shape (B, T).
            ``None`` means every position is a real token.

    Returns:
        The pooled sentence vectors, shape (B, D).
    """
    if attention_mask is None:
        return last_hidden.mean(dim=1)
    weights = attention_mask.to(last_hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    summed = (last_hidden * weights).sum(dim=1)  # (B, D)
    counts = weights.sum(dim=1).clamp(min=1e-9)  # (B, 1)
    return summed / counts


class SentimentHead(torch.nn.Module):
    """Mean pool, L2 normalise, then a linear layer to one logit per label.

    Attributes:
        labels: Class names in logit order, e.g. ("negative", "positive").
        linear: The classifier, ``Linear(hidden_size, len(labels))``.
    """

    def __init__(
        self,
        hidden_size: int = HIDDEN_SIZE,
        labels: tuple[str, ...] = DEFAULT_LABELS,
    ) -> None:
        """Builds an untrained head.

        Args:
            hidden_size: Width D of the encoder's hidden states.
            labels: Class names in logit order.
        """
        super().__init__()
        self.labels: tuple[str, ...] = tuple(labels)
        self.linear = torch.nn.Linear(hidden_size, len(self.labels))

    def embed(self, last_hidden: Tensor, attention_mask: Tensor | None) -> Tensor:
        """Returns the unit-length sentence embedding the classifier sees.

        Args:
            last_hidden: Final hidden states, shape (B, T, D).
            attention_mask: Padding mask, shape (B, T), or ``None``.

        Returns:
            L2-normalised pooled vectors, shape (B, D).
        """
        pooled = mean_pool(last_hidden, attention_mask)
        return torch.nn.functional.normalize(pooled, p=2.0, dim=-1)

    def forward(self, last_hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Scores each sentence.

        Args:
            last_hidden: Final hidden states, shape (B, T, D).
            attention_mask: Padding mask, shape (B, T), or ``None``.

        Returns:
            Logits, shape (B, len(labels)); softmax gives class probabilities.
        """
        return self.linear(self.embed(last_hidden, attention_mask))


def load_sentiment_head(folder: Path) -> SentimentHead:
    """Loads a trained head from ``head.safetensors`` and ``labels.json``.

    Args:
        folder: Directory holding both files.

    Returns:
        The head on CPU, in eval mode.
    """
    folder = Path(folder)
    labels = tuple(json.loads((folder / "labels.json").read_text(encoding="utf-8")))
    state = load_file(str(folder / "head.safetensors"), device="cpu")
    hidden_size = int(state["linear.weight"].shape[1])
    head = SentimentHead(hidden_size=hidden_size, labels=labels)
    head.load_state_dict(state)
    return head.eval()
