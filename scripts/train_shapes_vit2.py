"""Trains the shapes ViT v2: the six shapes drawn any way, tested on a second generator written apart.

Run from the repository root:

    .venv/bin/python scripts/train_shapes_vit2.py

Training pictures come from ``scripts/shapes_varied.py`` (numpy, many sizes, styles, colours, backgrounds, hand-drawn
wobble, photo-like noise, blur and JPEG; see its docstring for the class definitions). The honest test is
``scripts/shapes_heldout.py``: PIL ``ImageDraw`` at 128 px, its own randomness and backgrounds, sharing no code with
the training generator. The model is evaluated on it, on the first model's own held-out set
(``scripts/train_shapes_vit.py``), and on pictures of the training generator drawn with another seed.

The classifier is a ``transformers.ViTForImageClassification`` like the first version (32 x 32 input, patch 4, width
64, the same labels in the same order), two layers deeper. It starts from the first model's weights (its four layers,
embeddings and classifier; the two new layers start as identities), which the first version's script trained in this
repository: from random weights the varied task was learned far too slowly for the time budget (see ``ATTEMPTS``).
Preprocessing is what the saved ``ViTImageProcessor`` does: resize to 32 x 32 (bilinear), scale to [0, 1], normalise
with mean 0.5 / std 0.5.

It writes the model, processor and ``CARD.md`` to ``assets/models/shapes-vit-v2/`` and sample pictures from the
held-out generator to ``assets/samples/shapes-v2/``. The first model (``assets/models/shapes-vit/``) and its samples
are not touched. One CPU thread, fixed seeds.
"""

from __future__ import annotations

import time

_T0 = time.perf_counter()  # before the heavy imports, so the reported time covers them

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import os  # noqa: E402
import random  # noqa: E402
import sys  # noqa: E402
from dataclasses import dataclass, field  # noqa: E402
from pathlib import Path  # noqa: E402

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
import shapes_heldout  # noqa: E402
import shapes_varied  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402
from torch import Tensor  # noqa: E402
from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
MODEL_OUT = REPO / "assets" / "models" / "shapes-vit-v2"
SAMPLES_OUT = REPO / "assets" / "samples" / "shapes-v2"
V1_DIR = REPO / "assets" / "models" / "shapes-vit"  # the first model: read only, its weights start this one

CLASSES = shapes_varied.CLASSES
assert CLASSES == shapes_heldout.CLASSES == ("circle", "square", "triangle", "cross", "ring", "star")
IMAGE_SIZE = 32
PATCH_SIZE = 4
HIDDEN = 64  # the first model's width: its weights start this one
LAYERS = 6  # its 4 layers, then 2 new ones
HEADS = 4
MLP = 128

TRAIN_SEED = 10
VARIED_TEST_SEED = 11  # the training generator, another seed: how well it learned its own distribution
HELDOUT_SEED = 1  # the independent generator: the card's numbers (the tests use another seed)
TESTS_SEED, TESTS_SIZE = 2, 300  # the independent generator as tests/core/test_shapes_v2.py draws it
TARGET = 0.90  # the accuracy on the independent generator this model was meant to reach
MONITOR_SEED = 100  # the independent generator, printed after each epoch only to watch training (never selects)
SAMPLE_SEED = 7
TORCH_SEED = 0

TRAIN_SIZE = 30_000
VARIED_TEST_SIZE = 1_200
HELDOUT_SIZE = 600
MONITOR_SIZE = 240
EPOCHS = 8
BATCH_SIZE = 128
PEAK_LR = 1e-3
WEIGHT_DECAY = 0.05
WARMUP_FRACTION = 0.03
LABEL_SMOOTHING = 0.05
IMAGE_MEAN = (0.5, 0.5, 0.5)
IMAGE_STD = (0.5, 0.5, 0.5)

