"""Widgets generated from the recipe's field declarations and the strategy registry.

A field's ``widget`` says how it is drawn (``select``, ``radio``, ``number``, ``toggle``, ``indices``, ...), its
label, help, range, choices and ``when`` condition come from the same declaration as its URL key and CLI flag; a
strategy's parameter widgets come from its ``Param``s. A new field or strategy shows up here with no change.
Widget keys are ``<ns>.<field key>``; parameter keys ``<ns>.<p1|p2>.<strategy>.<param>``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import streamlit as st

from dynmask_app import messages
from dynmask_app.editor import inputs
from dynmask_app.editor.choices import choice
from dynmask_app.editor.token_counter import live_token_count
from dynmask_app.i18n import current, error_text, t, translate
from dynmask_app.server import resources
from dynmask_app.state import AppState
from dynmask_core.masks import Param, Strategy, get_strategy, strategies
from dynmask_core.modalities import modality
from dynmask_core.models import DEFAULT_MODEL, PRESETS, default_model
from dynmask_core.recipe import Field
from dynmask_core.samples import TEXT_EXAMPLES


def strategy_ids() -> list[str]:
    """Registry ids, static strategies first (in registry order), then dynamic ones."""
    items = strategies()
    return [s.id for s in items if s.kind == "static"] + [s.id for s in items if s.kind == "dynamic"]


def strategy_label(sid: str, lang: str | None = None) -> str:
    """``Sliding window · static``."""
    entry = get_strategy(sid)
    lang = lang or current()
    return f"{translate(entry.title, lang)} · {translate(entry.kind, lang)}"


def param_key(ns: str, slot: str, sid: str, name: str) -> str:
    """Widget key of one parameter (``slot`` is ``p1`` or ``p2``)."""
    return f"{ns}.{slot}.{sid}.{name}"


def _float_step(low: float, high: float) -> float:
    span = float(high) - float(low)
    return 0.05 if span <= 1 else 0.1 if span <= 2 else 0.5 if span <= 100 else 1.0


def param_widget(p: Param, key: str) -> Any:
    """One widget for a strategy parameter; its value is kept in ``st.session_state[key]``."""
    st.session_state.setdefault(key, p.default)
    label = p.name.replace("_", " ")  # the parameter's name, as in links and on the command line
    help = t(p.help)
    if p.type == "bool":
        return st.toggle(label, key=key, help=help)
    if p.type == "choice":
        return st.selectbox(label, p.choices, key=key, help=help)
    if p.type == "matrix":
        return matrix_widget(p, key)
    if p.type == "pairs":
        return st.text_input(label, key=key, help=help, placeholder=t("e.g. 0.3 2.5 (empty: the heads selected below)"))
    if p.type == "int":
        low, high = int(p.min), int(p.max)
        if high - low <= 64:
            return st.slider(label, low, high, step=1, key=key, help=help)
        return st.number_input(label, low, high, step=1, key=key, help=help)
    return st.number_input(label, float(p.min), float(p.max), step=_float_step(p.min, p.max), key=key,
                           help=help, format="%.3g")


def matrix_widget(p: Param, key: str) -> str:
    """A ``custom`` mask: upload a CSV/NPY 0/1 matrix (or paste its compact form); returns the compact form."""
    from dynmask_core.masks.custom import (
        MAX_FILE_BYTES,
        MAX_MATRIX_SIDE,
        decode_matrix,
        encode_matrix,
        parse_matrix_file,
    )

    upload = st.file_uploader(t("Mask matrix (CSV or NPY of 0/1, queries x keys)"), type=["csv", "tsv", "txt", "npy"],
                              key=f"{key}.file", help=t("1 = this query may attend to this key. At most {n} x {n}: "
                                                        "it rides in the link.", n=MAX_MATRIX_SIDE),
                              max_upload_size=MAX_FILE_BYTES // 2**20)  # what parse_matrix_file takes: 1 MB
    if upload is not None and st.session_state.get(f"{key}.loaded") != upload.file_id:
        try:
            st.session_state[key] = encode_matrix(parse_matrix_file(upload.getvalue(), upload.name))
            st.session_state[f"{key}.loaded"] = upload.file_id
        except ValueError as err:  # parse_matrix_file refuses every bad file with one line; labels may hold markdown
            messages.error(error_text(err))
    value = st.text_input(t("...or its compact form"), key=key, help=t(p.help),
                          placeholder=t("e.g. 3x3:8e (rows x cols : hex of the 0/1 cells, row by row)"))
    if value:
        try:
            m = decode_matrix(value)
            st.caption(t("A {r} x {c} mask, {n} of {total} cells allowed. The Playground's mask view shows it "
                         "once you Run; the input must have {r} positions.", r=m.shape[0], c=m.shape[1],
                         n=int(m.sum()), total=m.numel()))
        except ValueError as err:
            st.caption(error_text(err))
    return value


def strategy_params(ns: str, slot: str, entry: Strategy) -> dict[str, Any]:
    """Generated widgets for every parameter of ``entry``; returns ``{name: value}``."""
    if not entry.params:
        st.caption(t("This strategy has no parameters."))
    return {p.name: param_widget(p, param_key(ns, slot, entry.id, p.name)) for p in entry.params}


Put = Callable[[str, Any], None]  # writes one widget's value into the session (or fills it when missing)


@dataclass(frozen=True)
class WidgetKind:
    """How one kind of widget (a field's ``widget=``) is filled from a recipe and drawn.

    ``load(put, key, ns, spec, state, force)`` puts the recipe's value of ``spec`` into the widget's session state
    (before it is drawn); ``draw(spec, ns, key, label, facts, current)`` draws it and returns the recipe value it
    holds (``facts``: what the loaded model says, or None; ``current``: the values of the fields drawn so far).
    """

    draw: Callable[..., Any]
    load: Callable[..., None] = lambda put, key, ns, spec, state, force: put(key, getattr(state, spec.name))


def _load_input(put: Put, key: str, ns: str, spec: Field, state: AppState, force: bool) -> None:
    if modality(state.input_kind).inline:
        put(key, state.input_ref)
    elif not state.is_upload:
        put(f"{ns}.{state.input_kind}_sample", state.input_ref)
        if force:
            st.session_state.pop(f"{ns}.{state.input_kind}_origin", None)


def _load_model(put: Put, key: str, ns: str, spec: Field, state: AppState, force: bool) -> None:
    custom = state.model not in PRESETS
    put(key, DEFAULT_MODEL if custom else state.model)
    put(f"{key}_custom", state.model if custom else "")


def _load_params(put: Put, key: str, ns: str, spec: Field, state: AppState, force: bool) -> None:
    sid = getattr(state, spec.of)
    for name, v in getattr(state, spec.name):
        put(param_key(ns, spec.key, sid, name), v)


def _draw_input_kind(spec: Field, ns: str, key: str, label: str, facts: Any, current: dict[str, Any]) -> Any:
    offered = inputs.available_kinds()
    if len(offered) == 1:
        st.session_state[key] = "text"
        return "text"
    return choice("radio", label, offered, key=key, label_of=_choice_label(spec), fallback="text",
                  horizontal=True, help=t(spec.help))


def _draw_input(spec: Field, ns: str, key: str, label: str, facts: Any, current: dict[str, Any]) -> Any:
    input_kind = current.get("input_kind", "text")
    if modality(input_kind).inline:
        picked = (st.session_state.get(f"{ns}.model_custom") or "").strip() or st.session_state.get(f"{ns}.model")
        return text_controls(key, t("Text"), model_id=picked,
                             limit=int(st.session_state.get(f"{ns}.max_tokens") or 0) or None,
                             context=resources.policy().max_tokens if ns == "pg" else None)  # the Playground's field
    return inputs.media_controls(f"{ns}.{input_kind}", input_kind)


def _draw_choice(spec: Field, ns: str, key: str, label: str, facts: Any, current: dict[str, Any]) -> Any:
    value = choice(spec.widget, label, spec.choices, key=key, label_of=_choice_label(spec), help=t(spec.help))
    if spec.choice_help:
        st.caption(t(spec.choice_help[value]))
    return value


def _draw_toggle(spec: Field, ns: str, key: str, label: str, facts: Any, current: dict[str, Any]) -> Any:
    on = st.toggle(label, key=key, help=t(spec.help))
    if spec.choice_help:
        st.caption(t(spec.choice_help[on]))
    return bool(on)


def _draw_toggle_not(spec: Field, ns: str, key: str, label: str, facts: Any, current: dict[str, Any]) -> Any:
    if not (facts or {}).get(spec.of, True):
        st.session_state[key] = False
        return True
    return not _draw_toggle(spec, ns, key, label, facts, current)


#: Every kind of widget a field may declare (``widget=``), by name: adding one is one entry (and its functions).
WIDGET_KINDS: dict[str, WidgetKind] = {
    "input_kind": WidgetKind(_draw_input_kind),
    "input": WidgetKind(_draw_input, _load_input),
    "model": WidgetKind(lambda spec, ns, key, label, facts, current:
                        model_controls(key, label, current.get("input_kind", "text")), _load_model),
    "strategy": WidgetKind(lambda spec, ns, key, label, facts, current:
                           strategy_select(key, label, current.get("input_kind", "text"))),
    "params": WidgetKind(lambda spec, ns, key, label, facts, current:
                         strategy_params(ns, spec.key, get_strategy(current[spec.of])), _load_params),
    "indices": WidgetKind(lambda spec, ns, key, label, facts, current:
                          tuple(_indices(label, key, int((facts or {}).get(spec.of, 0)), spec)),
                          lambda put, key, ns, spec, state, force: put(key, list(getattr(state, spec.name)))),
    "select": WidgetKind(_draw_choice),
    "radio": WidgetKind(_draw_choice),
    "number": WidgetKind(lambda spec, ns, key, label, facts, current: _number(spec, key, label)),
    "tokens": WidgetKind(lambda spec, ns, key, label, facts, current: _tokens(spec, key, label, facts)),
    "target": WidgetKind(lambda spec, ns, key, label, facts, current: _target(spec, key, label, facts)),
    "toggle": WidgetKind(_draw_toggle),
    "toggle_not": WidgetKind(_draw_toggle_not,
                             lambda put, key, ns, spec, state, force: put(key, not getattr(state, spec.name))),
}


def load_widgets(ns: str, state: AppState, force: bool = False) -> None:
    """Puts ``state`` into the widgets' session state (before they are drawn).

    Args:
        ns: Page namespace.
        state: The recipe to show.
        force: Overwrite what the widgets hold (a link was opened); else only fill missing keys.
    """

    def put(key: str, value: Any) -> None:
        if force:
            st.session_state[key] = value
        else:
            st.session_state.setdefault(key, value)

    for spec in AppState.fields_spec():
        if spec.widget is not None:
            widget_kind(spec).load(put, f"{ns}.{spec.key}", ns, spec, state, force)


def widget_kind(spec: Field) -> WidgetKind:
    """The widget kind a field declares.

    Raises:
        ValueError: a kind no entry of :data:`WIDGET_KINDS` names.
    """
    if spec.widget not in WIDGET_KINDS:
        raise ValueError(f"unknown widget kind {spec.widget!r} for field {spec.name}")
    return WIDGET_KINDS[spec.widget]


def field_widget(spec: Field, ns: str, facts: dict[str, Any] | None, current: dict[str, Any],
                 label: str | None = None) -> Any:
    """Draws the widget of one field and returns the recipe value it holds.

    Args:
        spec: The field's declaration.
        ns: Page namespace.
        facts: What the loaded model says (``n_layers``, ``n_heads``, ``causal``), or None before a model loaded.
        current: Values of the fields drawn so far (for ``when`` conditions and parameters).
        label: Overrides the declared label (e.g. "Strategy A (left)").
    """
    key, label = f"{ns}.{spec.key}", t(label or spec.label)
    if not spec.matters(current):
        return st.session_state.get(key, spec.default)  # kept, not shown: it does not matter in this mode
    return widget_kind(spec).draw(spec, ns, key, label, facts, current)


def _choice_label(spec: Field) -> Callable[[Any, str], str] | None:
    """A field's choice shown by its translated label (None: by its id). Strict: a value that is no choice has no
    label, so a label can never pass for a choice."""
    if not spec.choice_labels:
        return None
    labels = {c: spec.choice_labels.get(c, str(c)) for c in spec.choices}
    return lambda c, lang: translate(labels[c], lang)


def _number(spec: Field, key: str, label: str) -> Any:
    if spec.type == "float":
        return float(st.number_input(label, float(spec.min), float(spec.max), key=key, help=t(spec.help),
                                     step=_float_step(spec.min, spec.max)))
    value = st.number_input(label, int(spec.min), int(spec.max), step=1, key=key, help=t(spec.help),
                            placeholder=t("empty = new random seed each Run") if spec.type == "seed" else None)
    return None if value is None else int(value)


def _tokens(spec: Field, key: str, label: str, facts: dict[str, Any] | None) -> int:
    """How many tokens of the text to read: the model's usual limit (the recipe's 0) unless raised, up to the
    model's own context and the server's ``max_tokens``. Not drawn for a model that reads no more than its limit."""
    held = int(st.session_state.get(key) or 0)
    if not facts:  # no model loaded yet: keep what the recipe (or the widget) holds
        return held
    usual = int(facts.get("max_tokens") or 512)
    most = min(max(int(facts.get("context") or usual), usual), resources.policy().max_tokens)
    if most <= usual:
        return 0
    if not held or held > most:
        st.session_state[key] = most if held else usual
    chosen = int(st.number_input(label, 1, most, step=256, key=key, help=t(spec.help)))
    if chosen > usual:
        st.caption(t("Past {usual} tokens a run keeps per-head summaries and pooled maps (full resolution: *Zoom*); "
                     "{n} tokens of this model take a while on a CPU.", usual=usual, n=f"{chosen:,}"))
    return 0 if chosen == usual else chosen


def _target(spec: Field, key: str, label: str, facts: dict[str, Any] | None) -> str:
    """The attribution target: free text, with what this model takes said under it."""
    value = st.text_input(label, key=key, help=t(spec.help), max_chars=int(spec.max) if spec.max else None)
    facts = facts or {}
    if facts.get("task") == "causal_lm":
        takes = t("predicted (the unmasked model's next token) or one token, e.g. Paris")
    elif facts.get("labels"):
        labels = ", ".join(facts["labels"][:12]) + (" …" if len(facts["labels"]) > 12 else "")
        takes = t("predicted (the unmasked model's class) or a class: {labels}", labels=labels)
    else:
        takes = t("similar:<a sentence> (this model gives an embedding)")
    if facts.get("modality", "text") == "text" and facts.get("task") != "causal_lm" and facts.get("labels"):
        takes += t("; or similar:<a sentence>")
    st.caption(messages.plain(t("Target: {takes}.", takes=takes)))  # class labels come from the model's files
    return (value or "").strip() or str(spec.default)


def text_controls(key: str, label: str = "Text", *, model_id: str | None = None, limit: int | None = None,
                  context: int | None = None) -> str:
    """Example picker (fills the text) and the text area (typed text is kept otherwise); with ``model_id``, the
    token count under it, kept up to date while the text is typed (``limit``: the tokens the model reads, None = its
    usual limit; ``context``: how far *Tokens to read* may be raised on this page, None = no such field; see
    :func:`dynmask_app.editor.token_counter.live_token_count`)."""
    example_key = key.rsplit(".", 1)[0] + ".example"

    def fill() -> None:
        picked = st.session_state.get(example_key)
        if picked in TEXT_EXAMPLES:
            st.session_state[key] = TEXT_EXAMPLES[picked]

    choice("select", t("Example sentences"), list(TEXT_EXAMPLES), index=None, key=example_key, on_change=fill,
           label_of=translate, placeholder=t("Pick an example to fill the text..."))
    value = st.text_area(label, key=key, height=110, help=t("Typed text is kept; picking an example replaces it."))
    if model_id:
        live_token_count(key, model_id, limit, context)
    return value


def model_controls(key: str, label: str = "Model", kind: str = "text") -> str:
    """Bundled model picker (the models for this kind of input) plus a free field for any Hugging Face id or local
    folder; returns the id."""
    options = [m for m, p in PRESETS.items() if p.modality == kind]
    if options:
        if st.session_state.get(key) not in options:
            st.session_state[key] = default_model(kind) if default_model(kind) in options else options[0]
        preset = choice("select", label, options, key=key,
                        label_of=lambda m, lang: f"{m}: {translate(PRESETS[m].title, lang)}")
    else:
        preset = ""
        st.caption(t("No bundled {kind} model in this build: give a Hugging Face id or a local folder below.",
                     kind=t(kind)))
    custom = st.text_input(t("...or any Hugging Face id / local folder"), key=f"{key}_custom",
                           placeholder=t("e.g. org/model-name or /path/to/folder"),
                           help=t("Leave empty to use the bundled model above. Offline, only local folders work."))
    return (custom or "").strip() or preset


def strategy_select(key: str, label: str, kind: str = "text") -> str:
    """Strategy picker (title + kind) with its one-line summary; only strategies that work on this kind of input."""
    ids = [sid for sid in strategy_ids() if get_strategy(sid).takes(kind)]
    sid = choice("select", label, ids, key=key, label_of=strategy_label, fallback=ids[0])
    st.caption(t(get_strategy(sid).summary))
    return sid


def _indices(label: str, key: str, count: int, spec: Field) -> list[int]:
    options = list(range(max(0, count)))
    current = [v for v in st.session_state.get(key, []) if v in options]
    st.session_state[key] = current
    every = t("all layers") if spec.name == "layers" else t("all heads") if spec.name == "heads" else f"all {spec.name}"
    said = t(spec.help)
    return st.multiselect(label, options, key=key, placeholder=every,
                          help=t("{help}; empty = {every}.", help=said[:1].upper() + said[1:], every=every))
