"""One conversion used everywhere arrays leave torch: tensors (any device), arrays or nested lists -> NumPy."""

from __future__ import annotations

from typing import Any

import numpy as np


def as_array(x: Any, dtype: Any = None) -> np.ndarray:
    """A NumPy array from a tensor (moved to the CPU, detached), array or nested list."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.asarray(x)
    return arr.astype(dtype, copy=False) if dtype is not None else arr
