"""The engine inside real models: parity with transformers' eager attention, model masks that survive every
strategy, reproducible dynamic masks, thread isolation, GQA, unsupported families."""

from __future__ import annotations

import threading

import pytest
import torch

from dynmask_core.engine import IDENTITY_PLAN, MaskPlan, attach, forward, run
from dynmask_core.masks import MODES, strategies
from tests.core import tiny_models as tiny

ALL_IDS = [s.id for s in strategies() if s.takes("text")]  # the 2-D ones: tests/core/test_spatial.py


def _ids(n: int, b: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(5, 99, (b, n), generator=g)


def _reference(model, inputs):
    ref = tiny.eager_copy(model)
    with torch.inference_mode():
        out = ref(**inputs, output_attentions=True)
    return out


# ---------------------------------------------------------------------------------------------------------------
# Parity: the "none" plan is transformers' own eager attention
# ---------------------------------------------------------------------------------------------------------------

FAMILIES = {
    "bert": (tiny.tiny_bert, lambda: {"input_ids": _ids(9)}),
    "gpt2": (tiny.tiny_gpt2, lambda: {"input_ids": _ids(9)}),
    "llama_gqa": (tiny.tiny_llama_gqa, lambda: {"input_ids": _ids(9)}),
    "vit": (tiny.tiny_vit,
            lambda: {"pixel_values": torch.randn(1, 3, 16, 16, generator=torch.Generator().manual_seed(1))}),
    "wav2vec2": (tiny.tiny_wav2vec2,
                 lambda: {"input_values": torch.randn(1, 800, generator=torch.Generator().manual_seed(2))}),
}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_identity_plan_matches_eager_and_hits_every_layer(family):
    make, inputs_of = FAMILIES[family]
    model, inputs = make(), inputs_of()
    cap = forward(model, inputs, IDENTITY_PLAN)
    ref = _reference(model, inputs)
    assert cap.attention is not None
    assert cap.attention.shape[0] == len(ref.attentions) == model.config.num_hidden_layers
    for layer, ref_attn in enumerate(ref.attentions):
        assert torch.allclose(cap.attention[layer], ref_attn[0].float(), atol=1e-6, rtol=0)
    out_key = "logits" if hasattr(ref, "logits") else "last_hidden_state"
    assert (getattr(cap.outputs, out_key) - getattr(ref, out_key)).abs().max() <= 1e-5


def test_none_equals_transformers_eager_on_minilm(minilm):
    from transformers import BertModel

    from dynmask_core.modalities import encode_text

    path = minilm.model.config._name_or_path
    ref = BertModel.from_pretrained(path, attn_implementation="eager").eval()
    x = encode_text(minilm, "Attention masks decide which tokens may look at which. Try a sliding window!")
    result = run(minilm, x, MaskPlan.of("none"))
    with torch.inference_mode():
        out = ref(**x.inputs, output_attentions=True)
    eager = torch.stack([a[0] for a in out.attentions])
    assert result.attention.shape == eager.shape == (6, 12, len(x.tokens), len(x.tokens))
    assert (result.attention - eager).abs().max() <= 1e-5
    assert (result.baseline_attention - eager).abs().max() <= 1e-5
    assert result.metrics["kl"] < 1e-9 and result.metrics["cosine"] > 1 - 1e-6


def test_padded_batch_matches_eager_on_minilm(minilm):
    from transformers import BertModel

    tok = minilm.tokenizer
    enc = tok(["short one", "a noticeably longer sentence with several more tokens"], return_tensors="pt",
              padding=True)
    ref = BertModel.from_pretrained(minilm.model.config._name_or_path, attn_implementation="eager").eval()
    cap = forward(minilm.model, dict(enc), IDENTITY_PLAN)
    with torch.inference_mode():
        out = ref(**enc, output_attentions=True)
    assert (cap.outputs.last_hidden_state - out.last_hidden_state).abs().max() <= 1e-5


# ---------------------------------------------------------------------------------------------------------------
# The model's own masks survive every strategy and every mode
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("strategy", ALL_IDS)
def test_padding_survives_every_strategy(strategy, mode):
    model = tiny.tiny_bert()
    ids = _ids(10, b=1)
    mask = torch.ones_like(ids)
    mask[:, 7:] = 0  # three padding keys
    plan = MaskPlan.of(strategy, mode=mode, seed=3).resolved()
    cap = forward(model, {"input_ids": ids, "attention_mask": mask}, plan)
    assert not cap.masks[..., 7:].any()
    assert torch.all(cap.attention[..., 7:] == 0)


@pytest.mark.parametrize("make", [tiny.tiny_gpt2, tiny.tiny_llama_gqa], ids=["gpt2", "llama_gqa"])
@pytest.mark.parametrize("mode", list(MODES))
@pytest.mark.parametrize("strategy", ALL_IDS)
def test_causality_survives_every_strategy(make, strategy, mode):
    model = make()
    plan = MaskPlan.of(strategy, compose=[("or", "none", None)] if strategy == "causal" else (), mode=mode,
                       seed=5).resolved()
    cap = forward(model, {"input_ids": _ids(8)}, plan)
    future = torch.triu(torch.ones(8, 8, dtype=torch.bool), diagonal=1)
    assert not cap.masks[..., future].any()
    assert torch.all(cap.attention[..., future] == 0)


def test_turning_causality_off_lets_a_causal_lm_see_the_future():
    model = tiny.tiny_gpt2()
    future = torch.triu(torch.ones(8, 8, dtype=torch.bool), diagonal=1)
    cap = forward(model, {"input_ids": _ids(8)}, MaskPlan.of("none", model_causal=False).resolved())
    assert cap.masks[..., future].all()
    assert (cap.attention[..., future] > 0).all()


# ---------------------------------------------------------------------------------------------------------------
# Hard mode blocks exactly; naive multiply does not block
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ALL_IDS)
def test_hard_mode_rows_sum_to_one_and_blocked_cells_are_zero(minilm, strategy):
    from dynmask_core.modalities import encode_text

    x = encode_text(minilm, "The cat sat on the mat. It was happy there!")
    r = run(minilm, x, MaskPlan.of(strategy, seed=11))
    assert torch.all(r.attention[~r.masks] == 0)
    sums = r.attention.sum(-1)
    nonempty = r.masks.any(-1)
    assert torch.allclose(sums[nonempty], torch.ones_like(sums[nonempty]), atol=1e-5)
    assert torch.all(sums[~nonempty] == 0) and r.empty_rows == int((~nonempty).sum())
    assert not torch.isnan(r.attention).any()


