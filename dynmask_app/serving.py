"""The serving policy of a shared server: which models a link may load, Hub downloads, model size, input sizes.

Read once at start from ``serving.toml`` (the repository root; ``DYNMASK_SERVING`` names another file) and then
from environment variables, which win:

======================  =============================  ========================================================
setting (file key)      environment variable           default
======================  =============================  ========================================================
``allow_models``        ``DYNMASK_ALLOW_MODELS``       none: only the bundled models (comma-separated
                                                       shell patterns of Hub ids or folders, ``*`` = any)
``allow_hub``           ``DYNMASK_ALLOW_HUB``          false: no download from the Hugging Face Hub
``max_params``          ``DYNMASK_MAX_PARAMS``         200,000,000 parameters
``max_text_chars``      ``DYNMASK_MAX_TEXT_CHARS``     64,000 characters
``max_tokens``          ``DYNMASK_MAX_TOKENS``         8,192: the longest input a run reads (past the usual 512,
                                                       up to the model's own context)
``max_image_mb``        ``DYNMASK_MAX_IMAGE_MB``       20
``max_audio_mb``        ``DYNMASK_MAX_AUDIO_MB``       30
``result_budget_mb``    ``DYNMASK_RESULT_BUDGET_MB``   1024: results of every session, in tensor bytes
``model_budget_mb``     ``DYNMASK_MODEL_BUDGET_MB``    2048: loaded models, in tensor bytes (the newest stays)
``figure_budget_mb``    ``DYNMASK_FIGURE_BUDGET_MB``   64: built figures, shared by every session (JSON bytes)
``capture_budget_mb``   ``DYNMASK_CAPTURE_BUDGET_MB``  100: what a run past 512 tokens keeps of its attention
                                                       (both passes; summaries and pooled maps)
``parallel_runs``       ``DYNMASK_PARALLEL_RUNS``      2: computations at once (more wait their turn)
======================  =============================  ========================================================

A refused model gets one line that says why and what to ask for. Messages never say whether a path exists on the
server: a folder that is not allowed, and an allowed one that cannot be loaded, both get words that hold either way.
The command line is not served and is not restricted.
"""

from __future__ import annotations

import fnmatch
import json
import os
import struct
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from dynmask_core.messages import shown
from dynmask_core.modalities.files import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES
from dynmask_core.modalities.text import MAX_CHARS
from dynmask_core.models import PRESETS

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_FILE = ROOT / "serving.toml"
_ENV = {"allow_models": "DYNMASK_ALLOW_MODELS", "allow_hub": "DYNMASK_ALLOW_HUB", "max_params": "DYNMASK_MAX_PARAMS",
        "max_text_chars": "DYNMASK_MAX_TEXT_CHARS", "max_tokens": "DYNMASK_MAX_TOKENS",
        "capture_budget_mb": "DYNMASK_CAPTURE_BUDGET_MB", "max_image_mb": "DYNMASK_MAX_IMAGE_MB",
        "max_audio_mb": "DYNMASK_MAX_AUDIO_MB", "result_budget_mb": "DYNMASK_RESULT_BUDGET_MB",
        "model_budget_mb": "DYNMASK_MODEL_BUDGET_MB", "figure_budget_mb": "DYNMASK_FIGURE_BUDGET_MB",
        "parallel_runs": "DYNMASK_PARALLEL_RUNS"}


