"""Reading user files (uploads, command-line paths) into arrays, with limits and a clear message for bad ones.

Images: PNG, JPEG, WebP, BMP, GIF (first frame); EXIF orientation honoured; RGBA, palette and greyscale converted to
RGB. Audio: WAV, FLAC, OGG, MP3 (libsndfile via ``soundfile``), down-mixed to mono. A corrupt, truncated, empty or
mislabelled file (a text file named .png) raises ``ValueError`` saying what to do, never anything else.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np

from dynmask_core.messages import shown

MAX_IMAGE_BYTES = 20 * 2**20  # 20 MB
MAX_PIXELS = 40_000_000  # width x height; a larger picture is refused (decompression bombs)
MAX_AUDIO_BYTES = 30 * 2**20  # 30 MB
MIN_AUDIO_SECONDS = 0.1
SILENCE = 1e-4  # a clip whose loudest sample is below this is silent
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp", "bmp", "gif")
AUDIO_SUFFIXES = ("wav", "flac", "ogg", "mp3")


def read_bytes(path: str | Path, limit: int) -> bytes:
    """A file's bytes, or ValueError (missing, a folder, too large), without echoing more than the name."""
    try:
        p = Path(path).expanduser()
        ok = p.is_file()
    except (OSError, RuntimeError):  # "~nouser/...", a name too long for a path
        ok = False
    if not ok:
        raise ValueError(f"{shown(str(path))} is not a readable file")
    if p.stat().st_size > limit:
        raise ValueError(f"{shown(p.name)} is larger than {limit // 2**20} MB: use a smaller file")
    return p.read_bytes()


def _checked(data: bytes, name: str, limit: int, wanted: str, smaller: str) -> str:
    """The file's name for messages, after refusing an empty or too large file."""
    label = shown(name)
    if not data:
        raise ValueError(f"{label} is empty: upload {wanted}")
    if len(data) > limit:
        raise ValueError(f"{label} is larger than {limit // 2**20} MB: use {smaller}")
    return label


def read_image(data: bytes, name: str = "the image") -> np.ndarray:
    """Decodes an image file to ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: empty, too large, too many pixels, not an image, corrupt or truncated.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    label = _checked(data, name, MAX_IMAGE_BYTES, "a PNG, JPEG, WebP, BMP or GIF picture", "a smaller picture")
    try:
        with Image.open(io.BytesIO(data)) as img:
            if img.format not in IMAGE_FORMATS:
                raise ValueError(f"{label} is a {img.format} file: use PNG, JPEG, WebP, BMP or GIF")
            if img.width * img.height > MAX_PIXELS:
                raise ValueError(f"{label} has {img.width} x {img.height} pixels, more than "
                                 f"{MAX_PIXELS // 1_000_000} million: use a smaller picture")
            img.seek(0)  # a GIF: its first frame
            img = ImageOps.exif_transpose(img)
            return np.asarray(img.convert("RGB"), dtype=np.uint8).copy()
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, Image.DecompressionBombError) as err:
        kind = "truncated or corrupt" if isinstance(err, OSError) and "truncated" in str(err).lower() else \
            "not a picture this app can read (or it is corrupt)"
        raise ValueError(f"{label} is {kind}: upload a PNG, JPEG, WebP, BMP or GIF picture") from None


def read_audio(data: bytes, name: str = "the audio") -> tuple[np.ndarray, int]:
    """Decodes an audio file to a mono float32 waveform and its sampling rate.

    Raises:
        ValueError: empty, too large, not audio, corrupt, or with no samples.
    """
    import soundfile as sf

    label = _checked(data, name, MAX_AUDIO_BYTES, "a WAV, FLAC, OGG or MP3 recording", "a shorter recording")
    try:
        wave, rate = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (RuntimeError, TypeError, ValueError, sf.LibsndfileError):  # libsndfile's "format not recognised"
        raise ValueError(f"{label} is not a recording this app can read (or it is corrupt): upload WAV, FLAC, OGG "
                         "or MP3") from None
    if not 4_000 <= int(rate) <= 192_000:
        raise ValueError(f"{label} says it was sampled at {rate} Hz: a recording has 4,000-192,000 Hz")
    mono = wave.mean(axis=1).astype(np.float32)
    seconds = mono.size / max(int(rate), 1)
    if seconds < MIN_AUDIO_SECONDS:
        raise ValueError(f"{label} lasts {seconds:.2f} s: record or upload at least {MIN_AUDIO_SECONDS} s")
    if not np.isfinite(mono).all() or float(np.abs(mono).max()) < SILENCE:
        raise ValueError(f"{label} is silent: check the microphone, or upload a recording with speech in it")
    return mono, int(rate)


def load_file(path: str | Path, kind: str, data: bytes | None = None) -> Any:
    """A source for :func:`~dynmask_core.modalities.encode` from a file path (the command line); ``data`` are its
    bytes when already read."""
    from dynmask_core.modalities.audio import AudioSource
    from dynmask_core.modalities.image import ImageSource

    if kind == "image":
        return ImageSource(read_image(data if data is not None else read_bytes(path, MAX_IMAGE_BYTES), Path(path).name))
    if kind == "audio":
        wave, rate = read_audio(data if data is not None else read_bytes(path, MAX_AUDIO_BYTES), Path(path).name)
        return AudioSource(wave, rate)
    raise ValueError(f"files of kind {kind!r} are not read here; give text with --text")
