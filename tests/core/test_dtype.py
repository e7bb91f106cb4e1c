"""bfloat16 weights (``load(..., dtype="bfloat16")``, ``run --dtype bfloat16``): the softmax, the captured weights
and the outputs stay float32, the masks are the same, the numbers close to float32's. On the CPU here; the GPU
tests repeat it on CUDA where there is one."""

from __future__ import annotations

import json

import pytest
import torch

from dynmask_core import encode_text, load, run
from dynmask_core.capture import CapturePlan
from dynmask_core.cli import main
from dynmask_core.engine import MaskPlan, forward
from dynmask_core.models.loader import resolve_dtype
from tests.core import tiny_models as tiny

TEXT = "The film was surprisingly good, and the acting was great."


def test_a_bfloat16_model_captures_float32_weights_and_the_same_masks(minilm):
    half = load("minilm", device="cpu", dtype="bfloat16")
    assert half.dtype == torch.bfloat16 and next(half.model.parameters()).dtype == torch.bfloat16
    plan = MaskPlan.of("sliding_window").resolved()
    full = run(minilm, encode_text(minilm, TEXT), plan)
    low = run(half, encode_text(half, TEXT), plan)
    assert low.attention.dtype == torch.float32 and torch.equal(low.masks, full.masks)
    sums = low.attention.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-5)  # float32 softmax, captured before the cast
    assert (low.attention - full.attention).abs().max() < 0.05
    assert abs(low.outputs["probs"]["positive"] - full.outputs["probs"]["positive"]) < 0.05


def test_a_budgeted_capture_of_a_bfloat16_model_goes_tile_by_tile_in_float32():
    model = tiny.tiny_llama_gqa()
    ids = {"input_ids": torch.randint(5, 99, (1, 150), generator=torch.Generator().manual_seed(1))}
    plan = MaskPlan.of("sliding_window").resolved()
    capture = CapturePlan(budget_bytes=2**20, block=8, full=((1, 0),))
    ref = forward(model, ids, plan, capture=capture).summary
    low = forward(model.to(torch.bfloat16), ids, plan, capture=capture).summary
    assert low.pooled.dtype == torch.float32 and low.full[(1, 0)].dtype == torch.float32
    assert torch.equal(low.pooled_allowed, ref.pooled_allowed)
    assert (low.pooled - ref.pooled).abs().max() < 0.02


def test_dtype_choices_are_checked_and_the_command_line_takes_them(tmp_path, capsys):
    cpu = torch.device("cpu")
    assert resolve_dtype(None, cpu) == torch.float32 and resolve_dtype("bf16", cpu) == torch.bfloat16
    with pytest.raises(ValueError, match="dtype must be one of float32, bfloat16"):
        resolve_dtype("float16", cpu)
    assert main(["run", "--model", "minilm", "--text", TEXT, "--strategy", "causal", "--dtype", "bfloat16",
                 "--device", "cpu", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "run.json").read_text())
    assert record["shape"]["queries"] == len(record["tokens"])
    capsys.readouterr()
    assert main(["run", "--model", "minilm", "--text", TEXT, "--dtype", "float8", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert "--dtype" in err and len(err.splitlines()) == 1  # one line, as every bad argument