#: What changed between training attempts (goes into the card).
ATTEMPTS = """\
Short trial runs came first (each on 6,000-12,000 pictures of the training generator, printing the accuracy on a
*monitor* set of the held-out generator, seed 100 — never the card's seed 1 or the tests' seed 2):

1. From random weights, width 96, 6 layers, 6,000 pictures, 4 epochs (188 steps): still at chance (24%).
2. From random weights, width 64, 4 layers, 800 steps of 128 on 12,000 pictures: 52% (width 128 learned no faster
   per step; 2-D sine-cosine position embeddings at the start: 53%; a peak learning rate of 4e-3 instead of 2e-3:
   53%). Colour-channel shuffling and colour inversion as extra augmentation were dropped: with only the 8 turns and
   mirrors the same run reached 57%.
3. Starting from the first model's weights (width 64, 4 layers), 800 steps at a peak rate of 1e-3: 82%; grown to 6
   layers (two identity layers added): 83% after 600 steps. Accuracy on the monitor set tracked accuracy on the
   training batches throughout, so the limit was how much the model could learn in the time, not a gap between the
   two generators.

Full runs (the card's held-out set, seed 1, 600 pictures):

4. Attempt 1, this model: the third setting on 30,000 pictures for 8 epochs (1,880 steps; 22 minutes in all):
   **89.0%** on the held-out generator, under the 90% target; crosses were the weak class (76%, mostly taken for
   stars), on the training generator's own test set too (72.5%), so the model had not yet learned that distinction.
   On another seed of the held-out generator (the tests' seed 2, 300 pictures) it gets 85.7%.
5. Larger runs (32,000 pictures for 10 epochs; 40,960 pictures for 11 epochs with the training steps compiled by
   `torch.compile`, about 1.6 times as fast on one thread: ``--compile``) were stopped for lack of time; they are
   the next step towards the 90% target.

Neither generator was changed
because of an accuracy: the one fix to the held-out generator (a drop shadow that wrapped round the picture's edge
and showed as an arc on the far side) was found by looking at its pictures.\
"""

# Samples: (file stem, title, class, what the held-out picture must be). The first picture of SAMPLE_SEED's stream
# that matches is taken, so the choice is reproducible.
SAMPLE_SPECS = (
    ("circle-hand", "Drawn: a hand-coloured circle", "circle", {"hand": True}),
    ("square-photo", "Drawn: a turned square, photographed", "square", {"perspective": True, "hand": False}),
    ("triangle-chalk", "Drawn: a chalk triangle", "triangle", {"background": "bg_chalkboard"}),
    ("cross-strokes", "Drawn: a cross of two pen strokes", "cross", {"style": "strokes", "hand": True}),
    ("ring-notebook", "Drawn: a ring in a notebook", "ring", {"background": "bg_notebook"}),
    ("star-outline-paper", "Drawn: an outlined star on graph paper", "star",
     {"style": "outline", "background": "bg_graph"}),
    ("star-desk", "Drawn: a star on a wooden desk", "star", {"background": "bg_desk", "style": "fill"}),
)


# ----------------------------------------------------------------------------------------------- data


def to_pixel_values(images: np.ndarray) -> Tensor:
    """``(n, 32, 32, 3)`` uint8 -> the processor's ``(n, 3, 32, 32)`` float32 (scale to [0, 1], mean/std 0.5)."""
    x = torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() / 255.0
    mean = torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD).view(1, 3, 1, 1)
    return (x - mean) / std


def as_model_input(pictures: list[Image.Image]) -> np.ndarray:
    """Pictures of any size resized as the image processor does (PIL bilinear to 32 x 32), ``(n, 32, 32, 3)``."""
    return np.stack([np.asarray(p.convert("RGB").resize((IMAGE_SIZE, IMAGE_SIZE), Image.BILINEAR)) for p in pictures])


def augment(x: Tensor, generator: torch.Generator) -> Tensor:
    """Label-preserving augmentation: each picture gets one of the 8 symmetries of the square (turns by quarter
    turns, mirrors). Every class is drawn at any angle and a mirrored shape is the same shape."""
    which = torch.randint(0, 8, (x.shape[0],), generator=generator)
    out = torch.empty_like(x)
    for k in range(8):
        idx = (which == k).nonzero(as_tuple=True)[0]
        if len(idx) == 0:
            continue
        part = x[idx]
        if k & 4:
            part = part.transpose(2, 3)
        out[idx] = torch.rot90(part, k & 3, dims=(2, 3))
    return out


# ------------------------------------------------------------------------------------------- training


def build_model() -> ViTForImageClassification:
    """A fresh ViT classifier (eager attention, as the app runs it)."""
    config = ViTConfig(
        image_size=IMAGE_SIZE,
        patch_size=PATCH_SIZE,
        num_channels=3,
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        num_attention_heads=HEADS,
        intermediate_size=MLP,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={name: i for i, name in enumerate(CLASSES)},
        architectures=["ViTForImageClassification"],
    )
    return ViTForImageClassification._from_config(config, attn_implementation="sdpa")


