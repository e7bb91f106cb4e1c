"""The server's shared caches of results and models, each kept within a budget in BYTES.

Every session of the server shares them (a class on one link computes once). Entries are accounted by the bytes of
their tensors (masks and attention of both runs dominate a result: a 512-token SmolLM2 result is ~0.7 GB; a model
is its parameters and buffers) and evicted least recently used past the budget. Two sessions asking for the same
missing entry at once compute it once.

Sessions keep no result of their own between script runs: they keep a :class:`SharedResult` handle (the key and
how to recompute it) and fetch the tensors from the cache when they draw. While a script run uses an entry, the
entry is *pinned* to that script's thread (Streamlit runs a script in a thread that ends when the run is over), so
the numbers a page is drawing are never dropped under it; once the thread has ended the entry is an ordinary LRU
entry again. A computation first takes :meth:`ByteLRU.room_for` its estimated size: it evicts, or waits while other
script runs draw or compute, so cached, drawn and computing results together stay within the budget. (A page that
already holds one result and computes another goes ahead past the budget rather than risk waiting on a run that
waits on it.)

Streamlit's ``maxCacheDataSize`` does not apply here: it only bounds ``st.cache_data``.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

DEFAULT_BUDGET_MB = 1024


def nbytes(value: Any) -> int:
    """Bytes held by a result's tensors (attributes that are tensors or numpy arrays, dicts of tensors, and nested
    dataclasses)."""
    total = 0
    for item in vars(value).values():
        if isinstance(item, dict):  # e.g. a capture summary's weights kept in full, by (layer, head)
            total += sum(v.element_size() * v.nelement() for v in item.values() if hasattr(v, "element_size"))
        elif hasattr(item, "element_size") and hasattr(item, "nelement"):
            total += item.element_size() * item.nelement()
        elif hasattr(item, "nbytes") and hasattr(item, "dtype"):  # numpy arrays (attributions)
            total += int(item.nbytes)
        elif hasattr(item, "__dataclass_fields__"):
            total += nbytes(item)
    return total


def model_nbytes(loaded: Any) -> int:
    """Bytes of a loaded model's parameters and buffers (shared storages counted once)."""
    model = getattr(loaded, "model", loaded)
    seen, total = set(), 0
    for tensor in [*model.parameters(), *model.buffers()]:
        key = tensor.untyped_storage().data_ptr()
        if key not in seen:
            seen.add(key)
            total += tensor.untyped_storage().nbytes()
    return total


@dataclass
class _Entry:
    value: Any
    size: int
    pins: set[threading.Thread] = field(default_factory=set)

    def pinned(self) -> bool:
        self.pins = {t for t in self.pins if t.is_alive()}
        return bool(self.pins)


