"""Reading an :class:`~dynmask_app.state.AppState` back from URL query parameters, forgivingly.

Each value is checked on its own: a bad one becomes a warning that names it and the default used; the rest of the
link still applies. Nothing here raises.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dynmask_core.engine import MAX_SEED
from dynmask_core.masks import MODES, REGISTRY
from dynmask_core.modalities.text import MAX_CHARS

_SIMPLE = {"v", "page", "model", "text", "s", "op", "s2", "layers", "heads", "mode", "beta", "renorm", "seed",
           "causal", "layer", "head"}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _last(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else ""
    return str(value)


def _bool(text: str) -> bool:
    low = text.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("must be true or false")


def _int(text: str, low: int, high: int) -> int:
    try:
        value = int(text.strip())
    except ValueError:
        raise ValueError(f"must be a whole number between {low} and {high}") from None
    if not low <= value <= high:
        raise ValueError(f"must be between {low} and {high}")
    return value


def _ints(text: str) -> tuple[int, ...]:
    parts = [p for p in text.replace(" ", "").split(",") if p]
    return tuple(sorted({_int(p, 0, 4095) for p in parts}))


def _params(qp: dict[str, str], prefix: str, strategy: str, warn: list[str]) -> dict[str, Any]:
    """The ``prefix.<name>`` values that belong to ``strategy``; bad ones are dropped with a warning."""
    entry = REGISTRY[strategy]
    given = {k[len(prefix) + 1:]: v for k, v in qp.items() if k.startswith(prefix + ".")}
    out: dict[str, Any] = {}
    known = {p.name: p for p in entry.params}
    for name, raw in given.items():
        if name not in known:
            warn.append(f"{strategy} has no parameter {name!r} (its parameters: "
                        f"{', '.join(known) or 'none'}); ignored.")
            continue
        param = known[name]
        try:
            out[name] = param.coerce(raw, strategy)
        except ValueError as err:
            warn.append(f"{err}; using the default {param.name}={param.default}.")
    return out


def parse_query_params(cls: Any, qp: Mapping[str, Any], page: str | None) -> tuple[Any, list[str]]:
    """See :meth:`AppState.from_query_params`."""
    from dynmask_app.state import PAGES, VERSION

    raw = {str(k): _last(v) for k, v in dict(qp).items()}
    warn: list[str] = []
    unknown = sorted(k for k in raw if k not in _SIMPLE and not k.startswith(("p.", "p2.")))
    if unknown:
        warn.append(f"Ignored unknown link parameter(s): {', '.join(unknown)}.")
    if raw.get("v", str(VERSION)) != str(VERSION):
        warn.append(f"Link version v={raw['v']!r} is not known; read as v={VERSION}.")
    link_page = raw.get("page", page or "playground")
    if link_page not in PAGES:
        warn.append(f"Unknown page {link_page!r}; opening {page or 'playground'}.")
        link_page = page or "playground"
    page = page or link_page
    base = cls.default(page)
    values: dict[str, Any] = {"page": page}

    def take(key: str, name: str, convert, default: Any, what: str) -> None:
        if key not in raw:
            return
        try:
            values[name] = convert(raw[key])
        except ValueError as err:
            warn.append(f"{what} {raw[key]!r} {err}; using {default!r}.")

    if "model" in raw:
        if raw["model"].strip():
            values["model"] = raw["model"].strip()
        else:
            warn.append(f"Empty model in the link; using {base.model!r}.")
    if "text" in raw:
        if raw["text"].strip():
            values["text"] = raw["text"][:MAX_CHARS]
        else:
            warn.append("Empty text in the link; using the first example.")

    dropped: set[str] = set()
    slots = (("s", "strategy", base.strategy, "p"), ("s2", "strategy2", base.strategy2, "p2"))
    for key, name, default, prefix in slots:
        if key in raw and raw[key] not in REGISTRY:
            warn.append(f"Unknown strategy {raw[key]!r}; using {default!r} (its parameters in the link were "
                        f"ignored). Known: {', '.join(REGISTRY)}.")
            dropped.add(prefix)
        elif key in raw:
            values[name] = raw[key]
    if "p" in dropped:
        raw = {k: v for k, v in raw.items() if not k.startswith("p.")}
    if "p2" in dropped:
        raw = {k: v for k, v in raw.items() if not k.startswith("p2.")}
    values["params"] = _params(raw, "p", values.get("strategy", base.strategy), warn)

    take("op", "op", lambda t: _choice(t, ("none", "and", "or")), base.op, "Composition op")
    if values.get("op", base.op) == "none" and page == "playground":
        values.pop("strategy2", None)
        extra = [k for k in raw if k.startswith("p2.")]
        if extra:
            warn.append(f"Ignored {', '.join(extra)}: no second strategy (op=none).")
        values["params2"] = {}
    else:
        values["params2"] = _params(raw, "p2", values.get("strategy2", base.strategy2), warn)

    take("layers", "layers", _ints, "all layers", "Layers")
    take("heads", "heads", _ints, "all heads", "Heads")
    take("mode", "mode", lambda t: _choice(t, tuple(MODES)), base.mode, "Mode")
    take("beta", "beta", lambda t: _float(t, 0.0, 1e4), base.beta, "Beta")
    take("renorm", "renormalize", _bool, base.renormalize, "Renormalise")
    take("seed", "seed", lambda t: _int(t, 0, MAX_SEED), "a new random seed", "Seed")
    take("causal", "model_causal", _bool, base.model_causal, "causal")
    take("layer", "layer", lambda t: _int(t, 0, 4095), 0, "Layer")
    take("head", "head", lambda t: _int(t, 0, 4095), 0, "Head")

    try:
        state = cls(**{**_fields(base), **values})
    except ValueError as err:  # should not happen: every value was checked above
        warn.append(f"The link could not be read ({err}); opening the defaults.")
        state = base
    return state, warn


def _choice(text: str, choices: tuple[str, ...]) -> str:
    if text not in choices:
        raise ValueError(f"must be one of {', '.join(choices)}")
    return text


def _float(text: str, low: float, high: float) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"must be a number between {low:g} and {high:g}") from None
    if not low <= value <= high:
        raise ValueError(f"must be between {low:g} and {high:g}")
    return value


def _fields(state: Any) -> dict[str, Any]:
    from dataclasses import fields

    return {f.name: getattr(state, f.name) for f in fields(state)}
