"""Echoing what a user typed or a link carried, safely: quoted, on one line, cut short.

Messages are plain text here; the app renders them without markdown (see ``dynmask_app.messages``).
"""

from __future__ import annotations

from collections.abc import Iterable
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
