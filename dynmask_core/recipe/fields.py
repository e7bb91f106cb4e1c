"""How one recipe field is declared: type, default, range or choices, URL key, CLI flag, widget and help text.

Every field of :class:`~dynmask_core.recipe.Recipe` is declared once, with :func:`declare`, in the dataclass
itself. The URL codec, the command-line arguments and the app's widgets are generated from these declarations;
nothing mirrors them by hand. Parsing a string (from a link or a command line) and checking a Python value both live
here, so a value means the same wherever it comes from. Each field also says what a change of it changes
(``affects``), from which the keys of cached results are made (:meth:`~dynmask_core.recipe.Recipe.cache_key`).
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dynmask_core.messages import Message, names_list, shown  # noqa: F401  (re-exported)

MAX_INDEX = 4095  # no model here has more layers or heads
PAGE_ID = re.compile(r"^[a-z][a-z0-9_]{0,31}$")  # what a page id looks like
#: What a field's change changes, widest first: the model's run, an attribution of the run, or only the view. A key of
#: one scope holds the fields that affect it and those before it (an attribution depends on the run too).
AFFECTS = ("input", "run", "attribution", "view")  # each scope holds those before it

_SAME = object()  # cli_default: the same as the recipe's default
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass(frozen=True)
class Field:
    """The declaration of one recipe field.

    Attributes:
        name: Attribute of the recipe (filled in from the dataclass).
        type: ``str``, ``choice``, ``int``, ``float``, ``bool``, ``seed`` (int or None), ``indices`` (a set of
            layer/head numbers), ``strategy`` (a registry id) or ``params`` (the parameters of a strategy field).
        default: Value when nothing is given.
        label: Human name (widget label, messages).
        help: One line for tooltips and ``--help``.
        url: Query-string key (for ``params``: the key prefix, ``p`` gives ``p.radius``); None = not in links.
        cli: Command-line flag; None = not on the command line.
        cli_default: Default on the command line when it differs from the recipe's (a script's neutral choice).
        cli_value: For a ``bool`` flag: the value a bare flag sets (``--see-future`` sets ``model_causal`` False).
        cli_aliases: More flags for the same field.
        cli_required: The command line must give it.
        widget: How the app draws it: ``select``, ``radio``, ``number``, ``toggle``, ``toggle_not`` (a toggle
            showing the opposite value), ``indices``, ``text``, ``model``, ``strategy``, ``params``; None = not a
            widget (set by the page or a view).
        key: The widget's key in the app's session state (after the page prefix).
        group: Where the widget sits: ``""`` (the recipe) or ``"where"`` (the "where and how" section).
        choice_labels: Display names of choices (a ``select``/``radio``).
        choice_help: One line under the widget for each choice.
        min: Smallest value (int/float/seed); max: largest.
        choices: Allowed values (choice).
        of: For ``params``: the strategy field whose parameters these are; for ``indices``: the model fact that
            bounds them (``n_layers``, ``n_heads``).
        when: ``(field, value)``: the field matters only when that other field has that value (``beta`` in bias
            mode), or one of the values when it is a tuple; widgets are shown only then.
        pages: The pages (and the command-line commands standing for them) that use the field; None = every page.
            A field of other pages is neither drawn, nor written to a link, nor a command-line option there.
        url_default: Whether a link carries the field when it holds its default (False: links made before the field
            existed stay the same).
        link_default: What a link (one with ``v=``) that lacks the field reads (default: :attr:`default`): the
            default of the time before it changed, so that a link written without it opens with the same numbers.
        affects: What a change of the field changes (:data:`AFFECTS`): ``input`` (the model and its input: the
            unmasked pass and everything after it), ``run`` (the masked run), ``attribution`` (an attribution of the
            run, not the run) or ``view`` (only what is shown). Required: the keys of cached
            results are made from it, so a new field cannot be left out of them.
        sides: The runs of a page the field feeds (``main``, ``a``, ``b``; see ``Recipe.sides``); None = every run.
    """

    name: str = ""
    type: str = "str"
    default: Any = None
    label: str = ""
    help: str = ""
    url: str | None = None
    cli: str | None = None
    cli_default: Any = _SAME
    cli_value: Any = None
    cli_aliases: tuple[str, ...] = ()
    cli_required: bool = False
    widget: str | None = None
    key: str = ""
    group: str = ""
    choice_labels: Mapping[str, str] | None = None
    choice_help: Mapping[Any, str] | None = None
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] = ()
    of: str | None = None
    when: tuple[str, Any] | None = None
    pages: tuple[str, ...] | None = None
    url_default: bool = True
    link_default: Any = _SAME
    affects: str = ""
    sides: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.affects not in AFFECTS:
            raise ValueError(f"recipe field {self.name or self.label or '?'} must declare affects= (what a change of "
                             f"it changes): one of {', '.join(AFFECTS)}, got {shown(self.affects)}")

    def used_on(self, page: str) -> bool:
        """Whether the page ``page`` uses this field."""
        return self.pages is None or page in self.pages

    def matters(self, values: Mapping[str, Any]) -> bool:
        """Whether the field matters given the other fields' ``values`` (its ``when`` condition)."""
        if self.when is None:
            return True
        field_name, wanted = self.when
        value = values.get(field_name)
        return value in wanted if isinstance(wanted, tuple) else value == wanted

    def feeds(self, side: str) -> bool:
        """Whether the run ``side`` of a page (``main``, ``a``, ``b``) depends on this field."""
        return self.sides is None or side in self.sides

    def key_value(self, value: Any) -> Any:
        """The value as canonical JSON data for a cache key: tuples as lists, ``params`` as sorted name/value pairs."""
        if self.type == "params":
            return [[str(name), plain(v)] for name, v in sorted(dict(value).items())]
        return plain(value)

    # ------------------------------------------------------------------------------------------------ values

    def check(self, value: Any, what: str | None = None) -> Any:
        """A Python value made canonical (``indices`` sorted and unique, numbers typed), or ValueError.

        ``what`` names the value in messages (a flag like ``--seed``; default the field's name).
        """
        name = Message(what or self.name)  # a field's label: a page shows it in its language
        if self.type == "indices":
            out = tuple(sorted({int(v) for v in (value or ())}))
            if any(not 0 <= v <= MAX_INDEX for v in out):
                raise ValueError(Message("{name} must be indices between 0 and {most}, got {value}", name=name,
                                         most=MAX_INDEX, value=shown(list(out))))
            return out
        if self.type == "seed" and value is None:
            return None
        if self.type in ("int", "seed", "float"):
            return self._number(value, self.type != "float", name)
        if self.type == "bool":
            if isinstance(value, bool):
                return value
            raise ValueError(Message("{name} must be true or false, got {value}", name=name, value=shown(value)))
        if self.type == "choice" and value not in self.choices:
            raise ValueError(Message("{name} must be one of {choices}, got {value}", name=name,
                                     choices=", ".join(self.choices), value=shown(value)))
        if self.type == "str" and self.max is not None and len(str(value)) > self.max:
            raise ValueError(Message("{name} is {n} characters long, at most {most} are allowed", name=name,
                                     n=len(str(value)), most=_fmt(self.max)))
        if self.type in ("str", "choice", "strategy"):
            return str(value)
        return value

    def _number(self, value: Any, integer: bool, name: str) -> Any:
        kind = Message("a whole number") if integer else Message("a number")
        if isinstance(value, bool):
            raise ValueError(Message("{name} must be {kind}, got {value}", name=name, kind=kind, value=shown(value)))
        try:
            number = float(value)
        except (TypeError, ValueError, OverflowError):
            number = math.nan
        if integer and math.isfinite(number) and number != int(number):
            number = math.nan
        if not math.isfinite(number) or not (self.min <= number <= self.max):
            raise ValueError(Message("{name} must be {kind} between {low} and {high}, got {value}", name=name,
                                     kind=kind, low=_fmt(self.min), high=_fmt(self.max), value=shown(value)))
        return int(number) if integer else float(number)

    def parse(self, text: str, what: str | None = None) -> Any:
        """A value from a link or command-line string, or ValueError saying what is allowed.

        ``what`` names the value in messages (a flag like ``--seed``; default the field's name).
        """
        name = Message(what or self.name)
        text = str(text)
        if self.type == "indices":
            return self.check(parse_indices(text, name), name)
        if self.type == "seed" and text.strip().lower() in ("", "none"):
            return None
        if self.type in ("int", "seed"):
            try:
                return self.check(int(text.strip()), name)
            except ValueError:
                raise ValueError(Message("{name} must be {kind} between {low} and {high}, got {value}", name=name,
                                         kind=Message("a whole number"), low=_fmt(self.min), high=_fmt(self.max),
                                         value=shown(text))) from None
        if self.type == "bool":
            low = text.strip().lower()
            if low in _TRUE | _FALSE:
                return low in _TRUE
            raise ValueError(Message("{name} must be true or false, got {value}", name=name, value=shown(text)))
        return self.check(text, name)

    def encode(self, value: Any) -> str:
        """The value as a link string (``parse(encode(v)) == v``)."""
        if self.type == "indices":
            return ",".join(map(str, value))
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, float):
            return repr(value)
        return "" if value is None else str(value)

    @property
    def default_on_cli(self) -> Any:
        """The command line's default for this field."""
        return self.default if self.cli_default is _SAME else self.cli_default