def grow_from_v1(model: ViTForImageClassification, v1_dir: Path = V1_DIR) -> int:
    """Starts ``model`` from the first shapes model's weights (trained here by ``scripts/train_shapes_vit.py``):
    its patch and position embeddings, its layers (as the first layers of this one), its final norm and its
    classifier (the same six labels in the same order). Extra layers start as identities: their two output
    projections are zero, so each adds nothing to the residual stream until training changes them. Returns how
    many tensors were copied.

    The first model already knows upright bright shapes on dark clutter; starting from it, the model learns the
    varied drawings several times sooner than from random weights (see the card's attempts).
    """
    v1 = ViTForImageClassification.from_pretrained(v1_dir, attn_implementation="eager")
    old, own = v1.state_dict(), model.state_dict()
    missing = [k for k, v in old.items() if k not in own or own[k].shape != v.shape]
    if missing:
        raise ValueError(f"the first model's weights do not fit: {missing[:3]}")
    with torch.no_grad():
        for k, v in old.items():
            own[k].copy_(v)
        layers = model.vit.layers if hasattr(model.vit, "layers") else model.vit.encoder.layer
        for layer in layers[v1.config.num_hidden_layers:]:
            for dense in (layer.attention.o_proj, layer.mlp.fc2):
                dense.weight.zero_()
                dense.bias.zero_()
    copied = old
    return len(copied)