def test_naive_multiply_leaves_weight_on_blocked_keys(minilm):
    from dynmask_core.modalities import encode_text

    x = encode_text(minilm, "The cat sat on the mat.")
    naive = run(minilm, x, MaskPlan.of("causal", mode="naive_multiply"))
    hard = run(minilm, x, MaskPlan.of("causal", mode="hard"))
    future = torch.triu(torch.ones_like(naive.masks[0, 0]), diagonal=1)
    assert naive.attention[..., future].min() > 0  # every blocked cell keeps some weight
    assert naive.attention[..., future].sum(-1).mean() > 0.1
    assert torch.all(hard.attention[..., future] == 0)


def test_layers_and_heads_outside_the_plan_keep_the_models_own_mask(minilm):
    from dynmask_core.modalities import encode_text

    x = encode_text(minilm, "Masks can apply to some layers and heads only.")
    r = run(minilm, x, MaskPlan.of("sliding_window", {"radius": 1}, layers=(0, 2), heads=(0, 1, 2, 3)))
    n = len(x.tokens)
    band = (torch.arange(n)[:, None] - torch.arange(n)[None, :]).abs() <= 1
    for layer in range(6):
        for head in range(12):
            expected = band if (layer in (0, 2) and head < 4) else torch.ones(n, n, dtype=torch.bool)
            assert torch.equal(r.masks[layer, head], expected), (layer, head)
    # layer 0 sees the same input in both runs: its unmasked heads are untouched, its masked heads are not
    assert torch.equal(r.attention[0, 4:], r.baseline_attention[0, 4:])
    assert not torch.equal(r.attention[0, :4], r.baseline_attention[0, :4])


def test_gqa_heads_are_query_heads():
    model = tiny.tiny_llama_gqa()  # 4 query heads, 2 key-value heads
    cap = forward(model, {"input_ids": _ids(6)}, MaskPlan.of("sliding_window", {"radius": 0}, heads=(3,)).resolved())
    assert cap.masks.shape == (2, 4, 6, 6)
    assert torch.equal(cap.masks[:, 3], torch.eye(6, dtype=torch.bool).expand(2, 6, 6))
    assert torch.equal(cap.masks[:, 0], torch.tril(torch.ones(6, 6, dtype=torch.bool)).expand(2, 6, 6))


# ---------------------------------------------------------------------------------------------------------------
# Dynamic strategies: reproducible from the seed, different without it
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("strategy", ["random_dynamic", "lsh", "kmeans"])
def test_dynamic_masks_reproduce_from_their_seed_and_vary_without(minilm, strategy):
    from dynmask_core.modalities import encode_text

    x = encode_text(minilm, "A dynamic mask is drawn anew on every run unless you give back its seed.")
    first = run(minilm, x, MaskPlan.of(strategy))  # seed drawn and recorded
    again = run(minilm, x, MaskPlan.of(strategy, seed=first.seed))
    assert torch.equal(first.masks, again.masks) and torch.equal(first.attention, again.attention)
    other = run(minilm, x, MaskPlan.of(strategy, seed=(first.seed + 1) % 1000))
    assert not torch.equal(first.masks, other.masks)


