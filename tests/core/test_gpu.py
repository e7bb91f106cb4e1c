"""The GPU path: the same runs on CUDA as on the CPU. Skipped, with the reason, where there is no GPU."""

from __future__ import annotations

import pytest
import torch

from dynmask_core.capture import CapturePlan
from dynmask_core.engine import MaskPlan, forward
from tests.core import tiny_models as tiny

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU on this machine: the GPU tests need one"),
]


def _ids(n: int) -> torch.Tensor:
    return torch.randint(5, 99, (1, n), generator=torch.Generator().manual_seed(3))


@pytest.mark.parametrize("strategy", ["sliding_window", "bigbird", "strided", "topk"])
def test_a_full_capture_on_the_gpu_equals_the_cpu(strategy):
    model = tiny.tiny_llama_gqa()
    plan = MaskPlan.of(strategy, seed=2).resolved()
    cpu = forward(model, {"input_ids": _ids(100)}, plan)
    gpu = forward(model.cuda(), {"input_ids": _ids(100).cuda()}, plan)
    assert torch.equal(gpu.masks.cpu(), cpu.masks)
    torch.testing.assert_close(gpu.attention.cpu(), cpu.attention, atol=1e-4, rtol=0)


@pytest.mark.parametrize("strategy", ["sliding_window", "bigbird", "strided"])
def test_a_budgeted_capture_on_the_gpu_equals_the_cpu(strategy):
    model = tiny.tiny_llama_gqa()
    plan = MaskPlan.of(strategy).resolved()
    capture = CapturePlan(budget_bytes=2**20, block=8, full=((1, 0),))
    cpu = forward(model, {"input_ids": _ids(200)}, plan, capture=capture).summary
    gpu = forward(model.cuda(), {"input_ids": _ids(200).cuda()}, plan, capture=capture).summary
    torch.testing.assert_close(gpu.stats, cpu.stats, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(gpu.pooled, cpu.pooled, atol=1e-5, rtol=0)
    torch.testing.assert_close(gpu.full[(1, 0)], cpu.full[(1, 0)], atol=1e-4, rtol=0)


def test_bfloat16_on_the_gpu_keeps_the_masks_and_float32_weights():
    from dynmask_core import encode_text, load, run

    text = "Sparse attention masks make long inputs cheap on a GPU. " * 40
    cpu = load("smollm2", device="cpu")
    gpu = load("smollm2", device="cuda", dtype="bfloat16")
    plan = MaskPlan.of("sliding_window").resolved()
    capture = CapturePlan(budget_bytes=20 * 2**20)
    ref = run(cpu, encode_text(cpu, text, 600), plan, capture=capture)
    low = run(gpu, encode_text(gpu, text, 600), plan, capture=capture)
    assert low.summary.pooled.dtype == torch.float32
    assert torch.equal(low.summary.pooled_allowed.cpu(), ref.summary.pooled_allowed)
    assert (low.summary.pooled.cpu() - ref.summary.pooled).abs().max() < 0.02
    assert low.outputs["top5"][0]["token"] == ref.outputs["top5"][0]["token"]
