"""Text input: tokens, readable token labels, and sentence segments (for the ``document`` strategy); the bundled
example texts; the attribution space of a text (its input embeddings).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from dynmask_core.modalities.base import Modality, Prepared, Sample, encode, register_modality
from dynmask_core.modalities.space import Space

MAX_CHARS = 64_000  # longer text is cut before tokenising (then to the token limit): ~8k tokens of prose
_SENTENCE_END = (".", "!", "?", "。", "！", "？")
_MODEL_KEYS = ("input_ids", "attention_mask", "token_type_ids")



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


def encode_text(loaded: Any, text: str, max_tokens: int | None = None) -> Prepared:
    """Tokenises ``text`` for ``loaded`` (shorthand for ``encode(loaded, TextSource(text, max_tokens))``).

    Raises:
        ValueError: empty text, or a model without a tokenizer.
    """
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


# --- bundled examples ---------------------------------------------------------------------------------------------

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


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:40]


def bundled_texts() -> list[Sample]:
    """The example texts as samples (``text-<slug of the title>``); a recipe carries the text itself."""
    return [Sample(f"text-{_slug(title)}", "text", title, "written for dynmask", lambda text=text: TextSource(text),
                   inline=text)
            for title, text in TEXT_EXAMPLES.items()]


# --- attribution --------------------------------------------------------------------------------------------------

ID_KEYS = ("input_ids",)


def baseline_token_id(tokenizer: Any) -> int:
    """The token that stands for "no word": padding, else unknown, else end of sequence, else 0."""
    for name in ("pad_token_id", "unk_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if value is not None:
            return int(value)
    return 0


def text_space(loaded: Any, prepared: Prepared, inputs: Mapping[str, Tensor]) -> Space:
    """The input *embeddings* ``(1, T, D)`` (the word embeddings; position embeddings are added inside the model).
    The model is called with ``inputs_embeds``, which is exactly integrated gradients on the embedding layer
    (Captum's ``LayerIntegratedGradients``) without a hook on the layer: the model is shared by every session of the
    server, and a hook would reach into the others' runs. Baseline: the embeddings of the padding token (special
    tokens kept), one position per token."""

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


register_modality(Modality(
    "text", prepare_text, ("input_ids",), "AutoTokenizer", TextSource,
    label="Text", noun="text", plural="texts",
    cli_flag="--text", cli_help="the input sentence(s)", inline=True,
    samples=bundled_texts, space=text_space, order=0))
