"""Text input: tokens, readable token labels, and sentence segments (for the ``document`` strategy)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

MAX_CHARS = 20_000  # longer text is cut before tokenising (then to the model's token limit)
_SENTENCE_END = (".", "!", "?", "。", "！", "？")


@dataclass
class TextInput:
    """A tokenised text ready for the engine.

    Attributes:
        inputs: Model keyword tensors (``input_ids``, ``attention_mask``), batch of 1, on the model's device.
        tokens: One readable label per position.
        segment_ids: ``(T,)`` sentence index of each position.
        truncated: True when the text was cut to fit ``max_tokens``.
        n_tokens_before: Token count before truncation.
    """

    inputs: dict[str, Tensor]
    tokens: list[str]
    segment_ids: Tensor
    truncated: bool
    n_tokens_before: int


def encode_text(loaded: Any, text: str, max_tokens: int | None = None) -> TextInput:
    """Tokenises ``text`` for ``loaded`` (a :class:`~dynmask_core.models.LoadedModel`).

    Raises:
        ValueError: empty text, or a model without a tokenizer.
    """
    if loaded.tokenizer is None:
        raise ValueError(f"{loaded.id} has no tokenizer: it does not take text input.")
    text = (text or "").strip()
    if not text:
        raise ValueError("The text is empty: type a sentence (or pick an example).")
    if max_tokens is not None and int(max_tokens) < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    limit = loaded.max_tokens if max_tokens is None else min(int(max_tokens), int(loaded.max_tokens))
    tok = loaded.tokenizer
    full = tok(text[:MAX_CHARS], return_tensors="pt", truncation=False)
    n_before = int(full["input_ids"].shape[1])
    enc = tok(text[:MAX_CHARS], return_tensors="pt", truncation=True, max_length=limit) if n_before > limit else full
    ids = enc["input_ids"][0].tolist()
    if not ids:
        raise ValueError("The text produced no tokens: type some words.")
    labels = token_labels(tok, ids)
    inputs = {k: v.to(loaded.device) for k, v in enc.items() if k in ("input_ids", "attention_mask", "token_type_ids")}
    truncated = len(ids) < n_before or len(text) > MAX_CHARS
    return TextInput(inputs, labels, sentence_segments(labels), truncated, n_before)


def token_labels(tokenizer: Any, ids: list[int]) -> list[str]:
    """Readable labels: WordPiece tokens as they are, byte-level BPE decoded (a leading space shown as ``▁``)."""
    raw = tokenizer.convert_ids_to_tokens(ids)
    if any(t.startswith("Ġ") or t.startswith("Ċ") for t in raw):
        out = []
        for i in ids:
            piece = tokenizer.decode([i])
            out.append(("▁" + piece[1:]) if piece.startswith(" ") else (piece or "∅"))
        return [p.replace("\n", "⏎") for p in out]
    return [str(t) for t in raw]


def sentence_segments(labels: list[str]) -> Tensor:
    """``(T,)`` sentence index per token: a new sentence starts after a token that ends one."""
    seg, current = [], 0
    for label in labels:
        seg.append(current)
        if label.strip().endswith(_SENTENCE_END):
            current += 1
    # special tokens after the last full stop ([SEP], </s>) belong to the last sentence, not to one of their own
    tail = [i for i, s in enumerate(seg) if s == current]
    if current > 0 and tail and all(_is_special(labels[i]) for i in tail):
        for i in tail:
            seg[i] = current - 1
    return torch.tensor(seg, dtype=torch.long)


def _is_special(label: str) -> bool:
    return (label.startswith("[") and label.endswith("]")) or (label.startswith("<") and label.endswith(">"))
