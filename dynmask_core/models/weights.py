"""Counting a model folder's parameters from its weight files' headers, without loading a weight or running a pickle.

The serving policy refuses a folder over its size limit *before* loading it (loading a model to learn its size is the
cost the limit is there to avoid). Formats:

- safetensors: the JSON header's shapes (and a sharded ``model.safetensors.index.json``'s shards);
- PyTorch zip pickles (``.bin``, ``.pth``, ``.pt``): the zip's ``data.pkl`` read by a restricted unpickler that knows
  only dicts, plain values and stand-ins for torch's tensor rebuilders: no code of the file runs, no weight byte is
  read, and tensors sharing storage count once; a pre-1.6 (non-zip) pickle cannot be counted;
- GGUF (v2, v3): its header;
- ``tf_model.h5`` and ``flax_model.msgpack``: not counted (ignored next to a countable copy).

When the folder holds what transformers loads (the ``transformers_weights`` file its ``config.json`` names,
``model.safetensors``, its index's shards, ``pytorch_model.bin``, its index's shards), only those count, and the first
one transformers would pick must be countable (:attr:`WeightCount.blocking` otherwise).
"""

from __future__ import annotations

import collections
import io
import json
import math
import os
import pickle
import re
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WeightCount:
    """What :func:`count_weights` read from a folder.

    Attributes:
        n_params: The count (the largest format's total), None when nothing could be counted.
        formats: The formats counted.
        uncounted: Weight files that could not be counted (names inside the folder).
        blocking: The weights transformers would load first cannot be counted (or its index or the config names a
            file outside the folder): the folder is refused before loading.
    """

    n_params: int | None
    formats: tuple[str, ...] = ()
    uncounted: tuple[str, ...] = ()
    blocking: bool = False


_FORMATS = {".safetensors": "safetensors", ".bin": "pytorch", ".pth": "pytorch", ".pt": "pytorch", ".gguf": "gguf",
            ".h5": "tensorflow", ".msgpack": "flax"}
#: What transformers loads from a folder, in the order it picks (after a ``transformers_weights`` file the config
#: names): a file, or an index naming shards.
_LOADABLE = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json")
_MAX_HEADER = 100 * 2**20  # bytes of a safetensors header, an index, a config, a data.pkl (real ones: a few MB)


def count_weights(folder: str | Path) -> WeightCount:
    """Counts the parameters in ``folder``'s weight files without loading them (see the module docstring)."""
    root = Path(folder)
    try:
        if not root.is_dir():
            return WeightCount(None)
        loadable = _loadable_sets(root)
        others = sorted(p.name for p in root.iterdir() if p.suffix.lower() in _FORMATS and p.is_file())
    except (OSError, ValueError):
        return WeightCount(None)
    uncounted: list[str] = []
    totals: dict[str, int] = {}
    if loadable:  # what transformers loads: only those count (the first is the one it picks)
        first = True
        blocking = False
        for names in loadable:
            counted = None if names is None else _count_set(root, names, uncounted)
            if counted is not None:
                fmt = _FORMATS.get(Path(names[0]).suffix.lower(), "") if names else ""
                totals[fmt] = max(totals.get(fmt, 0), counted)
            blocking = blocking or (first and counted is None)
            first = False
        return WeightCount(max(totals.values()) if totals else None, tuple(sorted(totals)), tuple(uncounted),
                           blocking)
    for name in others:  # nothing transformers loads: every countable weight file counts, the largest format wins
        fmt = _FORMATS[Path(name).suffix.lower()]
        n = _count_file(root / name, fmt)
        if n is None:
            uncounted.append(name)
        else:
            totals[fmt] = totals.get(fmt, 0) + n
    return WeightCount(max(totals.values()) if totals else None, tuple(sorted(totals)), tuple(uncounted))


def _count_set(root: Path, names: list[str], uncounted: list[str]) -> int | None:
    """The parameters of one loadable set (a file, or an index's shards), None when a file cannot be counted."""
    total = 0
    for name in names:
        n = _count_file(root / name, _FORMATS.get(Path(name).suffix.lower(), ""))
        if n is None:
            uncounted.append(name)
            return None
        total += n
    return total


