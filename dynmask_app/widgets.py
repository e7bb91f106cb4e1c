"""Widgets generated from the registry, and the mapping between widget state and :class:`AppState`.

Every parameter widget is made from a strategy's declared ``Param`` (int -> slider or number input within
min/max, float -> number input, bool -> toggle, choice -> selectbox): a new strategy in the core shows up in the
app with no change here. Widget keys are ``<ns>.<name>``; parameter keys ``<ns>.p1.<strategy>.<param>``.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dynmask_app.examples import EXAMPLES
from dynmask_app.state import AppState
from dynmask_core.masks import MODES, Param, Strategy, get_strategy, strategies
from dynmask_core.models import DEFAULT_MODEL, PRESETS

OP_LABELS = {"none": "no second strategy", "and": "AND: both must allow", "or": "OR: either may allow"}


def strategy_ids() -> list[str]:
    """Registry ids, static strategies first (in registry order), then dynamic ones."""
    items = strategies()
    return [s.id for s in items if s.kind == "static"] + [s.id for s in items if s.kind == "dynamic"]


def strategy_label(sid: str) -> str:
    """``Sliding window · static``."""
    entry = get_strategy(sid)
    return f"{entry.title} · {entry.kind}"


def param_key(ns: str, slot: str, sid: str, name: str) -> str:
    """Widget key of one parameter (``slot`` is ``p1`` or ``p2``)."""
    return f"{ns}.{slot}.{sid}.{name}"


def _float_step(p: Param) -> float:
    span = float(p.max) - float(p.min)
    return 0.05 if span <= 1 else 0.1 if span <= 2 else 0.5


def param_widget(p: Param, key: str) -> Any:
    """One widget for ``p``; its value is kept in ``st.session_state[key]``."""
    st.session_state.setdefault(key, p.default)
    label = p.name.replace("_", " ")
    if p.type == "bool":
        return st.toggle(label, key=key, help=p.help)
    if p.type == "choice":
        return st.selectbox(label, p.choices, key=key, help=p.help)
    if p.type == "int":
        low, high = int(p.min), int(p.max)
        if high - low <= 64:
            return st.slider(label, low, high, step=1, key=key, help=p.help)
        return st.number_input(label, low, high, step=1, key=key, help=p.help)
    return st.number_input(label, float(p.min), float(p.max), step=_float_step(p), key=key, help=p.help,
                           format="%.3g")


def strategy_params(ns: str, slot: str, entry: Strategy) -> dict[str, Any]:
    """Generated widgets for every parameter of ``entry``; returns ``{name: value}``."""
    if not entry.params:
        st.caption("This strategy has no parameters.")
    return {p.name: param_widget(p, param_key(ns, slot, entry.id, p.name)) for p in entry.params}


def _set(key: str, value: Any, force: bool) -> None:
    if force:
        st.session_state[key] = value
    else:
        st.session_state.setdefault(key, value)


def load_widgets(ns: str, state: AppState, force: bool = False) -> None:
    """Puts ``state`` into the widgets' session state (before they are drawn).

    Args:
        ns: Page namespace.
        state: The recipe to show.
        force: Overwrite what the widgets hold (a link was opened); else only fill missing keys.
    """
    custom = state.model not in PRESETS
    _set(f"{ns}.model", DEFAULT_MODEL if custom else state.model, force)
    _set(f"{ns}.model_custom", state.model if custom else "", force)
    _set(f"{ns}.text", state.text, force)
    _set(f"{ns}.s1", state.strategy, force)
    _set(f"{ns}.op", state.op, force)
    _set(f"{ns}.s2", state.strategy2, force)
    for slot, sid, params in (("p1", state.strategy, state.params), ("p2", state.strategy2, state.params2)):
        for name, value in params:
            _set(param_key(ns, slot, sid, name), value, force)
    _set(f"{ns}.layers", list(state.layers), force)
    _set(f"{ns}.heads", list(state.heads), force)
    _set(f"{ns}.mode", state.mode, force)
    _set(f"{ns}.beta", state.beta, force)
    _set(f"{ns}.renorm", state.renormalize, force)
    _set(f"{ns}.seed", state.seed, force)
    _set(f"{ns}.see_future", not state.model_causal, force)


def text_controls(ns: str) -> str:
    """Example picker (fills the text) and the text area (typed text is kept otherwise)."""

    def fill() -> None:
        choice = st.session_state.get(f"{ns}.example")
        if choice in EXAMPLES:
            st.session_state[f"{ns}.text"] = EXAMPLES[choice]

    st.selectbox("Example sentences", list(EXAMPLES), index=None, key=f"{ns}.example", on_change=fill,
                 placeholder="Pick an example to fill the text...")
    return st.text_area("Text", key=f"{ns}.text", height=110,
                        help="Typed text is kept; picking an example replaces it.")


def model_controls(ns: str) -> str:
    """Bundled model picker plus a free field for any Hugging Face id or local folder; returns the id."""
    preset = st.selectbox("Model", list(PRESETS), key=f"{ns}.model",
                          format_func=lambda m: f"{m}: {PRESETS[m].title}")
    custom = st.text_input("...or any Hugging Face id / local folder", key=f"{ns}.model_custom",
                           placeholder="e.g. org/model-name or /path/to/folder",
                           help="Leave empty to use the bundled model above. Offline, only local folders work.")
    return (custom or "").strip() or preset


def strategy_controls(ns: str, slot: str, key: str, label: str) -> tuple[str, dict[str, Any]]:
    """Strategy picker (title + kind) with its generated parameter widgets."""
    ids = strategy_ids()
    if st.session_state.get(key) not in ids:
        st.session_state[key] = ids[0]
    sid = st.selectbox(label, ids, key=key, format_func=strategy_label)
    entry = get_strategy(sid)
    st.caption(entry.summary)
    return sid, strategy_params(ns, slot, entry)


def _indices(label: str, key: str, count: int, what: str) -> list[int]:
    options = list(range(max(0, count)))
    current = [v for v in st.session_state.get(key, []) if v in options]
    st.session_state[key] = current
    return st.multiselect(label, options, key=key, placeholder=f"all {what}",
                          help=f"Apply the mask only to these {what}; empty = all {what}.")


def where_how_controls(ns: str, facts: dict[str, Any] | None) -> dict[str, Any]:
    """Layers, heads, apply mode (+ beta / renormalise), seed and the causal-LM option."""
    n_layers = facts["n_layers"] if facts else 0
    n_heads = facts["n_heads"] if facts else 0
    layers = _indices("Layers", f"{ns}.layers", n_layers, "layers")
    heads = _indices("Heads", f"{ns}.heads", n_heads, "heads")
    mode = st.selectbox("Apply mode", list(MODES), key=f"{ns}.mode")
    st.caption(MODES[mode])
    beta = st.session_state.get(f"{ns}.beta", 8.0)
    renorm = st.session_state.get(f"{ns}.renorm", True)
    if mode == "bias":
        beta = st.number_input("beta (penalty on blocked keys)", 0.0, 10000.0, step=1.0, key=f"{ns}.beta")
    if mode == "gate":
        renorm = st.toggle("renormalise rows to sum to 1", key=f"{ns}.renorm")
    seed = st.number_input("Seed (random strategies)", 0, 2**31 - 1, step=1, key=f"{ns}.seed",
                           placeholder="empty = new random seed each Run",
                           help="Random masks (random_dynamic, lsh, kmeans) use it. Empty: a new seed is drawn "
                                "at each Run and put in the link, so the link reproduces the run.")
    see_future = False
    if facts and facts["causal"]:
        see_future = st.toggle("Let the causal LM see the future", key=f"{ns}.see_future",
                               help="Removes the model's own causal mask (padding stays): each token may attend "
                                    "to later tokens too. The model was never trained like that.")
        st.caption("On: the model's causal mask is removed, so tokens also attend to later tokens." if see_future
                   else "Off: the model keeps its causal mask (each token sees only itself and earlier tokens).")
    return {"layers": tuple(layers), "heads": tuple(heads), "mode": mode, "beta": float(beta),
            "renormalize": bool(renorm), "seed": None if seed is None else int(seed),
            "model_causal": not see_future}
