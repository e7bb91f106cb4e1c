"""Attention sinks on the bundled SmolLM2: a window that drops token 0 breaks the model, `sinks=1` brings it back.

StreamingLLM (Xiao et al., ICLR 2024) found that causal LMs park much of their attention on the first token(s), and
that a sliding window which evicts them collapses the model. Measured on CPU with the bundled SmolLM2-135M (float32):

- "The capital of France is" (5 tokens), ``radius=3``: only the last query loses a key, token 0, and ' Paris' falls
  from 77.3% to 0.001% (KL 9.22 nats). With ``sinks=1`` nothing is dropped any more: KL 0, ' Paris' 77.3%.
- "Last year my family and I spent two weeks travelling around the capital of France, which is called" (19 tokens),
  ``radius=4``: ' Paris' falls from 82.8% to 0.001% (KL 9.75, top-1 ' the'); with ``sinks=1`` it is back at 38.1%,
  the top-1 again (KL 0.51).

The assertions below are inequalities with wide margins, not copies of these numbers.
"""

from __future__ import annotations

import pytest
import torch

from dynmask_core import encode_text, run
from dynmask_core.masks import MaskPlan

SHORT = "The capital of France is"
LONG = "Last year my family and I spent two weeks travelling around the capital of France, which is called"


def _paris(loaded, output) -> float:
    (pid,) = loaded.tokenizer.encode(" Paris", add_special_tokens=False)
    return float(output.probs[pid])


@pytest.fixture(scope="module")
def long_runs(smollm2):
    prepared = encode_text(smollm2, LONG)
    plain = run(smollm2, prepared, MaskPlan.of("sliding_window", {"radius": 4}))
    sinks = run(smollm2, prepared, MaskPlan.of("sliding_window", {"radius": 4, "sinks": 1}))
    return plain, sinks


def test_a_window_that_drops_the_first_token_collapses_the_prediction(smollm2):
    result = run(smollm2, encode_text(smollm2, SHORT), MaskPlan.of("sliding_window", {"radius": 3}))
    assert len(result.tokens) == 5  # so radius 3 drops exactly one key: token 0, for the last query
    assert result.baseline_output.top(1)[0]["token"] == " Paris"
    assert _paris(smollm2, result.baseline_output) > 0.6  # measured 0.773
    assert _paris(smollm2, result.output) < 0.02  # measured 1.3e-5
    assert result.output.top(1)[0]["token"] != " Paris"
    assert " Paris" not in [t["token"] for t in result.output.top(5)]
    assert result.metrics["top1_changed"] is True
    assert result.metrics["next_token_kl"] > 5.0  # measured 9.22 nats


def test_one_sink_restores_the_short_prompt_exactly(smollm2):
    result = run(smollm2, encode_text(smollm2, SHORT), MaskPlan.of("sliding_window", {"radius": 3, "sinks": 1}))
    # the only key radius 3 dropped was token 0, and the sink gives it back: the run is the baseline
    assert torch.equal(result.masks, result.baseline_masks)  # the model's own causal mask, nothing more
    assert result.metrics["next_token_kl"] < 1e-4  # measured 0.0
    assert result.metrics["top1_changed"] is False
    assert _paris(smollm2, result.output) == pytest.approx(_paris(smollm2, result.baseline_output), abs=1e-4)


def test_on_a_longer_prompt_the_sink_brings_most_of_it_back(smollm2, long_runs):
    plain, sinks = long_runs
    assert len(plain.tokens) >= 15
    base_paris = _paris(smollm2, plain.baseline_output)
    assert plain.baseline_output.top(1)[0]["token"] == " Paris" and base_paris > 0.6  # measured 0.828
    # without a sink the window breaks it
    assert plain.metrics["next_token_kl"] > 5.0  # measured 9.75
    assert _paris(smollm2, plain.output) < 0.01  # measured 1.1e-5
    assert plain.output.top(1)[0]["token"] != " Paris"
    # the same window with sinks=1 brings most of it back
    assert sinks.metrics["next_token_kl"] < 2.0  # measured 0.51
    assert sinks.metrics["next_token_kl"] < plain.metrics["next_token_kl"] / 5
    assert _paris(smollm2, sinks.output) > 0.15  # measured 0.381
    assert _paris(smollm2, sinks.output) > 100 * _paris(smollm2, plain.output)
    assert " Paris" in [t["token"] for t in sinks.output.top(5)]
    assert sinks.metrics["top5_overlap"] > plain.metrics["top5_overlap"]


def test_the_captured_masks_keep_key_zero_only_with_the_sink(long_runs):
    plain, sinks = long_runs
    n = len(plain.tokens)
    i = torch.arange(n).view(-1, 1)
    j = torch.arange(n).view(1, -1)
    causal = j <= i
    window = (i - j).abs() <= 4
    # the captured mask is the model's own (causal) mask AND the strategy, in every layer and head
    assert torch.equal(plain.masks, (causal & window).expand_as(plain.masks))
    assert torch.equal(sinks.masks, (causal & (window | (j < 1))).expand_as(sinks.masks))
    assert not bool(plain.masks[..., -1, 0].any()) and bool(sinks.masks[..., :, 0].all())
