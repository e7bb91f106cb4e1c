"""The shapes ViT v2 (issue 22, item 6): it names shapes drawn any way, measured on a generator written apart from
its training one; the first model stays byte for byte what old links load; each shapes model is offered its own
samples, not photos."""

from __future__ import annotations

import ast
import hashlib
import sys

import pytest
import torch

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.models import PRESETS, default_model
from dynmask_core.samples import get_sample, samples, samples_for
from tests import ROOT

PHOTOS = {"chelsea", "coffee", "astronaut", "rocket", "camera"}
V1_SAMPLES = {"shapes-circle", "shapes-square", "shapes-triangle", "shapes-cross", "shapes-ring", "shapes-star",
              "shapes-hard-small-star", "shapes-hard-small-ring"}

#: What the first model answered before the second one existed (top label, its probability), sample by sample.
V1_ANSWERS = {
    "chelsea": ("ring", 0.9998743534088135),
    "coffee": ("cross", 0.9962735176086426),
    "astronaut": ("cross", 0.8675507307052612),
    "rocket": ("star", 0.9976170659065247),
    "camera": ("circle", 0.9594862461090088),
    "shapes-circle": ("circle", 0.9994662404060364),
    "shapes-square": ("square", 0.9739843606948853),
    "shapes-triangle": ("triangle", 0.9998962879180908),
    "shapes-cross": ("cross", 0.9985446929931641),
    "shapes-ring": ("ring", 0.999862551689148),
    "shapes-star": ("star", 0.9964128136634827),
    "shapes-hard-small-star": ("star", 0.9995254278182983),
    "shapes-hard-small-ring": ("ring", 0.9997081160545349),
}

#: sha256 of the first model's files and samples: they must never be regenerated (old links would change).
V1_FILES = {
    "assets/models/shapes-vit/CARD.md": "60d34e7672f68c29e930d66a71d418e8ae26a0e05c9a3c7932c74af41a3096ea",
    "assets/models/shapes-vit/config.json": "f7326516056dd228870b5c42f9c5c8fce375d3fad93b58c7b7d3783e2f3fbdfc",
    "assets/models/shapes-vit/model.safetensors": "1c917bcf9409a2da73337c8ae5cef3331be09243be9fef453196e60ab17d57df",
    "assets/models/shapes-vit/preprocessor_config.json":
        "d47a7530a0709e2d2addd7fe56a3508c2fb62df7f71dfa28282f335cb811cf61",
    "assets/samples/shapes/circle.png": "7616434da3a3ec2fa2fefcab1151f512a8230d38e3f9b4dc6823ef6c9f30d8cb",
    "assets/samples/shapes/cross.png": "f48670030f0aea673f5decb850ceaa0e556fdd67aec6c721339fa6cf5a4cea39",
    "assets/samples/shapes/hard-small-ring.png": "b7f0969d0477053be8c3a1371597195bbe42e0e0184b58ef2bd54b100d8c36fa",
    "assets/samples/shapes/hard-small-star.png": "7f7f41b32320bb2a7bf82eb919833aa151c136504891155d8a2a94f7c36e1df9",
    "assets/samples/shapes/ring.png": "d35497751682b1c20188af54cb2b3dda56a054cd64238ea3592fd2c54a132532",
    "assets/samples/shapes/samples.json": "a81e17918219e260b5cf3a8b101935f8ed0ffd283ed4de0df313d3feec95ab61",
    "assets/samples/shapes/square.png": "6696e3845e0b4b60d96b3440cc466d7d0ae5ca2d49654d8cae3c2964bd18f329",
    "assets/samples/shapes/star.png": "0cf975e8ad7a883900903cb01902902dfb4a86f3f007d99c1a826311219b5a1f",
    "assets/samples/shapes/triangle.png": "1c990d721c1e679356ea12d2e10dd7f3361e1a14a6968cdc4ce6f41997579f72",
}

TEST_SEED = 2  # the card reports seed 1 of the held-out generator; this is a fresh set


@pytest.fixture(scope="module")
def v2():
    return load("shapes_vit2", device="cpu")


@pytest.fixture(scope="module")
def heldout():
    sys.path.insert(0, str(ROOT / "scripts"))
    import shapes_heldout

    return shapes_heldout


