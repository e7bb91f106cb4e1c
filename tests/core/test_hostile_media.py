"""Hostile pictures and recordings (issue 20, classes 1, 2, 10 and 11), for ``dynmask_core.modalities.files``.

The contract: every bad file is refused with one ``ValueError`` line that says what is wrong and what to do; never
another exception, a traceback, a path of the server or a library's advice, and nothing printed on stderr. The
command line turns that line into ``error: ...`` and exit status 2.

- class 1, decompression bombs: a small file that decodes to too much is refused from its header, before decoding,
  or (a header that hides its length) as soon as the decoded sound passes the bound;
- class 2, headers that lie: a FLAC claiming 2**36 samples, a PNG claiming 100000 x 100000 pixels, zero channels,
  absurd sampling rates, truncated files;
- class 10, read errors: /proc/self/mem, devices, a folder, a pipe, a /proc file larger than its stat size;
- class 11, library noise: Pillow's DecompressionBombWarning and EXIF warnings, libmpg123's complaints about a
  garbage MP3 (it writes to file descriptor 2), which also must not make a garbage file "silent".

Every hostile file is made here, in memory or in ``tmp_path``.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import threading
import tracemalloc
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from PIL import Image

from dynmask_core import cli
from dynmask_core.modalities import files
from dynmask_core.modalities.files import read_audio, read_bytes, read_image
from tests import ROOT

# words that must never reach the user: a traceback, a library's advice or internals, paths of the server
FORBIDDEN = ("Traceback", "allow_pickle", "/work", "/tmp", "/root", "/usr", "/proc", "/dev", "site-packages",
             "Errno", "libsndfile", "libmpg123", "MemoryError", "Unable to allocate", "DecompressionBomb", "PIL")


def refused(call, *args, words: tuple[str, ...] = ()) -> str:
    """Calls ``call(*args)``; asserts a one-line ValueError holding ``words`` and nothing forbidden; returns it."""
    with pytest.raises(ValueError) as err:
        call(*args)
    assert type(err.value) is ValueError, type(err.value)
    message = str(err.value)
    assert message and "\n" not in message and "\r" not in message and len(message) < 300, message
    for w in FORBIDDEN:
        assert w not in message, (w, message)
    for w in words:
        assert w in message, (w, message)
    return message


# ----------------------------------------------------------------------------------------------------------------
# making hostile files
# ----------------------------------------------------------------------------------------------------------------


def _tone(frames: int, channels: int = 1) -> np.ndarray:
    wave = (0.3 * np.sin(np.arange(frames) / 5)).astype(np.float32)
    return np.stack([wave] * channels, axis=1) if channels > 1 else wave


def _sound(wave: np.ndarray, rate: int = 16000, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wave, rate, format=fmt, subtype=subtype)
    return buf.getvalue()


def _constant_flac(frames: int, channels: int, rate: int = 16000) -> bytes:
    """A FLAC of constant frames: a few bytes a second, however long (the issue's bomb, at any size)."""
    buf = io.BytesIO()
    with sf.SoundFile(buf, "w", rate, channels, format="FLAC", subtype="PCM_16") as f:
        block = np.full((65536, channels), 0.25, np.float32)
        for start in range(0, frames, len(block)):
            f.write(block[: min(len(block), frames - start)])
    return buf.getvalue()


def _flac_total(data: bytes, total: int) -> bytes:
    """``data`` with STREAMINFO's 36-bit total-samples field set to ``total`` (0: "unknown")."""
    assert data[:4] == b"fLaC" and data[4] & 0x7F == 0  # STREAMINFO comes first
    field = int.from_bytes(data[18:26], "big") & ~((1 << 36) - 1) | total
    return data[:18] + field.to_bytes(8, "big") + data[26:]


def _wav_field(data: bytes, chunk: bytes, offset: int, fmt: str, value: int) -> bytes:
    """``data`` with the field at ``offset`` in the WAV chunk ``chunk`` (counted from its id) set to ``value``."""
    at = data.find(chunk) + offset
    return data[:at] + struct.pack(fmt, value) + data[at + struct.calcsize(fmt):]


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _png(width: int, height: int, depth: int = 8, colour: int = 6, rows: bool = True) -> bytes:
    """A valid single-colour PNG (compressed row by row: a 100-megapixel one is a few hundred KB), or with
    ``rows=False`` just a header that claims the size."""
    packer = zlib.compressobj(9)
    if rows:
        row = b"\0" + b"\x40" * ((width * depth * {0: 1, 2: 3, 6: 4}[colour] + 7) // 8)
        body = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    else:
        body = packer.flush()
    header = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", body)
            + _png_chunk(b"IEND", b""))


def _encoded(img: Image.Image, fmt: str, **kw) -> bytearray:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return bytearray(buf.getvalue())


def _sized(fmt: str, width: int, height: int) -> bytes:
    """A small picture whose header is patched to claim ``width`` x ``height``."""
    small = Image.new("RGB", (16, 16), (10, 200, 30))
    if fmt == "GIF":
        data = _encoded(small.convert("P"), "GIF")
        data[6:10] = struct.pack("<HH", width, height)  # the logical screen
    elif fmt == "BMP":
        data = _encoded(small, "BMP")
        data[18:26] = struct.pack("<ii", width, height)
    elif fmt == "JPEG":
        data = _encoded(small, "JPEG")
        sof = data.find(b"\xff\xc0")
        data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    else:  # an animated WebP: its canvas may be larger than its frames
        frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
        data = _encoded(frames[0], "WEBP", save_all=True, append_images=frames[1:], lossless=True)
        data[24:30] = (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return bytes(data)


BIG_PNG = _png(10000, 10000, depth=1, colour=0)  # 100 megapixels in 15 KB: past Pillow's warning limit

MPEG1 = (b"\xff\xfb\x90\x64", 417)  # MPEG-1 layer III, 128 kbit/s, 44.1 kHz: header and frame length
MPEG2 = (b"\xff\xf3\x88\xc4", 144)  # MPEG-2 layer III, 64 kbit/s, 16 kHz


def _noise(size: int, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes()


def _framed_garbage(header: tuple[bytes, int], frames: int, seed: int = 0) -> bytes:
    """Valid MPEG frame headers, each followed by random bytes: a chain the decoder "plays" with dozens of errors."""
    head, length = header
    return b"".join(head + _noise(length - 4, seed + i) for i in range(frames))


def _id3(body: bytes, size: int = 64) -> bytes:
    """An ID3v2.3 tag of ``size`` bytes (zeros) before ``body``."""
    return b"ID3\x03\x00\x00" + bytes([(size >> s) & 0x7F for s in (21, 14, 7, 0)]) + b"\0" * size + body


GARBAGE_MP3 = {
    "random": _noise(50_000, 1),  # libmpg123 tries it, complains, and gives up
    "sync-then-random": MPEG1[0] + _noise(200_000, 2),
    "id3-then-random": _id3(_noise(60_000, 3)),
    "id3-sync-then-random": _id3(MPEG1[0] + _noise(60_000, 4)),
    "frames-of-random-5": _framed_garbage(MPEG1, 5),  # decoded to silence: was "is silent"
    "frames-of-random-50": _framed_garbage(MPEG1, 50),  # decoded to noise of 1e4: was accepted
    "mpeg2-frames-of-random": _framed_garbage(MPEG2, 40),
    "id3-frames-of-random": _id3(_framed_garbage(MPEG1, 20, seed=7)),
}


# ----------------------------------------------------------------------------------------------------------------
# Class 1: decompression bombs
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("channels", "rate", "fmt"), [(8, 16000, "FLAC"), (1, 8000, "FLAC"), (2, 44100, "OGG"),
                                                       (6, 48000, "WAV")])
def test_a_recording_that_decodes_past_the_bound_is_refused_before_decoding(monkeypatch, channels, rate,
                                                                             fmt) -> None:
    monkeypatch.setattr(files, "MAX_DECODED_AUDIO_BYTES", 2**20)  # 1 MB: small bombs, the same code path
    frames = 2**20 // (4 * channels) + 4000
    data = (_constant_flac(frames, channels, rate) if fmt == "FLAC"
            else _sound(_tone(frames, channels), rate, fmt))

    def decoded(*_args, **_kw):
        raise AssertionError("decoded before the bound was checked")

    monkeypatch.setattr(sf.SoundFile, "read", decoded)
    message = refused(read_audio, data, f"bomb.{fmt.lower()}", words=("use a recording of at most", "Hz"))
    assert f"{channels} channels" in message or channels == 1


def test_the_issues_bomb_is_refused_from_its_header() -> None:
    # 8 channels of 48 kHz for 3 minutes decodes to 276 MB of float32 from a ~45 KB FLAC; 2 min 54 s are allowed
    data = _constant_flac(48000 * 180, 8, 48000)
    assert len(data) < 200_000
    refused(read_audio, data, "bomb.flac", words=("8 channels", "48,000 Hz", "at most 2 min 54 s"))


@pytest.mark.parametrize("channels", [1, 8])
def test_a_bomb_that_hides_its_length_stops_at_the_bound_in_bounded_memory(monkeypatch, channels) -> None:
    monkeypatch.setattr(files, "MAX_DECODED_AUDIO_BYTES", 2**20)
    monkeypatch.setattr(files, "AUDIO_BLOCK_BYTES", 2**16)
    frames = 8 * 2**20 // (4 * channels)  # 8 MB decoded: eight times the bound
    data = _flac_total(_constant_flac(frames, channels), 0)  # "length unknown": only the decoding can tell
    tracemalloc.start()
    try:
        refused(read_audio, data, "stream.flac", words=("is too long", "use a recording of at most"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2**20, peak  # the bound (1 MB) and a block, not the 8 MB the file holds


def test_a_recording_just_under_the_bound_still_reads(monkeypatch) -> None:
    monkeypatch.setattr(files, "MAX_DECODED_AUDIO_BYTES", 2**20)
    monkeypatch.setattr(files, "AUDIO_BLOCK_BYTES", 2**14)  # many blocks, mixed down one at a time
    wave = _tone(2**20 // 8 - 10, channels=2)
    mono, rate = read_audio(_sound(wave, fmt="FLAC"), "ok.flac")
    assert rate == 16000 and mono.shape == (len(wave),)
    assert np.allclose(mono, wave.mean(axis=1), atol=1e-4)


@pytest.mark.parametrize(("fmt", "width", "height"), [("PNG", 10000, 10000), ("GIF", 65535, 65535),
                                                      ("BMP", 50000, 50000), ("JPEG", 65000, 65000),
                                                      ("WEBP", 16000, 16000), ("WEBP", 7000, 7000)])
def test_pictures_past_the_bound_are_refused_before_decoding(monkeypatch, fmt, width, height) -> None:
    data = BIG_PNG if fmt == "PNG" else _sized(fmt, width, height)

    def decoded(*_args, **_kw):
        raise AssertionError("decoded before the size was checked")

    monkeypatch.setattr(Image.Image, "load", decoded)
    monkeypatch.setattr(Image.Image, "convert", decoded)
    refused(read_image, data, f"bomb.{fmt.lower()}", words=("40 million", "use a smaller picture"))


def test_the_decoded_size_bound_counts_the_bytes_of_the_decoded_mode(monkeypatch) -> None:
    monkeypatch.setattr(files, "MAX_DECODED_IMAGE_BYTES", 2 * 2**20)
    rgba = _encoded(Image.new("RGBA", (1000, 1000), (1, 2, 3, 4)), "PNG")  # 4 MB decoded
    refused(read_image, bytes(rgba), "big.png", words=("4 MB once decoded", "2 MB", "use a smaller picture"))
    grey = _encoded(Image.new("L", (1000, 1000), 9), "PNG")  # 1 MB decoded: fine
    assert read_image(bytes(grey)).shape == (1000, 1000, 3)


# ----------------------------------------------------------------------------------------------------------------
# Class 2: headers that lie, truncated files
# ----------------------------------------------------------------------------------------------------------------


def _lying_audio() -> dict[str, tuple[bytes, tuple[str, ...]]]:
    flac = _constant_flac(4096, 1)
    flac8 = _constant_flac(4096, 8, 48000)
    wav = _sound(_tone(16000))
    return {
        "flac-claims-2^36-samples": (_flac_total(flac, 2**36 - 1), ("says it lasts", "1,193 h")),
        "flac8-claims-2^36-samples": (_flac_total(flac8, 2**36 - 1), ("says it lasts", "8 channels")),
        "flac-claims-2^30-samples": (_flac_total(flac, 2**30), ("says it lasts", "at most")),
        "wav-zero-channels": (_wav_field(wav, b"fmt ", 10, "<H", 0), ("not a recording",)),
        "wav-rate-0": (_wav_field(wav, b"fmt ", 12, "<I", 0), ("not a recording",)),
        "wav-rate-4e9": (_wav_field(wav, b"fmt ", 12, "<I", 0xFFFFFFFF), ("not a recording",)),
        "wav-rate-1hz": (_sound(_tone(40000), rate=1), ("sampled at 1 Hz",)),
        "wav-rate-400khz": (_sound(_tone(40000), rate=400_000), ("sampled at 400000 Hz",)),
        "wav-header-only": (wav[:44], ("lasts 0.00 s",)),
        "wav-cut-in-header": (wav[:30], ("not a recording",)),
        "flac-cut-in-header": (flac[:40], ("not a recording",)),
        "flac-cut-in-streaminfo": (flac[:20], ("not a recording",)),
        "ogg-cut-in-half": (_sound(_tone(16000), fmt="OGG")[:2000], ("not a recording",)),
    }


LYING_AUDIO = _lying_audio()


@pytest.mark.parametrize("case", list(LYING_AUDIO))
def test_lying_or_truncated_audio_headers_are_one_line(case) -> None:
    data, words = LYING_AUDIO[case]
    refused(read_audio, data, "liar.flac", words=words)


@pytest.mark.parametrize(("field", "value"), [(b"data", 0xFFFFFFFF), (b"RIFF", 0xFFFFFFF0)])
def test_a_wav_claiming_more_data_than_it_holds_reads_what_it_holds(field, value) -> None:
    wav = _wav_field(_sound(_tone(16000)), field, 4, "<I", value)
    mono, rate = read_audio(wav, "claims.wav")
    assert mono.shape == (16000,) and rate == 16000


@pytest.mark.parametrize(("data", "words"), [
    (_png(100000, 100000, rows=False), ("more than 40 million",)),  # was "not a picture"
    (_png(2**31 - 1, 1, rows=False), ("more than 40 million",)),
    (_png(0, 0, rows=False), ("not a picture",)),
    (_png(64, 64, rows=False), ("upload a PNG",)),  # no pixel rows at all
    (_png(300, 300)[:-200], ("corrupt",)),
    (bytes(_encoded(Image.new("RGB", (64, 64)), "JPEG"))[:200], ("corrupt",)),
    (b"GIF89a" + b"\xff" * 20, ("not a picture",)),
    (b"RIFF\xff\xff\xff\xffWEBPVP8X" + b"\xff" * 30, ("more than 40 million",)),  # a 16M x 16M canvas
    (b"RIFF\x40\x00\x00\x00WEBPVP8 " + _noise(60, 5), ("not a picture",)),
])
def test_lying_or_truncated_picture_headers_are_one_line(data, words) -> None:
    refused(read_image, data, "liar.png", words=words)


# ----------------------------------------------------------------------------------------------------------------
# Class 10: read errors
# ----------------------------------------------------------------------------------------------------------------


def _odd_path(kind: str, tmp_path: Path) -> str:
    if kind == "folder":
        return str(tmp_path)
    if kind == "fifo":
        os.mkfifo(tmp_path / "pipe.wav")  # opening it for reading would wait for a writer forever
        return str(tmp_path / "pipe.wav")
    if kind == "missing":
        return str(tmp_path / "gone.png")
    return kind


ODD_PATHS = ["/proc/self/mem", "/dev/zero", "/dev/urandom", "/dev/null", "folder", "fifo", "missing",
             "~nosuchuser/x.png", "a\0b.png"]


@pytest.mark.parametrize("kind", ODD_PATHS)
def test_odd_paths_are_one_line_without_the_folder(tmp_path, kind) -> None:
    path = _odd_path(kind, tmp_path)
    refused(read_bytes, path, files.MAX_IMAGE_BYTES, words=("not a readable file",))


def test_a_file_larger_than_its_stat_size_is_cut_at_the_limit() -> None:
    assert os.stat("/proc/self/pagemap").st_size == 0  # /proc says 0 bytes, and holds megabytes
    refused(read_bytes, "/proc/self/pagemap", 2**20, words=("'pagemap' is larger than 1 MB",))


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads a file without read permission")
def test_a_file_without_read_permission_is_one_line(tmp_path) -> None:
    locked = tmp_path / "locked.png"
    locked.write_bytes(b"x")
    locked.chmod(0)
    refused(read_bytes, str(locked), 100, words=("not a readable file",))


@pytest.mark.parametrize(("flag", "kind"), [("--image", "/proc/self/mem"), ("--audio", "fifo"),
                                            ("--image", "folder"), ("--audio", "/dev/urandom")])
def test_the_command_line_prints_one_line_for_an_odd_path(tmp_path, capfd, flag, kind) -> None:
    path = _odd_path(kind, tmp_path)
    status = cli.main(["run", flag, path, "--out", str(tmp_path / "out")])
    out, err = capfd.readouterr()
    assert status == 2 and out == "", out
    assert err.startswith("error: ") and err.count("\n") == 1 and "not a readable file" in err, err
    for w in FORBIDDEN:
        assert w not in err, (w, err)


# ----------------------------------------------------------------------------------------------------------------
# Class 11: library noise
# ----------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", list(GARBAGE_MP3))
def test_a_garbage_mp3_is_one_line_and_nothing_on_stderr(capfd, case) -> None:
    message = refused(read_audio, GARBAGE_MP3[case], "song.mp3", words=("not a recording", "corrupt"))
    assert "silent" not in message
    out, err = capfd.readouterr()
    assert (out, err) == ("", ""), err[:500]


def test_a_truncated_mp3_still_reads_without_the_decoders_warning(capfd) -> None:
    mp3 = _sound(_tone(48000), fmt="MP3")
    mono, _ = read_audio(mp3[: len(mp3) // 2], "half.mp3")  # libmpg123 warns that its Xing size is off
    assert 10000 < mono.size < 48000
    assert capfd.readouterr() == ("", "")


def test_an_mp3_after_an_id3_tag_still_reads() -> None:
    mono, rate = read_audio(_id3(_sound(_tone(16000), fmt="MP3"), size=300), "tagged.mp3")
    assert rate == 16000 and abs(mono.size - 16000) < 2000


def test_the_decoders_lines_are_dropped_and_other_lines_passed_on(capfd) -> None:
    with files._decoder_output() as seen:
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 4.\n")
        os.write(2, b"[src/libmpg123/layer3.c:III_get_side_info():202] error: big_values too large!\n")
        os.write(2, b"another thread's log line\n")
        print("and Python's own stderr", file=sys.stderr)
    assert (seen.lines, seen.errors) == (2, 1)
    assert sorted(capfd.readouterr().err.splitlines()) == ["and Python's own stderr", "another thread's log line"]


def test_threads_reading_at_once_each_get_their_own_answer(capfd) -> None:
    good = _sound(_tone(16000), fmt="MP3")
    answers: dict[int, str] = {}

    def read(i: int) -> None:
        try:
            answers[i] = f"ok {read_audio(good if i % 2 else GARBAGE_MP3['frames-of-random-50'], 'x.mp3')[1]}"
        except ValueError as err:
            answers[i] = str(err)

    threads = [threading.Thread(target=read, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(answers[i] == "ok 16000" for i in (1, 3, 5)), answers
    assert all("not a recording" in answers[i] for i in (0, 2, 4)), answers
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize(("data", "words"), [
    (BIG_PNG, ("10000 x 10000", "40 million")),  # 100 megapixels: past Pillow's warning limit
    (_png(14000, 14000, depth=1, colour=0), ("more than 40 million",)),  # 196 megapixels: past its error limit
])
def test_pillows_bomb_warning_is_not_printed(capfd, data, words) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        refused(read_image, data, "big.png", words=words)
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr() == ("", "")


def test_a_corrupt_exif_block_is_not_printed(capfd) -> None:
    exif = b"Exif\0\0MM\0*\0\0\0\x08\0\x05\x01\x12\0\x03\0\0\0\x01\0\x06\0\0\xff\xff\xff\xff"  # entries cut off
    data = bytes(_encoded(Image.new("RGB", (16, 16), (200, 10, 10)), "JPEG", exif=exif))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert read_image(data, "exif.jpg").shape[2] == 3
    assert [str(w.message) for w in caught] == []
    assert capfd.readouterr() == ("", "")


def test_a_nan_float_wav_is_corrupt_not_silent() -> None:
    wave = _tone(16000)
    wave[100] = np.nan
    message = refused(read_audio, _sound(wave, subtype="FLOAT"), "nan.wav", words=("not a recording",))
    assert "silent" not in message


# ----------------------------------------------------------------------------------------------------------------
# The command line, end to end: one `error:` line and exit status 2 (the file is refused before any model loads)
# ----------------------------------------------------------------------------------------------------------------


CLI_CASES = {
    "lying-flac": ("--audio", "claims.flac", LYING_AUDIO["flac-claims-2^36-samples"][0], "says it lasts"),
    "garbage-mp3": ("--audio", "song.mp3", GARBAGE_MP3["frames-of-random-5"], "not a recording"),
    "id3-garbage-mp3": ("--audio", "tagged.mp3", GARBAGE_MP3["id3-sync-then-random"], "not a recording"),
    "100-megapixels": ("--image", "big.png", BIG_PNG, "40 million"),
}


@pytest.mark.parametrize("case", list(CLI_CASES))
def test_the_command_line_prints_one_error_line(tmp_path, case) -> None:
    flag, name, data, words = CLI_CASES[case]
    path = tmp_path / name
    path.write_bytes(data)
    model = "keywords_audio" if flag == "--audio" else "shapes_vit"
    out = subprocess.run([sys.executable, "-m", "dynmask_core", "run", flag, str(path), "--model", model, "--out",
                          str(tmp_path / "out")], cwd=ROOT, env={**os.environ, "HF_HUB_OFFLINE": "1"},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith("error: ") and out.stderr.count("\n") == 1, out.stderr[-2000:]
    assert words in out.stderr and "silent" not in out.stderr, out.stderr
    for w in FORBIDDEN:
        assert w not in out.stderr, (w, out.stderr)
