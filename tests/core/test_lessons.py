"""The step-by-step lesson's numbers are the model's own: Q, K, V kept from the layer, redone, equal the engine."""

from __future__ import annotations

import numpy as np
import pytest

from dynmask_core import encode_text, run
from dynmask_core.lessons.steps import attention_steps, inspect_layer, pitfall, softmax_rows, strategy_mask
from dynmask_core.masks import MaskPlan

ARTICLE = "apple banana orange"  # the source article's own example


@pytest.mark.parametrize("strategy, params", [("causal", {}), ("sliding_window", {"radius": 1}), ("none", {}),
                                              ("topk", {"k": 2})])
def test_steps_equal_the_engine_on_minilm(minilm, strategy, params) -> None:
    prepared = encode_text(minilm, ARTICLE)
    plan = MaskPlan.of(strategy, params, seed=3).resolved()
    result = run(minilm, prepared, plan)
    for layer, head in ((0, 0), (3, 7), (5, 11)):
        keep = inspect_layer(minilm, prepared, plan, layer)
        steps = attention_steps(keep, head, prepared.labels)
        np.testing.assert_allclose(steps.weights, result.attention[layer, head].double().numpy(), atol=1e-6)
        np.testing.assert_allclose(steps.output, steps.weights @ steps.v)
        assert steps.scale == pytest.approx(1 / np.sqrt(steps.q.shape[1]))
        np.testing.assert_allclose(steps.scaled, steps.q @ steps.k.T * steps.scale)
        assert np.array_equal(steps.allowed, result.masks[layer, head].numpy())


def test_steps_equal_the_engine_on_a_grouped_query_llama(smollm2) -> None:
    prepared = encode_text(smollm2, "The capital of France is")
    plan = MaskPlan.of("sliding_window", {"radius": 2}).resolved()
    result = run(smollm2, prepared, plan)
    keep = inspect_layer(smollm2, prepared, plan, 7)
    for head in (0, 4, 8):  # 9 query heads share 3 key/value heads
        steps = attention_steps(keep, head, prepared.labels)
        np.testing.assert_allclose(steps.weights, result.attention[7, head].double().numpy(), atol=1e-6)
        assert steps.allowed[0, 1:].sum() == 0  # the model's own causal mask is on top of the window


def test_an_edited_mask_changes_every_later_step(minilm) -> None:
    prepared = encode_text(minilm, ARTICLE)
    keep = inspect_layer(minilm, prepared, MaskPlan.of("none"), 2)
    before = attention_steps(keep, 3, prepared.labels)
    mask = strategy_mask(keep, 3).copy()
    mask[:, 1] = False  # nobody may look at "apple"
    after = attention_steps(keep, 3, prepared.labels, mask)
    assert (after.weights[:, 1] == 0).all() and np.isinf(after.masked[:, 1]).all()
    np.testing.assert_allclose(after.weights.sum(axis=1), 1.0)
    assert not np.allclose(after.output, before.output)
    np.testing.assert_array_equal(after.scores, before.scores)  # the steps before the mask do not change
    with pytest.raises(ValueError, match="must be 5 x 5"):
        attention_steps(keep, 3, prepared.labels, np.ones((4, 5), dtype=bool))
    with pytest.raises(ValueError, match="head must be between 0 and 11"):
        attention_steps(keep, 12, prepared.labels)
    with pytest.raises(ValueError, match="layer must be between 0 and 5"):
        inspect_layer(minilm, prepared, MaskPlan.of("none"), 6)


def test_the_pitfall_in_numbers() -> None:
    rows = pitfall([2, 1, 3], [1, 1, 0])
    np.testing.assert_allclose(rows["hard"], [0.731, 0.269, 0.0], atol=1e-3)
    np.testing.assert_allclose(rows["naive_multiply"], [0.665, 0.245, 0.090], atol=1e-3)  # the blocked key keeps 9%
    np.testing.assert_allclose(rows["gate_renorm"], rows["hard"], atol=1e-6)
    assert rows["gate"].sum() < 1  # without renormalising, the row shrinks
    negative = pitfall([2, 1, -3], [1, 1, 0])
    unmasked = softmax_rows(np.array([[2.0, 1.0, -3.0]]))[0]
    assert negative["naive_multiply"][2] > 10 * unmasked[2]  # a blocked key with a negative score GAINS weight


def test_softmax_rows_never_gives_nan() -> None:
    out = softmax_rows(np.array([[0.0, -np.inf], [-np.inf, -np.inf]]))
    np.testing.assert_array_equal(out, [[1.0, 0.0], [0.0, 0.0]])
