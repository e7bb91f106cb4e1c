"""The server-wide singletons, owned here and nowhere else: the serving policy, the model cache, the result cache
and the computation slots. Every session of a server shares them (``st.cache_resource``: made once per process).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
import torch

from dynmask_app.server.result_cache import ByteLRU, model_nbytes
from dynmask_app.server.serving import ServingPolicy, load_policy

#: Torch threads per computation (``DYNMASK_TORCH_THREADS``; unset: torch's default, the number of cores). One
#: thread per computation stops the OpenMP workers of parallel sessions spinning against each other on a small
#: server (see bench/app_latency.py), but its numbers then differ from a run with more threads in the 7th digit;
#: unset, the app's numbers equal the command line's bit for bit.
TORCH_THREADS = int(os.environ.get("DYNMASK_TORCH_THREADS", "0") or 0)


@st.cache_resource(show_spinner=False)
def policy() -> ServingPolicy:
    """This server's serving policy, read once at start (``serving.toml`` and ``DYNMASK_*`` variables)."""
    return load_policy()


@st.cache_resource(show_spinner=False)
def model_cache() -> ByteLRU:
    """The server's loaded models, least recently used out past ``model_budget_mb`` (the newest always stays)."""
    return ByteLRU(policy().model_budget, sizeof=model_nbytes, keep_newest=True)


@st.cache_resource(show_spinner=False)
def result_cache() -> ByteLRU:
    """The server's one result cache, shared by every session, bounded by ``result_budget_mb``."""
    return ByteLRU(policy().result_budget)


@st.cache_resource(show_spinner=False)
def slots() -> threading.BoundedSemaphore:
    """The ``parallel_runs`` computation slots."""
    return threading.BoundedSemaphore(policy().parallel_runs)


@contextmanager
def computing(size: int = 0) -> Iterator[None]:
    """Room for ``size`` bytes in the result budget, then one of the ``parallel_runs`` computation slots (each waits
    its turn; in this order, so a thread holding a slot never waits for memory and slots always free up)."""
    with result_cache().room_for(size), slots():
        if TORCH_THREADS > 0 and torch.get_num_threads() != TORCH_THREADS:
            torch.set_num_threads(TORCH_THREADS)  # Streamlit runs each script in its own thread
        yield
