"""Reading uploads and command-line files: every image and audio format, and every kind of bad file."""

from __future__ import annotations

import io

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from dynmask_core.modalities.audio import resample
from dynmask_core.modalities.files import MAX_PIXELS, read_audio, read_image


def _encoded(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


PICTURE = Image.fromarray((np.arange(24 * 40 * 3) % 251).astype(np.uint8).reshape(24, 40, 3))


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "BMP", "GIF"])
def test_every_image_format_reads_as_rgb(fmt: str) -> None:
    out = read_image(_encoded(PICTURE, fmt), f"x.{fmt.lower()}")
    assert out.shape == (24, 40, 3) and out.dtype == np.uint8


@pytest.mark.parametrize("mode", ["RGBA", "P", "L", "LA", "1"])
def test_other_colour_modes_are_converted(mode: str) -> None:
    assert read_image(_encoded(PICTURE.convert(mode), "PNG")).shape == (24, 40, 3)


def test_exif_orientation_is_honoured() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = read_image(_encoded(PICTURE, "JPEG", exif=exif.tobytes()))
    assert out.shape == (40, 24, 3)


def test_a_gif_gives_its_first_frame() -> None:
    frames = [Image.new("RGB", (8, 8), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = read_image(buf.getvalue())
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty"),
    (b"this is a text file, not a picture", "not a picture"),
    (_encoded(PICTURE, "PNG")[:60], "truncated or corrupt|not a picture"),
    (_encoded(PICTURE, "TIFF"), "is a TIFF file"),
])
def test_bad_image_files_get_a_message(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_image(data, "upload.png")


def test_too_many_pixels_is_refused_before_decoding() -> None:
    side = int(MAX_PIXELS**0.5) + 10
    big = _encoded(Image.new("1", (side, side)), "PNG")  # a small file with a huge canvas
    with pytest.raises(ValueError, match="million"):
        read_image(big, "bomb.png")


def _tone(seconds: float = 0.5, rate: int = 16000, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 440 * t).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


@pytest.mark.parametrize(("fmt", "subtype"), [("WAV", "PCM_16"), ("FLAC", "PCM_16"), ("OGG", "VORBIS"),
                                              ("MP3", "MPEG_LAYER_III")])
def test_every_audio_format_reads_as_mono(fmt: str, subtype: str) -> None:
    buf = io.BytesIO()
    sf.write(buf, _tone(channels=2), 16000, format=fmt, subtype=subtype)
    wave, rate = read_audio(buf.getvalue(), f"x.{fmt.lower()}")
    assert rate == 16000 and wave.ndim == 1 and abs(wave.size - 8000) < 2000


def _wav(wave: np.ndarray, rate: int = 16000) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format="WAV")
    return buf.getvalue()


@pytest.mark.parametrize(("data", "message"), [
    (b"", "is empty"),
    (b"RIFF....WAVEfmt this is not really audio", "not a recording"),
    (_encoded(PICTURE, "PNG"), "not a recording"),  # a picture named .wav
    (_wav(np.zeros(16000, np.float32)), "is silent"),
    (_wav(_tone(0.02)), "at least 0.1 s"),
])
def test_bad_audio_files_get_a_message(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_audio(data, "clip.wav")


def test_resampling_keeps_duration_and_pitch() -> None:
    wave = _tone(1.0, rate=44100)
    out = resample(wave, 44100, 16000)
    assert out.size == 16000
    spectrum = np.abs(np.fft.rfft(out))
    assert abs(np.argmax(spectrum) * 16000 / out.size - 440) < 2
