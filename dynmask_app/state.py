"""The app's whole recipe as ONE frozen dataclass, and its lossless round trip through the URL.

``AppState.to_query_params()`` gives ``dict[str, str]`` for ``st.query_params``; ``AppState.from_query_params(qp)``
reads one back and never raises: unknown or out-of-range values become warnings and defaults. A link therefore
restores the same view and, through the seed, the same numbers.

URL keys: ``v`` (format version), ``page``, ``model``, ``text``, ``s`` (strategy), ``p.<param>``, ``op``
(``none``/``and``/``or``), ``s2``, ``p2.<param>``, ``layers``/``heads`` (comma lists, empty = all), ``mode``,
``beta``, ``renorm``, ``seed``, ``causal`` (model_causal), ``layer``/``head`` (the one shown).
On the Compare page ``s2``/``p2.*`` is the right-hand strategy and ``op`` is not used.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from dynmask_app.examples import DEFAULT_TEXT
from dynmask_core.engine import MAX_SEED, MaskPlan
from dynmask_core.masks import ApplyOptions, ComposedMask, MaskSpec, get_strategy
from dynmask_core.models import DEFAULT_MODEL

VERSION = 1
PAGES = ("playground", "compare")
COMPOSE_OPS = ("none", "and", "or")
MAX_URL_TEXT = 1000  # longer text is not put in the link
Params = tuple[tuple[str, Any], ...]

_DEFAULTS = {  # page -> (strategy, op, strategy2)
    "playground": ("sliding_window", "none", "none"),
    "compare": ("sliding_window", "none", "random_dynamic"),
}


def _resolve(strategy: str, params: Mapping[str, Any] | Params) -> Params:
    """Complete, validated params of a strategy as a sorted tuple (raises ValueError)."""
    return tuple(sorted(get_strategy(strategy).resolve(dict(params)).items()))


def _index_list(values: Any) -> tuple[int, ...]:
    out = sorted({int(v) for v in values})
    if any(v < 0 for v in out):
        raise ValueError(f"indices must be non-negative, got {out}")
    return tuple(out)


@dataclass(frozen=True)
class AppState:
    """Everything that defines what the app shows. Construction validates and normalises (raises ValueError).

    Attributes:
        page: ``playground`` or ``compare``.
        model: Bundled id (``minilm``, ``smollm2``), Hugging Face id or local folder.
        text: The input text.
        strategy: Strategy id (left-hand strategy on the Compare page).
        params: Its complete parameters, sorted ``((name, value), ...)``.
        op: ``none``, ``and`` or ``or``: how ``strategy2`` joins ``strategy`` (Playground only).
        strategy2: Second strategy id (``none`` when unused); the right-hand one on the Compare page.
        params2: Its parameters.
        layers: Layers the mask applies to; empty = all.
        heads: Heads the mask applies to; empty = all.
        mode: Apply mode, a key of ``MODES``.
        beta: Penalty of the ``bias`` mode.
        renormalize: Renormalise rows in the ``gate`` mode.
        seed: Seed for random strategies; None = draw one at Run time.
        model_causal: False lets a causal LM see the future.
        layer: Layer shown in the single-head views.
        head: Head shown.
        v: Format version of the link.
    """

    page: str = "playground"
    model: str = DEFAULT_MODEL
    text: str = DEFAULT_TEXT
    strategy: str = "sliding_window"
    params: Params = ()
    op: str = "none"
    strategy2: str = "none"
    params2: Params = ()
    layers: tuple[int, ...] = ()
    heads: tuple[int, ...] = ()
    mode: str = "hard"
    beta: float = 8.0
    renormalize: bool = True
    seed: int | None = None
    model_causal: bool = True
    layer: int = 0
    head: int = 0
    v: int = field(default=VERSION)

    def __post_init__(self) -> None:
        if self.page not in PAGES:
            raise ValueError(f"page must be one of {', '.join(PAGES)}, got {self.page!r}")
        if self.op not in COMPOSE_OPS:
            raise ValueError(f"op must be one of {', '.join(COMPOSE_OPS)}, got {self.op!r}")
        ApplyOptions(self.mode, float(self.beta), bool(self.renormalize))  # validates mode and beta
        if self.seed is not None and not (0 <= int(self.seed) <= MAX_SEED):
            raise ValueError(f"seed must be between 0 and {MAX_SEED}, got {self.seed}")
        if int(self.layer) < 0 or int(self.head) < 0:
            raise ValueError(f"layer and head must be >= 0, got {self.layer}, {self.head}")
        strategy2, params2 = self.strategy2, self.params2
        if self.page == "playground" and self.op == "none":
            strategy2, params2 = "none", ()
        set_ = object.__setattr__
        set_(self, "model", str(self.model).strip())
        set_(self, "params", _resolve(self.strategy, self.params))
        set_(self, "strategy2", strategy2)
        set_(self, "params2", _resolve(strategy2, params2))
        set_(self, "layers", _index_list(self.layers))
        set_(self, "heads", _index_list(self.heads))
        set_(self, "beta", float(self.beta))
        set_(self, "renormalize", bool(self.renormalize))
        set_(self, "model_causal", bool(self.model_causal))
        set_(self, "seed", None if self.seed is None else int(self.seed))
        set_(self, "layer", int(self.layer))
        set_(self, "head", int(self.head))
        if not self.model:
            raise ValueError("model must not be empty")

    # ------------------------------------------------------------------------------------------------ recipe

    @classmethod
    def default(cls, page: str = "playground") -> AppState:
        """The state a page opens with when the link says nothing."""
        strategy, op, strategy2 = _DEFAULTS[page]
        return cls(page=page, strategy=strategy, op=op, strategy2=strategy2)

    def terms(self, side: str = "main") -> tuple[MaskSpec, ...]:
        """Mask terms: ``main`` = Playground recipe (with composition); ``a``/``b`` = the Compare page sides."""
        if side == "a":
            return (MaskSpec(self.strategy, dict(self.params)),)
        if side == "b":
            return (MaskSpec(self.strategy2, dict(self.params2)),)
        terms = [MaskSpec(self.strategy, dict(self.params))]
        if self.op != "none":
            terms.append(MaskSpec(self.strategy2, dict(self.params2), self.op))  # type: ignore[arg-type]
        return tuple(terms)

    def uses_seed(self, side: str | None = None) -> bool:
        """Whether the recipe (or one Compare side) has a random part that the seed drives."""
        sides = ("a", "b") if side is None and self.page == "compare" else (side or "main",)
        return any(ComposedMask(self.terms(s)).uses_seed for s in sides)

    def plan(self, side: str = "main") -> MaskPlan:
        """The engine plan. Recipes without randomness get seed 0, so equal recipes share one cached result."""
        seed = (self.seed if self.seed is not None else None) if self.uses_seed(side) else 0
        return MaskPlan(
            terms=self.terms(side), layers=self.layers or None, heads=self.heads or None,
            apply=ApplyOptions(self.mode, self.beta, self.renormalize), seed=seed, model_causal=self.model_causal,
        )

    def label(self, side: str = "main") -> str:
        """``sliding_window(radius=3) & causal``-style name."""
        return ComposedMask(self.terms(side)).label()

    def with_view(self, layer: int, head: int) -> AppState:
        """A copy showing another layer/head."""
        return replace(self, layer=int(layer), head=int(head))

    # ------------------------------------------------------------------------------------------------ URL

    def to_query_params(self) -> dict[str, str]:
        """The state as URL query parameters (strings only). Text longer than ``MAX_URL_TEXT`` is left out."""
        qp: dict[str, str] = {"v": str(self.v), "page": self.page, "model": self.model}
        if len(self.text) <= MAX_URL_TEXT:
            qp["text"] = self.text
        qp["s"] = self.strategy
        qp.update({f"p.{k}": _encode(v) for k, v in self.params})
        qp["op"] = self.op
        if self.page == "compare" or self.op != "none":
            qp["s2"] = self.strategy2
            qp.update({f"p2.{k}": _encode(v) for k, v in self.params2})
        if self.layers:
            qp["layers"] = ",".join(map(str, self.layers))
        if self.heads:
            qp["heads"] = ",".join(map(str, self.heads))
        qp.update({"mode": self.mode, "beta": _encode(self.beta), "renorm": _encode(self.renormalize)})
        if self.seed is not None:
            qp["seed"] = str(self.seed)
        qp.update({"causal": _encode(self.model_causal), "layer": str(self.layer), "head": str(self.head)})
        return qp

    @property
    def text_in_url(self) -> bool:
        """False when the text is too long to ride in the link."""
        return len(self.text) <= MAX_URL_TEXT

    @classmethod
    def from_query_params(cls, qp: Mapping[str, Any], page: str | None = None) -> tuple[AppState, list[str]]:
        """Reads a state from query parameters. Never raises.

        Args:
            qp: ``st.query_params`` or a dict of strings (a list value counts as its last item).
            page: The page being opened (its defaults fill what the link lacks); default the link's ``page``.

        Returns:
            The state, and one readable warning per value that was unknown or invalid (replaced by a default).
        """
        from dynmask_app._parse import parse_query_params

        return parse_query_params(cls, qp, page)

    # ------------------------------------------------------------------------------------------------ model

    def check_model(self, n_layers: int, n_heads: int, causal: bool, model_name: str = "this model"
                    ) -> tuple[AppState, list[str]]:
        """Drops layer/head indices the model does not have (with warnings) and resets ``model_causal`` for
        models that are not causal (where it means nothing)."""
        warnings: list[str] = []
        changes: dict[str, Any] = {}
        for name, values, count in (("layers", self.layers, n_layers), ("heads", self.heads, n_heads)):
            bad = [v for v in values if count and v >= count]
            if bad:
                keep = tuple(v for v in values if v < count)
                warnings.append(f"{name} {', '.join(map(str, bad))} do not exist in {model_name} "
                                f"(0-{count - 1}); {'using ' + str(list(keep)) if keep else 'applying to all'}.")
                changes[name] = keep
        for name, value, count in (("layer", self.layer, n_layers), ("head", self.head, n_heads)):
            if count and value >= count:
                warnings.append(f"{name} {value} does not exist in {model_name} (0-{count - 1}); showing {name} 0.")
                changes[name] = 0
        if not causal and not self.model_causal:
            changes["model_causal"] = True
        return (replace(self, **changes) if changes else self), warnings


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)
