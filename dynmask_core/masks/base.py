"""The pieces every mask strategy is made of: parameters, the run context, the registry.

Convention (one set, everywhere): a mask is boolean and ``True`` means *this query may attend to this key*.
Inside attention tensors are ``(B, H, Q, K)``; a single matrix is ``(Q, K)``.

A *static* strategy is a pure index function with FlexAttention's ``mask_mod`` signature
``(b, h, q_idx, kv_idx) -> bool tensor`` (tensor ops only), so the same function feeds a dense heatmap, the eager
attention in :mod:`dynmask_core.engine` and a GPU ``BlockMask``. A *dynamic* strategy also needs what the run saw
(the scores, the queries and keys, a seed): it gets a :class:`MaskContext` and returns a :class:`MaskOut`.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import torch
from torch import Tensor

from dynmask_core.messages import Message, shown

MaskMod = Callable[[Tensor, Tensor, Tensor, Tensor], Tensor]
Kind = Literal["static", "dynamic"]

ALLOWED_CHAR = "■"
BLOCKED_CHAR = "□"


@dataclass(frozen=True)
class Param:
    """One typed, bounded parameter of a strategy.

    Attributes:
        name: Keyword used in the URL, the CLI (``--param name=value``) and the factory.
        type: ``"int"``, ``"float"``, ``"bool"``, ``"choice"``, ``"pairs"`` (``layer.head`` pairs such as
            ``"0.3 2.5"``; ``""`` = none named) or ``"matrix"`` (a 0/1 matrix of at most
            ``MAX_MATRIX_SIDE`` x ``MAX_MATRIX_SIDE`` in the compact form ``"<rows>x<cols>:<hex>"`` of
            :func:`encode_matrix`; ``""`` = none given).
        default: Value used when the user gives none.
        help: One line for tooltips and ``strategies`` output.
        min: Smallest allowed value (int/float).
        max: Largest allowed value (int/float).
        choices: Allowed values (choice).
    """

    name: str
    type: Literal["int", "float", "bool", "choice", "pairs", "matrix"]
    default: Any
    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()

    def describe(self) -> str:
        """Short text such as ``radius: int in [0, 512] = 2``."""
        if self.type == "choice":
            return f"{self.name}: one of {'|'.join(self.choices)} = {self.default}"
        if self.type == "bool":
            return f"{self.name}: bool = {str(self.default).lower()}"
        if self.type == "pairs":
            return f"{self.name}: layer.head pairs, e.g. '0.3 2.5' = {self.default!r}"
        if self.type == "matrix":
            return (f"{self.name}: 0/1 matrix '<rows>x<cols>:<hex>' (at most {MAX_MATRIX_SIDE}x{MAX_MATRIX_SIDE}) "
                    f"= {self.default!r}")
        return f"{self.name}: {self.type} in [{_fmt(self.min)}, {_fmt(self.max)}] = {_fmt(self.default)}"

    def coerce(self, value: Any, owner: str = "") -> Any:
        """Turns ``value`` (a Python value or a string from a URL/CLI) into a valid typed value.

        Raises:
            ValueError: with a message that says what is allowed.
        """
        where = f"{owner}: " if owner else ""
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in {"1", "true", "yes", "on"}:
                return True
            if text in {"0", "false", "no", "off"}:
                return False
            raise ValueError(Message("{where}{name} must be true or false, got {value}", where=where, name=self.name,
                                     value=shown(value)))
        if self.type == "pairs":
            return format_pairs(parse_pairs(value, f"{where}{self.name}"))
        if self.type == "matrix":
            text = str(value if value is not None else "").strip()
            return encode_matrix(decode_matrix(text, f"{where}{self.name}")) if text else ""
        if self.type == "choice":
            text = str(value).strip()
            if text not in self.choices:
                raise ValueError(Message("{where}{name} must be one of {choices}, got {value}", where=where,
                                         name=self.name, choices=", ".join(self.choices), value=shown(value)))
            return text
        if isinstance(value, bool):
            raise ValueError(Message("{where}{name} must be {kind}, got {value}", where=where, name=self.name,
                                     kind=Message("a number"), value=shown(value)))
        try:
            number = float(value)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or (self.type == "int" and number != int(number)):
            number = math.nan
        if math.isnan(number) or not (self.min <= number <= self.max):
            kind = Message("an integer") if self.type == "int" else Message("a number")
            raise ValueError(Message("{where}{name} must be {kind} between {low} and {high}, got {value}",
                                     where=where, name=self.name, kind=kind, low=_fmt(self.min), high=_fmt(self.max),
                                     value=shown(value)))
        return int(number) if self.type == "int" else float(number)


MAX_PAIRS = 4096


def parse_pairs(value: Any, what: str = "pairs") -> tuple[tuple[int, int], ...]:
    """``"0.3 2.5"`` (or ``;``/``+``/``,`` between pairs) -> ((0, 3), (2, 5)), sorted, without repeats.

    Raises:
        ValueError: a piece that is not ``layer.head`` with whole numbers.
    """
    text = str(value if value is not None else "").strip()
    out: set[tuple[int, int]] = set()
    for piece in re.split(r"[\s;,+]+", text):
        if not piece:
            continue
        layer, dot, head = piece.partition(".")
        if not dot or not layer.isdigit() or not head.isdigit() or len(piece) > 12:
            raise ValueError(Message("{what} takes layer.head pairs separated by spaces, e.g. '0.3 2.5', got "
                                     "{value}", what=what, value=shown(piece)))
        out.add((int(layer), int(head)))
        if len(out) > MAX_PAIRS:
            raise ValueError(Message("{what}: at most {most} pairs", what=what, most=MAX_PAIRS))
    return tuple(sorted(out))


def format_pairs(pairs: Any) -> str:
    """((0, 3), (2, 5)) -> ``"0.3 2.5"``."""
    return " ".join(f"{layer}.{head}" for layer, head in sorted(set(pairs)))


MAX_MATRIX_SIDE = 64  # a "matrix" parameter rides in links and on the command line: at most 64 x 64 cells
_MATRIX_TEXT = re.compile(r"(\d{1,6})[xX](\d{1,6}):([0-9a-fA-F]*)")


def encode_matrix(matrix: Any) -> str:
    """A 2-D 0/1 (or bool) matrix -> its compact, canonical text ``"<rows>x<cols>:<hex>"``.

    The cells are read row by row (row-major), 4 per hex digit, the first cell in the digit's highest bit; the last
    digit is padded with 0 bits. Lower-case hex, no commas: safe in a URL query and in ``--param name=value``.
    Equal matrices give equal strings. ``[[1, 0], [0, 1]]`` -> ``"2x2:9"``.

    Raises:
        ValueError: not 2-D, empty, larger than ``MAX_MATRIX_SIDE`` on a side, or a value other than 0/1.
    """
    t = torch.as_tensor(matrix).detach().cpu()
    check_matrix_shape(tuple(t.shape), "matrix")
    if t.dtype != torch.bool:
        if t.is_complex() or not bool(((t == 0) | (t == 1)).all()):
            raise ValueError("matrix: every cell must be 0 or 1")
        t = t != 0
    rows, cols = t.shape
    bits = t.reshape(-1).tolist()
    bits += [False] * (-len(bits) % 4)
    digits = "".join(f"{8 * a + 4 * b + 2 * c + d:x}" for a, b, c, d in zip(*[iter(bits)] * 4))
    return f"{rows}x{cols}:{digits}"


def decode_matrix(text: Any, what: str = "matrix") -> Tensor:
    """``"<rows>x<cols>:<hex>"`` (see :func:`encode_matrix`) -> a ``(rows, cols)`` bool matrix (True = 1).

    Raises:
        ValueError: a malformed string, a size over ``MAX_MATRIX_SIDE``, or the wrong number of hex digits.
    """
    raw = str(text if text is not None else "").strip()
    found = _MATRIX_TEXT.fullmatch(raw)
    if not found:
        raise ValueError(Message("{what} takes a 0/1 matrix written '<rows>x<cols>:<hex digits of the cells, row by "
                                 "row>' (e.g. '2x2:9' for [[1, 0], [0, 1]]), got {value}", what=what,
                                 value=shown(raw)))
    rows, cols, digits = int(found[1]), int(found[2]), found[3].lower()
    check_matrix_shape((rows, cols), what)
    need = -(-rows * cols // 4)
    if len(digits) != need:
        raise ValueError(Message("{what}: a {rows}x{cols} matrix takes {need} hex digits, got {n}", what=what,
                                 rows=rows, cols=cols, need=need, n=len(digits)))
    nibbles = torch.tensor([int(c, 16) for c in digits], dtype=torch.long)
    bits = (nibbles.view(-1, 1) >> torch.tensor([3, 2, 1, 0])) & 1
    return bits.reshape(-1)[: rows * cols].view(rows, cols).bool()


def check_matrix_shape(shape: tuple[int, ...], what: str = "matrix") -> None:
    """Refuses a matrix shape that is not 2-D, is empty, or is over ``MAX_MATRIX_SIDE`` on a side (ValueError)."""
    if len(shape) != 2:
        raise ValueError(Message("{what} must be 2-D (queries x keys), got {n}-D with shape {shape}", what=what,
                                 n=len(shape), shape=list(shape)))
    rows, cols = shape
    if rows < 1 or cols < 1:
        raise ValueError(Message("{what} is empty ({rows}x{cols}): it needs at least one row and one column",
                                 what=what, rows=rows, cols=cols))
    if rows > MAX_MATRIX_SIDE or cols > MAX_MATRIX_SIDE:
        raise ValueError(Message("{what} is {rows}x{cols}: at most {most}x{most} fits in a link or a --param (and "
                                 "larger uploads are not supported in this build); use a shorter input", what=what,
                                 rows=rows, cols=cols, most=MAX_MATRIX_SIDE))


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)


@dataclass
class MaskContext:
    """What a strategy may look at when it builds the mask of one attention layer.

    Attributes:
        q_len: Number of queries Q.
        k_len: Number of keys K.
        n_heads: Number of query heads H.
        layer: Index of this attention layer in call order (0-based).
        seed: The run's seed (dynamic strategies must use it, and only it, for randomness).
        allowed: ``(B, 1|H, Q, K)`` bool, the model's own mask (padding, causality), possibly narrowed by the
            strategies composed before this one with ``and``.
        scores: ``(B, H, Q, K)`` float32 scaled dot-product scores, model mask NOT applied (use ``allowed``).
        query: ``(B, H, Q, D)`` query states (None where not available).
        key: ``(B, H, K, D)`` key states, repeated to H heads for GQA models.
        segment_ids: ``(K,)`` long, segment (sentence/document) of each key position, or None.
        q_offset: Position of query 0 among the keys (K - Q when a cache holds earlier keys).
        run_state: Scratch space that lives for one forward pass (e.g. tokens pruned in earlier layers).
        grid: ``(rows, cols)`` of image patches, or None (text, audio frames).
        prefix: Positions before the first patch (CLS, distillation tokens).
    """

    q_len: int
    k_len: int
    n_heads: int = 1
    layer: int = 0
    seed: int = 0
    allowed: Tensor | None = None
    scores: Tensor | None = None
    query: Tensor | None = None
    key: Tensor | None = None
    segment_ids: Tensor | None = None
    q_offset: int = 0
    run_state: dict[str, Any] = field(default_factory=dict)
    grid: tuple[int, int] | None = None
    prefix: int = 0

    @property
    def device(self) -> torch.device:
        """Device of the run's tensors (CPU when none are attached)."""
        for t in (self.scores, self.allowed, self.query):
            if t is not None:
                return t.device
        return torch.device("cpu")

    def model_allowed(self) -> Tensor:
        """The allowed mask, ``(B, 1|H, Q, K)``; all True when the model gave none."""
        if self.allowed is not None:
            return self.allowed
        return torch.ones(1, 1, self.q_len, self.k_len, dtype=torch.bool, device=self.device)

    def with_allowed(self, allowed: Tensor) -> MaskContext:
        """A copy of this context whose ``allowed`` mask is replaced (used by ``and`` composition)."""
        return MaskContext(**{**self.__dict__, "allowed": allowed})


