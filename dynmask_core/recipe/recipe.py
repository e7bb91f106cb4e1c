"""The recipe: everything that defines a run and its view, as ONE frozen dataclass whose fields declare themselves.

The same recipe comes from a link (:mod:`dynmask_core.recipe.url`), from the command line
(:mod:`dynmask_core.recipe.cli_args`) or from the app's widgets, and :func:`dynmask_core.recipe.resolve` turns it
into a runnable plan for a loaded model. Construction validates and normalises (raises ``ValueError``).

Sides: a page shows one run (``main``: ``strategy`` joined with ``strategy2`` by ``op``) or two (``a`` =
``strategy``, ``b`` = ``strategy2``, the Compare page). Which sides a page has is the app's page registry's to say:
a subclass overrides :meth:`Recipe.sides`.

Cached results are keyed by :meth:`Recipe.cache_key`, made from what each field declares it affects (the run, an
attribution, or only the view), so a new field is in the keys it belongs to without anyone listing it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from dynmask_core.attribution.methods import DEFAULT_STEPS, MAX_STEPS, METHOD_HELP, METHODS, STEPPED
from dynmask_core.attribution.targets import MAX_TARGET_CHARS, PREDICTED
from dynmask_core.masks import MODES, ApplyOptions, ComposedMask, MaskPlan, MaskSpec, get_strategy
from dynmask_core.masks.plan import MAX_SEED
from dynmask_core.modalities import KIND_LABELS, KINDS, TextSource
from dynmask_core.models.loader import DEFAULT_MODEL
from dynmask_core.recipe.fields import MAX_INDEX, PAGE_ID, Field, declare, plain, scope_affects, shown, specs
from dynmask_core.recipe.url import decode_query, encode_query
from dynmask_core.samples import DEFAULT_TEXT, UPLOAD_PREFIX, get_sample

MAX_URL_TEXT = 1000  # longer text is not put in the link
MAX_CONTEXT = 131_072  # the largest token limit a recipe may ask for (the model's own context caps it further)
ATTRIBUTION_PAGES = ("attribution",)  # the pages (and the command `attribute`) that explain a prediction
LANGUAGES = ("en", "zh")  # the app's languages (its message catalogues: dynmask_app/i18n.py)
COMPOSE_OPS = ("none", "and", "or")
OP_LABELS = {"none": "no second strategy", "and": "AND: both must allow", "or": "OR: either may allow"}
Params = tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Recipe:
    """A run and its view. Each field declares its URL key, CLI flag, widget, range and help (see :class:`Field`)."""

    page: str = declare("playground", affects="view", label="Page", url="page", help="which page shows the recipe")
    input_kind: str = declare(
        "text", type="choice", choices=KINDS, affects="input", label="Input kind", url="input", widget="input_kind",
        key="kind", choice_labels=KIND_LABELS,
        help="what the input is (on the command line: --text, --image, --audio or --sample)")
    input_ref: str = declare(
        DEFAULT_TEXT, affects="input", label="Text", url="ref", widget="input", key="text",
        help="the input: the text itself, a bundled sample id, or upload:<hash> (an upload cannot be linked)")
    model: str = declare(
        DEFAULT_MODEL, affects="input", label="Model", url="model", cli="--model", widget="model",
        help="bundled id (minilm, smollm2), Hugging Face id or local folder")
    max_tokens: int = declare(
        0, type="int", min=0, max=MAX_CONTEXT, affects="input", label="Tokens to read", url="tokens",
        widget="tokens", when=("input_kind", "text"), pages=("playground",), url_default=False,
        help="read the text up to this many tokens: 0 = the model's usual limit (512), at most its context (8,192 "
             "for SmolLM2); past 512 a run keeps per-head summaries and pooled maps within the capture budget")
    strategy: str = declare(
        "sliding_window", type="strategy", affects="run", sides=("main", "a"), label="Mask strategy", url="s",
        cli="--strategy", cli_default="none", widget="strategy", key="s1",
        help="strategy id (see `python -m dynmask_core strategies`)")
    params: Params = declare(
        (), type="params", of="strategy", affects="run", sides=("main", "a"), label="Parameters", url="p",
        cli="--param", widget="params", key="p1", help="strategy parameter NAME=VALUE (repeatable)")
    op: str = declare(
        "none", type="choice", choices=COMPOSE_OPS, affects="run", sides=("main",),
        label="Combine with a second strategy", url="op", cli="--op", widget="radio", key="op", choice_labels=OP_LABELS,
        help="join a second strategy: and = both must allow, or = either may allow")
    strategy2: str = declare(
        "none", type="strategy", affects="run", sides=("main", "b"), label="Second strategy", url="s2",
        cli="--strategy2", widget="strategy", key="s2",
        help="the second strategy (joined by --op; the right-hand one on the Compare page)")
    params2: Params = declare(
        (), type="params", of="strategy2", affects="run", sides=("main", "b"), label="Parameters", url="p2",
        cli="--param2", widget="params", key="p2", help="parameter of the second strategy NAME=VALUE (repeatable)")
    layers: tuple[int, ...] = declare(
        (), type="indices", affects="run", label="Layers", url="layers", cli="--layers", widget="indices",
        of="n_layers", group="where", help="layers to mask, e.g. 0,2 or 0-3 (default all)")
    heads: tuple[int, ...] = declare(
        (), type="indices", affects="run", label="Heads", url="heads", cli="--heads", widget="indices",
        of="n_heads", group="where", help="heads to mask, e.g. 0-3 (default all)")
    mode: str = declare(
        "hard", type="choice", choices=tuple(MODES), affects="run", label="Apply mode", url="mode", cli="--mode",
        widget="select", group="where", choice_help=MODES,
        help="how the mask meets the scores: " + " | ".join(MODES))
    beta: float = declare(
        8.0, type="float", min=0.0, max=1e4, affects="run", label="beta (penalty on blocked keys)", url="beta",
        cli="--beta", widget="number", when=("mode", "bias"), group="where",
        help="penalty for blocked keys in bias mode")
    renormalize: bool = declare(
        True, type="bool", affects="run", label="renormalise rows to sum to 1", url="renorm", cli="--no-renormalize",
        cli_value=False, widget="toggle", key="renorm", when=("mode", "gate"), group="where",
        help="gate mode: rows are rescaled to sum to 1 again (the CLI's --no-renormalize turns that off)")
    seed: int | None = declare(
        None, type="seed", min=0, max=MAX_SEED, affects="run", label="Seed (random strategies)", url="seed",
        cli="--seed", widget="number", group="where",
        help="seed for dynamic strategies (default: a fresh one, recorded and shared)")
    model_causal: bool = declare(
        True, type="bool", affects="run", label="Let the causal LM see the future", url="causal", cli="--see-future",
        cli_value=False, widget="toggle_not", key="see_future", of="causal", group="where",
        choice_help={True: "On: the model's causal mask is removed, so tokens also attend to later tokens.",
                     False: "Off: the model keeps its causal mask (each token sees only itself and earlier tokens)."},
        help="turn a causal LM's own causal mask off (it may then attend to later tokens; it was never trained "
             "like that; padding stays)")
    layer: int = declare(0, type="int", min=0, max=MAX_INDEX, affects="view", label="Layer", url="layer",
                         help="the layer shown in the single-head views")
    head: int = declare(0, type="int", min=0, max=MAX_INDEX, affects="view", label="Head", url="head",
                        help="the head shown in the single-head views")
    lang: str = declare(
        "en", type="choice", choices=LANGUAGES, affects="view", label="Language", url="lang",
        choice_labels={"en": "English", "zh": "简体中文"},
        help="the language of the page: en (English) or zh (Simplified Chinese)")
    present: bool = declare(
        False, type="bool", affects="view", label="Presenter mode", url="present",
        help="large type and high contrast, for a projector")
    attr_method: str = declare(
        "ig", type="choice", choices=tuple(METHODS), affects="attribution", label="Attribution method", url="method",
        cli="--method", widget="select", group="explain", pages=ATTRIBUTION_PAGES, choice_labels=METHODS,
        choice_help=METHOD_HELP, help="attribution method: " + " | ".join(METHODS))
    attr_target: str = declare(
        PREDICTED, type="str", max=MAX_TARGET_CHARS, affects="attribution", label="Target (what to explain)",
        url="target", cli="--target", widget="target", group="explain", pages=ATTRIBUTION_PAGES,
        help="predicted, a class label, a token (causal LMs) or similar:<sentence> (text encoders)")
    attr_steps: int = declare(
        DEFAULT_STEPS, type="int", min=1, max=MAX_STEPS, affects="attribution", label="Integration steps",
        url="steps", cli="--steps", widget="number", group="explain", pages=ATTRIBUTION_PAGES, link_default=64,
        when=("attr_method", STEPPED),
        help="integration steps of ig and attention_attribution (more: slower, smaller convergence delta)")

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        for spec in specs(type(self)):
            if spec.type != "params":
                set_(self, spec.name, spec.check(getattr(self, spec.name)))
        set_(self, "attr_target", self.attr_target.strip() or PREDICTED)
        self.check_page()
        if self.max_tokens and (self.input_kind != "text" or not next(
                spec for spec in specs(type(self)) if spec.name == "max_tokens").used_on(self.page)):
            set_(self, "max_tokens", 0)  # only the Playground reads past 512 (the other pages' views need every weight)
        if not self.model.strip():
            raise ValueError("model must not be empty")
        set_(self, "model", self.model.strip())
        get_strategy(self.strategy)
        if "main" in self.sides() and self.op == "none":  # a single run with no second strategy
            set_(self, "strategy2", "none")
            set_(self, "params2", ())
        for spec in specs(type(self)):
            if spec.type == "params":
                strategy = getattr(self, spec.of)
                resolved = get_strategy(strategy).resolve(dict(getattr(self, spec.name)))
                set_(self, spec.name, tuple(sorted(resolved.items())))

    # ------------------------------------------------------------------------------------------------ hooks

    @classmethod
    def fields_spec(cls) -> tuple[Field, ...]:
        """Every field's declaration, in order."""
        return specs(cls)

    @classmethod
    def spec(cls, name: str) -> Field:
        """One field's declaration."""
        return next(s for s in specs(cls) if s.name == name)

    @classmethod
    def default(cls, page: str = "playground") -> Recipe:
        """The recipe a page opens with when the link says nothing (the app's page registry overrides it)."""
        return cls(page=page)

    @classmethod
    def known_pages(cls) -> tuple[str, ...] | None:
        """Page ids a link may name (None = any id; the app's page registry knows them)."""
        return None

    def sides(self) -> tuple[str, ...]:
        """The runs this recipe's page shows: ``("main",)`` or ``("a", "b")``."""
        return ("main",)

    def check_page(self) -> None:
        """Raises ValueError for a page id that is not known."""
        pages = self.known_pages()
        if (pages is not None and self.page not in pages) or (pages is None and not PAGE_ID.match(self.page)):
            raise ValueError(f"page must be one of {', '.join(pages or ('playground',))}, got {shown(self.page)}")

    # ------------------------------------------------------------------------------------------------ input

    @property
    def text(self) -> str:
        """The text of a text input ("" for other kinds)."""
        return self.input_ref if self.input_kind == "text" else ""

    @property
    def is_upload(self) -> bool:
        """Whether the input is an uploaded file (named by its hash, which no link can carry)."""
        return self.input_kind != "text" and self.input_ref.startswith(UPLOAD_PREFIX)

    @property
    def input_in_url(self) -> bool:
        """False when the input cannot ride in the link (long text, an upload)."""
        return not self.is_upload and len(self.input_ref) <= MAX_URL_TEXT


    def source(self) -> Any:
        """What to hand to :func:`~dynmask_core.modalities.encode`: the text, or the bundled sample named.

        Raises:
            ValueError: an upload (only the session that uploaded it has the file) or an unknown sample.
        """
        if self.input_kind == "text":
            return TextSource(self.input_ref, self.max_tokens or None)
        if self.is_upload:
            raise ValueError("this recipe names an uploaded file, which only the page that uploaded it has: "
                             "upload it again")
        return get_sample(self.input_ref, self.input_kind).source()

    # ------------------------------------------------------------------------------------------------ masks

    def terms(self, side: str = "main") -> tuple[MaskSpec, ...]:
        """Mask terms: ``main`` = the strategy with its composition; ``a``/``b`` = the Compare page sides."""
        if side == "a":
            return (MaskSpec(self.strategy, dict(self.params)),)
        if side == "b":
            return (MaskSpec(self.strategy2, dict(self.params2)),)
        terms = [MaskSpec(self.strategy, dict(self.params))]
        if self.op != "none":
            terms.append(MaskSpec(self.strategy2, dict(self.params2), self.op))  # type: ignore[arg-type]
        return tuple(terms)

    def uses_seed(self, side: str | None = None) -> bool:
        """Whether the recipe (or one side) has a random part that the seed drives."""
        return any(ComposedMask(self.terms(s)).uses_seed for s in ((side,) if side else self.sides()))

    def plan(self, side: str = "main") -> MaskPlan:
        """The engine plan of one side. A side without randomness gets seed 0 (so equal recipes share one result,
        and a Compare page's static side is not rerun when the seed is re-drawn); a side with randomness the recipe's
        seed (:func:`~dynmask_core.recipe.resolve` draws it for the whole recipe first when there is none)."""
        seed = self.seed if self.uses_seed(side) else 0
        return MaskPlan(
            terms=self.terms(side), layers=self.layers or None, heads=self.heads or None,
            apply=ApplyOptions(self.mode, self.beta, self.renormalize), seed=seed, model_causal=self.model_causal,
        )

    def label(self, side: str = "main") -> str:
        """``sliding_window(radius=3) & causal``-style name."""
        return ComposedMask(self.terms(side)).label()

    def with_view(self, layer: int, head: int) -> Recipe:
        """A copy showing another layer/head."""
        return replace(self, layer=int(layer), head=int(head))

    # ------------------------------------------------------------------------------------------------ links

    def to_query_params(self) -> dict[str, str]:
        """The recipe as URL query parameters (format ``v=2``, strings only)."""
        return encode_query(self)

    @classmethod
    def from_query_params(cls, qp: Mapping[str, Any], page: str | None = None) -> tuple[Recipe, list[str]]:
        """Reads a recipe from a link (``v=1`` or ``v=2``). Never raises: bad values become warnings and defaults."""
        return decode_query(cls, qp, page)

    def values(self) -> dict[str, Any]:
        """Field name -> value."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    # ------------------------------------------------------------------------------------------------ cache keys

    def counts(self, spec: Field, side: str | None = None) -> bool:
        """Whether the field ``spec`` changes this recipe's results (those of one ``side``; None: of any side of its
        page): its page uses it, its ``when`` holds, it feeds the side, and a seed only when a strategy there draws
        from it."""
        sides = self.sides() if side is None else (side,)
        return (spec.used_on(self.page) and spec.matters(self.values()) and any(spec.feeds(s) for s in sides)
                and (spec.type != "seed" or self.uses_seed(side)))

    def key_values(self, scope: str = "run", side: str | None = None) -> dict[str, Any]:
        """The fields a result of ``scope`` depends on, as canonical JSON data (field name -> value).

        ``scope``: ``run`` (the fields declared ``affects="run"``), ``attribution`` (those and the ``attribution``
        ones) or ``view`` (every field). A field that does not count (:meth:`counts`: another page's, its ``when``
        unmet, the other side's, a seed no strategy draws from) holds its default, so that recipes differing only
        there share one key.

        Raises:
            ValueError: an unknown scope.
        """
        wanted = scope_affects(scope)
        return {spec.name: spec.key_value(getattr(self, spec.name) if self.counts(spec, side) else spec.default)
                for spec in self.fields_spec() if spec.affects in wanted}

    def cache_key(self, scope: str = "run", *, side: str | None = None, **extra: Any) -> str:
        """The key of a cached result of ``scope`` (of one ``side``), as canonical JSON (sorted keys): the scope, the
        side, :meth:`key_values` and what the caller adds as ``extra`` (resolved facts the fields do not hold, e.g.
        ``plan=plan.to_dict()`` with the drawn seed and the layers fitted to the model; what is computed, ``what=``).

        Raises:
            ValueError: an unknown scope.
        """
        key = {"scope": scope, "side": side, "recipe": self.key_values(scope, side), "extra": plain(extra)}
        return json.dumps(key, sort_keys=True, ensure_ascii=False)
