"""Synthesises the spoken-keyword corpus for the keywords-audio model with espeak-ng.

Run from the repository root (needs `apt-get install -y espeak-ng sox`):

    .venv/bin/python scripts/make_keywords.py            # corpus + samples
    .venv/bin/python scripts/make_keywords.py --no-samples

What it does:

- A *voice* is an espeak-ng English accent plus a voice variant (`-v <accent>+<variant>`),
  e.g. `en-gb-scotland+m3`. 8 accents x 94 variants = 752 voices.
- Voices are split by a fixed, hard-coded list (below), never at random:
  HELD-OUT voices are every voice whose accent is in HELDOUT_ACCENTS *or* whose variant is
  in HELDOUT_VARIANTS. TRAIN voices are the rest. So no held-out accent and no held-out
  variant timbre is ever heard in training.
- Each (voice, keyword) is rendered TRAIN_RENDITIONS (train voices) or HELDOUT_RENDITIONS
  (held-out voices) times with a speed (-s), pitch (-p) and punctuation ("word", "word!",
  "word?", "word.") drawn from a `random.Random(SEED)` stream, so the corpus is identical
  on every run.
- espeak-ng writes 22.05 kHz WAV to stdout; sox resamples it to 16 kHz mono 16-bit.
  Leading/trailing silence is trimmed (energy threshold) with a 30 ms margin.
- Clips go to a cache folder OUTSIDE the repository (default
  `~/.cache/dynmask/keywords`, or $DYNMASK_KEYWORDS_CACHE, or --out), together with
  `manifest.json` (one record per clip: file, word, voice, accent, variant, speed, pitch,
  text, split, n_samples).
- Unless --no-samples: one clip per keyword from a held-out voice is written to
  `assets/samples/keywords/` as a 16 kHz mono WAV of exactly SAMPLE_LEN samples
  (1.295 s = 128 AST frames; word centred, digital silence around it), plus `samples.json`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from scipy.io import wavfile

REPO = Path(__file__).resolve().parents[1]
SAMPLES_DIR = REPO / "assets" / "samples" / "keywords"
DEFAULT_CACHE = Path(os.environ.get("DYNMASK_KEYWORDS_CACHE", Path.home() / ".cache" / "dynmask" / "keywords"))

SEED = 0
SR = 16000
# 400-sample window + 127 hops of 160 = exactly 128 frames for the AST feature extractor.
SAMPLE_LEN = 400 + 127 * 160  # 20720 samples = 1.295 s

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "stop", "go", "on", "off")

# espeak-ng's own (non-MBROLA) English accents.
ACCENTS = (
    "en-gb",
    "en-us",
    "en-gb-scotland",
    "en-gb-x-gbclan",  # Lancaster
    "en-gb-x-rp",  # Received Pronunciation
    "en-us-nyc",
    "en-gb-x-gbcwmd",  # West Midlands
    "en-029",  # Caribbean
)
# espeak-ng voice variants (espeak-ng-data/voices/!v), minus the deliberately non-speech-like
# ones (Demonic, UniRobot, anikaRobot, croak, whisper, whisperf) and "Mr serious" (space in name).
VARIANTS = (
    "Alex Alicia Andrea Andy Annie AnxiousAndy Denis Diogo Gene Gene2 Henrique Hugo Jacky Lee "
    "Marco Mario Michael Mike Nguyen RicishayMax RicishayMax2 RicishayMax3 Storm Tweaky adam "
    "anika announcer antonio aunty belinda benjamin boris caleb david ed edward edward2 "
    "f1 f2 f3 f4 f5 fast grandma grandpa gustave iven iven2 iven3 iven4 john kaukovalta "
    "klatt klatt2 klatt3 klatt4 klatt5 klatt6 linda m1 m2 m3 m4 m5 m6 m7 m8 marcelo max "
    "michel miguel norbert pablo paul pedro quincy rob robert robosoft robosoft2 robosoft3 "
    "robosoft4 robosoft5 robosoft6 robosoft7 robosoft8 sandro shelby steph steph2 steph3 "
    "travis victor zac"
).split()

# ---- the held-out split (documented in assets/models/keywords-audio/CARD.md) ----
HELDOUT_ACCENTS = ("en-gb-x-gbcwmd", "en-029")
HELDOUT_VARIANTS = (
    "m3", "m7", "f2", "f5", "klatt3", "Andrea", "Annie", "Gene2", "aunty", "belinda",
    "benjamin", "edward2", "iven3", "linda", "max", "quincy", "robosoft4", "steph2",
    "travis", "zac",
)  # fmt: skip

SPEEDS = (110, 130, 150, 175, 200, 230)  # espeak-ng -s, words per minute
PITCHES = (20, 35, 50, 65, 80)  # espeak-ng -p, 0-99
PUNCTUATION = ("", "!", "?", ".")
TRAIN_RENDITIONS = 2
HELDOUT_RENDITIONS = 1

# Held-out voice used for the committed sample of each keyword (all have a held-out variant).
SAMPLE_VOICES = {
    "yes": "en-us+f2",
    "no": "en-gb+m7",
    "up": "en-029+m1",
    "down": "en-gb-scotland+Annie",
    "left": "en-us-nyc+m3",
    "right": "en-gb-x-rp+belinda",
    "stop": "en-gb-x-gbcwmd+klatt",
    "go": "en-us+max",
    "on": "en-gb-x-gbclan+f5",
    "off": "en-029+travis",
}


def voice_split(accent: str, variant: str) -> str:
    return "heldout" if accent in HELDOUT_ACCENTS or variant in HELDOUT_VARIANTS else "train"


def synth(voice: str, text: str, speed: int, pitch: int) -> np.ndarray:
    """espeak-ng -> sox (16 kHz mono s16) -> float32 in [-1, 1], silence-trimmed."""
    espeak = subprocess.Popen(
        ["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout", text],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    raw = subprocess.run(
        ["sox", "-V1", "-t", "wav", "-", "-t", "raw", "-r", str(SR), "-e", "signed", "-b", "16",
         "-c", "1", "-"],
        stdin=espeak.stdout,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        check=True,
    ).stdout  # fmt: skip
    espeak.stdout.close()
    espeak.wait()
    audio = np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0
    return trim(audio)


def trim(audio: np.ndarray, margin_s: float = 0.03, rel_db: float = -40.0) -> np.ndarray:
    """Cut leading/trailing silence: keep 10 ms frames within rel_db of the loudest one."""
    hop = SR // 100
    n = len(audio) // hop
    if n == 0:
        return audio
    energy = (audio[: n * hop].reshape(n, hop) ** 2).mean(axis=1) + 1e-12
    keep = np.nonzero(10 * np.log10(energy / energy.max()) > rel_db)[0]
    margin = int(margin_s * SR)
    start = max(0, keep[0] * hop - margin)
    end = min(len(audio), (keep[-1] + 1) * hop + margin)
    return audio[start:end]


def to_int16(audio: np.ndarray) -> np.ndarray:
    return np.clip(np.round(audio * 32767.0), -32768, 32767).astype(np.int16)


def centre(audio: np.ndarray, length: int = SAMPLE_LEN) -> np.ndarray:
    audio = audio[:length]
    out = np.zeros(length, dtype=np.float32)
    start = (length - len(audio)) // 2
    out[start : start + len(audio)] = audio
    return out


def plan() -> list[dict]:
    """Every clip to render, in a fixed order with seeded speed/pitch/punctuation."""
    rng = random.Random(SEED)
    jobs = []
    for accent in ACCENTS:
        for variant in VARIANTS:
            split = voice_split(accent, variant)
            reps = TRAIN_RENDITIONS if split == "train" else HELDOUT_RENDITIONS
            voice = f"{accent}+{variant}"
            for word in KEYWORDS:
                for rep in range(reps):
                    speed = rng.choice(SPEEDS)
                    pitch = rng.choice(PITCHES)
                    punct = rng.choice(PUNCTUATION)
                    jobs.append(
                        {
                            "file": f"{split}/{word}/{accent}+{variant}-{rep}.wav",
                            "word": word,
                            "voice": voice,
                            "accent": accent,
                            "variant": variant,
                            "speed": speed,
                            "pitch": pitch,
                            "text": word + punct,
                            "split": split,
                        }
                    )
    return jobs


def write_samples() -> None:
    SAMPLES_DIR.mkdir(parents=True, exist_ok=True)
    records = []
    for word in KEYWORDS:
        voice = SAMPLE_VOICES[word]
        accent, variant = voice.split("+")
        assert voice_split(accent, variant) == "heldout", voice
        audio = centre(synth(voice, word, 150, 50))
        name = f"kw-{word}.wav"
        wavfile.write(SAMPLES_DIR / name, SR, to_int16(audio))
        records.append({"id": f"kw-{word}", "file": name, "title": f"'{word}' (voice {voice})", "label": word})
    (SAMPLES_DIR / "samples.json").write_text(json.dumps(records, indent=2) + "\n")
    print(f"wrote {len(records)} held-out-voice samples to {SAMPLES_DIR}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_CACHE, help="cache folder (not the repo)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--no-samples", action="store_true")
    args = ap.parse_args()
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found: apt-get install -y espeak-ng sox")
    out = args.out.resolve()
    if out == REPO or REPO in out.parents:
        sys.exit("--out must be outside the repository")

    jobs = plan()
    t0 = time.perf_counter()

    def render(job: dict) -> dict:
        audio = synth(job["voice"], job["text"], job["speed"], job["pitch"])
        path = out / job["file"]
        path.parent.mkdir(parents=True, exist_ok=True)
        wavfile.write(path, SR, to_int16(audio))
        return {**job, "n_samples": int(len(audio))}

    with ThreadPoolExecutor(args.workers) as pool:
        manifest = list(pool.map(render, jobs))
    (out / "manifest.json").write_text(json.dumps(manifest))
    for split in ("train", "heldout"):
        clips = [m for m in manifest if m["split"] == split]
        voices = sorted({m["voice"] for m in clips})
        lens = np.array([m["n_samples"] for m in clips]) / SR
        print(
            f"{split}: {len(clips)} clips, {len(voices)} voices, duration "
            f"min {lens.min():.2f}s median {np.median(lens):.2f}s max {lens.max():.2f}s"
        )
    print(f"synthesised {len(manifest)} clips into {out} in {time.perf_counter() - t0:.0f}s")
    if not args.no_samples:
        write_samples()


if __name__ == "__main__":
    main()
