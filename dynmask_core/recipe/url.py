"""The recipe in a link: query parameters generated from the field declarations, read back forgivingly.

Format ``v=2``: every field with a URL key (``page``, ``model``, ``input``, ``ref``, ``s``, ``p.<param>``, ``op``,
``s2``, ``p2.<param>``, ``layers``, ``heads``, ``mode``, ``beta``, ``renorm``, ``seed``, ``causal``, ``layer``,
``head``). Format ``v=1`` (the first links shared) is the same but for the input, which was ``text=``: it is read
as a text input, so every old link opens with the same recipe and numbers. New links are written as ``v=2``.

Reading never raises: each value is checked on its own, a bad one becomes a warning that names it (cut short, never
echoed whole) and the page's default; the rest of the link still applies.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynmask_core.masks import REGISTRY
from dynmask_core.messages import Message, error_message, names_list, shown
from dynmask_core.modalities import MAX_CHARS, modality
from dynmask_core.models.loader import default_model
from dynmask_core.recipe.fields import _SAME, PAGE_ID, Field
from dynmask_core.samples import UPLOAD_PREFIX, samples, samples_for

VERSION = 2
KNOWN_VERSIONS = ("1", "2")
_V1_TEXT = "text"  # v=1's only key that v=2 writes differently (as input=text&ref=...)


def encode_query(recipe: Any) -> dict[str, str]:
    """``{key: value}`` strings for ``st.query_params``: fields that matter for this recipe, in declared order.

    Left out: fields of other pages (the attribution method on the Playground), an input that cannot ride in a link
    (long text, an upload), the second strategy when nothing uses it,
    empty layer/head lists (= all), a seed of None (= draw one) and fields declared ``url_default=False`` at
    their default (the token limit). Fields that matter only in another mode (``beta``)
    are still written, so a link keeps what the user set.
    """
    qp: dict[str, str] = {"v": str(VERSION)}
    for spec in recipe.fields_spec():
        if spec.url is None or not spec.used_on(recipe.page):
            continue
        value = getattr(recipe, spec.name)
        if spec.name == "input_ref" and not recipe.input_in_url:
            continue
        second = spec.of == "strategy2" or spec.name == "strategy2"
        if second and recipe.op == "none" and "b" not in recipe.sides():
            continue
        if spec.type == "params":
            qp.update({f"{spec.url}.{k}": spec_value(v) for k, v in value})
        elif spec.type == "indices" and not value or spec.type == "seed" and value is None \
                or not spec.url_default and value == spec.default:
            continue
        else:
            qp[spec.url] = spec.encode(value)
    return qp


def spec_value(value: Any) -> str:
    """A strategy parameter as a link string."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _last(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value)


def decode_query(cls: Any, qp: Mapping[str, Any], page: str | None = None) -> tuple[Any, list[str]]:
    """Reads a recipe of class ``cls`` from query parameters. Never raises.

    Args:
        cls: The recipe class (its ``default``, ``known_pages`` and ``sides`` hooks apply).
        qp: ``st.query_params`` or a dict of strings (a list value counts as its last item).
        page: The page being opened (its defaults fill what the link lacks); default the link's ``page``.

    Returns:
        The recipe, and one readable warning per problem (values cut short; many unknown keys in one warning).
    """
    raw = {str(k): _last(v) for k, v in dict(qp).items()}
    warn: list[str] = []
    specs = cls.fields_spec()
    by_url = {s.url: s for s in specs if s.url and s.type != "params"}
    prefixes = {s.url + ".": s for s in specs if s.url and s.type == "params"}

    version = raw.get("v", str(VERSION))
    if version not in KNOWN_VERSIONS:
        warn.append(Message("Link version v={given} is not known; read as v={version}.", given=shown(version),
                            version=VERSION))
    if _V1_TEXT in raw:  # v=1 (or a hand-written link): text= is a text input
        text = raw.pop(_V1_TEXT)
        raw.setdefault("input", "text")
        raw.setdefault("ref", text)
    unknown = sorted(k for k in raw if k != "v" and k not in by_url and not k.startswith(tuple(prefixes)))
    if unknown:
        warn.append(Message("Ignored {n} unknown link parameter(s): {names}.", n=len(unknown),
                            names=names_list(unknown)))

    pages = cls.known_pages()
    fallback = page or "playground"
    link_page = raw.get("page", fallback)
    if (pages is not None and link_page not in pages) or (pages is None and not PAGE_ID.match(link_page)):
        warn.append(Message("Unknown page {page}; opening {fallback}.", page=shown(link_page), fallback=fallback))
        link_page = fallback
    page = page or link_page
    base = cls.default(page)
    values: dict[str, Any] = {"page": page}

    for spec in specs:
        if spec.type == "params" or spec.name == "page" or spec.url not in raw:
            continue
        text = raw[spec.url]
        if spec.name == "input_ref":
            text = text[:MAX_CHARS]
            if not text.strip():
                warn.append(Message("Empty input in the link; using the first example."))
                continue
        if spec.type == "strategy":
            if text not in REGISTRY:
                warn.append(Message("Unknown strategy {given}; using {default} (its parameters in the link were "
                                    "ignored). Known: {known}.", given=shown(text),
                                    default=repr(base.values()[spec.name]), known=", ".join(REGISTRY)))
                raw = {k: v for k, v in raw.items() if not k.startswith(_params_of(specs, spec.name).url + ".")}
                continue
            values[spec.name] = text
            continue
        if spec.name == "model" and not text.strip():
            warn.append(Message("Empty model in the link; using {model}.", model=repr(base.model)))
            continue
        try:
            values[spec.name] = spec.parse(text, spec.label)
        except ValueError as err:
            warn.append(Message("{reason}; using {default}.", reason=_reason(err), default=_default_text(spec, base)))

    if "v" in raw:  # a link written before a default changed lacks the field: it reads the old default
        values.update({spec.name: spec.link_default for spec in specs if spec.link_default is not _SAME
                       and spec.used_on(page) and spec.url not in raw and spec.name not in values})
    _check_input(values, base, warn)

    op = values.get("op", base.op)
    probe = cls.default(page)
    single = "main" in probe.sides() and op == "none"
    for prefix, spec in prefixes.items():
        given = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if spec.of == "strategy2" and single:
            if given:
                warn.append(Message("Ignored {names}: no second strategy (op=none).",
                                    names=names_list([prefix + k for k in given])))
            values.pop("strategy2", None)
            values[spec.name] = ()
            continue
        strategy = values.get(spec.of, getattr(base, spec.of))
        if not given and strategy == getattr(base, spec.of):
            continue  # a link that names no parameters keeps the page's own (every written link names them all)
        values[spec.name] = _strategy_params(strategy, given, warn)

    try:
        recipe = cls(**{**base.values(), **values})
    except ValueError as err:  # should not happen: every value was checked above
        warn.append(Message("The link could not be read ({reason}); opening the defaults.", reason=_reason(err)))
        recipe = base
    return recipe, warn


