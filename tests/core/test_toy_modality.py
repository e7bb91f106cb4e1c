"""A new kind of input is one module: this file alone registers a toy kind, ``points`` (a short list of numbers, each
turned into a token of the tiny BERT of ``tiny_models``), with its own file reader, bundled sample and attribution
space, and runs it through ``encode``, ``engine.run``, ``attribute``, a link and the command line. No production file
knows about it; the kind is unregistered when the module's tests end."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import pytest
import torch
import transformers as tf

from dynmask_core import cli, export
from dynmask_core.attribution import attribute
from dynmask_core.attribution.spaces import Space
from dynmask_core.engine import run
from dynmask_core.masks import MaskPlan
from dynmask_core.modalities import (
    KINDS,
    FileReader,
    Geometry,
    Modality,
    Prepared,
    Sample,
    encode,
    modality,
    register_modality,
    unregister_modality,
)
from dynmask_core.models import load
from dynmask_core.recipe import Recipe
from dynmask_core.samples import get_sample, samples

FIRST_ID, LEVELS = 10, 80  # a number in [0, 8] becomes token FIRST_ID + round(10 x); the tiny BERT has 99 tokens
CLS, SEP = 2, 3
RAMP = (0.0, 0.5, 1.0, 2.5, 4.0, 8.0)


@dataclass(frozen=True)
class PointsSource:
    """A few numbers from 0 to 8."""

    values: tuple[float, ...]
    kind: str = field(default="points", init=False)


def prepare_points(loaded, source: PointsSource) -> Prepared:
    """``[CLS] one token per number [SEP]``; each number is its position's label."""
    if not source.values:
        raise ValueError("no points: give at least one number")
    ids = [CLS] + [FIRST_ID + min(LEVELS, max(0, round(10 * v))) for v in source.values] + [SEP]
    inputs = {"input_ids": torch.tensor([ids], device=loaded.device),
              "attention_mask": torch.ones(1, len(ids), dtype=torch.long, device=loaded.device)}
    labels = ["CLS", *(f"{v:g}" for v in source.values), "SEP"]
    return Prepared("points", inputs, labels, geometry=Geometry(prefix=1), n_before=len(labels))


def read_points(data: bytes, name: str) -> PointsSource:
    """A ``.pts`` file: numbers separated by commas or spaces."""
    try:
        return PointsSource(tuple(float(x) for x in data.decode("ascii").replace(",", " ").split()))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{name!r} is not a list of numbers: write them separated by commas") from None


def points_space(loaded, prepared: Prepared, inputs) -> Space:
    """The token embeddings, baseline 0, one position per token."""
    ids = inputs["input_ids"]
    with torch.no_grad():
        value = loaded.model.get_input_embeddings()(ids).detach()
    rest = {k: v for k, v in inputs.items() if k != "input_ids"}
    t = ids.shape[1]
    return Space("inputs_embeds", value, torch.zeros_like(value), rest, torch.arange(t), t, (1, value.shape[-1]),
                 "points", cell_axes=(-1,))


POINTS = Modality(
    "points", prepare_points, ("input_ids",), "AutoTokenizer", PointsSource,
    noun="list of points", plural="lists of points", upload_noun="a points file",
    cli_help="a .pts file of numbers from 0 to 8",
    reader=FileReader(("pts",), 4096, read_points),
    samples=lambda: [Sample("points-ramp", "points", "A ramp", "tests", lambda: PointsSource(RAMP))],
    space=points_space)


@pytest.fixture(scope="module", autouse=True)
def points_kind():
    """The toy kind, registered for this module's tests only."""
    register_modality(POINTS)
    yield POINTS
    unregister_modality("points")
    assert "points" not in KINDS and all(s.modality != "points" for s in samples())


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory) -> str:
    """The tiny BERT of ``tests/core/tiny_models.py`` as a two-class classifier, saved without a tokenizer; its
    weights are drawn larger than transformers' default, so that a mask moves its prediction."""
    folder = tmp_path_factory.mktemp("points-bert")
    torch.manual_seed(0)
    cfg = tf.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, initializer_range=0.5, id2label={0: "low", 1: "high"},
                        label2id={"low": 0, "high": 1}, architectures=["BertForSequenceClassification"])
    tf.BertForSequenceClassification(cfg).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny(tiny_folder):
    return load(tiny_folder, device="cpu")