def test_the_new_model_is_the_image_default_and_the_first_stays_listed() -> None:
    assert default_model("image") == "shapes_vit2"
    ids = list(PRESETS)
    assert ids.index("shapes_vit2") < ids.index("shapes_vit")
    assert PRESETS["shapes_vit2"].modality == PRESETS["shapes_vit"].modality == "image"
    assert "kept" in PRESETS["shapes_vit"].title


def test_the_first_model_is_byte_for_byte_unchanged() -> None:
    for path, digest in V1_FILES.items():
        assert hashlib.sha256((ROOT / path).read_bytes()).hexdigest() == digest, path


def test_the_first_model_answers_as_before() -> None:
    loaded = load("shapes_vit", device="cpu")
    assert loaded.labels == ("circle", "square", "triangle", "cross", "ring", "star")
    for sample_id, (label, prob) in V1_ANSWERS.items():
        out = run(loaded, encode(loaded, get_sample(sample_id).source()), MaskPlan.of("none")).outputs
        assert out["top1"] == label, sample_id
        assert out["probs"][label] == pytest.approx(prob, abs=1e-6), sample_id


def test_the_new_model_is_small_and_keeps_the_labels(v2) -> None:
    assert v2.labels == load("shapes_vit", device="cpu").labels
    assert v2.model.config.image_size == 32 and v2.model.config.patch_size == 4
    assert sum(p.numel() for p in v2.model.parameters()) < 2_000_000
    assert (ROOT / "assets" / "models" / "shapes-vit-v2" / "model.safetensors").stat().st_size < 8 * 2**20
    card = (ROOT / "assets" / "models" / "shapes-vit-v2" / "CARD.md").read_text(encoding="utf-8")
    assert "scripts/train_shapes_vit2.py" in card and "none of these" in card


def test_the_new_model_names_shapes_from_the_independent_generator(v2, heldout) -> None:
    """A fresh 300-picture set (seed 2; the card's is seed 1), through the model's own image processor."""
    pictures, labels = heldout.dataset(300, TEST_SEED)
    pixels = v2.processor(images=[p.convert("RGB") for p in pictures], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        pred = torch.cat([v2.model(pixel_values=chunk).logits.argmax(-1) for chunk in pixels.split(100)])
    truth = torch.tensor(labels)
    accuracy = float((pred == truth).float().mean())
    per_class = {name: float((pred[truth == i] == i).float().mean()) for i, name in enumerate(heldout.CLASSES)}
    # the target is 90%; the bundled model gets 85.7% on this set (89.0% on the card's 600 pictures, where
    # the first model gets 33.0%): this guards what it reaches, the card and the note say it is short of the target
    assert accuracy >= 0.85, per_class


def test_the_new_model_names_its_own_samples(v2) -> None:
    drawn = [s for s in samples("image") if s.id.startswith("drawn-")]
    assert len(drawn) >= 6 and {s.label for s in drawn} == set(v2.labels)
    right = [s.id for s in drawn if run(v2, encode(v2, s.source()), MaskPlan.of("none")).outputs["top1"] == s.label]
    assert len(right) >= len(drawn) - 1, right


def test_each_model_is_offered_the_samples_it_can_know() -> None:
    image_ids = {s.id for s in samples("image")}
    drawn = {sid for sid in image_ids if sid.startswith("drawn-")}
    assert PHOTOS | V1_SAMPLES | drawn == image_ids and not drawn & (PHOTOS | V1_SAMPLES)
    assert {s.id for s in samples_for("image", "shapes_vit")} == V1_SAMPLES
    assert {s.id for s in samples_for("image", "shapes_vit2")} == V1_SAMPLES | drawn
    for other in ("google/vit-base-patch16-224", "/some/folder", "", None):
        assert {s.id for s in samples_for("image", other)} == image_ids
    assert [s.id for s in samples_for("audio", "keywords_audio")] == [s.id for s in samples("audio")]
    assert get_sample("chelsea").made_for == () and "shapes_vit" in get_sample("shapes-star").made_for


def test_the_heldout_generator_shares_no_code_with_the_training_one() -> None:
    tree = ast.parse((ROOT / "scripts" / "shapes_heldout.py").read_text(encoding="utf-8"))
    imported = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {m for m in imported if "shapes" in m or "train" in m or m.startswith(("numpy", "dynmask"))}


def test_the_heldout_generator_is_seeded(heldout) -> None:
    a, la = heldout.dataset(12, 5)
    b, lb = heldout.dataset(12, 5)
    assert la == lb == [i % 6 for i in range(12)]
    assert all(x.tobytes() == y.tobytes() for x, y in zip(a, b))