def _check_input(values: dict[str, Any], base: Any, warn: list[str]) -> None:
    """A link of a kind that does not carry its input (image, audio: not text) must name a bundled sample of its kind;
    an upload's hash cannot be opened elsewhere."""
    kind = values.get("input_kind", base.input_kind)
    if modality(kind).inline:
        return
    ref = str(values.get("input_ref", ""))
    if "model" not in values:
        values["model"] = default_model(kind)
    first = next(iter(samples_for(kind, values["model"])), None)  # a photo is not the first thing a shapes model sees
    if ref.startswith(UPLOAD_PREFIX):
        warn.append(Message("This link names an uploaded file, which a link cannot carry: upload it again (showing "
                            "the sample {sample} meanwhile).", sample=repr(first.id)) if first else
                    Message("This link names an uploaded file, which a link cannot carry: upload it again."))
        values.pop("input_ref")
        ref = ""
    if first is None:
        warn.append(Message("This build has no {kind} sample; opening the text example.", kind=Message(kind)))
        values.pop("input_kind", None)
        values.pop("input_ref", None)
    elif ref and ref not in {s.id for s in samples(kind)}:
        warn.append(Message("Unknown {kind} sample {given}; showing {sample}. Known: {known}.", kind=Message(kind),
                            given=shown(ref), sample=repr(first.id), known=", ".join(s.id for s in samples(kind))))
        values["input_ref"] = first.id
    elif not ref:
        values["input_ref"] = first.id


def _params_of(specs: tuple[Field, ...], strategy_field: str) -> Field:
    return next(s for s in specs if s.type == "params" and s.of == strategy_field)


def _strategy_params(strategy: str, given: dict[str, str], warn: list[str]) -> dict[str, Any]:
    """The link's values of ``strategy``'s parameters; unknown names and bad values are dropped with a warning."""
    entry = REGISTRY[strategy]
    known = {p.name: p for p in entry.params}
    unknown = [n for n in given if n not in known]
    if unknown:
        warn.append(Message("{strategy} has no parameter {names} (its parameters: {known}); ignored.",
                            strategy=strategy, names=names_list(unknown), known=", ".join(known) or "none"))
    out: dict[str, Any] = {}
    for name, raw in given.items():
        if name not in known:
            continue
        param = known[name]
        try:
            out[name] = param.coerce(raw, strategy)
        except ValueError as err:
            warn.append(Message("{reason}; using the default {name}={default}.", reason=_reason(err), name=param.name,
                                default=param.default))
    return out


def _reason(err: Exception) -> str:
    """The error's words (its :class:`~dynmask_core.messages.Message` when it has one), at most 300 characters."""
    said = error_message(err)
    return said if isinstance(said, Message) and len(said) <= 300 else str(err)[:300]


def _default_text(spec: Field, base: Any) -> str:
    if spec.type == "seed":
        return Message("a new random seed")
    if spec.type == "indices":
        return Message("all layers") if spec.name == "layers" else Message("all heads") if spec.name == "heads" else \
            f"all {spec.name}"
    return repr(getattr(base, spec.name))
