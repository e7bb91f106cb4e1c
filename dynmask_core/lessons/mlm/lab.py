"""The lab: a tiny BERT trained from scratch twice, once per masking recipe, on Python's own help texts.

:func:`run_lab` trains on segments of ``pydoc_data.topics`` (:func:`build_corpus`) with the static and with the
dynamic recipe under the same seed, initial weights, batch order, dropout and budget, and scores both on the same
fixed masking of a held-out set; :func:`train_recipe` is one of the two runs. ``python -m dynmask_core mlm-lab``
writes the result as ``metrics.json`` (:mod:`dynmask_core.lessons.mlm.runs`). Plain torch + transformers; the GPU
is used when present.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch

from dynmask_core.lessons.mlm.masking import (
    CODE_NONE,
    RECIPES,
    check_recipe,
    check_seed,
    derive_seed,
    draw_batch,
    load_tokenizer,
)
from dynmask_core.lessons.mlm.runs import LabConfig, LabResult, RecipeRun
from dynmask_core.samples import prose_sentences

Progress = Callable[[float, str], None]
"""``progress(fraction, text)``: fraction in [0, 1]; it may raise to cancel the run (the exception propagates)."""
Observer = Callable[[str, list, list], None]  # (recipe, step records, evaluation records): live charts


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
    check_seed(data_seed, "data_seed")
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
# Training: a tiny BERT per recipe


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
    return ids.masked_fill(codes == CODE_NONE, -100)


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
            are shared, so a second thread slows a step down there instead of speeding it up.
        observe: Called as ``observe(recipe, steps, evals)`` after each held-out evaluation, with the records so
            far (live charts); may raise to cancel.

    Returns:
        The :class:`RecipeRun`.
    """
    check_recipe(recipe)
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
        config: Default :class:`LabConfig()` (about 3 minutes for both on a 2-core CPU: 180 s measured).
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
