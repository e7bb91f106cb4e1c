"""Gradients through a masked model: ``applied`` works outside ``inference_mode`` (what attribution needs)."""

from __future__ import annotations

import torch

from dynmask_core.attention import applied
from dynmask_core.masks import MaskPlan
from tests.core.tiny_models import tiny_bert

GRID = torch.tensor([[5, 17, 42, 8, 23, 64, 3]])


def _embeddings_grad(model: torch.nn.Module, ids: torch.Tensor, plan: MaskPlan, position: int) -> torch.Tensor:
    """d(sum of the output at ``position``) / d(input embeddings), under ``plan``: ``(T, D)``."""
    embeds = model.get_input_embeddings()(ids).detach().requires_grad_(True)
    with applied(model, plan.resolved()) as ctx:
        out = model(inputs_embeds=embeds, attention_mask=torch.ones_like(ids)).last_hidden_state
    assert ctx.layer_of, "the masked attention must have run"
    _probe(out[0, position]).backward()
    return embeds.grad[0]


def _probe(hidden: torch.Tensor) -> torch.Tensor:
    """A fixed random projection of a hidden state (a plain sum of a LayerNorm output is constant)."""
    weights = torch.randn(hidden.shape[-1], generator=torch.Generator().manual_seed(0))
    return (hidden * weights).sum()


def test_gradients_flow_and_blocked_keys_get_exactly_zero() -> None:
    model = tiny_bert()
    unmasked = _embeddings_grad(model, GRID, MaskPlan.of("none"), position=3)
    assert torch.isfinite(unmasked).all() and (unmasked.abs().sum(dim=-1) > 0).all()  # every token matters
    # radius 0 in every layer: position 3 attends only to itself, so no other token reaches its output
    diagonal = _embeddings_grad(model, GRID, MaskPlan.of("sliding_window", {"radius": 0}), position=3)
    others = torch.cat([diagonal[:3], diagonal[4:]])
    assert torch.count_nonzero(others) == 0 and diagonal[3].abs().sum() > 0


def test_gradient_through_one_layer_respects_its_window() -> None:
    """Masked in layer 0 only, with radius 1: after one layer only keys 2..4 reach query 3's attention output."""
    model = tiny_bert()
    attention = model.encoder.layer[0].attention.self
    seen: dict[str, torch.Tensor] = {}

    def keep_output(module, args, output):
        seen["out"] = output[0]

    handle = attention.register_forward_hook(keep_output)
    try:
        embeds = model.get_input_embeddings()(GRID).detach().requires_grad_(True)
        with applied(model, MaskPlan.of("sliding_window", {"radius": 1}, layers=(0,)).resolved()):
            model(inputs_embeds=embeds, attention_mask=torch.ones_like(GRID))
        _probe(seen["out"][0, 3]).backward()
    finally:
        handle.remove()
    per_token = embeds.grad[0].abs().sum(dim=-1)
    assert torch.count_nonzero(per_token[[0, 1, 5, 6]]) == 0
    assert (per_token[[2, 3, 4]] > 0).all()


def test_gradients_through_a_dynamic_mask_and_the_real_model(minilm) -> None:
    """top-k picks keys from the scores (no gradient through the choice), the kept keys carry gradient."""
    from dynmask_core.modalities import encode_text

    prepared = encode_text(minilm, "The film was surprisingly good.")
    ids = prepared.inputs["input_ids"]
    embeds = minilm.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    with applied(minilm.model, MaskPlan.of("topk", {"k": 2}).resolved()):
        out = minilm.model(inputs_embeds=embeds, attention_mask=prepared.inputs["attention_mask"])
    out.last_hidden_state[0, 0].sum().backward()
    assert torch.isfinite(embeds.grad).all() and embeds.grad.abs().sum() > 0
    # the causal mask inside the real model: the first token's output depends on no later token
    embeds = minilm.model.get_input_embeddings()(ids).detach().requires_grad_(True)
    with applied(minilm.model, MaskPlan.of("causal").resolved()):
        out = minilm.model(inputs_embeds=embeds, attention_mask=prepared.inputs["attention_mask"])
    out.last_hidden_state[0, 0].sum().backward()
    assert torch.count_nonzero(embeds.grad[0, 1:]) == 0 and embeds.grad[0, 0].abs().sum() > 0


def test_outside_applied_the_model_is_plain_eager() -> None:
    model = tiny_bert()
    with torch.no_grad():
        plain = model(input_ids=GRID).last_hidden_state
        with applied(model, MaskPlan.of("none").resolved()):
            inside = model(input_ids=GRID).last_hidden_state
    assert torch.allclose(plain, inside, atol=1e-6)