def declare(default: Any = None, **spec: Any) -> Any:
    """A dataclass field carrying its :class:`Field` declaration (``name`` is filled in from the attribute)."""
    return dataclasses.field(default=default, metadata={"spec": Field(default=default, **spec)})


def specs(cls: type) -> tuple[Field, ...]:
    """The declarations of a recipe dataclass, in field order."""
    return tuple(dataclasses.replace(f.metadata["spec"], name=f.name, key=f.metadata["spec"].key or f.name)
                 for f in dataclasses.fields(cls) if "spec" in f.metadata)


def scope_affects(scope: str) -> tuple[str, ...]:
    """The ``affects`` values a key of ``scope`` holds: ``input`` -> input; ``run`` -> input and run;
    ``attribution`` -> those and attribution; ``view`` -> all four.

    Raises:
        ValueError: a scope that is not one of :data:`AFFECTS`.
    """
    if scope not in AFFECTS:
        raise ValueError(f"scope must be one of {', '.join(AFFECTS)}, got {shown(scope)}")
    return AFFECTS[:AFFECTS.index(scope) + 1]


def plain(value: Any) -> Any:
    """``value`` as canonical JSON data: mappings with sorted string keys, tuples and lists as lists, numbers,
    strings, booleans and None as they are, anything else as its ``str``."""
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (tuple, list)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)


