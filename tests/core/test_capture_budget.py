"""A budgeted capture (summaries, pooled maps, chosen pairs in full) says exactly what the full capture says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dynmask_core.capture import STATS, CapturePlan
from dynmask_core.engine import MaskPlan, forward
from dynmask_core.viz._common import pool2d
from tests.core import tiny_models as tiny


def _ids(n: int, seed: int = 0) -> torch.Tensor:
    return torch.randint(5, 99, (1, n), generator=torch.Generator().manual_seed(seed))


def _stats_from_full(attention: torch.Tensor, masks: torch.Tensor, q_offset: int = 0) -> torch.Tensor:
    """(L, H, 4) summaries written out directly from full (L, H, Q, K) weights and masks."""
    a = attention.double()
    q, k = a.shape[-2:]
    dist = (torch.arange(q).view(-1, 1) + q_offset - torch.arange(k).view(1, -1)).abs().double()
    entropy = -(torch.where(a > 0, a * a.clamp(min=1e-300).log(), torch.zeros_like(a))).sum(-1).mean(-1)
    distance = (a * dist).sum(-1).mean(-1)
    sink = a[..., 0].mean(-1)
    allowed = masks.double().mean(dim=(-1, -2))
    return torch.stack([entropy, distance, sink, allowed], dim=-1).float()


#: (model, strategy, tokens, whether the layers go tile by tile): static index masks do, the rest stay eager
CASES = {
    "bert_sliding": (tiny.tiny_bert, "sliding_window", 13, True),
    "llama_gqa_strided": (tiny.tiny_llama_gqa, "strided", 11, True),
    "llama_gqa_sliding_long": (tiny.tiny_llama_gqa, "sliding_window", 200, True),
    "gpt2_bigbird": (tiny.tiny_gpt2, "bigbird", 129, True),
    "gpt2_random_dynamic": (tiny.tiny_gpt2, "random_dynamic", 9, False),
    "bert_topk": (tiny.tiny_bert, "topk", 10, False),
}


@pytest.fixture
def tiled_calls(monkeypatch):
    """Counts the layers computed tile by tile."""
    from dynmask_core import sparse_attention

    calls = []
    real = sparse_attention.blockwise_attention

    def counting(*args, **kwargs):
        calls.append(args[0].shape)
        return real(*args, **kwargs)

    monkeypatch.setattr(sparse_attention, "blockwise_attention", counting)
    return calls


@pytest.mark.parametrize("case", list(CASES))
def test_summaries_and_pooled_maps_equal_those_of_the_full_capture(case, tiled_calls):
    make, strategy, n, tiled = CASES[case]
    model, inputs = make(), {"input_ids": _ids(n)}
    plan = MaskPlan.of(strategy, seed=4).resolved()
    full = forward(model, inputs, plan)
    budget = forward(model, inputs, plan, capture=CapturePlan(budget_bytes=10**6, block=4, full=((1, 1),)))
    s = budget.summary
    assert len(tiled_calls) == (model.config.num_hidden_layers if tiled else 0)
    assert budget.attention is None and budget.masks is None and s is not None
    assert s.stats.shape == (*full.attention.shape[:2], len(STATS)) and s.block == 4
    torch.testing.assert_close(s.stats, _stats_from_full(full.attention, full.masks), atol=1e-5, rtol=1e-5)
    assert np.allclose(s.pooled.numpy(), pool2d(full.attention.numpy(), 4), atol=1e-6)
    assert np.allclose(s.pooled_allowed.numpy(), pool2d(full.masks.numpy(), 4), atol=1e-6)
    torch.testing.assert_close(s.full[(1, 1)], full.attention[1, 1], atol=1e-6, rtol=0)
    assert torch.equal(s.full_allowed[(1, 1)], full.masks[1, 1])
    assert s.empty_rows == full.empty_rows
    torch.testing.assert_close(_main_output(budget.outputs), _main_output(full.outputs), atol=1e-5, rtol=0)


def _main_output(outputs):
    return outputs.last_hidden_state if hasattr(outputs, "last_hidden_state") else outputs.logits


def test_the_layout_fits_the_budget_and_says_when_it_cannot():
    layers, heads, n = 30, 9, 8192
    layout = CapturePlan(budget_bytes=100 * 2**20, full=((3, 2),)).layout(layers, heads, n, n)
    assert layout.full == ()  # one 8k x 8k head in full (320 MB) does not fit half of 100 MB
    pooled = 2 * layers * heads * math.ceil(n / layout.block) ** 2 * 4
    assert pooled <= 100 * 2**20 and 2 * layers * heads * math.ceil(n / (layout.block // 2)) ** 2 * 4 > 100 * 2**20
    small = CapturePlan(budget_bytes=100 * 2**20, full=((3, 2), (3, 2), (99, 0))).layout(layers, heads, 512, 512)
    assert small.full == ((3, 2),)  # repeats and pairs outside the model are dropped
    with pytest.raises(ValueError, match="raise the budget"):
        CapturePlan(budget_bytes=1000).layout(layers, heads, n, n)
    with pytest.raises(ValueError, match="positive"):
        CapturePlan(budget_bytes=0)


def test_a_budgeted_run_keeps_both_runs_summaries_and_reports_its_bytes(minilm):
    from dynmask_core.engine import run
    from dynmask_core.modalities import encode_text

    prepared = encode_text(minilm, "Sparse masks make long inputs cheap, and the summaries say how.")
    plan = MaskPlan.of("sliding_window").resolved()
    full = run(minilm, prepared, plan)
    budgeted = run(minilm, prepared, plan, capture=CapturePlan(budget_bytes=2 * 2**20))
    assert budgeted.budgeted and not full.budgeted and budgeted.shape == full.shape
    assert budgeted.metrics == full.metrics
    torch.testing.assert_close(budgeted.summary.stats, _stats_from_full(full.attention, full.masks),
                               atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(budgeted.baseline_summary.stats,
                               _stats_from_full(full.baseline_attention, full.baseline_masks), atol=1e-5, rtol=1e-5)
    record = budgeted.to_dict()
    assert record["capture"]["budgeted"] and record["capture"]["bytes"] <= 2 * 2**20
    assert record["shape"] == full.to_dict()["shape"]


def test_the_command_line_writes_a_budgeted_run_and_refuses_bad_budget_options(tmp_path):
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "dynmask_core", *args], cwd=root, capture_output=True, text=True,
                              env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=300)

    recipe = ("--model", "minilm", "--text", "A budget keeps summaries of every head.", "--strategy", "sliding_window")
    full = cli("run", *recipe, "--out", str(tmp_path / "full"))
    budget = cli("run", *recipe, "--capture-budget-mb", "1", "--keep-full", "1:2", "--out", str(tmp_path / "b"))
    assert full.returncode == 0 and budget.returncode == 0, (full.stderr, budget.stderr)
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["capture"]["full"] == [[1, 2]] and record["capture"]["bytes"] <= 2**20
    assert record["metrics"] == json.loads((tmp_path / "full" / "run.json").read_text())["metrics"]
    attention = np.load(tmp_path / "full" / "attention.npy")
    assert np.load(tmp_path / "b" / "stats.npy").shape == (*attention.shape[:2], len(STATS))
    assert np.allclose(np.load(tmp_path / "b" / "attention_L1_H2.npy"), attention[1, 2], atol=1e-6)
    assert np.allclose(np.load(tmp_path / "b" / "baseline_pooled_attention.npy"),
                       pool2d(np.load(tmp_path / "full" / "baseline_attention.npy"), record["capture"]["block"]),
                       atol=1e-6)
    for bad, says in ((("--capture-budget-mb", "0"), "takes a number from 1 to 1,048,576"),
                      (("--capture-budget-mb", "nan"), "takes a number"),
                      (("--capture-budget-mb", "1", "--keep-full", "3"), "takes LAYER:HEAD"),
                      (("--capture-budget-mb", "1", "--keep-full", "9:0"), "outside the model")):
        out = cli("run", *recipe, *bad, "--out", str(tmp_path / "bad"))
        assert out.returncode == 2 and says in out.stderr and len(out.stderr.strip().splitlines()) == 1, out.stderr


@pytest.mark.parametrize("case", ["llama_gqa_sliding_long", "gpt2_random_dynamic", "bert_topk"])
def test_rows_kept_in_full_and_a_pass_stopped_after_a_layer_equal_the_full_capture(case):
    make, strategy, n, _ = CASES[case]
    model, inputs = make(), {"input_ids": _ids(n)}
    plan = MaskPlan.of(strategy, seed=4).resolved()
    full = forward(model, inputs, plan)
    rows = (3, min(n, 70))
    window = forward(model, inputs, plan, capture=CapturePlan(budget_bytes=10**6, full=((1, 0),), block=n,
                                                              rows=rows, stop_after=1))
    s = window.summary
    assert window.outputs is None and s.stats.shape[0] == 2  # layers after 1 never ran
    assert s.rows == rows and s.full[(1, 0)].shape == (rows[1] - rows[0], n)
    torch.testing.assert_close(s.full[(1, 0)], full.attention[1, 0, rows[0]:rows[1]], atol=1e-6, rtol=0)
    assert torch.equal(s.full_allowed[(1, 0)], full.masks[1, 0, rows[0]:rows[1]])
    with pytest.raises(ValueError, match="first < end"):
        CapturePlan(rows=(5, 5))
    with pytest.raises(ValueError, match="outside"):
        CapturePlan(rows=(n + 1, n + 9)).kept_rows(n)


def test_an_attention_window_equals_the_same_rows_of_the_run(smollm2):
    from dynmask_core.engine import attention_window, run
    from dynmask_core.modalities import encode_text

    prepared = encode_text(smollm2, "A window of rows at full resolution is what a zoom into a long input shows. "
                                    "It must be the very weights the run computed, not an approximation.")
    for strategy in ("sliding_window", "random_dynamic"):
        result = run(smollm2, prepared, MaskPlan.of(strategy).resolved())
        window = attention_window(smollm2, prepared, result.plan, 2, 5, (4, 17))
        assert window.rows == (4, 17) and window.nbytes == 2 * 13 * len(prepared.labels) * (4 + 1)
        assert torch.equal(window.attention, result.attention[2, 5, 4:17])
        assert torch.equal(window.baseline_attention, result.baseline_attention[2, 5, 4:17])
        assert torch.equal(window.masks, result.masks[2, 5, 4:17])
        assert torch.equal(window.baseline_masks, result.baseline_masks[2, 5, 4:17])
    with pytest.raises(ValueError, match="outside"):
        attention_window(smollm2, prepared, result.plan, 0, 0, (500, 600))
    with pytest.raises(ValueError, match="layers must be between"):
        attention_window(smollm2, prepared, result.plan, 99, 0, (0, 4))


def test_a_kept_baseline_pass_gives_the_run_it_would_have_computed(minilm):
    from dynmask_core.engine import baseline_pass, run
    from dynmask_core.modalities import encode_text

    prepared = encode_text(minilm, "One baseline serves every mask tried on the same long input.")
    capture = CapturePlan(budget_bytes=2 * 2**20)
    base = baseline_pass(minilm, prepared, capture)
    for strategy in ("sliding_window", "random_dynamic"):
        plan = MaskPlan.of(strategy, seed=3).resolved()
        fresh, reused = run(minilm, prepared, plan, capture=capture), run(minilm, prepared, plan, capture, base)
        assert reused.baseline_summary is base.summary and reused.metrics == fresh.metrics
        assert torch.equal(reused.baseline_summary.stats, fresh.baseline_summary.stats)
        assert torch.equal(reused.summary.pooled, fresh.summary.pooled)


def test_a_run_reports_each_layer_of_each_pass(minilm):
    from dynmask_core.engine import baseline_pass, run
    from dynmask_core.modalities import encode_text

    prepared = encode_text(minilm, "A long run says how far it is.")
    plan = MaskPlan.of("sliding_window").resolved()
    seen: list[tuple[str, float]] = []
    run(minilm, prepared, plan, progress=lambda stage, done: seen.append((stage, done)))
    n = minilm.n_layers
    assert len(seen) == 2 * n and [d for _, d in seen] == sorted(d for _, d in seen) and seen[-1][1] == 1.0
    result = run(minilm, prepared, plan)
    timings = result.timings  # the run's own clock (once overwritten by the progress code's start)
    assert timings["baseline_forward_s"] + timings["masked_forward_s"] <= timings["total_s"] < 60
    assert seen[0][0] == f"baseline pass (no extra mask): layer 1 of {n}"
    assert seen[n][0] == f"masked pass: layer 1 of {n}"
    seen.clear()
    capture = CapturePlan(budget_bytes=2**20)
    run(minilm, prepared, plan, capture, baseline_pass(minilm, prepared, capture),
        progress=lambda stage, done: seen.append((stage, done)))
    assert len(seen) == n and all(stage.startswith("masked pass") for stage, _ in seen) and seen[-1][1] == 1.0
