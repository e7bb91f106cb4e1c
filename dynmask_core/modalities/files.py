"""Reading user files (uploads, command-line paths) into arrays, with limits and a clear message for bad ones.

Images: PNG, JPEG, WebP, BMP, GIF (first frame of an animation); EXIF orientation honoured; RGBA, palette and
greyscale converted to RGB. Audio: WAV, FLAC, OGG, MP3 (libsndfile via ``soundfile``), down-mixed to mono. Each
modality names its reader (suffixes, limit, decoder) in its ``FileReader``; :func:`read_file` and :func:`load_file`
read a file of any registered kind through it.

Every bad file raises ``ValueError`` with ONE line that says what is wrong and what to do (never another exception,
a path of the server or a library's own advice); the command line prints it as one ``error:`` line. Hostile files
are refused before they cost memory:

- a path is read with :func:`read_bytes` only if it is a regular file, and only until it is past its limit
  (``/proc`` files say they hold 0 bytes; a device or a pipe never ends);
- a compressed file may decode to far more than its size (a decompression bomb), and a header may lie about the
  size: what a file would decode to is bounded from its header BEFORE decoding (``MAX_PIXELS`` and
  ``MAX_DECODED_IMAGE_BYTES`` for pictures, ``MAX_DECODED_AUDIO_BYTES`` for recordings), and audio is then decoded
  block by block, mixed down to mono as it goes, stopping as soon as the bound is passed whatever the header said;
- libraries stay quiet: Pillow's DecompressionBombWarning is ignored (large pictures are refused here), and what
  the MP3 decoder (libmpg123) prints on file descriptor 2 is captured; its complaints make the file "corrupt",
  so a file is called silent only when it decoded cleanly. An MP3 must also start with a chain of valid MPEG
  audio frame headers before it is decoded at all.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import sys
import tempfile
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from dynmask_core.messages import N_, Message, shown
from dynmask_core.modalities.base import FileReader, modality

MAX_IMAGE_BYTES = 20 * 2**20  # 20 MB
MAX_PIXELS = 40_000_000  # width x height; a larger picture is refused (decompression bombs)
MAX_DECODED_IMAGE_BYTES = MAX_PIXELS * 4  # 160 MB: a decoded picture as Pillow holds it (4 bytes a colour pixel)
MAX_AUDIO_BYTES = 30 * 2**20  # 30 MB
MAX_DECODED_AUDIO_BYTES = 256 * 2**20  # channels x frames x 4 bytes (float32): ~70 min of mono 16 kHz sound
AUDIO_BLOCK_BYTES = 4 * 2**20  # audio is decoded this much at a time (all channels), then mixed down to mono
MIN_AUDIO_SECONDS = 0.1
MIN_RATE, MAX_RATE = 4_000, 192_000  # sampling rates (Hz) a recording may have
SILENCE = 1e-4  # a clip whose loudest sample is below this is silent
IMAGE_FORMATS = ("PNG", "JPEG", "WEBP", "BMP", "GIF")
IMAGE_SUFFIXES = ("png", "jpg", "jpeg", "webp", "bmp", "gif")
AUDIO_SUFFIXES = ("wav", "flac", "ogg", "mp3")
_UNKNOWN_LENGTH = 2**62  # libsndfile says a stream of unknown length (a FLAC without its total) has 2**63 - 1 frames

def _not_audio(label: str) -> Message:
    """The refusal of a file that does not decode as a recording."""
    return Message("{file} is not a recording this app can read (or it is corrupt): upload WAV, FLAC, OGG or MP3",
                   file=label)
_NOT_PICTURE = N_("not a picture this app can read (or it is corrupt)")


def read_bytes(path: str | Path, limit: int) -> bytes:
    """A file's bytes, or ValueError (missing, not a regular file, unreadable, too large), naming only the file."""
    name = Path(str(path)).name or str(path)
    unreadable = f"{shown(name)} is not a readable file: give the path of a picture or recording you may read"
    try:
        # O_NONBLOCK: opening a pipe with no writer would otherwise wait forever (it is refused just below)
        fd = os.open(Path(path).expanduser(), os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (OSError, RuntimeError, ValueError):  # missing, no permission, "~nouser/...", a NUL byte, a long name
        raise ValueError(unreadable) from None
    try:
        info = os.fstat(fd)  # of what was opened, not of what the name pointed to a moment before
        if not stat.S_ISREG(info.st_mode):  # a folder, a device (/dev/zero never ends), a pipe
            raise ValueError(unreadable)
        if info.st_size > limit:
            raise ValueError(f"{shown(name)} is larger than {limit // 2**20} MB: use a smaller file")
        data = _read_at_most(fd, limit + 1)  # /proc files say they hold 0 bytes: count what comes, not st_size
    except OSError:  # /proc/self/mem, an I/O error, a file that vanished
        raise ValueError(unreadable) from None
    finally:
        os.close(fd)
    if len(data) > limit:
        raise ValueError(f"{shown(name)} is larger than {limit // 2**20} MB: use a smaller file")
    return data


def _read_at_most(fd: int, size: int) -> bytes:
    """``size`` bytes or more from ``fd`` (up to a chunk more: some /proc files refuse reads of odd sizes), or all
    of it if it ends before; ``os.read`` may return fewer bytes than asked before the end."""
    chunks: list[bytes] = []
    total = 0
    while total < size:
        chunk = os.read(fd, 2**20)
        if not chunk:
            break
        chunks.append(chunk)
        total += len(chunk)
    return b"".join(chunks)


def _checked(data: bytes, name: str, limit: int, wanted: str, smaller: str) -> str:
    """The file's name for messages, after refusing an empty or too large file."""
    label = shown(name)
    if not data:
        raise ValueError(Message("{file} is empty: upload {wanted}", file=label, wanted=Message(wanted)))
    if len(data) > limit:
        raise ValueError(Message("{file} is larger than {mb} MB: use {smaller}", file=label, mb=limit // 2**20,
                                 smaller=Message(smaller)))
    return label


# --- pictures -----------------------------------------------------------------------------------------------------

def read_image(data: bytes, name: str = "the image") -> np.ndarray:
    """Decodes an image file to ``(H, W, 3)`` uint8 RGB.

    Raises:
        ValueError: empty, too large, too many pixels, not an image, corrupt or truncated.
    """
    from PIL import Image

    label = _checked(data, name, MAX_IMAGE_BYTES, N_("a PNG, JPEG, WebP, BMP or GIF picture"),
                     N_("a smaller picture"))
    _quiet_pillow()
    try:
        img = Image.open(io.BytesIO(data))  # reads the header only
    except Image.DecompressionBombError:  # Pillow's own limit, far above ours
        raise ValueError(Message("{file} has more than {n} million pixels: use a smaller picture", file=label,
                                 n=MAX_PIXELS // 1_000_000)) from None
    except Exception:  # a hostile file can make a plugin raise anything: UnidentifiedImageError, struct.error, ...
        raise ValueError(Message("{file} is {kind}: upload a PNG, JPEG, WebP, BMP or GIF picture", file=label,
                                 kind=Message(_NOT_PICTURE))) from None
    with img:
        _check_picture_header(img, label)
        try:
            return _first_frame_rgb(img)
        except Exception as err:  # corrupt data after a good header: OSError, SyntaxError, ValueError, ...
            kind = N_("truncated or corrupt") if "truncated" in str(err).lower() else _NOT_PICTURE
            raise ValueError(Message("{file} is {kind}: upload a PNG, JPEG, WebP, BMP or GIF picture", file=label,
                                     kind=Message(kind))) from None


def _quiet_pillow() -> None:
    """Keeps Pillow's warnings about a user's file (two lines naming Pillow's own source file) off stderr: pictures
    past MAX_PIXELS are refused here, far below Pillow's DecompressionBombWarning, and a corrupt EXIF block is the
    user's to fix, not the server's log's. Process-wide filters, set again on every call (a filter added twice is
    kept once), as ``warnings.catch_warnings`` is not safe with threads."""
    from PIL import Image

    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


def _check_picture_header(img: Any, label: str) -> None:
    """Refuses a picture by what its header says (format, size), before anything is decoded."""
    if img.format not in IMAGE_FORMATS:
        raise ValueError(Message("{file} is a {format} file: use PNG, JPEG, WebP, BMP or GIF", file=label,
                                 format=img.format))
    if img.width * img.height > MAX_PIXELS:
        raise ValueError(Message("{file} has {w} x {h} pixels, more than {n} million: use a smaller picture",
                                 file=label, w=img.width, h=img.height, n=MAX_PIXELS // 1_000_000))
    decoded = img.width * img.height * _bytes_per_pixel(img.mode)
    if decoded > MAX_DECODED_IMAGE_BYTES:
        raise ValueError(Message("{file} would take {mb} MB once decoded, more than {most} MB: use a smaller picture",
                                 file=label, mb=f"{decoded / 2**20:,.0f}", most=MAX_DECODED_IMAGE_BYTES // 2**20))


def _bytes_per_pixel(mode: str) -> int:
    """Bytes a pixel of ``mode`` takes in Pillow's memory: 4 for any multi-band mode (RGB included), else the band's
    own size (1 for L and P, 2 for I;16, 4 for I and F)."""
    from PIL import ImageMode

    try:
        desc = ImageMode.getmode(mode)
    except KeyError:  # a mode this Pillow does not know: assume the widest
        return 16
    return 4 if len(desc.bands) > 1 else max(1, int(desc.typestr[-1]))


def _first_frame_rgb(img: Any) -> np.ndarray:
    """The first frame, turned upright (EXIF) and to RGB; each intermediate picture is dropped as soon as used."""
    from PIL import ImageOps

    img.seek(0)  # a GIF or WebP animation: its first frame only
    ImageOps.exif_transpose(img, in_place=True)  # in place: without an EXIF turn, no copy of the whole picture
    rgb = img if img.mode == "RGB" else img.convert("RGB")  # convert() would copy even an RGB picture
    if rgb is not img:
        img.close()  # only the RGB copy is needed from here on
    raw, (width, height) = rgb.tobytes(), rgb.size
    rgb.close()
    return np.frombuffer(raw, dtype=np.uint8).reshape(height, width, 3).copy()  # a writable array of its own


# --- recordings ---------------------------------------------------------------------------------------------------

def read_audio(data: bytes, name: str = "the audio") -> tuple[np.ndarray, int]:
    """Decodes an audio file to a mono float32 waveform and its sampling rate.

    Raises:
        ValueError: empty, too large, would decode to too much, not audio, corrupt, or with no samples.
    """
    label = _checked(data, name, MAX_AUDIO_BYTES, N_("a WAV, FLAC, OGG or MP3 recording"), N_("a shorter recording"))
    with _decoder_output() as decoder:
        mono, rate, peak = _decode_mono(data, label)
    if decoder.errors or (peak < SILENCE and decoder.lines):  # the decoder complained: the sound is not the file's
        raise ValueError(_not_audio(label))
    seconds = mono.size / rate
    if seconds < MIN_AUDIO_SECONDS:
        raise ValueError(Message("{file} lasts {s:.2f} s: record or upload at least {least} s", file=label, s=seconds,
                                 least=MIN_AUDIO_SECONDS))
    if peak < SILENCE:  # only reached when the file decoded cleanly
        raise ValueError(Message("{file} is silent: check the microphone, or upload a recording with speech in it",
                                 file=label))
    return mono, rate


def _decode_mono(data: bytes, label: str) -> tuple[np.ndarray, int, float]:
    """``(mono waveform, sampling rate, loudest |sample|)``, refusing by the header first and decoding at most
    ``MAX_DECODED_AUDIO_BYTES`` worth of frames whatever the header says."""
    import soundfile as sf

    try:
        sound = sf.SoundFile(io.BytesIO(data))  # reads the header only
    except Exception:  # LibsndfileError "format not recognised", "channel count is zero", ...; or anything else
        raise ValueError(_not_audio(label)) from None
    with sound:
        limit = _frames_allowed(sound, label)
        if sound.format == "MP3" and not _mpeg_frames_chain(data):  # garbage the decoder would "play" as noise
            raise ValueError(_not_audio(label))
        return _mixed_down(sound, label, limit)


def _frames_allowed(sound: Any, label: str) -> int:
    """How many frames of ``sound`` may be decoded; refuses a bad rate or channel count, or a header that says the
    recording decodes to more than ``MAX_DECODED_AUDIO_BYTES``."""
    rate, channels = int(sound.samplerate), int(sound.channels)
    if not MIN_RATE <= rate <= MAX_RATE:
        raise ValueError(f"{label} says it was sampled at {rate} Hz: a recording has {MIN_RATE:,}-{MAX_RATE:,} Hz")
    if channels < 1:
        raise ValueError(_not_audio(label))
    limit = MAX_DECODED_AUDIO_BYTES // (4 * channels)
    if limit < sound.frames < _UNKNOWN_LENGTH:  # a lying header is refused here too: nothing is allocated for it
        raise ValueError(_too_long(label, channels, rate, f"says it lasts {_duration(sound.frames / rate)}"))
    return limit


def _too_long(label: str, channels: int, rate: int, claim: str) -> str:
    """The one-line refusal of a recording that decodes to more than ``MAX_DECODED_AUDIO_BYTES``."""
    longest = _duration(MAX_DECODED_AUDIO_BYTES / (4 * channels * rate))
    layout = "mono" if channels == 1 else f"{channels} channels"
    return (f"{label} {claim} ({layout}, {rate:,} Hz): use a recording of at most {longest} (this app decodes "
            f"up to {MAX_DECODED_AUDIO_BYTES // 2**20} MB of sound)")


def _duration(seconds: float) -> str:
    """``12.5 s``, ``3 min 20 s``, ``19 h 5 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600):,} h {int(seconds % 3600 // 60)} min"


def _mixed_down(sound: Any, label: str, limit: int) -> tuple[np.ndarray, int, float]:
    """Decodes ``sound`` a block at a time, mixing each block down to mono, so memory stays within the mono
    waveform (at most ``limit`` frames) plus one block; refuses a recording longer than ``limit`` frames."""
    channels, rate = int(sound.channels), int(sound.samplerate)
    block = max(1, AUDIO_BLOCK_BYTES // (4 * channels))
    mono = np.empty(min(sound.frames, limit), dtype=np.float32)  # untouched pages cost nothing if the header lied
    filled, peak = 0, 0.0
    while len(part := _block_mono(sound, block, label)):
        if filled + len(part) > limit:  # more sound than the header said (or it said nothing): stop here
            raise ValueError(_too_long(label, channels, rate, "is too long"))
        if filled + len(part) > mono.size:  # the header said less than there is: grow, within the limit
            mono = np.concatenate([mono[:filled], np.empty(min(limit, 2 * (filled + len(part))) - filled,
                                                            dtype=np.float32)])
        mono[filled:filled + len(part)] = part
        filled += len(part)
        peak = max(peak, float(np.abs(part).max()))
    if not filled and sound.frames > 0:  # the header promised sound and none came: truncated (an Ogg cut short)
        raise ValueError(_not_audio(label))
    return (mono if filled == mono.size else mono[:filled].copy()), rate, peak


def _block_mono(sound: Any, frames: int, label: str) -> np.ndarray:
    """The next ``frames`` frames (fewer at the end, none after it), mixed down to mono."""
    try:
        block = sound.read(frames, dtype="float32", always_2d=True)
    except Exception:  # a decoding error part-way through (LibsndfileError, ...)
        raise ValueError(_not_audio(label)) from None
    part = block.mean(axis=1, dtype=np.float32)
    if not np.isfinite(part).all():  # a float WAV of NaN or infinity is not sound
        raise ValueError(_not_audio(label))
    return part


# MPEG audio frame headers (ISO 11172-3 / 13818-3): bit rates in kbit/s by (MPEG-1?, layer) for indexes 1-14, and
# sampling rates by version bits (0: MPEG-2.5, 2: MPEG-2, 3: MPEG-1) for indexes 0-2.
_MPEG_KBPS = {
    (True, 1): (32, 64, 96, 128, 160, 192, 224, 256, 288, 320, 352, 384, 416, 448),
    (True, 2): (32, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320, 384),
    (True, 3): (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320),
    (False, 1): (32, 48, 56, 64, 80, 96, 112, 128, 144, 160, 176, 192, 224, 256),
    (False, 2): (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160),
}
_MPEG_RATES = {0: (11025, 12000, 8000), 2: (22050, 24000, 16000), 3: (44100, 48000, 32000)}
_MPEG_CHAIN = 3  # consecutive valid frames that make a file MP3 (random bytes almost never chain like this)
_MPEG_SEARCH = 65536  # bytes of junk skipped looking for the first frame (libmpg123 gives up there too)


def _mpeg_frame(data: bytes, at: int) -> tuple[int, int] | None:
    """``(frame length in bytes, stream kind)`` of a valid MPEG audio frame header at ``at``, else None."""
    if at + 4 > len(data) or data[at] != 0xFF or data[at + 1] & 0xE0 != 0xE0:
        return None
    version, layer = (data[at + 1] >> 3) & 3, 4 - ((data[at + 1] >> 1) & 3)  # layer 4: the reserved value 0
    bitrate, rate, padding = data[at + 2] >> 4, (data[at + 2] >> 2) & 3, (data[at + 2] >> 1) & 1
    if version == 1 or layer == 4 or bitrate in (0, 15) or rate == 3 or data[at + 3] & 3 == 2:
        return None  # reserved values; bit rate 0 ("free format") is not accepted either
    mpeg1 = version == 3
    bps = _MPEG_KBPS[(mpeg1, layer if mpeg1 else min(layer, 2))][bitrate - 1] * 1000  # MPEG-2: II and III alike
    hz = _MPEG_RATES[version][rate]
    if layer == 1:
        length = (12 * bps // hz + padding) * 4
    else:
        length = (144 if mpeg1 or layer == 2 else 72) * bps // hz + padding
    return length, data[at + 1] & 0xFE | (rate << 8)  # version, layer and rate must stay the same


def _mpeg_frames_chain(data: bytes) -> bool:
    """Whether the file (after its ID3v2 tags) starts, within ``_MPEG_SEARCH`` bytes, with ``_MPEG_CHAIN`` valid
    MPEG audio frames, each header's length leading to the next (or to the end of the file)."""
    start = _after_id3(data)
    at = data.find(b"\xff", start)
    while 0 <= at < start + _MPEG_SEARCH:
        if _chain_length(data, at) >= _MPEG_CHAIN:
            return True
        at = data.find(b"\xff", at + 1)
    return False


def _chain_length(data: bytes, at: int) -> int:
    """How many consistent MPEG frames follow one another from ``at`` (counting to ``_MPEG_CHAIN`` at most); a chain
    that ends exactly at the end of the file is complete."""
    count, kind = 0, None
    while count < _MPEG_CHAIN:
        frame = _mpeg_frame(data, at)
        if frame is None or (kind is not None and frame[1] != kind):
            return count
        count, kind, at = count + 1, frame[1], at + frame[0]
        if at == len(data) and count > 1:  # a short file that ends after its last frame
            return _MPEG_CHAIN
    return count


def _after_id3(data: bytes) -> int:
    """Where the audio starts after any ID3v2 tags (10-byte header, size in 4 x 7 bits, optional 10-byte footer)."""
    at = 0
    while data[at:at + 3] == b"ID3" and len(data) >= at + 10 and all(b < 0x80 for b in data[at + 6:at + 10]):
        size = 0
        for byte in data[at + 6:at + 10]:
            size = size << 7 | byte
        at += 10 + size + (10 if data[at + 5] & 0x10 else 0)
    return at


# --- the decoder's own messages -----------------------------------------------------------------------------------

_FD2_LOCK = threading.Lock()  # file descriptor 2 belongs to the whole process: one capture at a time
_DECODER_PREFIXES = ("[src/libmpg123/", "Note: ", "Warning: ", "Error: ", "[libmpg123")


class _DecoderLines:
    """What the decoder printed while captured: how many lines, and how many of them report an error."""

    def __init__(self) -> None:
        self.lines = 0
        self.errors = 0


@contextlib.contextmanager
def _decoder_output() -> Iterator[_DecoderLines]:
    """Captures file descriptor 2 while decoding: libmpg123 prints its complaints there (dozens of lines for a bad
    MP3), which a user must not see; they are counted instead. Lines from anything else (another thread's log)
    are written to the real stderr afterwards, so they are delayed, not lost."""
    seen = _DecoderLines()
    with _FD2_LOCK, contextlib.ExitStack() as stack:
        try:
            capture = stack.enter_context(tempfile.TemporaryFile())
            saved = _redirect_fd2(capture.fileno())
        except OSError:  # no temporary folder, no fd 2 (a daemon): the decoder may speak, but reading goes on
            saved = None
        try:
            yield seen
        finally:
            if saved is not None:
                _flush_stderr()  # Python's own text written meanwhile lands in the capture, to be passed on
                os.dup2(saved, 2)
                os.close(saved)
                _sort_captured(capture, seen)


def _redirect_fd2(target: int) -> int:
    """Points fd 2 at ``target``; returns a copy of the real fd 2, to put back."""
    _flush_stderr()  # text Python buffered before the capture goes where it was written for
    saved = os.dup(2)
    try:
        os.dup2(target, 2)
    except OSError:
        os.close(saved)
        raise
    return saved


def _flush_stderr() -> None:
    """Writes out what Python holds for stderr, so that it goes to the fd 2 it was meant for."""
    if sys.stderr is not None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()


def _sort_captured(capture: Any, seen: _DecoderLines) -> None:
    """Counts the decoder's lines in ``capture`` and passes every other line on to stderr."""
    capture.seek(0)
    for line in capture:
        text = line.decode("utf-8", "replace")
        if text.startswith(_DECODER_PREFIXES):
            seen.lines += 1
            seen.errors += "error" in text.lower()
        else:
            with contextlib.suppress(OSError):
                os.write(2, line)


# --- files of any kind --------------------------------------------------------------------------------------------

def file_reader(kind: str) -> FileReader:
    """The reader of ``kind``'s files (its modality's ``reader``).

    Raises:
        ValueError: an unknown kind, or one that is not read from files (text).
    """
    m = modality(kind)
    if m.reader is None:
        raise ValueError(f"{m.noun} input is not read from a file: give it with {m.cli_flag}")
    return m.reader


def read_file(kind: str, data: bytes, name: str) -> Any:
    """A source for :func:`~dynmask_core.modalities.encode` from the bytes of a file of ``kind`` (an upload).

    Raises:
        ValueError: a kind without files, or a bad file (the reader's one line, naming ``name``).
    """
    return file_reader(kind).read(data, name)


def load_file(path: str | Path, kind: str, data: bytes | None = None) -> Any:
    """A source for :func:`~dynmask_core.modalities.encode` from a file path (the command line); ``data`` are its
    bytes when already read (else read here, within the kind's ``max_bytes``).

    Raises:
        ValueError: a kind without files, or a missing, unreadable, too large or bad file (one line).
    """
    reader = file_reader(kind)
    return reader.read(data if data is not None else read_bytes(path, reader.max_bytes), Path(path).name)