def test_static_random_is_the_same_for_every_run_and_input_prefix(minilm):
    from dynmask_core.modalities import encode_text

    a = run(minilm, encode_text(minilm, "one two three four five"), MaskPlan.of("random_static", {"p": 0.5}))
    b = run(minilm, encode_text(minilm, "one two three four five six seven"), MaskPlan.of("random_static", {"p": 0.5}))
    n = a.masks.shape[-1]
    assert torch.equal(a.masks, b.masks[..., :n, :n])


def test_random_dynamic_differs_across_layers_and_heads(minilm):
    from dynmask_core.modalities import encode_text

    r = run(minilm, encode_text(minilm, "layers and heads each get their own draw of the pattern"),
            MaskPlan.of("random_dynamic", {"p": 0.5}, seed=1))
    assert not torch.equal(r.masks[0, 0], r.masks[0, 1]) and not torch.equal(r.masks[0, 0], r.masks[1, 0])


# ---------------------------------------------------------------------------------------------------------------
# Isolation: two threads, two plans, one shared model
# ---------------------------------------------------------------------------------------------------------------


def test_two_threads_with_different_plans_each_get_what_they_would_alone(minilm):
    from dynmask_core.modalities import encode_text

    x = encode_text(minilm, "Two students run two different masks on one shared model at the same time.")
    plans = {"a": MaskPlan.of("sliding_window", {"radius": 1}), "b": MaskPlan.of("topk", {"k": 2}, seed=4),
             "c": MaskPlan.of("random_dynamic", seed=9)}
    alone = {k: run(minilm, x, p) for k, p in plans.items()}
    barrier = threading.Barrier(len(plans))
    got: dict[str, list] = {k: [] for k in plans}
    errors: list[BaseException] = []

    def worker(key: str) -> None:
        try:
            barrier.wait()
            for _ in range(6):
                got[key].append(run(minilm, x, plans[key]))
        except BaseException as err:  # noqa: BLE001
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(k,)) for k in plans]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for key, results in got.items():
        for r in results:
            assert torch.equal(r.masks, alone[key].masks)
            assert torch.equal(r.attention, alone[key].attention)
            assert r.metrics == alone[key].metrics


# ---------------------------------------------------------------------------------------------------------------
# Families that can't take a custom attention, bad plans
# ---------------------------------------------------------------------------------------------------------------


def test_unsupported_family_gets_a_clear_error(tmp_path):
    import transformers as tf

    from dynmask_core.models import load

    cfg = tf.DebertaV2Config(vocab_size=99, hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                             intermediate_size=37)
    tf.DebertaV2Model(cfg).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="cannot take a custom attention.*Not supported: DeBERTa"):
        load(str(tmp_path))
    with pytest.raises(ValueError, match="cannot take a custom attention"):
        attach(tf.DebertaV2Model(cfg))


def test_model_loaded_without_dynmask_attention_is_reported():
    model = tiny.eager_copy(tiny.tiny_bert())
    with pytest.raises(ValueError, match="did not route attention through the dynmask function"):
        forward(model, {"input_ids": _ids(4)}, IDENTITY_PLAN)


@pytest.mark.parametrize("plan, message", [
    (MaskPlan.of("sliding_window", {"radius": -1}), "radius must be an integer between 0 and 512"),
    (MaskPlan.of("no_such"), "unknown strategy 'no_such'"),
    (MaskPlan.of("topk", {"kk": 3}), "topk has no parameter 'kk'"),
    (MaskPlan.of("none", layers=(6,)), "layers must be between 0 and 5"),
    (MaskPlan.of("none", heads=(12,)), "heads must be between 0 and 11"),
    (MaskPlan.of("none", seed=-3), "seed must be between"),
])
def test_bad_plans_say_what_is_allowed(minilm, plan, message):
    from dynmask_core.modalities import encode_text

    with pytest.raises(ValueError, match=message):
        run(minilm, encode_text(minilm, "hello"), plan)


def test_bad_apply_mode_is_rejected():
    with pytest.raises(ValueError, match="mode must be one of hard, bias, gate, naive_multiply"):
        MaskPlan.of("causal", mode="multiply")


def test_a_seed_is_drawn_only_when_a_strategy_uses_it():
    assert MaskPlan.of("sliding_window").resolved().seed == 0
    assert MaskPlan.of("topk").resolved().seed == 0  # dynamic, but depends on the scores, not on a seed
    seeds = {MaskPlan.of("random_dynamic").resolved().seed for _ in range(5)}
    assert len(seeds) > 1
    composed = {MaskPlan.of("causal", compose=[("and", "lsh", None)]).resolved().seed for _ in range(5)}
    assert len(composed) > 1  # a composition with a seeded strategy gets fresh seeds too
    assert MaskPlan.of("random_dynamic", seed=42).resolved().seed == 42