def test_the_kind_is_known_everywhere_once_registered(points_kind) -> None:
    assert "points" in KINDS and modality("points") is points_kind
    assert (points_kind.label, points_kind.cli_flag) == ("Points", "--points")  # defaults from the kind
    assert get_sample("points-ramp", "points").source() == PointsSource(RAMP)
    recipe = Recipe(input_kind="points", input_ref="points-ramp")
    assert recipe.source() == PointsSource(RAMP) and recipe.is_upload is False
    linked, warnings = Recipe.from_query_params({"v": "2", "input": "points", "ref": "points-ramp", "model": "x"})
    assert (linked.input_kind, linked.input_ref, warnings) == ("points", "points-ramp", [])


def test_encode_run_and_attribute(tiny) -> None:
    prepared = encode(tiny, PointsSource(RAMP))
    assert prepared.kind == "points" and prepared.labels == ["CLS", "0", "0.5", "1", "2.5", "4", "8", "SEP"]
    assert prepared.inputs["input_ids"][0].tolist() == [CLS, 10, 15, 20, 35, 50, 90, SEP]

    plan = MaskPlan.of("sliding_window", {"radius": 1})
    result = run(tiny, prepared, plan)
    t = len(prepared.labels)
    i, j = torch.arange(t).view(-1, 1), torch.arange(t).view(1, -1)
    assert result.kind == "points" and result.masks.shape == (2, 4, t, t)
    assert torch.equal(result.masks[0, 0], (i - j).abs() <= 1) and torch.all(result.attention[~result.masks] == 0)
    assert set(result.outputs["probs"]) == {"low", "high"} and result.metrics["kl"] > 0
    assert result.geometry_dict() is None and result.to_dict()["input_kind"] == "points"

    attr = attribute(tiny, prepared, plan, "ig", steps=128)
    assert attr.kind == "points" and attr.positions == prepared.labels
    for side in (attr.masked, attr.baseline):
        change = side.score - side.reference_score
        assert abs(change) > 1e-3 and abs(side.positions.sum() - change) < 1e-3 * abs(change)  # complete
    assert set(export.attribution_files(attr)) == {"attribution.json", "attribution.npy", "baseline_attribution.npy"}


def test_a_text_model_is_not_given_a_picture_for_points(tiny) -> None:
    """The toy feeds the tiny BERT because it prepares its main input (``input_ids``); other kinds still do not."""
    from dynmask_core.modalities import ImageSource

    with pytest.raises(ValueError, match="is a text model: it cannot take image input"):
        encode(tiny, ImageSource(torch.zeros(4, 4, 3, dtype=torch.uint8).numpy()))


def test_the_command_line_takes_the_new_flag(tiny_folder, tmp_path, capsys) -> None:
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    assert "--points PATH" in capsys.readouterr().out

    pts = tmp_path / "ramp.pts"
    pts.write_text(", ".join(f"{v:g}" for v in RAMP))
    out = tmp_path / "run"
    code = cli.main(["run", "--points", str(pts), "--model", tiny_folder, "--device", "cpu",
                     "--strategy", "sliding_window", "--param", "radius=1", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    record = json.loads((out / "run.json").read_text())
    assert record["input"] == {"kind": "points", "file": str(pts)} and record["input_kind"] == "points"
    assert record["tokens"] == ["CLS", "0", "0.5", "1", "2.5", "4", "8", "SEP"]

    code = cli.main(["attribute", "--sample", "points-ramp", "--model", tiny_folder, "--device", "cpu",
                     "--method", "saliency", "--out", str(tmp_path / "attr")])
    assert code == 0, capsys.readouterr().err
    saved = json.loads((tmp_path / "attr" / "attribution.json").read_text())
    assert saved["input"] == {"kind": "points", "sample": "points-ramp"} and saved["input_kind"] == "points"

    bad = tmp_path / "bad.pts"
    bad.write_text("one, two")
    capsys.readouterr()
    assert cli.main(["run", "--points", str(bad), "--model", tiny_folder, "--out", str(tmp_path / "bad")]) == 2
    assert capsys.readouterr().err.strip() == ("error: 'bad.pts' is not a list of numbers: write them separated "
                                               "by commas")
