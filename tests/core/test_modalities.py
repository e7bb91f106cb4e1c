"""The prepared-input protocol: one ``encode`` for text, images and audio, safe when sessions share a model."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch
import transformers as tf

from dynmask_core import MaskPlan, encode, load, run
from dynmask_core.modalities import AudioSource, ImageSource, TextSource


@pytest.fixture(scope="module")
def tiny_vit_folder(tmp_path_factory) -> str:
    """A tiny ViT image classifier with its image processor, saved like a Hub checkpoint."""
    folder = tmp_path_factory.mktemp("vit")
    torch.manual_seed(0)
    cfg = tf.ViTConfig(image_size=32, patch_size=8, num_channels=3, hidden_size=32, num_hidden_layers=2,
                       num_attention_heads=4, intermediate_size=37, id2label={0: "circle", 1: "square"},
                       label2id={"circle": 0, "square": 1}, architectures=["ViTForImageClassification"])
    tf.ViTForImageClassification(cfg).save_pretrained(folder)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def tiny_w2v2_folder(tmp_path_factory) -> str:
    """A tiny Wav2Vec2 audio classifier with its feature extractor."""
    folder = tmp_path_factory.mktemp("w2v2")
    torch.manual_seed(0)
    cfg = tf.Wav2Vec2Config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                            conv_dim=(8, 8), conv_stride=(5, 4), conv_kernel=(10, 8), num_conv_pos_embeddings=16,
                            num_conv_pos_embedding_groups=2, vocab_size=10, num_labels=3,
                            architectures=["Wav2Vec2ForSequenceClassification"])
    tf.Wav2Vec2ForSequenceClassification(cfg).save_pretrained(folder)
    tf.Wav2Vec2FeatureExtractor(sampling_rate=16000).save_pretrained(folder)
    return str(folder)


def test_text_goes_through_encode(minilm) -> None:
    prepared = encode(minilm, TextSource("The cat sat. The dog ran."))
    assert prepared.kind == "text" and prepared.labels[0] == "[CLS]" and prepared.segment_ids.max() == 1
    assert encode(minilm, TextSource("word " * 40, max_tokens=8)).truncated


def test_a_text_model_asked_for_an_image_says_so(minilm) -> None:
    with pytest.raises(ValueError, match="minilm is a text model: it cannot take image input"):
        encode(minilm, ImageSource(np.zeros((8, 8, 3), np.uint8)))


def test_image_input_carries_its_patch_grid(tiny_vit_folder) -> None:
    loaded = load(tiny_vit_folder, device="cpu")
    assert (loaded.modality, loaded.task, loaded.labels) == ("image", "classifier", ("circle", "square"))
    picture = (np.arange(40 * 50 * 3) % 251).astype(np.uint8).reshape(40, 50, 3)  # resized to 32 x 32
    prepared = encode(loaded, ImageSource(picture))
    assert prepared.geometry.grid == (4, 4) and prepared.geometry.prefix == 1
    assert prepared.labels[:2] == ["CLS", "r0c0"] and prepared.labels[-1] == "r3c3"
    result = run(loaded, prepared, MaskPlan.of("sliding_window", {"radius": 1}))
    assert result.kind == "image" and result.masks.shape == (2, 4, 17, 17)
    assert set(result.outputs["probs"]) == {"circle", "square"} and result.metrics["kl"] >= 0
    with pytest.raises(ValueError, match="height, width, channels"):
        encode(loaded, ImageSource(np.zeros((4,), np.uint8)))
    with pytest.raises(ValueError, match="image model: it cannot take text input"):
        encode(loaded, TextSource("hello"))


def test_audio_input_carries_seconds_per_frame(tiny_w2v2_folder) -> None:
    loaded = load(tiny_w2v2_folder, device="cpu")
    assert (loaded.modality, loaded.task) == ("audio", "classifier")
    t = np.arange(8000) / 16000
    prepared = encode(loaded, AudioSource(np.sin(2 * np.pi * 440 * t).astype(np.float32), 16000))
    frames = len(prepared.labels)
    assert frames == (((8000 - 10) // 5 + 1) - 8) // 4 + 1  # the two convolutions' arithmetic
    assert prepared.geometry.seconds_per_frame == pytest.approx(0.5 / frames)
    result = run(loaded, prepared, MaskPlan.of("causal"))
    assert result.kind == "audio" and result.masks.shape[-1] == frames
    assert result.geometry_dict() == {"frames": frames, "seconds_per_frame": pytest.approx(0.5 / frames),
                                      "prefix": 0}  # a frame model: the first position is the first frame
    resampled = encode(loaded, AudioSource(np.sin(np.arange(4000) / 3).astype(np.float32), 8000))  # to 16 kHz
    assert len(resampled.labels) == (((8000 - 10) // 5 + 1) - 8) // 4 + 1
    with pytest.raises(ValueError, match="non-empty mono waveform"):
        encode(loaded, AudioSource(np.array([np.nan], np.float32), 16000))


def test_concurrent_encoding_equals_encoding_alone(minilm) -> None:
    """The tokenizer is shared by every session and keeps truncation state between calls: encoding must be safe
    when threads encode short and over-long texts at once (before the fix some calls returned other ids)."""
    texts = ["The film was good.", "word " * 700, "Another short one, with a comma.", "long text " * 400]
    alone = {t: encode(minilm, TextSource(t)) for t in texts}

    def check(i: int) -> bool:
        t = texts[i % len(texts)]
        got, want = encode(minilm, TextSource(t)), alone[t]
        return torch.equal(got.inputs["input_ids"], want.inputs["input_ids"]) and got.truncated == want.truncated

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(check, range(400)))
    assert all(outcomes), f"{outcomes.count(False)} of 400 concurrent encodings differed from encoding alone"


def test_spectrogram_patches_of_an_ast(tmp_path) -> None:
    """AST: a fixed-length log-mel spectrogram cut into frequency x time patches, after CLS and distillation."""
    torch.manual_seed(0)
    cfg = tf.ASTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                       patch_size=16, frequency_stride=16, time_stride=16, num_mel_bins=32, max_length=64,
                       num_labels=2, architectures=["ASTForAudioClassification"])
    tf.ASTForAudioClassification(cfg).save_pretrained(tmp_path)
    tf.ASTFeatureExtractor(num_mel_bins=32, max_length=64, sampling_rate=16000).save_pretrained(tmp_path)
    loaded = load(str(tmp_path), device="cpu")
    assert (loaded.modality, loaded.task) == ("audio", "classifier")
    t = np.arange(12000) / 22050  # another rate: resampled to the extractor's 16 kHz
    prepared = encode(loaded, AudioSource(np.sin(2 * np.pi * 300 * t).astype(np.float32), 22050))
    assert prepared.geometry.grid == (2, 4) and prepared.geometry.prefix == 2
    assert prepared.geometry.seconds_per_frame == pytest.approx(0.16)
    result = run(loaded, prepared, MaskPlan.of("sliding_window", {"radius": 2}))
    assert result.masks.shape == (2, 4, 10, 10)
    assert result.geometry_dict() == {"frames": 4, "seconds_per_frame": pytest.approx(0.16), "grid": [2, 4],
                                      "cls": True, "prefix": 2}  # CLS and DIST: "cls" alone could not say 2


@pytest.mark.parametrize(("config", "model", "prefix"), [
    (tf.DeiTConfig, tf.DeiTForImageClassificationWithTeacher, 2),
    (tf.BeitConfig, tf.BeitForImageClassification, 1),
    (tf.Dinov2Config, tf.Dinov2ForImageClassification, 1),
], ids=["deit-distilled", "beit", "dinov2"])
def test_other_image_classifier_families(tmp_path, config, model, prefix) -> None:
    """Hugging Face image classifiers of other families load as classifiers, with their prefix tokens counted."""
    torch.manual_seed(0)
    model(config(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37, image_size=32,
                 patch_size=8, num_labels=3, architectures=[model.__name__])).save_pretrained(tmp_path)
    tf.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(tmp_path)
    loaded = load(str(tmp_path), device="cpu")
    assert loaded.task == "classifier" and type(loaded.model) is model
    prepared = encode(loaded, ImageSource((np.arange(40 * 40 * 3) % 251).astype(np.uint8).reshape(40, 40, 3)))
    assert prepared.geometry.grid == (4, 4) and prepared.geometry.prefix == prefix
    result = run(loaded, prepared, MaskPlan.of("neighborhood2d", {"radius": 0}))
    assert result.masks.shape[-1] == prefix + 16 and len(result.outputs["probs"]) == 3
    assert float((result.attention - result.baseline_attention).abs().max()) > 0.01
