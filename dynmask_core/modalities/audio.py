"""Audio input: the model's own feature extractor, one label per frame (its start time)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from dynmask_core.modalities.base import Geometry, Modality, Prepared, register_modality

MAX_SECONDS = 30.0  # longer clips are cut
MIN_RATE, MAX_RATE = 4_000, 192_000  # sampling rates (Hz) a recording may have


@dataclass(frozen=True)
class AudioSource:
    """A mono waveform ``(N,)`` float in [-1, 1] and its sampling rate in Hz."""

    waveform: Any
    sampling_rate: int
    kind: str = field(default="audio", init=False)


def prepare_audio(loaded: Any, source: AudioSource) -> Prepared:
    """Turns a waveform into the model's input with frame times for the views.

    Raises:
        ValueError: no feature extractor, a wrong sampling rate, or an empty / non-finite waveform.
    """
    extractor = loaded.processor
    if extractor is None:
        raise ValueError(f"{loaded.id} has no feature extractor: it does not take audio input.")
    wave = np.asarray(source.waveform, dtype=np.float32)
    if wave.ndim == 2:  # (N, channels) -> mono
        wave = wave.mean(axis=1)
    if wave.ndim != 1 or wave.size == 0 or not np.isfinite(wave).all():
        raise ValueError("the audio must be a non-empty mono waveform of finite numbers")
    rate = int(getattr(extractor, "sampling_rate", source.sampling_rate))
    given = int(source.sampling_rate)
    if not MIN_RATE <= given <= MAX_RATE:
        raise ValueError(f"a sampling rate of {given} Hz is not a recording's: use {MIN_RATE}-{MAX_RATE} Hz")
    n_before = round(wave.size * rate / given)
    wave = wave[: int(MAX_SECONDS * given)]  # cut first: resampling a long clip would cost the server memory
    if given != rate:
        wave = resample(wave, given, rate)
    features = extractor(wave, sampling_rate=rate, return_tensors="pt")
    inputs = {k: v.to(loaded.device) for k, v in features.items() if k in ("input_values", "input_features")}
    patches = _spectrogram_patches(loaded.model)
    if patches is not None:  # AST: a grid of (frequency x time) patches of a fixed-length log-mel spectrogram
        (rows, cols), seconds, prefix, max_frames = patches
        labels = ["CLS", "DIST"][:prefix] + [f"f{r}·{c * seconds:.2f}s" for r in range(rows) for c in range(cols)]
        frames = 1 + max(0, wave.size - int(0.025 * rate)) // int(FRAME_SHIFT_S * rate)  # 25 ms windows, 10 ms hop
        return Prepared("audio", inputs, labels, None, Geometry((rows, cols), prefix, seconds),
                        truncated=frames > max_frames or wave.size < n_before, n_before=len(labels))
    frames = _frames(loaded.model, wave.size)
    seconds = wave.size / rate / max(1, frames)
    labels = [f"{i * seconds:.2f}s" for i in range(frames)]
    return Prepared("audio", inputs, labels, None, Geometry(seconds_per_frame=seconds),
                    truncated=wave.size < n_before, n_before=frames)


register_modality(Modality("audio", prepare_audio, ("input_values", "input_features"), "AutoFeatureExtractor"))


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """``wave`` at ``rate`` Hz resampled to ``target`` Hz (polyphase filter).

    Raises:
        ValueError: a rate that is not a positive number of Hz.
    """
    if rate <= 0 or target <= 0:
        raise ValueError(f"a sampling rate must be positive, got {rate} Hz")
    from math import gcd

    from scipy.signal import resample_poly

    g = gcd(rate, target)
    return resample_poly(wave, target // g, rate // g).astype(np.float32)


FRAME_SHIFT_S = 0.01  # the 10 ms hop of the Kaldi-style filter banks AST is trained on


def _spectrogram_patches(model: Any) -> tuple[tuple[int, int], float, int, float] | None:
    """For AST-style models: ((frequency rows, time columns), seconds per column, prefix tokens, spectrogram frames
    it takes); None for frame models (Wav2Vec2, HuBERT)."""
    cfg = getattr(model, "config", None)
    if cfg is None or not hasattr(cfg, "time_stride") or not hasattr(cfg, "frequency_stride"):
        return None
    patch = int(cfg.patch_size)
    rows = (int(cfg.num_mel_bins) - patch) // int(cfg.frequency_stride) + 1
    cols = (int(cfg.max_length) - patch) // int(cfg.time_stride) + 1
    return (rows, cols), int(cfg.time_stride) * FRAME_SHIFT_S, 2, int(cfg.max_length)


def _frames(model: Any, n_samples: int) -> int:
    """Frames the model's feature encoder makes from ``n_samples`` (convolution arithmetic, no forward pass)."""
    lengths = getattr(model, "_get_feat_extract_output_lengths", None)
    if lengths is None:
        base = getattr(model, getattr(model, "base_model_prefix", ""), None)
        lengths = getattr(base, "_get_feat_extract_output_lengths", None)
    if lengths is None:
        raise ValueError(f"{type(model).__name__} does not say how many frames its encoder makes")
    return int(lengths(torch.tensor(n_samples)))