def parse_indices(text: str, what: str = "indices") -> tuple[int, ...]:
    """``"0,2,4-6"`` -> (0, 2, 4, 5, 6); ``""`` or ``"all"`` -> () (every layer/head).

    Raises:
        ValueError: naming the flag and the allowed form.
    """
    text = (text or "").strip()
    if text.lower() in ("", "all"):
        return ()
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        lo, sep, hi = part.partition("-")
        try:
            a, b = (int(lo), int(hi)) if sep else (int(part), int(part))
        except ValueError:
            raise ValueError(Message("{name} takes indices like 0,2 or 0-3 (or 'all'), got {value}",
                                     name=Message(what), value=shown(text))) from None
        if sep and (b < a or b > MAX_INDEX):
            raise ValueError(Message("{name} ranges go from low to high, at most {most}, got {value}",
                                     name=Message(what), most=MAX_INDEX, value=shown(part)))
        if not (0 <= a <= MAX_INDEX and 0 <= b <= MAX_INDEX):
            raise ValueError(Message("{name} indices must be between 0 and {most}, got {value}", name=Message(what),
                                     most=MAX_INDEX, value=shown(part)))
        out.extend(range(a, b + 1))
    return tuple(sorted(set(out)))


def _fmt(x: Any) -> str:
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
