"""Echoing what a user typed or a link carried, safely: quoted, on one line, cut short.

Messages are plain text here; the app renders them without markdown (see ``dynmask_app.messages``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

MAX_SHOWN = 60  # characters of a user's value echoed back in a message


def shown(value: Any, limit: int = MAX_SHOWN) -> str:
    """A user-supplied value for a message: quoted, on one line, cut to ``limit`` characters.

    >>> shown("0," * 40)
    "'0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0…'"
    """
    text = str(value).replace("\n", " ").replace("\r", " ")
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return repr(text)


def names_list(names: Iterable[str], limit: int = 5) -> str:
    """``'a', 'b', 'c' and 7 more`` for a message about many user-supplied names.

    >>> names_list(["p.x", "p.y"])
    "'p.x', 'p.y'"
    >>> names_list([f"k{i}" for i in range(900)], limit=2)
    "'k0', 'k1' and 898 more"
    """
    names = list(names)
    head = ", ".join(shown(n, 30) for n in names[:limit])
    return head + (f" and {len(names) - limit} more" if len(names) > limit else "")


# ------------------------------------------------------------------------------------------------ words for a page
#
# The core writes English. What it says to a person (a warning, a sentence about a run, a figure's axis title) is
# marked so that a page can show it in another language through its message catalogue (the app's
# ``dynmask_app/i18n.py``; ``scripts/extract_messages.py`` lists every marked text):
#
# * a constant text: ``N_("key (attended to)")`` (gettext's no-op marker: the text itself, unchanged);
# * a text with values in it: ``Message("{n} layers x {m} heads", n=6, m=12)``, a ``str`` that reads as its English
#   text and carries its template and values, so a page translates the template and fills it (values that are
#   Messages are translated the same way; every other value, a token or a number, is shown as it is);
# * a builder of words the core renders itself (HTML): a ``tr`` argument, a :data:`Translate` (default
#   :func:`english`), applied to each template before it is filled.

Translate = Callable[[str], str]


def N_(text: str) -> str:
    """Marks a constant English text for translation; returns it unchanged.

    >>> N_("masked")
    'masked'
    """
    return text


def english(text: str) -> str:
    """The :data:`Translate` of the core's own language: the text as written."""
    return text


class Message(str):
    """An English sentence with values in it, which a page can show in another language.

    It *is* its English text (``str(message)``, an f-string, a log line or the command line read it as such); a page
    calls :meth:`render` with its translator: the template is translated, then filled.

    >>> m = Message("{n} of {total} cells allowed", n=3, total=9)
    >>> m, m.template
    ('3 of 9 cells allowed', '{n} of {total} cells allowed')
    >>> m.render({"{n} of {total} cells allowed": "允许 {total} 个中的 {n} 个"}.get)
    '允许 9 个中的 3 个'
    >>> Message("{what}; {rest}", what=Message("no change"), rest="x").render({"no change": "无变化"}.get)
    '无变化; x'
    """

    template: str
    fields: dict[str, Any]

    def __new__(cls, template: str, /, **fields: Any) -> Message:
        self = super().__new__(cls, _fill(template, fields, english))
        self.template = template
        self.fields = fields
        return self

    def render(self, tr: Callable[[str], str | None]) -> str:
        """The text in the language of ``tr`` (a template it does not know, or None from it: the English one)."""
        return _fill(tr(self.template) or self.template, self.fields, tr)

    def __reduce__(self) -> tuple[Any, ...]:
        return _message, (self.template, self.fields)


def _message(template: str, fields: dict[str, Any]) -> Message:
    return Message(template, **fields)


def _fill(template: str, fields: dict[str, Any], tr: Callable[[str], str | None]) -> str:
    if not fields:
        return template
    return template.format(**{k: v.render(tr) if isinstance(v, Message) else v for k, v in fields.items()})


def error_message(err: BaseException) -> str:
    """What an exception says: its :class:`Message` when it was raised with one (so a page can translate it), else
    its text."""
    first = err.args[0] if len(err.args) == 1 else None
    return first if isinstance(first, Message) else str(err)
