"""Text input: tokens, readable token labels, and sentence segments (for the ``document`` strategy)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dynmask_core.modalities.base import Modality, Prepared, register_modality

MAX_CHARS = 64_000  # longer text is cut before tokenising (then to the token limit): ~8k tokens of prose
_SENTENCE_END = (".", "!", "?", "。", "！", "？")
_MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")

TextInput = Prepared  # the text adapter's result (name kept for callers)


@dataclass(frozen=True)
class TextSource:
    """A text to tokenise; ``max_tokens`` cuts it (default: the model's ``max_tokens``; at most its ``context``)."""

    text: str
    max_tokens: int | None = None
    kind: str = field(default="text", init=False)


def prepare_text(loaded: Any, source: TextSource) -> Prepared:
    """Tokenises a text for ``loaded``; called by :func:`~dynmask_core.modalities.encode` under the model's lock.

    Raises:
        ValueError: empty text, a bad ``max_tokens``, or a model without a tokenizer.
    """
    tok = loaded.tokenizer
    if tok is None:
        raise ValueError(f"{loaded.id} has no tokenizer: it does not take text input.")
    text = (source.text or "").strip()
    if not text:
        raise ValueError("The text is empty: type a sentence (or pick an example).")
    max_tokens = source.max_tokens
    if max_tokens is not None and int(max_tokens) < 1:
        raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
    # the default cut is the model's max_tokens (512); asked for, up to the model's own context
    context = int(getattr(loaded, "context", 0) or loaded.max_tokens)
    limit = loaded.max_tokens if max_tokens is None else min(int(max_tokens), max(context, loaded.max_tokens))
    full = tok(text[:MAX_CHARS], return_tensors="pt", truncation=False)
    n_before = int(full["input_ids"].shape[1])
    enc = tok(text[:MAX_CHARS], return_tensors="pt", truncation=True, max_length=limit) if n_before > limit else full
    ids = enc["input_ids"][0].tolist()
    if not ids:
        raise ValueError("The text produced no tokens: type some words.")
    labels = token_labels(tok, ids)
    inputs = {k: v.to(loaded.device) for k, v in enc.items() if k in _MODEL_KEYS}
    truncated = len(ids) < n_before or len(text) > MAX_CHARS
    return Prepared("text", inputs, labels, sentence_segments(labels), truncated=truncated, n_before=n_before)


register_modality(Modality("text", prepare_text, ("input_ids",), "AutoTokenizer"))


def encode_text(loaded: Any, text: str, max_tokens: int | None = None) -> Prepared:
    """Tokenises ``text`` for ``loaded`` (shorthand for ``encode(loaded, TextSource(text, max_tokens))``).

    Raises:
        ValueError: empty text, or a model without a tokenizer.
    """
    from dynmask_core.modalities.base import encode

    return encode(loaded, TextSource(text, max_tokens))


def count_tokens(loaded: Any, text: str) -> int:
    """How many tokens ``loaded``'s tokenizer makes of ``text`` (stripped, cut to ``MAX_CHARS``), special tokens
    included: :func:`prepare_text`'s count before the token limit (``Prepared.n_before``); 0 for empty text.

    Raises:
        ValueError: a model without a tokenizer.
    """
    tok = loaded.tokenizer
    if tok is None:
        raise ValueError(f"{loaded.id} has no tokenizer: it does not take text input.")
    text = (text or "").strip()
    if not text:
        return 0
    with loaded.processor_lock:
        return len(tok(text[:MAX_CHARS], truncation=False)["input_ids"])


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
