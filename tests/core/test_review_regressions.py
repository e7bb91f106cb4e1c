"""Regressions found by review: each failed before its fix."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
import transformers as tf

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.masks import get_strategy
from dynmask_core.modalities import AudioSource, ImageSource
from dynmask_core.modalities.files import read_audio
from dynmask_core.recipe import Recipe
from tests import ROOT


def test_absurd_sampling_rates_are_refused_before_any_resampling(tmp_path) -> None:
    buf = io.BytesIO()
    sf.write(buf, np.sin(np.arange(40_000) / 3).astype(np.float32), 1, format="WAV")  # 40,000 samples "at 1 Hz"
    with pytest.raises(ValueError, match="sampled at 1 Hz"):
        read_audio(buf.getvalue(), "bomb.wav")
    loaded = load("keywords_audio", device="cpu")
    with pytest.raises(ValueError, match="not a recording's"):
        encode(loaded, AudioSource(np.ones(40_000, np.float32), 1_000_003))


def test_w2v2_spans_refuses_a_model_that_would_ignore_them(tmp_path) -> None:
    torch.manual_seed(0)
    cfg = tf.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                            conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, vocab_size=10, num_labels=2, apply_spec_augment=False,
                            architectures=["Wav2Vec2ForSequenceClassification"])
    tf.Wav2Vec2ForSequenceClassification(cfg).save_pretrained(tmp_path)
    tf.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(tmp_path)
    loaded = load(str(tmp_path), device="cpu")
    prepared = encode(loaded, AudioSource(np.sin(np.arange(8000) / 5).astype(np.float32), 16000))
    with pytest.raises(ValueError, match="would ignore the spans"):
        run(loaded, prepared, MaskPlan.of("w2v2_spans", {"p": 0.5}, seed=1))


def test_clip_and_register_tokens_are_counted_and_named(tmp_path) -> None:
    torch.manual_seed(0)
    clip = tf.CLIPVisionConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                               image_size=32, patch_size=8, architectures=["CLIPVisionModel"])
    tf.CLIPVisionModel(clip).save_pretrained(tmp_path / "clip")
    tf.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(
        tmp_path / "clip")
    loaded = load(str(tmp_path / "clip"), device="cpu")
    prepared = encode(loaded, ImageSource(np.full((40, 40, 3), 120, np.uint8)))
    assert prepared.geometry.prefix == 1 and prepared.labels[:2] == ["CLS", "r0c0"] and len(prepared.labels) == 17
    result = run(loaded, prepared, MaskPlan.of("axial"))
    assert result.masks.shape[-1] == len(prepared.labels)
    regs = tf.Dinov2WithRegistersConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                                        intermediate_size=37, image_size=32, patch_size=8, num_register_tokens=4,
                                        architectures=["Dinov2WithRegistersModel"])
    tf.Dinov2WithRegistersModel(regs).save_pretrained(tmp_path / "regs")
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path / "regs")
    loaded = load(str(tmp_path / "regs"), device="cpu")
    prepared = encode(loaded, ImageSource(np.full((32, 32, 3), 90, np.uint8)))
    assert prepared.labels[:6] == ["CLS", "REG0", "REG1", "REG2", "REG3", "r0c0"]


def test_very_short_pictures_are_read_channels_last(tmp_path) -> None:
    loaded = load("shapes_vit", device="cpu")
    stripe = np.zeros((3, 60, 3), np.uint8)
    stripe[:, :30] = 255  # left half white
    pixels = encode(loaded, ImageSource(stripe)).inputs["pixel_values"][0]
    assert pixels[:, :, :12].mean() > pixels[:, :, -12:].mean() + 1.0  # still left-bright after resizing
    encode(loaded, ImageSource(np.full((1, 1, 3), 200, np.uint8)))  # a single pixel is a (tiny) picture too


def test_the_core_link_reader_never_raises_on_a_bad_page() -> None:
    recipe, warnings = Recipe.from_query_params({"page": "Bad Page"})
    assert recipe.page == "playground" and any("Unknown page" in w for w in warnings)


@pytest.mark.parametrize("path", ["/dev/zero", "~nosuchuser/x.png", "/"])
def test_odd_file_arguments_are_one_line(tmp_path, path: str) -> None:
    out = subprocess.run([sys.executable, "-m", "dynmask_core", "run", "--image", path, "--out", str(tmp_path)],
                         cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True,
                         timeout=300)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and "not a readable file" in lines[0], out.stderr


def test_input_masks_block_no_attention() -> None:
    for sid in ("mae_patches", "beit_blocks", "specaugment", "w2v2_spans"):
        assert get_strategy(sid).hide is not None and get_strategy(sid).kind == "dynamic"