def lr_at(step: int, total: int) -> float:
    """Linear warm-up to ``PEAK_LR``, then cosine decay to zero."""
    warmup = max(1, int(total * WARMUP_FRACTION))
    if step < warmup:
        return PEAK_LR * (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return PEAK_LR * 0.5 * (1.0 + math.cos(math.pi * progress))


@torch.no_grad()
def predict(model: ViTForImageClassification, pixel_values: Tensor, batch_size: int = 500) -> Tensor:
    """Predicted label ids."""
    model.eval()
    return torch.cat([model(pixel_values=chunk).logits.argmax(-1) for chunk in pixel_values.split(batch_size)])


def train(model: ViTForImageClassification, x: Tensor, y: Tensor, epochs: int,
          monitor: tuple[Tensor, Tensor] | None = None, compile_model: bool = False) -> list[tuple[float, float]]:
    """AdamW with warm-up and cosine decay; returns ``(mean loss, running accuracy)`` per epoch (augmented batches).

    ``monitor``: pictures of the independent generator (their own seed) whose accuracy is printed after each epoch,
    to watch training; the model kept is always the last epoch's. ``compile_model``: run the training steps through
    ``torch.compile`` (about 1.6 times as fast on one CPU thread; it needs a C compiler, and falls back to the plain
    model, with a message, when compiling fails).
    """
    forward = model
    if compile_model:
        forward = torch.compile(model)
    generator = torch.Generator().manual_seed(TORCH_SEED)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embeddings" not in n]
    no_decay = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embeddings" not in n)]
    optimiser = torch.optim.AdamW(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0.0}], lr=PEAK_LR)
    loss_fn = torch.nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING)
    steps_per_epoch = math.ceil(len(x) / BATCH_SIZE)
    total = epochs * steps_per_epoch
    history: list[tuple[float, float]] = []
    step = 0
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=generator)
        loss_sum, correct = 0.0, 0
        for start in range(0, len(x), BATCH_SIZE):
            idx = order[start : start + BATCH_SIZE]
            batch = augment(x[idx], generator)
            for group in optimiser.param_groups:
                group["lr"] = lr_at(step, total)
            try:
                logits = forward(pixel_values=batch).logits
            except Exception as err:  # noqa: BLE001 - no compiler, an unsupported op: train without compiling
                if forward is model:
                    raise
                print(f"torch.compile failed ({type(err).__name__}: {str(err)[:200]}); training uncompiled", flush=True)
                forward = model
                logits = forward(pixel_values=batch).logits
            loss = loss_fn(logits, y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimiser.step()
            loss_sum += float(loss.detach()) * len(idx)
            correct += int((logits.argmax(-1) == y[idx]).sum())
            step += 1
        history.append((loss_sum / len(x), correct / len(x)))
        watched = ""
        if monitor is not None:
            watched = f", monitor {float((predict(model, monitor[0]) == monitor[1]).float().mean()):.3f}"
        print(f"epoch {epoch + 1:2d}/{epochs}: loss {history[-1][0]:.4f}, train-batch acc {history[-1][1]:.4f}"
              f"{watched}, {time.perf_counter() - _T0:.0f}s", flush=True)
    return history


def per_class_accuracy(pred: Tensor, y: Tensor) -> dict[str, float]:
    return {name: float((pred[y == i] == i).float().mean()) for i, name in enumerate(CLASSES)}


def confusion(pred: Tensor, y: Tensor) -> list[list[int]]:
    """Counts: row = true class, column = predicted class."""
    k = len(CLASSES)
    matrix = torch.zeros(k, k, dtype=torch.long)
    matrix.index_put_((y, pred), torch.ones_like(y), accumulate=True)
    return matrix.tolist()


# -------------------------------------------------------------------------------------------- outputs


@dataclass
class Evaluation:
    """One test set's results."""

    name: str
    size: int
    accuracy: float
    per_class: dict[str, float]
    confusion: list[list[int]]

    @classmethod
    def of(cls, name: str, model: ViTForImageClassification, x: Tensor, y: Tensor) -> Evaluation:
        pred = predict(model, x)
        return cls(name, len(y), float((pred == y).float().mean()), per_class_accuracy(pred, y), confusion(pred, y))


@dataclass
class Report:
    """Measured numbers that go into the model card."""

    params: int
    weights_bytes: int
    gen_seconds: float
    train_seconds: float
    total_seconds: float
    final_loss: float
    final_batch_acc: float
    evals: dict[str, Evaluation] = field(default_factory=dict)
    v1_evals: dict[str, Evaluation] = field(default_factory=dict)
    samples: list[tuple[str, str, str, float]] = field(default_factory=list)
    training_line: str = ""
    compiled: bool = False


def write_samples(out_dir: Path) -> list[dict[str, str]]:
    """Pictures from the held-out generator (``SAMPLE_SEED``), one per spec, as 128 px PNGs + samples.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    rnd = random.Random(SAMPLE_SEED)
    entries: list[dict[str, str]] = []
    for stem, title, kind, wanted in SAMPLE_SPECS:
        for _ in range(5000):
            info: dict[str, object] = {}
            img = shapes_heldout.picture(rnd, kind, info)
            if all(info.get(k) == v for k, v in wanted.items()):
                break
        else:
            raise RuntimeError(f"no held-out picture matched {wanted}")
        img.save(out_dir / f"{stem}.png", optimize=True)
        entries.append({"id": f"drawn-{stem}", "file": f"{stem}.png", "title": title, "label": kind})
    (out_dir / "samples.json").write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    return entries


def _table(ev: Evaluation) -> str:
    head = "| true \\ predicted | " + " | ".join(CLASSES) + " | accuracy |"
    rule = "|---" * (len(CLASSES) + 2) + "|"
    rows = [f"| {name} | " + " | ".join(str(v) for v in row) + f" | {ev.per_class[name]:.1%} |"
            for name, row in zip(CLASSES, ev.confusion)]
    return "\n".join([head, rule, *rows])


def _confusion_note(ev: Evaluation) -> str:
    """The largest off-diagonal counts, in words."""
    pairs = sorted(((ev.confusion[i][j], CLASSES[i], CLASSES[j]) for i in range(len(CLASSES))
                    for j in range(len(CLASSES)) if i != j and ev.confusion[i][j]), reverse=True)[:4]
    if not pairs:
        return "no picture was misclassified"
    return "; ".join(f"{true} taken for {pred} {count} times" for count, true, pred in pairs)


def write_card(out_dir: Path, report: Report, notes: str) -> None:
    """Writes CARD.md from the measured numbers."""
    held, old, own = (report.evals[k] for k in ("heldout", "v1_heldout", "varied"))
    v1_held = report.v1_evals.get("heldout")
    grid = IMAGE_SIZE // PATCH_SIZE
    tests = report.evals.get("tests_heldout")
    on_tests = f"on the tests' seed {TESTS_SEED}, {tests.size} pictures, {tests.accuracy:.1%}" if tests else ""
    if held.accuracy < TARGET:
        short_note = (f": short of the {TARGET:.0%} this model was meant to reach ({on_tests}). Larger training runs "
                      "are the next step (see *How it was made*).")
    else:
        short_note = f" ({on_tests})." if tests else "."
    compiled_note = "; the training steps ran through `torch.compile` (`--compile`)" if report.compiled else ""
    sample_rows = "\n".join(f"| `{sid}` | {label} | {pred} ({prob:.1%}) |" for sid, label, pred, prob in report.samples)
    v1_line = (f"- For comparison, the first model (`shapes_vit`) gets **{v1_held.accuracy:.1%}** on these "
               f"{v1_held.size} pictures (" + ", ".join(f"{k} {v:.0%}" for k, v in v1_held.per_class.items()) + ").\n"
               if v1_held else "")
    text = f"""# shapes-vit-v2: a tiny ViT for the six shapes, drawn any way

Trained in this repository by `scripts/train_shapes_vit2.py`; nothing was downloaded. The first version
(`assets/models/shapes-vit/`, preset `shapes_vit`) is kept unchanged so links made with it give the same numbers.

## Model

- `ViTForImageClassification` (the app runs it with eager attention), started from the first model's weights:
  its patch and position embeddings, its 4 layers (as layers 0-3), its final norm and classifier; layers 4-5 are
  new and start as identities (their output projections zero). Then every weight is trained on the data below.
- Input 32x32 RGB, patch size {PATCH_SIZE}: a {grid}x{grid} patch grid plus the CLS token = {grid * grid + 1} tokens.
- {LAYERS} layers, hidden size {HIDDEN}, {HEADS} heads ({HIDDEN // HEADS} dims each), MLP size {MLP}, no dropout.
- {report.params:,} parameters; `model.safetensors` is {report.weights_bytes:,} bytes (float32).
- Labels, in the first model's order: {", ".join(CLASSES)}.
- Preprocessing (`preprocessor_config.json`): resize to 32x32 (bilinear), scale to [0, 1], normalise with
  mean 0.5 / std 0.5 per channel. Training pictures were resized to 32x32 the same way.

## What the classes mean

- `circle`: a **filled** round disc (its inside differs from the background; a border of another colour is fine).
  **A circle drawn as an outline only is a `ring` to this model.**
- `ring`: a round **outline** whose inside is the background, from a thin pen line to a thick band.
- `square`: four corners at any angle (a diamond is a turned square; near-squares up to about 1.25:1), filled or
  outlined.
- `triangle`: three corners at any angle (roughly equilateral), filled or outlined.
- `cross`: a plus sign at any angle (an x is a turned plus): filled, outlined, or two crossing strokes.
- `star`: five points at any angle, filled or outlined, or a pentagram of five crossing strokes.

## Training data (`scripts/shapes_varied.py`, numpy, seed {TRAIN_SEED})

{TRAIN_SIZE:,} pictures, classes balanced, each drawn at 32, 48, 64, 96 or 128 px and resized to 32x32 like the
processor does (noise, blur and JPEG applied at the larger size, as for a photo or scan that is shrunk):

- backgrounds: flat, linear or radial gradient, smooth colour blotches, paper (plain, ruled, squared, fibres),
  blurred photo-like clutter, stripes, many random lines; plus small specks and short strokes;
- one main shape: bounding circle from 0.3 of the frame to filling it, any position (up to 3% cut off), any angle,
  aspect 0.8-1.25, filled / outlined / filled with a border, pen widths 0.7-3.5 px (at 32 px), 45% hand-drawn
  (wobbly outline, jittered corners, outline not quite closed);
- colours: dark-on-light or light-on-dark (a brightness gap of 55-150 on 0-255) or colour-on-colour; fills flat,
  shaded or streaked like a marker;
- photo finish: uneven light, colour cast, Gaussian blur, Gaussian noise, JPEG (quality 15-90);
- while training, each picture is also turned by quarter turns and / or mirrored (8 ways).

## Training

- {report.training_line}
- `torch.set_num_threads(1)`, torch seed {TORCH_SEED}, CPU{compiled_note}.
- Time (one thread on a shared 2-core machine; times vary): data generation {report.gen_seconds:.0f} s,
  training {report.train_seconds:.0f} s, whole script {report.total_seconds:.0f} s.
- Final epoch: mean loss {report.final_loss:.4f}, accuracy {report.final_batch_acc:.1%} on augmented batches.

## Results

### The honest test: a second generator written apart (`scripts/shapes_heldout.py`, seed {HELDOUT_SEED})

It shares no code with the training generator: PIL `ImageDraw` primitives on a 128 px canvas (sometimes 144x128),
Python's `random`, its own palette and contrast rule, its own backgrounds (notebook, graph paper, wooden desk,
chalkboard, sky gradient, confetti, a blurred room, woven fabric) and its own effects (drop shadows, perspective
warps, lighting gradients, blur, noise, JPEG). The pictures go through the same resize to 32x32.

- **{held.accuracy:.1%}** on {held.size} pictures ({held.size // len(CLASSES)} per class){short_note}
{v1_line}
{_table(held)}

Confusions: {_confusion_note(held)}.

### The first model's own held-out set (`scripts/train_shapes_vit.py`, 1,500 pictures, seed 1)

Bright shapes (12-20 px, tilted at most 15 degrees) on dark cluttered backgrounds: **{old.accuracy:.1%}**
(the first model: 97.6%).

{_table(old)}

### The training generator, another seed ({own.size:,} pictures, seed {VARIED_TEST_SEED})

**{own.accuracy:.1%}** ({", ".join(f"{k} {v:.1%}" for k, v in own.per_class.items())}).

### Samples (`assets/samples/shapes-v2/`, drawn by the held-out generator, seed {SAMPLE_SEED})

| sample | drawn as | model says |
|---|---|---|
{sample_rows}

## How it was made (attempts)

{notes}

## Reproduce

```
.venv/bin/python scripts/train_shapes_vit2.py
```

Seeds are fixed, so a rerun on the same torch/numpy/Pillow versions gives the same data and, on one CPU thread,
the same weights. `scripts/shapes_heldout.py --grid /tmp/heldout.png` shows what the held-out pictures look like.

## What it cannot do

- It knows six shapes only and has **no "none of these"**: a photo, a letter, a heart or an empty page is still
  named as one of the six, often with high confidence.
- One shape per picture: two shapes, or a shape among other large objects, are outside what it was trained on.
- A circle drawn as an outline only is a `ring` by the definition above; a ring filled in with a colour is a `circle`.
- Stars have five points; a six-pointed star, a pentagon, a hexagon, an ellipse much longer than it is wide, or a
  long rectangle are none of its classes, and it will still pick one.
- Very small shapes (under about a third of the picture) and very faint ones (little contrast with the background)
  were not trained and are often wrong.
- Everything is seen at 32x32, so fine detail is lost; a picture much wider than it is tall is squashed square first.
- Its attention maps are meaningful for this toy task only; they are for exploring masks in this lab, not evidence
  about real vision models.
"""
    (out_dir / "CARD.md").write_text(text, encoding="utf-8")


def evaluate_v1_on(x: Tensor, y: Tensor) -> Evaluation | None:
    """The first model on the same held-out pictures, for the card's comparison."""
    v1 = REPO / "assets" / "models" / "shapes-vit"
    if not (v1 / "config.json").is_file():
        return None
    model = ViTForImageClassification.from_pretrained(v1, attn_implementation="eager")
    return Evaluation.of("v1 on held-out", model, x, y)


def main() -> None:
    """Generates data, trains, evaluates, saves the model, samples and card."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=MODEL_OUT, help="where to save the model")
    parser.add_argument("--samples-dir", type=Path, default=SAMPLES_OUT, help="where to save sample PNGs")
    parser.add_argument("--epochs", type=int, default=EPOCHS)
    parser.add_argument("--compile", action="store_true",
                        help="train through torch.compile (about 1.6x as fast; the bundled model was trained without)")
    parser.add_argument("--train-size", type=int, default=TRAIN_SIZE)
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(TORCH_SEED)
    random.seed(TORCH_SEED)
    np.random.seed(TORCH_SEED)

    t = time.perf_counter()
    train_images, train_labels = shapes_varied.make_dataset(args.train_size, TRAIN_SEED)
    gen_seconds = time.perf_counter() - t
    print(f"generated {args.train_size} training pictures in {gen_seconds:.0f}s", flush=True)
    monitor_pics, monitor_labels = shapes_heldout.dataset(MONITOR_SIZE, MONITOR_SEED)
    monitor = (to_pixel_values(as_model_input(monitor_pics)), torch.tensor(monitor_labels))

    x_train, y_train = to_pixel_values(train_images), torch.from_numpy(train_labels)
    model = build_model()
    grow_from_v1(model)
    params = sum(p.numel() for p in model.parameters())
    print(f"model: {params:,} parameters", flush=True)
    t = time.perf_counter()
    history = train(model, x_train, y_train, args.epochs, monitor, compile_model=args.compile)
    train_seconds = time.perf_counter() - t

    held_pics, held_labels = shapes_heldout.dataset(HELDOUT_SIZE, HELDOUT_SEED)
    x_held, y_held = to_pixel_values(as_model_input(held_pics)), torch.tensor(held_labels)
    import train_shapes_vit as v1  # the first model's generator: its held-out set

    old_images, old_labels = v1.make_dataset(v1.HELD_OUT_SIZE, v1.HELD_OUT_SEED)
    own_images, own_labels = shapes_varied.make_dataset(VARIED_TEST_SIZE, VARIED_TEST_SEED)
    evals = {
        "heldout": Evaluation.of("held-out generator", model, x_held, y_held),
        "v1_heldout": Evaluation.of("v1 held-out", model, to_pixel_values(old_images), torch.from_numpy(old_labels)),
        "varied": Evaluation.of("training generator", model, to_pixel_values(own_images), torch.from_numpy(own_labels)),
    }
    tests_pics, tests_labels = shapes_heldout.dataset(TESTS_SIZE, TESTS_SEED)
    evals["tests_heldout"] = Evaluation.of("held-out generator, the tests' seed", model,
                                           to_pixel_values(as_model_input(tests_pics)), torch.tensor(tests_labels))
    for ev in evals.values():
        print(f"{ev.name}: {ev.accuracy:.4f} (" + ", ".join(f"{k} {v:.3f}" for k, v in ev.per_class.items()) + ")")

    args.out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(args.out_dir)
    (args.out_dir / "model.safetensors").chmod(0o644)
    ViTImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}, do_resize=True, do_rescale=True,
                      do_normalize=True, image_mean=list(IMAGE_MEAN),
                      image_std=list(IMAGE_STD)).save_pretrained(args.out_dir)
    entries = write_samples(args.samples_dir)

    report = Report(params=params, weights_bytes=(args.out_dir / "model.safetensors").stat().st_size,
                    gen_seconds=gen_seconds, train_seconds=train_seconds, total_seconds=0.0,
                    final_loss=history[-1][0], final_batch_acc=history[-1][1], evals=evals)
    report.compiled = args.compile
    report.training_line = (f"{args.epochs} epochs over the {args.train_size:,} pictures, batch {BATCH_SIZE}, "
                            f"AdamW (peak lr {PEAK_LR:g}, weight decay {WEIGHT_DECAY:g} on weight matrices), "
                            f"{WARMUP_FRACTION:.0%} linear warm-up then cosine decay, label smoothing "
                            f"{LABEL_SMOOTHING:g}, gradient clipping at 1.0.")
    v1_held = evaluate_v1_on(x_held, y_held)
    if v1_held is not None:
        report.v1_evals["heldout"] = v1_held
    report.samples = smoke_test(args.out_dir, args.samples_dir, entries)
    report.total_seconds = time.perf_counter() - _T0
    write_card(args.out_dir, report, ATTEMPTS)
    print(f"saved model, processor and CARD.md to {args.out_dir}; samples to {args.samples_dir}; "
          f"{report.total_seconds:.0f}s in all")


def smoke_test(model_dir: Path, samples_dir: Path, entries: list[dict[str, str]]) -> list[tuple[str, str, str, float]]:
    """Reloads the saved model and processor and classifies every sample file."""
    from transformers import AutoImageProcessor

    model = ViTForImageClassification.from_pretrained(model_dir, attn_implementation="eager")
    processor = AutoImageProcessor.from_pretrained(model_dir)
    model.eval()
    rows = []
    for entry in entries:
        image = Image.open(samples_dir / entry["file"]).convert("RGB")
        with torch.no_grad():
            probs = model(**processor(images=image, return_tensors="pt")).logits.softmax(-1)[0]
        label = model.config.id2label[int(probs.argmax())]
        rows.append((entry["id"], entry["label"], label, float(probs.max())))
        print(f"  {entry['file']:24s} true {entry['label']:8s} -> {label:8s} ({float(probs.max()):.2f})")
    print(f"sample check: {sum(r[1] == r[2] for r in rows)}/{len(rows)} correct")
    return rows


if __name__ == "__main__":
    main()
