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
from dynmask_core.messages import names_list, shown
from dynmask_core.modalities import MAX_CHARS, modality
from dynmask_core.models.loader import default_model
from dynmask_core.recipe.fields import PAGE_ID, Field
from dynmask_core.samples import UPLOAD_PREFIX, samples

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
        warn.append(f"Link version v={shown(version)} is not known; read as v={VERSION}.")
    if _V1_TEXT in raw:  # v=1 (or a hand-written link): text= is a text input
        text = raw.pop(_V1_TEXT)
        raw.setdefault("input", "text")
        raw.setdefault("ref", text)
    unknown = sorted(k for k in raw if k != "v" and k not in by_url and not k.startswith(tuple(prefixes)))
    if unknown:
        warn.append(f"Ignored {len(unknown)} unknown link parameter(s): {names_list(unknown)}.")

    pages = cls.known_pages()
    fallback = page or "playground"
    link_page = raw.get("page", fallback)
    if (pages is not None and link_page not in pages) or (pages is None and not PAGE_ID.match(link_page)):
        warn.append(f"Unknown page {shown(link_page)}; opening {fallback}.")
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
                warn.append("Empty input in the link; using the first example.")
                continue
        if spec.type == "strategy":
            if text not in REGISTRY:
                warn.append(f"Unknown strategy {shown(text)}; using {base.values()[spec.name]!r} (its parameters in "
                            f"the link were ignored). Known: {', '.join(REGISTRY)}.")
                raw = {k: v for k, v in raw.items() if not k.startswith(_params_of(specs, spec.name).url + ".")}
                continue
            values[spec.name] = text
            continue
        if spec.name == "model" and not text.strip():
            warn.append(f"Empty model in the link; using {base.model!r}.")
            continue
        try:
            values[spec.name] = spec.parse(text, spec.label)
        except ValueError as err:
            warn.append(f"{_reason(err)}; using {_default_text(spec, base)}.")

    _check_input(values, base, warn)

    op = values.get("op", base.op)
    probe = cls.default(page)
    single = "main" in probe.sides() and op == "none"
    for prefix, spec in prefixes.items():
        given = {k[len(prefix):]: v for k, v in raw.items() if k.startswith(prefix)}
        if spec.of == "strategy2" and single:
            if given:
                warn.append(f"Ignored {names_list([prefix + k for k in given])}: no second strategy (op=none).")
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
        warn.append(f"The link could not be read ({_reason(err)}); opening the defaults.")
        recipe = base
    return recipe, warn


def _check_input(values: dict[str, Any], base: Any, warn: list[str]) -> None:
    """A link of a kind that does not carry its input (image, audio: not text) must name a bundled sample of its kind;
    an upload's hash cannot be opened elsewhere."""
    kind = values.get("input_kind", base.input_kind)
    if modality(kind).inline:
        return
    ref = str(values.get("input_ref", ""))
    first = next(iter(samples(kind)), None)
    if ref.startswith(UPLOAD_PREFIX):
        warn.append("This link names an uploaded file, which a link cannot carry: upload it again"
                    + (f" (showing the sample {first.id!r} meanwhile)." if first else "."))
        values.pop("input_ref")
        ref = ""
    if "model" not in values:
        values["model"] = default_model(kind)
    if first is None:
        warn.append(f"This build has no {kind} sample; opening the text example.")
        values.pop("input_kind", None)
        values.pop("input_ref", None)
    elif ref and ref not in {s.id for s in samples(kind)}:
        warn.append(f"Unknown {kind} sample {shown(ref)}; showing {first.id!r}. Known: "
                    f"{', '.join(s.id for s in samples(kind))}.")
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
        warn.append(f"{strategy} has no parameter {names_list(unknown)} (its parameters: "
                    f"{', '.join(known) or 'none'}); ignored.")
    out: dict[str, Any] = {}
    for name, raw in given.items():
        if name not in known:
            continue
        param = known[name]
        try:
            out[name] = param.coerce(raw, strategy)
        except ValueError as err:
            warn.append(f"{_reason(err)}; using the default {param.name}={param.default}.")
    return out


def _reason(err: Exception) -> str:
    return str(err)[:300]


def _default_text(spec: Field, base: Any) -> str:
    if spec.type == "seed":
        return "a new random seed"
    if spec.type == "indices":
        return f"all {spec.name}"
    return repr(getattr(base, spec.name))
