"""Tiny random models of several families, built from configs (no download), attention set to dynmask."""

from __future__ import annotations

import torch
import transformers as tf

from dynmask_core.engine import ATTN_IMPLEMENTATION


def _make(model_cls, config) -> torch.nn.Module:
    torch.manual_seed(0)
    config._attn_implementation = ATTN_IMPLEMENTATION
    model = model_cls(config).eval()
    model.set_attn_implementation(ATTN_IMPLEMENTATION)
    return model


def tiny_bert() -> torch.nn.Module:
    return _make(tf.BertModel, tf.BertConfig(vocab_size=99, hidden_size=32, num_hidden_layers=2,
                                              num_attention_heads=4, intermediate_size=37))


def tiny_gpt2() -> torch.nn.Module:
    return _make(tf.GPT2LMHeadModel, tf.GPT2Config(vocab_size=99, n_embd=32, n_layer=2, n_head=4, n_positions=256))


def tiny_llama_gqa() -> torch.nn.Module:
    return _make(tf.LlamaForCausalLM, tf.LlamaConfig(vocab_size=99, hidden_size=32, intermediate_size=37,
                                                      num_hidden_layers=2, num_attention_heads=4,
                                                      num_key_value_heads=2, max_position_embeddings=256))


def tiny_vit() -> torch.nn.Module:
    return _make(tf.ViTModel, tf.ViTConfig(image_size=16, patch_size=4, num_channels=3, hidden_size=32,
                                            num_hidden_layers=2, num_attention_heads=4, intermediate_size=37))


def tiny_wav2vec2() -> torch.nn.Module:
    return _make(tf.Wav2Vec2Model, tf.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
        conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=2, vocab_size=10))


def eager_copy(model: torch.nn.Module) -> torch.nn.Module:
    """The same weights with transformers' own eager attention (the reference)."""
    import copy

    ref = copy.deepcopy(model)
    ref.set_attn_implementation("eager")
    return ref