class MaskOut(NamedTuple):
    """What a strategy contributes to one layer.

    Attributes:
        allowed: bool, broadcastable to ``(B, H, Q, K)``; True = may attend.
        bias: float additive bias broadcastable to ``(B, H, Q, K)`` (soft strategies), or None.
        gate: float ``(1, H, 1, 1)`` multiplying each head's weights after the softmax, in every apply mode
            (``head_gate``: 0 switches a head off), or None.
    """

    allowed: Tensor
    bias: Tensor | None = None
    gate: Tensor | None = None


@dataclass(frozen=True)
class Strategy:
    """A registry entry: everything the UI, the URL, the CLI and the engine need to know about a strategy.

    Attributes:
        id: Short stable id (``sliding_window``).
        kind: ``"static"`` (depends on sizes and parameters only) or ``"dynamic"`` (input, scores, seed).
        title: Human name.
        summary: One-line explanation.
        reference: Paper or source.
        params: Typed parameters with defaults and ranges.
        materialize: ``(params, ctx) -> MaskOut``.
        mask_mod: For index-based strategies, ``(params, ctx) -> mask_mod``; None for score-based ones.
        uses_scores: True when the mask depends on this layer's scores/queries/keys (evaluated after the others
            in an ``and`` composition, inside the keys those allow).
        uses_seed: True when the run seed changes the mask.
        note: Extra caveat shown in the UI (e.g. how a paper's idea was adapted).
        inputs: The input kinds it works on (None = every kind); the 2-D strategies need an image's patch grid.
        hide: For input-masking strategies, ``(params, prepared, seed, model) -> (inputs, hidden (T,) bool)``: what
            the masked run gets instead of the input, and which positions were hidden; None for attention masks.
        per_layer: The mask differs from layer to layer (``head_gate``), so a static mask is not reused across layers.
        code: ``(params, CodeContext) -> CodePiece``: the strategy as self-contained PyTorch source with its
            parameters baked in (see :mod:`dynmask_core.masks.code`); :mod:`dynmask_core.mask_code` writes a run's
            pieces into one file. None: the strategy cannot be written as code (the generator says so).
    """

    id: str
    kind: Kind
    title: str
    summary: str
    reference: str
    params: tuple[Param, ...]
    materialize: Callable[[Mapping[str, Any], MaskContext], MaskOut]
    mask_mod: Callable[[Mapping[str, Any], MaskContext], MaskMod] | None = None
    uses_scores: bool = False
    uses_seed: bool = False
    note: str = ""
    inputs: tuple[str, ...] | None = None
    hide: Callable[..., tuple[Any, Tensor]] | None = None
    per_layer: bool = False
    code: Callable[..., Any] | None = None

    def takes(self, kind: str) -> bool:
        """Whether the strategy works on inputs of ``kind`` (``text``, ``image``, ``audio``)."""
        return self.inputs is None or kind in self.inputs

    def resolve(self, values: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Validated parameters: defaults filled in, strings coerced, unknown names rejected.

        Raises:
            ValueError: naming the bad parameter and what is allowed.
        """
        values = dict(values or {})
        known = {p.name for p in self.params}
        unknown = sorted(set(values) - known)
        if unknown:
            allowed = ", ".join(sorted(known)) or "none"
            raise ValueError(f"{self.id} has no parameter {shown(unknown[0])}; its parameters: {allowed}")
        return {p.name: p.coerce(values.get(p.name, p.default), self.id) for p in self.params}

    def label(self, values: Mapping[str, Any] | None = None) -> str:
        """Readable name with the non-default parameters, e.g. ``sliding_window(radius=3)``."""
        resolved = self.resolve(values)
        shown = [f"{p.name}={_fmt(resolved[p.name])}" for p in self.params if resolved[p.name] != p.default]
        return f"{self.id}({', '.join(shown)})" if shown else self.id


REGISTRY: dict[str, Strategy] = {}


def register(strategy: Strategy) -> Strategy:
    """Adds a strategy to the registry (ids are unique)."""
    if strategy.id in REGISTRY:
        raise ValueError(f"strategy id {strategy.id!r} is already registered")
    REGISTRY[strategy.id] = strategy
    return strategy


def get_strategy(strategy_id: str) -> Strategy:
    """Looks a strategy up by id.

    Raises:
        ValueError: listing the known ids.
    """
    try:
        return REGISTRY[strategy_id]
    except KeyError:
        raise ValueError(f"unknown strategy {shown(strategy_id)}; choose one of: {', '.join(REGISTRY)}") from None


def strategies() -> list[Strategy]:
    """All registered strategies in registration order."""
    return list(REGISTRY.values())


def dense(mask_mod: MaskMod, q_len: int, k_len: int, n_heads: int = 1, q_offset: int = 0,
          device: torch.device | str = "cpu") -> Tensor:
    """Evaluates an index function on the whole grid at once (broadcasting, no vmap).

    Returns:
        ``(H, Q, K)`` bool when the function depends on the head, else ``(1, Q, K)``; squeeze for a matrix.
    """
    b = torch.zeros((), dtype=torch.long, device=device)
    h = torch.arange(n_heads, device=device).view(-1, 1, 1)
    q = torch.arange(q_len, device=device).view(1, -1, 1) + q_offset
    k = torch.arange(k_len, device=device).view(1, 1, -1)
    out = mask_mod(b, h, q, k)
    return out.expand(out.shape[0], q_len, k_len)


def draw(mask: Tensor) -> str:
    """Draws a ``(Q, K)`` bool matrix with ■ (allowed) and □ (blocked), one row per query."""
    rows = mask.reshape(mask.shape[-2], mask.shape[-1]).tolist()
    return "\n".join("".join(ALLOWED_CHAR if v else BLOCKED_CHAR for v in row) for row in rows)


def named(fn: MaskMod, name: str) -> MaskMod:
    """Gives a mask function a readable ``__name__`` (labels, legends, file names)."""
    fn.__name__ = name
    fn.__qualname__ = name
    return fn


def index_hash(*parts: Tensor | int) -> Tensor:
    """A cheap integer hash of index tensors, uniform in [0, 1) and identical on every run and device.

    Used for seeded random patterns written as pure index functions (works under ``vmap``).
    """
    device = next((p.device for p in parts if isinstance(p, Tensor)), torch.device("cpu"))
    x = torch.zeros((), dtype=torch.long, device=device)
    for i, part in enumerate(parts):
        p = part if isinstance(part, Tensor) else torch.tensor(part, dtype=torch.long, device=device)
        x = (x * 1_000_003 + p.long() * (2 * i + 7919) + 12_345) & 0x7FFFFFFF
        x = ((x ^ (x >> 15)) * 0x2C1B3C6D) & 0x7FFFFFFF
        x = ((x ^ (x >> 12)) * 0x297A2D39) & 0x7FFFFFFF
    x = x ^ (x >> 15)
    return (x & 0xFFFFFF).to(torch.float32) / float(1 << 24)


def index_strategy(mask_mod_of, **entry: Any) -> Strategy:
    """Registers an index-function strategy; its dense matrix comes from the very same mask_mod."""

    def materialize(params: Mapping[str, Any], ctx: MaskContext) -> MaskOut:
        fn = mask_mod_of(params, ctx)
        m = dense(fn, ctx.q_len, ctx.k_len, ctx.n_heads, ctx.q_offset, ctx.device)  # (1|H, Q, K)
        return MaskOut(m.unsqueeze(0))

    return register(Strategy(materialize=materialize, mask_mod=mask_mod_of, **entry))