def _loadable_sets(root: Path) -> list[list[str] | None]:
    """The weight sets transformers may load from ``root``, in the order it picks them: each a list of file names
    inside the folder, or None for an index that cannot be read or names a file outside the folder."""
    names = list(_LOADABLE)
    explicit = _config_weights(root)
    if explicit is not None:
        names.insert(0, explicit)
    sets: list[list[str] | None] = []
    for name in names:
        if not _inside(name):
            sets.append(None)
        elif (root / name).is_file():
            sets.append(_index_shards(root / name) if name.endswith(".index.json") else [name])
    return sets


def _config_weights(root: Path) -> str | None:
    """The weights file a folder's ``config.json`` names (``transformers_weights``), which transformers loads first."""
    try:
        with (root / "config.json").open("rb") as f:
            config = json.loads(f.read(_MAX_HEADER))
        named = config.get("transformers_weights") if isinstance(config, dict) else None
    except (OSError, ValueError):
        return None
    return str(named) if named is not None else None


def _inside(name: str) -> bool:
    """Whether a file name an index or a config gives stays inside its folder (no absolute path, no ``..``)."""
    norm = os.path.normpath(name) if name else ".."
    odd = "\\" in name or any(ord(c) < 32 or ord(c) == 127 for c in name)
    return not (os.path.isabs(name) or norm == ".." or norm.startswith("../") or odd)


def folder_parameters(folder: str | Path) -> int | None:
    """Parameters of the weights in ``folder``, read from their headers (no weights loaded); None when none could be
    counted. See :func:`count_weights`."""
    return count_weights(folder).n_params


def _index_shards(index: Path) -> list[str] | None:
    """The shard files a ``*.index.json`` names, or None when it cannot be read or names a file outside its folder."""
    try:
        with index.open("rb") as f:
            text = f.read(_MAX_HEADER + 1)
        if len(text) > _MAX_HEADER:
            return None
        names = sorted({str(v) for v in json.loads(text)["weight_map"].values()})
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return names if names and all(_inside(name) for name in names) else None


def _count_file(path: Path, fmt: str) -> int | None:
    """Parameters in one weight file, or None when its format cannot be counted without loading it."""
    readers = {"safetensors": _safetensors_params, "pytorch": _pickle_params, "gguf": _gguf_params}
    if fmt not in readers:
        return None
    try:
        return readers[fmt](path)
    except Exception:  # noqa: BLE001 - a hostile or broken file: whatever it raises, it is not counted
        return None


def _shape_numel(shape: Any) -> int:
    if not isinstance(shape, (list, tuple)) or len(shape) > 64 \
            or not all(type(d) is int and d >= 0 for d in shape):
        raise ValueError("not a shape")
    return math.prod(shape)


