"""What a lab run is, and its file: ``metrics.json``.

:class:`LabConfig` defines a run, :class:`RecipeRun` records one recipe's training, :class:`LabResult` both; its
``to_dict()`` is what :func:`save_run` writes. A saved run comes back from users (the app's "load a saved run"
upload, :func:`parse_run`; the command line's :func:`load_run`), so the whole file is checked against a schema
before any field is used.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dynmask_core.lessons.mlm.masking import MASK_PROB, check_seed
from dynmask_core.masks.plan import MAX_SEED
from dynmask_core.messages import shown

# --------------------------------------------------------------------------------------------------------------
# The records: a config and what each recipe's training gave


@dataclass(frozen=True)
class LabConfig:
    """Everything that defines a lab run; both recipes share it.

    The default finishes both runs in about 3 minutes on a 2-core CPU (180 s measured; seconds on a GPU).

    Attributes:
        steps: Optimizer steps per recipe.
        batch_size: Segments per step.
        lr: Peak AdamW learning rate (linear warm-up over ``warmup_steps``, then linear decay to 0).
        weight_decay: AdamW weight decay.
        warmup_steps: Warm-up steps (capped at ``steps``).
        hidden_size: BERT hidden size.
        layers: Transformer layers.
        heads: Attention heads.
        intermediate_size: Feed-forward width.
        dropout: Hidden and attention dropout.
        max_len: Longest segment in tokens, ``[CLS]`` and ``[SEP]`` included (position table: 64).
        mask_prob: BERT's 0.15; the split is always 80/10/10.
        eval_every: Held-out evaluation every this many steps (and at step 0 and the last step).
        heldout_fraction: Share of segments held out.
        static_copies: Masked copies per training segment for ``static``; copy ``k % static_copies`` is used the
            k-th time a segment is drawn. 1 (default) is the extreme static case, one fixed mask per segment; BERT
            used 10 copies over 40 epochs.
        seed: Model initialisation, batch order, dropout and the masks of the training data.
        data_seed: Train / held-out split and the fixed masking of the held-out set (kept apart from ``seed`` so
            runs with different seeds are scored on the same questions).
    """

    steps: int = 700
    batch_size: int = 32
    lr: float = 2e-3
    weight_decay: float = 0.01
    warmup_steps: int = 30
    hidden_size: int = 128
    layers: int = 2
    heads: int = 2
    intermediate_size: int = 256
    dropout: float = 0.1
    max_len: int = 48
    mask_prob: float = MASK_PROB
    eval_every: int = 50
    heldout_fraction: float = 0.1
    static_copies: int = 1
    seed: int = 0
    data_seed: int = 0

    def validate(self) -> LabConfig:
        """Returns itself, or raises ValueError saying what is allowed."""
        whole = {"steps": (1, 1_000_000), "batch_size": (1, 4096), "warmup_steps": (0, 1_000_000),
                 "hidden_size": (8, 4096), "layers": (1, 48), "heads": (1, 64), "intermediate_size": (8, 16384),
                 "max_len": (8, 64), "eval_every": (1, 1_000_000), "static_copies": (1, 100)}
        for name, (low, high) in whole.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
        if self.hidden_size % self.heads:
            raise ValueError(f"hidden_size ({self.hidden_size}) must be a multiple of heads ({self.heads})")
        numbers = {"lr": (0, 1, False, True), "weight_decay": (0, 1, True, True), "dropout": (0, 1, True, False),
                   "mask_prob": (0, 1, False, True), "heldout_fraction": (0, 1, False, False)}
        for name, (low, high, low_in, high_in) in numbers.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and \
                (low <= value if low_in else low < value) and (value <= high if high_in else value < high)
            if not ok:
                bounds = f"{'[' if low_in else '('}{low}, {high}{']' if high_in else ')'}"
                raise ValueError(f"{name} must be a number in {bounds}, got {value!r}")
        check_seed(self.seed)
        check_seed(self.data_seed, "data_seed")
        return self

    def to_dict(self) -> dict[str, Any]:
        """The fields as a plain dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LabConfig:
        """The config from :meth:`to_dict` output (unknown keys ignored), validated."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names}).validate()


@dataclass
class RecipeRun:
    """One recipe's training record.

    Attributes:
        recipe: ``static`` or ``dynamic``.
        steps: ``{"step", "train_loss"}`` for every optimizer step (1-based; the loss of that step's batch).
        eval: ``{"step", "heldout_loss", "masked_accuracy"}`` at step 0, every ``eval_every`` steps and the last.
        final: ``train_loss`` (mean over the last 10% of steps, at least one), and the last ``heldout_loss`` and
            ``masked_accuracy``.
        seconds: Wall time of this recipe's training and evaluation.
    """

    recipe: str
    steps: list[dict[str, float]]
    eval: list[dict[str, float]]
    final: dict[str, float]
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """``{"steps", "eval", "final", "seconds"}``; the three final numbers are repeated at the top for quick
        reading (``train_loss``, ``heldout_loss``, ``masked_accuracy``)."""
        return {**self.final, "steps": self.steps, "eval": self.eval, "final": self.final,
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, recipe: str, data: dict[str, Any]) -> RecipeRun:
        """The record from :meth:`to_dict` output."""
        return cls(recipe, list(data["steps"]), list(data["eval"]), dict(data["final"]), float(data["seconds"]))


@dataclass
class LabResult:
    """Both recipes trained under one config.

    Attributes:
        config: The config.
        static: The static recipe's record.
        dynamic: The dynamic recipe's record.
        seconds: Total wall time (corpus, both trainings and evaluations).
        device: Where it ran (``cpu`` or ``cuda``).
        corpus: :meth:`~dynmask_core.lessons.mlm.lab.Corpus.describe`.
    """

    config: LabConfig
    static: RecipeRun
    dynamic: RecipeRun
    seconds: float
    device: str = "cpu"
    corpus: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ``metrics.json`` structure: ``{"config": {...}, "static": {...}, "dynamic": {...}, "seconds"}``;
        ``config`` also carries ``device`` and ``corpus``."""
        config = {**self.config.to_dict(), "device": self.device, "corpus": self.corpus or {}}
        return {"config": config, "static": self.static.to_dict(), "dynamic": self.dynamic.to_dict(),
                "seconds": round(self.seconds, 3)}

    @classmethod
    def from_dict(cls, data: Any, name: str = "metrics.json") -> LabResult:
        """The result from :meth:`to_dict` output, after checking all of it against the ``metrics.json`` schema.

        Args:
            data: The parsed JSON.
            name: The file's name, for the message.

        Raises:
            ValueError: One line naming the first field that is missing, unknown or of the wrong type or range
                (e.g. ``"static.steps[2].train_loss" must be a number from 0 to 1000000, got a string``), or a
                config that :meth:`LabConfig.validate` refuses.
        """
        label = shown(name, 60)
        try:
            _RUN.check(data, "")
        except _Wrong as wrong:
            raise _not_a_run(label, str(wrong)) from None
        config = data["config"]
        try:
            lab = LabConfig.from_dict(config)
        except ValueError as err:
            raise _not_a_run(label, f'in "config", {err}') from None
        return cls(lab, RecipeRun.from_dict("static", data["static"]), RecipeRun.from_dict("dynamic", data["dynamic"]),
                   float(data["seconds"]), config["device"], config["corpus"])


# --------------------------------------------------------------------------------------------------------------
# Saved runs: metrics.json and its schema
#
# A saved run comes back from users (the app's upload), so every field is checked before use: a page that charts
# a string, or a loader that recurses into a 200,000-deep list, must not be reachable from a file.

MAX_RUN_BYTES = 2 << 20
"""The largest saved run read: the app's most steps (3000 per recipe) weigh about 0.4 MB, the default 700 about
0.1 MB; 2 MiB holds about 16,000 steps per recipe."""
_MAX_LAB_STEPS = 1_000_000  # LabConfig.steps' limit


class _Wrong(Exception):
    """A field of a saved run that does not fit the schema (the message says which and why)."""

    def __init__(self, where: str, problem: str) -> None:
        super().__init__(f'"{where}" {problem}' if where else f"the file {problem}")


def _kind(value: Any) -> str:
    """How a JSON value is named in a message (never the whole value: it may be huge)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    text = repr(value)
    return text if len(text) <= 20 else f"{text[:12]}… ({len(text)} characters)"


def _number_text(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


@dataclass(frozen=True)
class _Num:
    """A JSON number from ``low`` to ``high`` (finite; ``whole``: an integer, never a float or a boolean)."""

    low: float
    high: float
    whole: bool = False

    def check(self, value: Any, where: str) -> None:
        kinds = int if self.whole else (int, float)
        fits = isinstance(value, kinds) and not isinstance(value, bool) and math.isfinite(value) and \
            self.low <= value <= self.high
        if not fits:
            what = "a whole number" if self.whole else "a number"
            raise _Wrong(where, f"must be {what} from {_number_text(self.low)} to {_number_text(self.high)}, "
                                f"got {_kind(value)}")


@dataclass(frozen=True)
class _Text:
    """A JSON string of at most ``longest`` characters."""

    longest: int

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, str) or len(value) > self.longest:
            got = f"{len(value)} characters" if isinstance(value, str) else _kind(value)
            raise _Wrong(where, f"must be text of at most {self.longest} characters, got {got}")


@dataclass(frozen=True)
class _List:
    """A JSON list of at least one ``item``."""

    item: Any

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, list) or not value:
            got = "an empty list" if value == [] else _kind(value)
            raise _Wrong(where, f"must be a list of at least one record, got {got}")
        for i, entry in enumerate(value):
            self.item.check(entry, f"{where}[{i}]")


@dataclass(frozen=True)
class _Obj:
    """A JSON object with exactly these fields (``optional`` ones may be absent; no others may be present)."""

    members: dict[str, Any]
    optional: frozenset[str] = frozenset()

    def check(self, value: Any, where: str) -> None:
        if not isinstance(value, dict):
            names = list(self.members)
            listed = ", ".join(names[:4]) + (", ..." if len(names) > 4 else "")
            raise _Wrong(where, f"must be an object ({listed}), got {_kind(value)}")
        for key in value:
            if key not in self.members:
                raise _Wrong(where, f"has the field {shown(key, 30)}, which a saved run does not have")
        for key, spec in self.members.items():
            inner = f"{where}.{key}" if where else key
            if key in value:
                spec.check(value[key], inner)
            elif key not in self.optional:
                raise _Wrong(inner, "is missing")


_LOSS = _Num(0, 1e6)
_SHARE = _Num(0, 1)
_SECONDS = _Num(0, 1e8)
_COUNT = _Num(0, 10**12, whole=True)
_FINAL = {"train_loss": _LOSS, "heldout_loss": _LOSS, "masked_accuracy": _SHARE}
_STEP = _Obj({"step": _Num(1, _MAX_LAB_STEPS, whole=True), "train_loss": _LOSS})
_EVAL = _Obj({"step": _Num(0, _MAX_LAB_STEPS, whole=True), "heldout_loss": _LOSS, "masked_accuracy": _SHARE})
# the final numbers are repeated at the top for quick reading (RecipeRun.to_dict)
_RECIPE_RUN = _Obj({**_FINAL, "steps": _List(_STEP), "eval": _List(_EVAL), "final": _Obj(_FINAL),
                    "seconds": _SECONDS})
_CORPUS_FIELDS = {"source": _Text(200), "train_segments": _COUNT, "heldout_segments": _COUNT, "vocab_size": _COUNT,
                  "tokens": _COUNT}
_CORPUS = _Obj(_CORPUS_FIELDS, optional=frozenset(_CORPUS_FIELDS))  # {} when the run had no corpus
# The config's types are checked here, its ranges by LabConfig.validate: every whole field is within a seed's range
# and every float one within [0, 1], so these bounds only keep absurd numbers out of the messages.
_CONFIG_FIELDS = {f.name: _Num(0, MAX_SEED, whole=True) if f.type in ("int", int) else _SHARE
                  for f in fields(LabConfig)}
_CONFIG = _Obj({**_CONFIG_FIELDS, "device": _Text(20), "corpus": _CORPUS})
_RUN = _Obj({"config": _CONFIG, "static": _RECIPE_RUN, "dynamic": _RECIPE_RUN, "seconds": _SECONDS})


def _not_a_run(label: str, problem: str) -> ValueError:
    return ValueError(f"{label} is not an MLM lab run: {problem}; load a metrics.json saved by the MLM lab")


def save_run(result: LabResult, path: str | Path) -> Path:
    """Writes ``result`` as JSON to ``path`` (a folder means ``path/metrics.json``); returns the file."""
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=1) + "\n", encoding="utf-8")
    return path


def parse_run(data: bytes, name: str = "metrics.json") -> LabResult:
    """Reads the bytes of a run written by :func:`save_run` (the app's "load a saved run" upload).

    The size is checked before parsing and the whole file against the schema after (see
    :meth:`LabResult.from_dict`).

    Args:
        data: The file's bytes.
        name: Its file name, for messages (never a path).

    Raises:
        ValueError: One line saying what is wrong and what to do: empty, over :data:`MAX_RUN_BYTES`, not UTF-8, not
            JSON, nested too deeply, or a field that does not fit.
    """
    label = shown(name, 60)
    if not data:
        raise _not_a_run(label, "the file is empty")
    if len(data) > MAX_RUN_BYTES:
        raise _not_a_run(label, f"the file is over {MAX_RUN_BYTES} bytes, more than a saved run weighs")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise _not_a_run(label, f"it is not UTF-8 text (byte {err.start})") from None
    return LabResult.from_dict(_json(text, label), name)


def _json(text: str, label: str) -> Any:
    """The parsed JSON; NaN and Infinity are parsed (the schema then names the field that holds them)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise _not_a_run(label, f"it is not JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    except RecursionError:  # json's C parser counts its depth against Python's recursion limit
        raise _not_a_run(label, "it is nested far deeper than a saved run") from None
    except ValueError:  # an integer of over 4300 digits (Python's limit on int conversion)
        raise _not_a_run(label, "it holds a number with thousands of digits") from None


def load_run(path: str | Path) -> LabResult:
    """Reads a run written by :func:`save_run` (a folder means ``path/metrics.json``); see :func:`parse_run`.

    Raises:
        ValueError: The file cannot be read, or :func:`parse_run` refuses it (messages name the file, not its
            folder).
    """
    path = Path(path)
    if path.is_dir():
        path = path / "metrics.json"
    try:
        with path.open("rb") as file:
            data = file.read(MAX_RUN_BYTES + 1)  # one byte more than allowed is enough to refuse it
    except OSError as err:
        raise ValueError(f"cannot read {shown(path.name, 60)}: {err.strerror or type(err).__name__}") from None
    return parse_run(data, path.name)
