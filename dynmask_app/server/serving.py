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
``max_image_mb``        ``DYNMASK_MAX_IMAGE_MB``       20 (whole MB, at most 20: the uploader states it)
``max_audio_mb``        ``DYNMASK_MAX_AUDIO_MB``       30 (whole MB, at most 30)
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

Which models a link may load (``allow_models``)
-----------------------------------------------
A model id is read one way only, from its spelling, never from what exists on the server (:func:`model_kind`):

* a bundled id (``minilm``, ``smollm2``...) always loads;
* a **folder** starts with ``/``, ``~`` or ``.``: ``/srv/models/x``, ``~/models/x``, ``./models/x`` (a relative folder
  is relative to the server's working directory; ``models/x`` without ``./`` is a Hub id, not a folder);
* anything else must be a **Hugging Face id** (``name`` or ``org/name``, no ``.``/``..`` parts) and is only ever a
  Hub id: it loads only with ``allow_hub`` on, and is refused (with the words of a failed load) when the server's
  working directory holds a path of that name, since transformers would read that folder instead of the Hub;
* anything else is refused before the server's files are looked at: URLs (``file://...``), backslashes, control
  characters and NUL bytes, ids over 1,024 characters, ``org//x``, ``org/..``.

A pattern is a **folder pattern** when it starts with ``/``, ``~`` or ``.``, else a **Hub-id pattern**; ``*`` alone
allows every Hub id and every folder. A Hub-id pattern (``org/*``) matches Hub ids only (``fnmatchcase``), never a
folder, however the folder is spelled. A folder is matched after resolving both sides the way the file system will
(``~``, ``..``, ``//``, ``./``, trailing slashes and every symlink, ``os.path.realpath``): the pattern's fixed part
(before the first part with ``*``, ``?`` or ``[``) is resolved, the asked folder must really lie under it, and its
path below it must match the rest of the pattern (``*`` matches across ``/``: ``/srv/models/*`` allows every folder
below ``/srv/models``; a pattern without a wildcard allows that one folder). A symlink inside an allowed folder that
points outside it is refused; ``..`` after a wildcard in a pattern is refused when the policy is read. The app loads
the resolved folder that was checked (:meth:`ServingPolicy.check_model` returns it), not the string that was typed,
so nothing is resolved twice (what remains: whoever can write inside an allowed folder can swap it in between).

How big a model is (``max_params``)
-----------------------------------
A folder's parameters are counted from its weight files' headers before anything is loaded, and never by running
them (:mod:`dynmask_core.models.weights` says how, format by format). A folder with nothing countable, or whose weights
that transformers would load first cannot be counted (or are named outside the folder by its index or its config),
is refused before loading with one line that holds for a missing folder too. Counts read ``22.7M``, ``1.5M``,
``6.7B``, or exactly (``100,000 parameters``) under a million or where the rounded numbers would look equal.
Hub ids (with ``allow_hub``) are counted once loaded. Not covered: the model a folder's ``config.json`` describes is
what transformers builds, and weights missing from the files are initialised at random, so a config larger than its
weights is built at the config's size (then refused by the count after loading).
"""

from __future__ import annotations

import fnmatch
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path, PurePosixPath
from typing import Any

from dynmask_core.messages import N_, Message, error_message, shown
from dynmask_core.modalities.files import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES, file_reader
from dynmask_core.modalities.text import MAX_CHARS
from dynmask_core.models import PRESETS
from dynmask_core.models.weights import count_weights

ROOT = Path(__file__).resolve().parents[2]
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
    source: str = N_("built-in defaults")

    def __post_init__(self) -> None:
        if self.max_params < 1 or self.max_text_chars < 1 or self.max_tokens < 1 or self.max_image_mb <= 0 \
                or self.max_audio_mb <= 0 or self.capture_budget_mb <= 0:
            raise ValueError("serving policy: the maximums must be positive")
        if not (float(self.max_image_mb).is_integer() and float(self.max_audio_mb).is_integer()):
            raise ValueError("serving policy: max_image_mb and max_audio_mb are whole megabytes (every uploader, "
                             "Streamlit's own words included, states its limit in whole MB)")
        if min(self.result_budget_mb, self.model_budget_mb, self.figure_budget_mb) < 0 \
                or not 1 <= self.parallel_runs <= 64:
            raise ValueError("serving policy: the budgets cannot be negative and parallel_runs is 1 to 64")
        if self.max_text_chars > MAX_CHARS or self.max_image_mb * 2**20 > MAX_IMAGE_BYTES \
                or self.max_audio_mb * 2**20 > MAX_AUDIO_BYTES:
            raise ValueError(f"serving policy: the input maximums cannot exceed the app's own ({MAX_CHARS} "
                             f"characters, {MAX_IMAGE_BYTES // 2**20} MB pictures, {MAX_AUDIO_BYTES // 2**20} MB "
                             "recordings)")
        for pattern in self.allow_models:
            if not _valid_pattern(pattern):
                raise ValueError(f"serving policy: allow_models pattern {pattern!r} cannot be read: a folder pattern "
                                 "starts with /, ~ or . and has no '..' after a wildcard, no backslash or control "
                                 "character")

    # ------------------------------------------------------------------------------------------------ models

    def check_model(self, model_id: str) -> str:
        """Raises ValueError (one line) when this server does not load ``model_id``; bundled models always load.

        Returns:
            What to load: a bundled or Hub id as given, or for a folder the resolved path that was checked (load
            exactly that, not the string typed). See the module docstring for how ids and patterns are read.
        """
        model_id = (model_id or "").strip()
        if model_id in PRESETS:
            return model_id
        kind = model_kind(model_id)
        bundled = ", ".join(PRESETS)
        if kind == "bad":
            raise ValueError(Message("{model} is neither a bundled model ({bundled}), a Hugging Face id like "
                                     "'org/name', nor a folder path this server reads (/path/to/model or ./path, "
                                     "without file:// or backslashes). Pick a bundled model.", model=shown(model_id),
                                     bundled=bundled))
        refused = ValueError(Message("This server loads only its bundled models ({bundled}) and the ones its "
                                     "operator allows; {model} is not among them. Pick a bundled model, or ask the "
                                     "operator to allow it (serving.toml: allow_models).", bundled=bundled,
                                     model=shown(model_id)))
        if kind == "path":
            target = resolve_folder(model_id)
            if target is None or not any(folder_matches(target, pattern) for pattern in self.allow_models):
                raise refused
            return target
        if not any(pattern == "*" or (not is_folder_pattern(pattern) and fnmatch.fnmatchcase(model_id, pattern))
                   for pattern in self.allow_models):
            raise refused
        if not self.allow_hub:
            raise ValueError(Message("{model} would be downloaded from the Hugging Face Hub, which this server does "
                                     "not do (serving.toml: allow_hub). Pick a bundled model.", model=shown(model_id)))
        if _exists_here(model_id):  # transformers would read the folder of that name, not the Hub
            raise ValueError(_unloadable(model_id))
        return model_id

    def check_weights(self, model_id: str, target: str) -> int | None:
        """For a folder: counts its parameters from its weight files (nothing loaded, nothing run) and raises
        ValueError (one line) when they are over ``max_params`` or cannot be counted; None for other ids.

        Args:
            model_id: What the user asked for (for the message).
            target: What :meth:`check_model` returned for it (the resolved folder).
        """
        model_id = (model_id or "").strip()
        if model_id in PRESETS or model_kind(model_id) != "path":
            return None
        counted = count_weights(target)
        if counted.n_params is None or counted.blocking:
            raise ValueError(Message("{model} could not be sized before loading: it is missing, not a model folder, "
                                     "or its weights are in a format this server cannot count without loading them "
                                     "(it counts safetensors, PyTorch .bin/.pth and GGUF files). Check the name with "
                                     "the operator, or ask for a safetensors copy (serving.toml: max_params).",
                                     model=shown(model_id)))
        self.check_size(model_id, counted.n_params)
        return counted.n_params

    def check_size(self, model_id: str, n_params: int) -> None:
        """Raises ValueError when a model is larger than the server allows (bundled models never are)."""
        model_id = (model_id or "").strip()
        if model_id not in PRESETS and n_params > self.max_params:
            has, limit = format_params(n_params), format_params(self.max_params)
            if has == limit:  # rounded alike: say both exactly
                has, limit = (Message("{n} parameters", n=f"{n_params:,}"),
                              Message("{n} parameters", n=f"{self.max_params:,}"))
            raise ValueError(Message("{model} has {has}; this server runs models up to {limit}. Pick a smaller "
                                     "model, or ask the operator to raise the limit (serving.toml: max_params).",
                                     model=shown(model_id), has=has, limit=limit))

    def load_error(self, model_id: str, err: Exception) -> str:
        """What to tell the user when an allowed model fails to load: the reason for a Hub id, words that do not
        reveal the server's files for a folder."""
        model_id = (model_id or "").strip()
        if model_id in PRESETS or model_kind(model_id) == "hub":
            return error_message(err)
        return _unloadable(model_id)

    # ------------------------------------------------------------------------------------------------ inputs

    def check_text(self, text: str) -> None:
        """Raises ValueError for a text longer than the server takes."""
        if len(text) > self.max_text_chars:
            raise ValueError(Message("The text has {n} characters; this server takes up to {most}. Shorten it.",
                                     n=f"{len(text):,}", most=f"{self.max_text_chars:,}"))

    def check_tokens(self, asked: int) -> None:
        """Raises ValueError when a recipe asks to read more tokens than the server allows."""
        if asked > self.max_tokens:
            raise ValueError(Message("This server reads up to {most} tokens; the recipe asks for {asked}. Set "
                                     "*Tokens to read* to {most} or less.", most=f"{self.max_tokens:,}",
                                     asked=f"{asked:,}"))

    def max_upload_bytes(self, kind: str) -> int:
        """The largest upload of ``kind`` in bytes (see :meth:`max_upload_mb`)."""
        return int(self.max_upload_mb(kind) * 2**20)

    def max_upload_mb(self, kind: str) -> int:
        """The largest upload of ``kind`` in whole MB (of 2**20 bytes): the uploader's ``max_upload_size``, which
        the browser enforces and states ("20MB per file") beside the app's own label. Pictures and recordings have
        their settings; any other kind of file its reader's own limit."""
        settings = {"image": self.max_image_mb, "audio": self.max_audio_mb}
        if kind in settings:
            return int(settings[kind])
        return int(file_reader(kind).max_bytes // 2**20)

    def rows(self) -> list[tuple[str, str]]:
        """``(setting, value)`` for the "About this server" panel."""
        models = ", ".join(self.allow_models) if self.allow_models else Message("none (bundled models only)")
        return [("Bundled models", ", ".join(PRESETS)), ("Other models allowed", models),
                ("Downloads from the Hugging Face Hub", Message("allowed") if self.allow_hub else Message("off")),
                ("Largest model", format_params(self.max_params)),
                ("Longest text", Message("{n} characters", n=f"{self.max_text_chars:,}")),
                ("Most tokens read", Message("{n} (past 512: {mb:g} MB of attention summaries and pooled maps per run)",
                                             n=f"{self.max_tokens:,}", mb=self.capture_budget_mb)),
                ("Largest picture", f"{self.max_image_mb:g} MB"), ("Largest recording", f"{self.max_audio_mb:g} MB"),
                ("Memory for results (all sessions)", f"{self.result_budget_mb:,.0f} MB"),
                ("Memory for models", f"{self.model_budget_mb:,.0f} MB"),
                ("Memory for built figures", f"{self.figure_budget_mb:,.0f} MB"),
                ("Computations at once", str(self.parallel_runs)),
                ("Read from", Message(self.source))]  # the built-in defaults, or files and variables

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


# ---------------------------------------------------------------------------------------------------- model ids

MAX_ID_CHARS = 1024  # a longer id is refused before the file system is asked anything
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}(/[\w.-]{1,96})?$")  # as dynmask_core.models.loader reads Hub ids
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")  # file://..., http://..., C:\...
_FOLDER_START = ("/", "~", ".")
_MAGIC = re.compile(r"[*?[]")


def _unloadable(model_id: str) -> Message:
    return Message("{model} could not be loaded here: it is missing, not a model folder, or a model family dynmask "
                   "cannot run. Check the name with the operator.", model=shown(model_id))


def _odd_characters(text: str) -> bool:
    return "\\" in text or any(ord(c) < 32 or ord(c) == 127 for c in text)


def model_kind(model_id: str) -> str:
    """How an id is read, from its spelling alone: ``bundled``, ``path`` (starts with ``/``, ``~`` or ``.``),
    ``hub`` (``name`` or ``org/name``) or ``bad`` (anything else: URLs, backslashes, control characters, too long)."""
    model_id = (model_id or "").strip()
    if model_id in PRESETS:
        return "bundled"
    if not model_id or len(model_id) > MAX_ID_CHARS or _odd_characters(model_id) or _SCHEME.match(model_id):
        return "bad"
    if model_id.startswith(_FOLDER_START):
        return "path"
    if _HUB_ID.match(model_id) and not any(part in (".", "..") for part in model_id.split("/")):
        return "hub"
    return "bad"


def _resolved(path: str) -> str | None:
    """``path`` as the file system will read it (``~`` expanded, relative to the working directory, ``..`` and every
    symlink resolved), or None when it cannot be (an unknown ``~user``, a NUL byte)."""
    try:
        expanded = os.path.expanduser(path)
        if expanded.startswith("~") or "\0" in expanded:
            return None
        return os.path.realpath(expanded)
    except (OSError, ValueError, RuntimeError):
        return None


def resolve_folder(model_id: str) -> str | None:
    """The resolved path of a folder id (see :func:`model_kind`), or None when it is not one or cannot be resolved."""
    model_id = (model_id or "").strip()
    return _resolved(model_id) if model_kind(model_id) == "path" else None


def is_folder_pattern(pattern: str) -> bool:
    """A pattern of folders (starts with ``/``, ``~`` or ``.``); the others match Hub ids (``*`` alone: both)."""
    return pattern.strip().startswith(_FOLDER_START)


def _split_pattern(pattern: str) -> tuple[str, str]:
    """``(fixed folder, rest)``: the parts before the first one with a wildcard, and the others (``//`` and ``.``
    parts dropped from the rest)."""
    parts = pattern.strip().split("/")
    for i, part in enumerate(parts):
        if _MAGIC.search(part):
            fixed = "/".join(parts[:i]) or ("/" if pattern.strip().startswith("/") else ".")
            return fixed, "/".join(p for p in parts[i:] if p not in ("", "."))
    return pattern.strip(), ""


def _valid_pattern(pattern: str) -> bool:
    if not pattern or _odd_characters(pattern):
        return False
    if is_folder_pattern(pattern):
        return ".." not in _split_pattern(pattern)[1].split("/")
    return True


def folder_matches(resolved: str, pattern: str) -> bool:
    """Whether the resolved folder ``resolved`` lies under the folder pattern ``pattern`` (resolved the same way) and
    matches its wildcard part; Hub-id patterns never match a folder, ``*`` matches every one."""
    pattern = pattern.strip()
    if pattern == "*":
        return True
    if not is_folder_pattern(pattern) or not _valid_pattern(pattern):
        return False
    fixed, rest = _split_pattern(pattern)
    base = _resolved(fixed)
    if base is None:
        return False
    try:
        below = PurePosixPath(resolved).relative_to(base).as_posix()
    except ValueError:  # not under the pattern's folder
        return False
    if not rest:
        return below == "."
    return below != "." and fnmatch.fnmatchcase(below, rest)


def _exists_here(name: str) -> bool:
    try:
        return os.path.lexists(name)
    except (OSError, ValueError):
        return True


def is_folder(model_id: str) -> bool:
    """Whether ``model_id`` names an existing folder (as the loader would read it)."""
    try:
        return Path(model_id).expanduser().is_dir()
    except (OSError, RuntimeError, ValueError):
        return False


# ---------------------------------------------------------------------------------------------------- sizes


def format_params(n: int) -> str:
    """A parameter count for a message: ``22.7M parameters``, ``1.5M``, ``6.7B``; under a million exactly
    (``100,000 parameters``), never ``0M``."""
    n = int(n)
    if n < 1_000_000:
        return Message("{n} parameters", n=f"{n:,}")
    if n < 1_000_000_000:
        return Message("{n}M parameters", n=f"{n / 1e6:,.1f}".removesuffix(".0"))
    return Message("{n}B parameters", n=f"{n / 1e9:,.1f}".removesuffix(".0"))


def count_parameters(model: Any) -> int:
    """Parameters of a loaded model (its head included)."""
    return int(sum(p.numel() for p in model.parameters()))
