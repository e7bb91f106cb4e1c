"""Audio input: the model's own feature extractor, one label per frame (its start time); recording files, the
bundled recordings, and the attribution space of a recording (its input features).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dynmask_core.modalities.base import (
    ASSETS,
    FileReader,
    Geometry,
    Modality,
    Prepared,
    Sample,
    file_loader,
    folder_samples,
    register_modality,
)
from dynmask_core.modalities.files import AUDIO_SUFFIXES, MAX_AUDIO_BYTES, MAX_RATE, MIN_RATE, read_audio
from dynmask_core.modalities.space import Space

MAX_SECONDS = 30.0  # longer clips are cut


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


def read_audio_file(data: bytes, name: str) -> AudioSource:
    """An audio file's bytes as a source (see :func:`~dynmask_core.modalities.files.read_audio`)."""
    wave, rate = read_audio(data, name)
    return AudioSource(wave, rate)


_SPEECH = ("en/hello_world", "en/counting", "en/quick_brown_fox", "fr/bonjour_monde", "es/hola_mundo")


def _real_speech() -> list[Sample]:
    """Real recorded speech from the ``pytest-audioeval`` wheel (MIT), when it is installed (``scripts/dev.sh``)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("pytest-audioeval")
    except metadata.PackageNotFoundError:
        return []
    out = []
    for name in _SPEECH:
        wav = Path(str(dist.locate_file(f"pytest_audioeval/samples/audio/{name}.wav")))
        text = wav.with_suffix(".txt")
        if wav.is_file():
            said = text.read_text("utf-8").strip() if text.is_file() else name
            out.append(Sample(f"speech-{name.replace('/', '-').replace('_', '-')}", "audio",
                              f"Real speech ({name[:2]}): \"{said[:40]}\"", "pytest-audioeval (MIT)",
                              file_loader(wav, read_audio_file)))
    return out


def bundled_recordings() -> list[Sample]:
    """Spoken keywords from the bundled keyword model's held-out voices, and real speech when it is installed."""
    return folder_samples(ASSETS / "samples" / "keywords", "audio", "spoken by espeak-ng (scripts/make_keywords.py)",
                          read_audio_file) + _real_speech()


def audio_space(loaded: Any, prepared: Prepared, inputs: Mapping[str, Tensor]) -> Space:
    """The model's input features: an AST log-mel spectrogram ``(1, frames, mel bins)`` or a waveform
    ``(1, samples)``; baseline 0. A position gets the sum over the cells it covers (a spectrogram cell goes to the
    patch whose stride window holds it, so every cell is counted once); a per-frame curve (mel bins summed) is kept.

    Raises:
        ValueError: features of another shape.
    """

    key = "input_values" if "input_values" in inputs else "input_features"
    values = inputs[key]
    rest = {k: v for k, v in inputs.items() if k != key}
    geometry = prepared.geometry
    prefix = int(geometry.prefix)
    n_positions = len(prepared.labels)
    if values.dim() == 3 and geometry.grid is not None:  # AST: (1, frames, mel bins), patches over both
        cfg = loaded.model.config
        rows, cols = geometry.grid
        frames, bins = values.shape[1], values.shape[2]
        ts, fs = int(cfg.time_stride), int(cfg.frequency_stride)
        t_col = torch.clamp(torch.arange(frames) // ts, max=cols - 1).view(-1, 1)
        f_row = torch.clamp(torch.arange(bins) // fs, max=rows - 1).view(1, -1)
        owner = prefix + f_row * cols + t_col  # (frames, bins)
        return Space(key, values.detach(), torch.zeros_like(values), rest, owner, n_positions, (ts, bins),
                     "audio", map_axes=(1,))
    if values.dim() == 2:  # a waveform (Wav2Vec2, HuBERT): samples -> frames
        samples = values.shape[1]
        frames = max(1, n_positions - prefix)
        per = max(1, samples // frames)
        owner = prefix + torch.clamp(torch.arange(samples) // per, max=frames - 1)
        return Space(key, values.detach(), torch.zeros_like(values), rest, owner, n_positions, (per,), "audio",
                     map_axes=None)
    raise ValueError(f"attribution does not know audio features shaped {tuple(values.shape)}")


register_modality(Modality(
    "audio", prepare_audio, ("input_values", "input_features"), "AutoFeatureExtractor", AudioSource,
    label="Audio", noun="recording", plural="recordings", upload_noun="a recording",
    cli_flag="--audio", cli_help="an audio file (WAV, FLAC, OGG, MP3)",
    reader=FileReader(AUDIO_SUFFIXES, MAX_AUDIO_BYTES, read_audio_file),
    samples=bundled_recordings, space=audio_space, overlay_name="frames", order=2))