@dataclass(frozen=True)
class ServingPolicy:
    """What this server lets a link do. See the module docstring for the settings and their defaults."""

    allow_models: tuple[str, ...] = ()
    allow_hub: bool = False
    max_params: int = 200_000_000
    max_text_chars: int = MAX_CHARS
    max_tokens: int = 8192
    capture_budget_mb: float = 100
    max_image_mb: float = MAX_IMAGE_BYTES / 2**20
    max_audio_mb: float = MAX_AUDIO_BYTES / 2**20
    result_budget_mb: float = 1024
    model_budget_mb: float = 2048
    figure_budget_mb: float = 64
    parallel_runs: int = 2
    source: str = "built-in defaults"

    def __post_init__(self) -> None:
        if self.max_params < 1 or self.max_text_chars < 1 or self.max_tokens < 1 or self.max_image_mb <= 0 \
                or self.max_audio_mb <= 0 or self.capture_budget_mb <= 0:
            raise ValueError("serving policy: the maximums must be positive")
        if min(self.result_budget_mb, self.model_budget_mb, self.figure_budget_mb) < 0 \
                or not 1 <= self.parallel_runs <= 64:
            raise ValueError("serving policy: the budgets cannot be negative and parallel_runs is 1 to 64")
        if self.max_text_chars > MAX_CHARS or self.max_image_mb * 2**20 > MAX_IMAGE_BYTES \
                or self.max_audio_mb * 2**20 > MAX_AUDIO_BYTES:
            raise ValueError(f"serving policy: the input maximums cannot exceed the app's own ({MAX_CHARS} "
                             f"characters, {MAX_IMAGE_BYTES // 2**20} MB pictures, {MAX_AUDIO_BYTES // 2**20} MB "
                             "recordings)")

    # ------------------------------------------------------------------------------------------------ models

    def check_model(self, model_id: str) -> None:
        """Raises ValueError (one line) when this server does not load ``model_id``; bundled models always load."""
        model_id = (model_id or "").strip()
        if model_id in PRESETS:
            return
        bundled = ", ".join(PRESETS)
        if not any(fnmatch.fnmatchcase(model_id, pattern) for pattern in self.allow_models):
            raise ValueError(f"This server loads only its bundled models ({bundled}) and the ones its operator "
                             f"allows; {shown(model_id)} is not among them. Pick a bundled model, or ask the operator "
                             "to allow it (serving.toml: allow_models).")
        if _looks_like_hub_id(model_id) and not self.allow_hub and not is_folder(model_id):
            raise ValueError(f"{shown(model_id)} would be downloaded from the Hugging Face Hub, which this server does "
                             "not do (serving.toml: allow_hub). Pick a bundled model.")

    def check_size(self, model_id: str, n_params: int) -> None:
        """Raises ValueError when a loaded model is larger than the server allows."""
        if model_id not in PRESETS and n_params > self.max_params:
            raise ValueError(f"{shown(model_id)} has {n_params / 1e6:.0f}M parameters; this server runs models up to "
                             f"{self.max_params / 1e6:.0f}M (serving.toml: max_params).")

    def load_error(self, model_id: str, err: Exception) -> str:
        """What to tell the user when an allowed model fails to load: the reason for a Hub id, words that do not
        reveal the server's files for a folder."""
        if model_id in PRESETS or (_looks_like_hub_id(model_id) and not is_folder(model_id)):
            return str(err)
        return (f"{shown(model_id)} could not be loaded here: it is missing, not a model folder, or a model family "
                "dynmask cannot run. Check the name with the operator.")

    # ------------------------------------------------------------------------------------------------ inputs

    def check_text(self, text: str) -> None:
        """Raises ValueError for a text longer than the server takes."""
        if len(text) > self.max_text_chars:
            raise ValueError(f"The text has {len(text):,} characters; this server takes up to {self.max_text_chars:,}. "
                             "Shorten it.")

    def check_tokens(self, asked: int) -> None:
        """Raises ValueError when a recipe asks to read more tokens than the server allows."""
        if asked > self.max_tokens:
            raise ValueError(f"This server reads up to {self.max_tokens:,} tokens; the recipe asks for {asked:,}. "
                             f"Set *Tokens to read* to {self.max_tokens:,} or less.")

    def max_upload_bytes(self, kind: str) -> int:
        """The largest upload of ``kind`` (``image``/``audio``) in bytes."""
        return int((self.max_image_mb if kind == "image" else self.max_audio_mb) * 2**20)

    def rows(self) -> list[tuple[str, str]]:
        """``(setting, value)`` for the "About this server" panel."""
        models = ", ".join(self.allow_models) if self.allow_models else "none (bundled models only)"
        return [("Bundled models", ", ".join(PRESETS)), ("Other models allowed", models),
                ("Downloads from the Hugging Face Hub", "allowed" if self.allow_hub else "off"),
                ("Largest model", f"{self.max_params / 1e6:,.0f}M parameters"),
                ("Longest text", f"{self.max_text_chars:,} characters"),
                ("Most tokens read", f"{self.max_tokens:,} (past 512: {self.capture_budget_mb:g} MB of attention "
                                     "summaries and pooled maps per run)"),
                ("Largest picture", f"{self.max_image_mb:g} MB"), ("Largest recording", f"{self.max_audio_mb:g} MB"),
                ("Memory for results (all sessions)", f"{self.result_budget_mb:,.0f} MB"),
                ("Memory for models", f"{self.model_budget_mb:,.0f} MB"),
                ("Memory for built figures", f"{self.figure_budget_mb:,.0f} MB"),
                ("Computations at once", str(self.parallel_runs)),
                ("Read from", self.source)]

    @property
    def capture_budget(self) -> int:
        """What one long run keeps of its attention, in bytes (both passes together)."""
        return int(self.capture_budget_mb * 2**20)

    @property
    def result_budget(self) -> int:
        """The results' budget in bytes."""
        return int(self.result_budget_mb * 2**20)

    @property
    def model_budget(self) -> int:
        """The models' budget in bytes."""
        return int(self.model_budget_mb * 2**20)

    @property
    def figure_budget(self) -> int:
        """The built figures' budget in bytes."""
        return int(self.figure_budget_mb * 2**20)


