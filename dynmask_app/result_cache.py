"""The server's shared result cache: runs keyed by their full recipe, kept within a budget in BYTES.

Every session of the server shares it (a class on one link computes once). Results are accounted by the bytes of
their tensors (masks and attention of both runs dominate: a 512-token SmolLM2 result is ~0.7 GB) and evicted least
recently used past the budget. A result larger than the whole budget is returned but not kept. Two sessions asking
for the same missing recipe at once compute it once.

The budget comes from ``DYNMASK_RESULT_BUDGET_MB`` (default 1024). Streamlit's ``maxCacheDataSize`` does not apply
here: it only bounds ``st.cache_data``, which the app does not use.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

DEFAULT_BUDGET_MB = 1024


def budget_from_env() -> int:
    """The budget in bytes from ``DYNMASK_RESULT_BUDGET_MB`` (a bad value falls back to the default)."""
    try:
        mb = float(os.environ.get("DYNMASK_RESULT_BUDGET_MB", DEFAULT_BUDGET_MB))
    except ValueError:
        mb = DEFAULT_BUDGET_MB
    return int(max(0.0, mb) * 2**20)


def nbytes(result: Any) -> int:
    """Bytes held by a result's tensors (attributes that are tensors, and the task outputs' probabilities)."""
    total = 0
    for value in vars(result).values():
        if hasattr(value, "element_size") and hasattr(value, "nelement"):
            total += value.element_size() * value.nelement()
        elif hasattr(value, "nbytes") and hasattr(value, "dtype"):  # numpy arrays (attributions)
            total += int(value.nbytes)
        elif hasattr(value, "__dataclass_fields__"):
            total += nbytes(value)
    return total


class ResultCache:
    """Least-recently-used results within ``budget`` bytes; safe to share between threads."""

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self._items: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[str, threading.Lock] = {}

    @property
    def used(self) -> int:
        """Bytes held now."""
        with self._lock:
            return sum(size for _, size in self._items.values())

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def get(self, key: str) -> Any | None:
        """The cached result of ``key`` (marked as recently used), or None."""
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def get_or_compute(self, key: str, compute: Callable[[], Any]) -> Any:
        """The result of ``key``, computed once by ``compute`` when missing (other askers wait for it)."""
        hit = self.get(key)
        if hit is not None:
            return hit
        with self._lock:
            gate = self._computing.setdefault(key, threading.Lock())
        with gate:
            hit = self.get(key)
            if hit is not None:
                return hit
            try:
                result = compute()
                self._put(key, result)
            finally:
                with self._lock:
                    if self._computing.get(key) is gate:  # a later computer's gate is not ours to drop
                        del self._computing[key]
        return result

    def _put(self, key: str, result: Any) -> None:
        size = nbytes(result)
        with self._lock:
            if size > self.budget:
                return
            self._items[key] = (result, size)
            self._items.move_to_end(key)
            used = sum(s for _, s in self._items.values())
            while used > self.budget:
                _, (_, freed) = self._items.popitem(last=False)
                used -= freed

    def clear(self) -> None:
        """Drops every result."""
        with self._lock:
            self._items.clear()