def _safetensors_params(path: Path) -> int:
    """From the JSON header: ``<u64 size><{name: {dtype, shape, data_offsets}, __metadata__}>``."""
    with path.open("rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise ValueError("no header")
        (size,) = struct.unpack("<Q", head)
        if size > _MAX_HEADER:
            raise ValueError("header too large")
        text = f.read(size)
        if len(text) != size:
            raise ValueError("cut short")
    header = json.loads(text)
    if not isinstance(header, dict):
        raise ValueError("not a header")
    return sum(_shape_numel(entry["shape"]) for name, entry in header.items() if name != "__metadata__")


class _StorageType:
    """Stands for ``torch.FloatStorage`` & co. in the reader: a name, nothing that can be called."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Storage:
    __slots__ = ("key",)

    def __init__(self, key: str) -> None:
        self.key = key


class _Tensor:
    __slots__ = ("key", "numel")

    def __init__(self, key: tuple[Any, ...], numel: int) -> None:
        self.key, self.numel = key, numel


def _rebuild_tensor(storage: Any, offset: Any, size: Any, *_rest: Any) -> _Tensor:
    if not isinstance(storage, _Storage) or type(offset) is not int:
        raise pickle.UnpicklingError("not a tensor")
    return _Tensor((storage.key, offset, tuple(size)), _shape_numel(size))


def _rebuild_parameter(data: Any, *_rest: Any) -> _Tensor:
    if not isinstance(data, _Tensor):
        raise pickle.UnpicklingError("not a parameter")
    return data


class _ShapeReader(pickle.Unpickler):
    """Reads a ``torch.save`` pickle into shapes only: the only globals it knows are its own stand-ins for
    ``torch._utils._rebuild_tensor*``/``_rebuild_parameter*``, storage types, and ``OrderedDict``; any other global
    stops it (pickle's documented way to restrict what a pickle may build). No weight byte is read."""

    _KNOWN = {("collections", "OrderedDict"): collections.OrderedDict,
              ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
              ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
              ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
              ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter}

    def find_class(self, module: str, name: str) -> Any:
        known = self._KNOWN.get((module, name))
        if known is not None:
            return known
        if module in ("torch", "torch.storage") and re.fullmatch(r"[A-Za-z0-9]+Storage", name):
            return _StorageType(name)
        raise pickle.UnpicklingError(f"{module}.{name} is not read here")

    def persistent_load(self, pid: Any) -> _Storage:
        if isinstance(pid, tuple) and len(pid) >= 3 and pid[0] == "storage" and isinstance(pid[1], _StorageType):
            return _Storage(str(pid[2]))
        raise pickle.UnpicklingError("not a storage")


def _pickle_params(path: Path) -> int:
    """A ``torch.save`` zip (``pytorch_model.bin``, ``.pth``, ``.pt``): the tensors' shapes from its ``data.pkl``,
    read by :class:`_ShapeReader`; tensors sharing a storage slice (tied weights) count once."""
    with zipfile.ZipFile(path) as archive:  # a pre-1.6 pickle (not a zip) raises BadZipFile: not counted
        names = [n for n in archive.namelist() if n == "data.pkl" or n.endswith("/data.pkl")]
        if len(names) != 1 or archive.getinfo(names[0]).file_size > _MAX_HEADER:
            raise ValueError("not one data.pkl")
        with archive.open(names[0]) as f:
            data = f.read(_MAX_HEADER + 1)
    if len(data) > _MAX_HEADER:
        raise ValueError("data.pkl too large")
    found: dict[tuple[Any, ...], int] = {}
    stack, seen = [_ShapeReader(io.BytesIO(data)).load()], 0
    while stack:
        obj = stack.pop()
        seen += 1
        if seen > 10_000_000:
            raise ValueError("too many objects")
        if isinstance(obj, _Tensor):
            found[obj.key] = obj.numel
        elif isinstance(obj, dict):
            stack.extend(obj.values())
        elif isinstance(obj, (list, tuple)):
            stack.extend(obj)
    if not found:
        raise ValueError("no tensors")
    return sum(found.values())


_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}  # GGUF value types: bytes
_GGUF_STRING, _GGUF_ARRAY = 8, 9


def _gguf_params(path: Path) -> int:
    """From a GGUF (v2/v3) header: the key/value metadata skipped, each tensor's dimensions multiplied."""
    end = path.stat().st_size
    with path.open("rb") as f:
        def read(fmt: str) -> tuple[Any, ...]:
            size = struct.calcsize(fmt)
            raw = f.read(size)
            if len(raw) != size:
                raise ValueError("cut short")
            return struct.unpack(fmt, raw)

        def skip(n: int) -> None:
            if n < 0 or f.tell() + n > end:
                raise ValueError("past the end")
            f.seek(n, io.SEEK_CUR)

        def skip_value(kind: int, depth: int = 0) -> None:
            if kind in _GGUF_SIZES:
                skip(_GGUF_SIZES[kind])
            elif kind == _GGUF_STRING:
                skip(read("<Q")[0])
            elif kind == _GGUF_ARRAY and depth < 4:
                item, count = read("<IQ")
                if count > end:
                    raise ValueError("array too long")
                if item in _GGUF_SIZES:
                    skip(_GGUF_SIZES[item] * count)
                else:
                    for _ in range(count):
                        skip_value(item, depth + 1)
            else:
                raise ValueError("unknown value type")

        if f.read(4) != b"GGUF" or read("<I")[0] not in (2, 3):
            raise ValueError("not a GGUF v2/v3 file")
        n_tensors, n_values = read("<QQ")
        if n_tensors > 1_000_000 or n_values > 1_000_000:
            raise ValueError("too many entries")
        for _ in range(n_values):
            skip_value(_GGUF_STRING)  # the key
            skip_value(read("<I")[0])
        total = 0
        for _ in range(n_tensors):
            skip_value(_GGUF_STRING)  # the name
            (n_dims,) = read("<I")
            if n_dims > 8:
                raise ValueError("too many dimensions")
            total += _shape_numel(list(read(f"<{n_dims}Q")))
            skip(4 + 8)  # type, offset
        return total