class ByteLRU:
    """Least-recently-used entries within ``budget`` bytes; safe to share between threads.

    Args:
        budget: Bytes the unpinned entries may hold together.
        sizeof: The bytes of one value.
        keep_newest: Keep the newest entry even when it alone exceeds the budget (models: the one just loaded is
            about to be used); otherwise such an entry is kept only while pinned.
    """

    def __init__(self, budget: int, sizeof: Callable[[Any], int] = nbytes, keep_newest: bool = False) -> None:
        self.budget = int(budget)
        self.sizeof = sizeof
        self.keep_newest = keep_newest
        self._items: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Condition()
        self._computing: dict[Hashable, threading.Lock] = {}
        self._reserved: dict[threading.Thread, int] = {}  # bytes of the values being computed, by thread
        self.computed = 0  # values computed (a test's window: a second session on one link computes none)

    @property
    def used(self) -> int:
        """Bytes held now."""
        with self._lock:
            return sum(e.size for e in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def keys(self) -> list[Hashable]:
        """Keys from least to most recently used."""
        with self._lock:
            return list(self._items)

    def get(self, key: Hashable, pin: bool = False) -> Any | None:
        """The cached value of ``key`` (marked as recently used; pinned to this thread with ``pin``), or None."""
        with self._lock:
            entry = self._items.get(key)
            if entry is None:
                return None
            self._items.move_to_end(key)
            if pin:
                entry.pins.add(threading.current_thread())
            return entry.value

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any], pin: bool = False) -> Any:
        """The value of ``key``, computed once by ``compute`` when missing (other askers wait for it)."""
        hit = self.get(key, pin)
        if hit is not None:
            return hit
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            hit = self.get(key, pin)
            if hit is not None:
                return hit
            try:
                value = compute()
                with self._lock:
                    self.computed += 1
                self.put(key, value, pin)
            finally:
                with self._lock:
                    if self._computing.get(key) is gate:  # a later computer's gate is not ours to drop
                        del self._computing[key]
        return value

    def put(self, key: Hashable, value: Any, pin: bool = False) -> None:
        """Stores ``value`` as the most recent entry and evicts past the budget."""
        entry = _Entry(value, int(self.sizeof(value)))
        if entry.size > self.budget and not (pin or self.keep_newest):
            return  # nobody is drawing it and it alone is over the budget: returned, not kept (others stay)
        if pin:
            entry.pins.add(threading.current_thread())
        with self._lock:
            self._items[key] = entry
            self._items.move_to_end(key)
            self._reserved.pop(threading.current_thread(), None)  # the value replaces its reservation at once
            self._evict(0, newest=key)
            self._lock.notify_all()

    @contextmanager
    def room_for(self, size: int, poll: float = 0.2) -> Iterator[None]:
        """Holds ``size`` bytes of the budget while a value is computed (until it is :meth:`put` or this ends).

        Unpinned entries are evicted to make room. When entries other script runs are drawing, or values they are
        computing, leave no room, this waits until they are done -- unless this thread itself holds pinned entries
        (a page computing its second side): it goes ahead then, past the budget, since whoever it waited for could
        be waiting for it. A value alone larger than the budget goes ahead once nothing else is in the way.
        """
        size, me = max(0, int(size)), threading.current_thread()
        with self._lock:
            while True:
                self._evict(size + sum(self._reserved.values()))
                used = sum(e.size for e in self._items.values()) + sum(self._reserved.values())
                others = any(t is not me and t.is_alive() for e in self._items.values() for t in e.pins) \
                    or any(t is not me for t in self._reserved)
                mine = any(me in e.pins for e in self._items.values())
                if used + size <= self.budget or not others or mine:
                    break
                self._lock.wait(poll)  # pins end with their threads, which nobody notifies: poll
            self._reserved[me] = self._reserved.get(me, 0) + size
        try:
            yield
        finally:
            with self._lock:
                self._reserved.pop(me, None)
                self._lock.notify_all()

    def _evict(self, extra: int, newest: Hashable | None = None) -> None:
        used = sum(e.size for e in self._items.values()) + extra
        for key in list(self._items):
            if used <= self.budget:
                return
            entry = self._items[key]
            if key == newest and (self.keep_newest or entry.pinned()):
                continue
            if entry.pinned():
                continue
            del self._items[key]
            used -= entry.size

    def clear(self) -> None:
        """Drops every entry."""
        with self._lock:
            self._items.clear()



class SharedResult:
    """A session's handle on a shared result: its key and how to get it, not its tensors.

    Attribute access fetches the result from the cache (pinned to the running script) or recomputes it (same
    recipe, same seed: the same numbers) when the cache has dropped it. A page keeps this handle between script runs
    (in its fragments), so a session's results are never outside the byte budget while it is idle, and are released
    with the session.
    """

    __slots__ = ("_fetch", "_seen", "key")

    def __init__(self, key: str, fetch: Callable[[], Any]) -> None:
        self.key = key
        self._fetch = fetch
        self._seen: tuple[threading.Thread, weakref.ref] | None = None  # this script run's fetch, not kept alive

    def resolve(self) -> Any:
        """The result itself (fetched once per script run; the handle never keeps it alive)."""
        seen, here = self._seen, threading.current_thread()
        if seen is not None and seen[0] is here:
            value = seen[1]()
            if value is not None:
                return value
        value = self._fetch()
        self._seen = (here, weakref.ref(value))
        return value

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # copy/pickle probes on a bare instance: not the result's
            raise AttributeError(name)
        return getattr(self.resolve(), name)

    def __repr__(self) -> str:
        return f"SharedResult({self.key[:60]!r}...)"