def load_policy(env: Mapping[str, str] | None = None) -> ServingPolicy:
    """The policy from the file (``DYNMASK_SERVING`` or ``serving.toml``) and the environment.

    Raises:
        ValueError: a file or a value that cannot be read (the server should not start on a policy it misreads).
    """
    env = os.environ if env is None else env
    path = Path(env.get("DYNMASK_SERVING") or DEFAULT_FILE)
    values: dict[str, Any] = {}
    sources = []
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            raise ValueError(f"serving policy {path.name}: {err}") from err
        known = {f.name for f in fields(ServingPolicy)} - {"source"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"serving policy {path.name}: unknown settings {unknown}; known: {sorted(known)}")
        values.update(data)
        sources.append(path.name)
    elif env.get("DYNMASK_SERVING"):
        raise ValueError(f"serving policy: DYNMASK_SERVING names {path}, which is not a file")
    for name, var in _ENV.items():
        if env.get(var, "").strip():
            values[name] = env[var].strip()
            sources.append(var)
    policy = ServingPolicy(**{k: _typed(k, v) for k, v in values.items()})
    return replace(policy, source=" + ".join(sources) or "built-in defaults")


def _typed(name: str, value: Any) -> Any:
    try:
        if name == "allow_models":
            items = value if isinstance(value, (list, tuple)) else str(value).split(",")
            return tuple(str(v).strip() for v in items if str(v).strip())
        if name == "allow_hub":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError
            return text in ("1", "true", "yes", "on")
        if name in ("max_params", "max_text_chars", "max_tokens", "parallel_runs"):
            return int(str(value).replace("_", "").replace(",", ""))
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"serving policy: {name} = {value!r} is not a valid value") from None


def _looks_like_hub_id(model_id: str) -> bool:
    return "/" in model_id and not model_id.startswith(("/", ".", "~")) and model_id.count("/") == 1


def is_folder(model_id: str) -> bool:
    try:
        return Path(model_id).expanduser().is_dir()
    except (OSError, RuntimeError):
        return False


def count_parameters(model: Any) -> int:
    """Parameters of a loaded model (its head included)."""
    return int(sum(p.numel() for p in model.parameters()))


def folder_parameters(folder: str | Path) -> int | None:
    """Parameters of the ``*.safetensors`` weights in ``folder``, read from their headers (no weights loaded);
    None when there are none."""
    total, found = 0, False
    for path in Path(folder).glob("*.safetensors"):
        with path.open("rb") as f:
            (size,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(size))
        for name, entry in header.items():
            if name != "__metadata__":
                count = 1
                for dim in entry["shape"]:
                    count *= int(dim)
                total += count
                found = True
    return total if found else None
