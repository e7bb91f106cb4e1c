"""The bundled image and audio models, trained in this repo: they load offline, name their own samples, and the
command line lists and runs them as documented."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.samples import samples
from tests import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dynmask_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.parametrize(("model_id", "modality", "at_least"), [("shapes_vit", "image", 7), ("keywords_audio",
                                                                                          "audio", 9)])
def test_bundled_model_names_its_own_samples(model_id: str, modality: str, at_least: int) -> None:
    loaded = load(model_id, device="cpu")
    assert loaded.modality == modality and loaded.task == "classifier"
    labelled = [s for s in samples(modality) if s.label]
    assert len(labelled) >= 8
    right = sum(run(loaded, encode(loaded, s.source()), MaskPlan.of("none")).outputs["top1"] == s.label
                for s in labelled)
    assert right >= min(at_least, len(labelled)), f"{right} of {len(labelled)} samples named right"


def test_cli_lists_models_and_samples_as_documented() -> None:
    out = _cli("models", "--json")
    assert out.returncode == 0, out.stderr
    models = {m["id"]: m for m in json.loads(out.stdout)}
    assert {m["modality"] for m in models.values()} == {"text", "image", "audio"}
    assert models["shapes_vit"]["labels"][:2] == ["circle", "square"] and models["shapes_vit"]["layers"] == 4
    for m in models.values():
        assert {"id", "modality", "task", "labels", "layers", "heads"} <= set(m)
    out = _cli("samples", "--json")
    rows = json.loads(out.stdout)
    assert {"chelsea", "shapes-star", "kw-stop"} <= {r["id"] for r in rows}
    assert all(r["modality"] in ("text", "image", "audio") for r in rows)


def test_cli_runs_a_sample_and_a_file_and_records_input_and_geometry(tmp_path) -> None:
    out = _cli("run", "--sample", "shapes-star", "--model", "shapes_vit", "--strategy", "axial", "--out",
               str(tmp_path / "img"))  # the first shapes model, named (the image default is now shapes_vit2)
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "img" / "run.json").read_text())
    assert record["input"] == {"kind": "image", "sample": "shapes-star"} and record["model"] == "shapes_vit"
    assert record["geometry"] == {"grid": [8, 8], "cls": True, "prefix": 1}
    assert record["outputs"]["baseline"]["top5"][0] == {"label": "star",
                                                         "prob": record["outputs"]["baseline"]["probs"]["star"]}
    wav = ROOT / "assets" / "samples" / "keywords" / "kw-go.wav"
    out = _cli("run", "--audio", str(wav), "--out", str(tmp_path / "snd"))
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "snd" / "run.json").read_text())
    assert record["input"] == {"kind": "audio", "file": str(wav)} and record["model"] == "keywords_audio"
    assert record["geometry"]["frames"] == 12 and record["geometry"]["seconds_per_frame"] == pytest.approx(0.1)
    prefix = record["geometry"]["prefix"]  # a reader finds the first patch without guessing from "cls"
    assert record["tokens"][:prefix] == ["CLS", "DIST"] and not record["tokens"][prefix].startswith(("CLS", "DIST"))
    bad = tmp_path / "notes.wav"
    bad.write_text("not a recording")
    out = _cli("run", "--audio", str(bad), "--out", str(tmp_path / "bad"))
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "not a recording" in lines[0]
