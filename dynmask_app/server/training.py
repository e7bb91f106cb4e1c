"""The server's one training queue: the MLM lab's "Train both", computed once per setting, in the computation slots.

A training of the MLM lab takes minutes (the default config: about 3 on a 2-core CPU). Run in each session's own
script thread, three students pressing "Train both" went at a third of the speed each, forty took hours, and every
Run on the other pages waited behind them. Here instead:

* **One queue per server** (:func:`queue`, an ``st.cache_resource`` singleton). A request names a
  :class:`~dynmask_core.lessons.mlm.LabConfig` (seed included); its key is the config as canonical JSON
  (:func:`job_key`). Identical settings asked for by many sessions are ONE job: it is computed once and every
  session that waits for it sees the same place, progress and result. A finished result is kept (the ``keep`` most
  recent, least recently used out), so a later press of the same settings returns it at once.
* **Background workers in the computation slots.** Each job is trained by a worker thread (never a session's
  script thread), first in, first out, inside :func:`dynmask_app.server.resources.computing`: trainings and the
  Runs of the other pages share the same ``parallel_runs`` slots. At most ``max(1, parallel_runs - 1)`` trainings
  run at once, so with two or more slots a Run of another page always finds one within one computation; after each
  job a worker pauses a moment before its next, so a Run already waiting for the slot gets it first.
* **Places.** :meth:`TrainingQueue.status` says where a job stands: its place among the trainings not yet finished
  (running ones first, then the waiting ones in the order they were asked for: "place 2 of 3"), its progress and
  live curves while it trains, its result or its error (one line, the same for every waiting session) once done.
* **Leaving and cancelling.** A session that leaves does not stop a job: a running job finishes (and is kept for a
  later press); a waiting job is dropped when its turn comes only if no session that asked for it is still open
  (``alive``). :meth:`TrainingQueue.cancel` withdraws one session's wait; the job itself is cancelled only when no
  other open session still waits for it (a running one stops at its next progress report).

The core (:mod:`dynmask_core.lessons.mlm`) stays Streamlit-free: the queue calls ``run_lab`` with a ``progress``
callback that raises to cancel and an ``observe`` callback that records the live curves.
"""

from __future__ import annotations

import itertools
import json
import logging
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import streamlit as st

from dynmask_app.server import resources
from dynmask_core.lessons import mlm

log = logging.getLogger(__name__)

#: Finished results the server keeps (the default config's is about 0.1 MB of numbers; 8 is under 1 MB).
KEEP_RESULTS = 8
#: Ended jobs (done, failed, cancelled) whose outcome a waiting session can still read.
KEEP_ENDED = 64
#: Seconds a worker pauses between two jobs, so a Run already waiting for the slot it released takes it first.
PAUSE_S = 0.05

QUEUED, RUNNING, DONE, FAILED, CANCELLED = "queued", "running", "done", "failed", "cancelled"
ACTIVE = (QUEUED, RUNNING)

Train = Callable[..., "mlm.LabResult"]
"""``train(config, progress=..., observe=...)``: :func:`dynmask_core.lessons.mlm.run_lab`'s signature."""


def job_key(config: mlm.LabConfig) -> str:
    """What identifies a training: the whole config (seed included) as canonical JSON."""
    return "mlm-lab:" + json.dumps(config.to_dict(), sort_keys=True, separators=(",", ":"))


class Cancelled(Exception):
    """Raised from a job's progress callback once the job is cancelled: it stops the training."""


@dataclass(eq=False)
class Job:
    """One training, shared by every session that asked for its settings (fields guarded by the queue's lock)."""

    id: int
    key: str
    config: mlm.LabConfig
    state: str = QUEUED
    fraction: float = 0.0
    text: str = ""
    live: dict[str, tuple[list, list]] = field(default_factory=dict)
    live_version: int = 0
    result: mlm.LabResult | None = None
    error: str | None = None
    unexpected: bool = False
    waiters: set[str] = field(default_factory=set)
    cancel: threading.Event = field(default_factory=threading.Event)
    asked: float = field(default_factory=time.monotonic)
    started: float | None = None
    ended: float | None = None


@dataclass(frozen=True)
class Status:
    """A snapshot of a job for one session.

    Attributes:
        job: The job's id (what a session keeps).
        key: :func:`job_key` of its settings.
        state: ``queued``, ``running``, ``done``, ``failed`` or ``cancelled``.
        place: 1-based place among the trainings not yet finished (running first, then waiting, in the order asked
            for); 0 once ended.
        of: How many trainings are not yet finished; 0 once ended.
        fraction: Progress in [0, 1].
        text: The core's progress line.
        live: ``{recipe: (step records, evaluation records)}`` so far (shared lists: never mutate).
        live_version: Grows with each new evaluation (to key a figure of ``live``).
        result: The result once done (shared, read-only).
        error: One line once failed: the core's own message, or ``type: message`` of an unexpected error
            (``unexpected``).
        waiters: Sessions waiting for it now.
    """

    job: int
    key: str
    state: str
    place: int
    of: int
    fraction: float
    text: str
    live: dict[str, tuple[list, list]]
    live_version: int
    result: mlm.LabResult | None
    error: str | None
    unexpected: bool
    waiters: int


class TrainingQueue:
    """A server's MLM lab trainings: one job per setting, run first in, first out by background workers, each in a
    computation slot. Safe to share between threads (every session's script thread calls it).

    Args:
        train: The training, called as ``train(config, progress=..., observe=...)`` in a worker thread.
        slot: A context manager factory; a job trains inside it (the app: :func:`resources.computing`).
        workers: Trainings at once (at most).
        keep: Finished results kept for a later press (least recently used out).
        alive: ``alive(waiter)``: whether the session that asked is still open (default: always).
        pause: Seconds a worker waits between two jobs (see :data:`PAUSE_S`).
    """

    def __init__(self, train: Train, *, slot: Callable[[], AbstractContextManager], workers: int = 1,
                 keep: int = KEEP_RESULTS, alive: Callable[[str], bool] | None = None, pause: float = PAUSE_S) -> None:
        if workers < 1 or keep < 1:
            raise ValueError("a training queue needs at least one worker and one kept result")
        self._train = train
        self._slot = slot
        self.workers = workers
        self.keep = keep
        self._alive = alive or (lambda waiter: True)
        self._pause = pause
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._active: dict[str, Job] = {}  # key -> its queued or running job
        self._waiting: deque[Job] = deque()  # queued jobs, first asked first
        self._done: OrderedDict[str, Job] = OrderedDict()  # key -> finished job with a result (LRU)
        self._ended: OrderedDict[int, Job] = OrderedDict()  # id -> any ended job, for its waiters to read
        self._jobs: dict[int, Job] = {}  # id -> queued or running job
        self._busy = 0  # worker threads alive
        self.trained = 0  # trainings started (a test's window: identical settings train once)

    # ---------------------------------------------------------------------------------------------- sessions

    def request(self, config: mlm.LabConfig, waiter: str) -> int:
        """Asks for a training of ``config`` on behalf of the session ``waiter``; returns the job's id.

        Joins the job already queued or running for the same settings, returns a finished one at once, or queues a
        new job (a failed or cancelled one is tried again).

        Raises:
            ValueError: A config :meth:`LabConfig.validate` refuses.
        """
        config = config.validate()
        key = job_key(config)
        with self._lock:
            done = self._done.get(key)
            if done is not None:
                self._done.move_to_end(key)
                self._remember(done)
                return done.id
            job = self._active.get(key)
            if job is None or job.cancel.is_set():  # a job being cancelled is not joined: a new one is queued
                job = Job(next(self._ids), key, config)
                self._active[key] = job
                self._jobs[job.id] = job
                self._waiting.append(job)
                self._start_worker()
            job.waiters.add(waiter)
            self._lock.notify_all()
            return job.id

    def status(self, job_id: int) -> Status | None:
        """Where the job stands now, or None when the server no longer knows it (ended long ago)."""
        with self._lock:
            job = self._jobs.get(job_id) or self._ended.get(job_id)
            if job is None:
                return None
            place, of = self._place(job)
            return Status(job.id, job.key, job.state, place, of, job.fraction, job.text, dict(job.live),
                          job.live_version, job.result, job.error, job.unexpected, len(job.waiters))

    def cancel(self, job_id: int, waiter: str) -> bool:
        """Withdraws ``waiter``'s wait for the job; cancels the job when no other open session waits for it.

        Returns:
            Whether the job itself was cancelled (a waiting one at once, a running one at its next progress report).
        """
        with self._lock:
            job = self._jobs.get(job_id)
            if job is None:
                return False
            job.waiters.discard(waiter)
            if any(self._alive(w) for w in job.waiters):
                return False
            job.cancel.set()
            if job.state == QUEUED and job in self._waiting:
                self._waiting.remove(job)
                self._end(job, CANCELLED)
            self._lock.notify_all()
            return True

    def place(self, job_id: int) -> tuple[int, int]:
        """``(place, of)`` of a job (see :class:`Status`); ``(0, 0)`` once it has ended or is unknown."""
        status = self.status(job_id)
        return (status.place, status.of) if status is not None else (0, 0)

    def wait(self, job_id: int, timeout: float | None = None) -> Status | None:
        """Blocks until the job has ended (or ``timeout`` seconds); its status then. Tests and the bench use it."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while True:
                job = self._jobs.get(job_id)
                if job is None:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._lock.wait(left)
        return self.status(job_id)

    def pending(self) -> list[Status]:
        """The trainings not yet finished, in their order (running first)."""
        with self._lock:
            ids = [job.id for job in self._order()]
        return [s for s in (self.status(i) for i in ids) if s is not None]

    # ---------------------------------------------------------------------------------------------- inside

    def _order(self) -> list[Job]:
        """Running jobs, then those a worker took that wait for a computation slot, then the queue, each in the order
        asked for (lock held)."""
        taken = sorted((j for j in self._jobs.values() if j.state == RUNNING), key=lambda j: j.id)
        taken += sorted((j for j in self._jobs.values() if j.state == QUEUED and j not in self._waiting),
                        key=lambda j: j.id)
        return taken + list(self._waiting)

    def _place(self, job: Job) -> tuple[int, int]:
        if job.state not in ACTIVE:
            return 0, 0
        order = self._order()
        return (order.index(job) + 1 if job in order else len(order)), len(order)

    def _remember(self, job: Job) -> None:
        """Keeps an ended job readable by id (lock held)."""
        self._ended[job.id] = job
        self._ended.move_to_end(job.id)
        while len(self._ended) > KEEP_ENDED:
            self._ended.popitem(last=False)

    def _end(self, job: Job, state: str) -> None:
        """Moves a job out of the active ones (lock held)."""
        job.state = state
        job.ended = time.monotonic()
        self._jobs.pop(job.id, None)
        if self._active.get(job.key) is job:
            del self._active[job.key]
        if state == DONE:
            self._done[job.key] = job
            self._done.move_to_end(job.key)
            while len(self._done) > self.keep:
                self._done.popitem(last=False)
        self._remember(job)
        self._lock.notify_all()

    def _start_worker(self) -> None:
        """A worker for the new job, unless ``workers`` are already busy (lock held)."""
        if self._busy >= self.workers:
            return
        self._busy += 1
        threading.Thread(target=self._work, name=f"mlm-training-{self._busy}", daemon=True).start()

    def _next(self) -> Job | None:
        """The next job someone still waits for (lock held); jobs nobody open waits for any more are dropped."""
        while self._waiting:
            job = self._waiting.popleft()
            if job.cancel.is_set():
                self._end(job, CANCELLED)
                continue
            if not any(self._alive(w) for w in job.waiters):
                log.info("MLM lab training %s dropped: every session that asked for it has left", job.id)
                self._end(job, CANCELLED)
                continue
            return job
        return None

    def _work(self) -> None:
        """A worker: trains the waiting jobs one after the other; ends when none is left."""
        while True:
            with self._lock:
                job = self._next()
                if job is None:
                    self._busy -= 1
                    return
            self._run(job)
            time.sleep(self._pause)

    def _run(self, job: Job) -> None:
        def progress(fraction: float, text: str) -> None:
            if job.cancel.is_set():
                raise Cancelled
            with self._lock:
                job.fraction, job.text = min(1.0, max(0.0, float(fraction))), str(text)
                self._lock.notify_all()

        def observe(recipe: str, steps: list, evals: list) -> None:
            if job.cancel.is_set():
                raise Cancelled
            with self._lock:
                job.live = {**job.live, recipe: (list(steps), list(evals))}
                job.live_version += 1

        state, result, error, unexpected = FAILED, None, None, False
        try:
            with self._slot():  # waits its turn among the Runs of every page
                with self._lock:
                    if job.cancel.is_set():
                        raise Cancelled
                    job.state, job.started = RUNNING, time.monotonic()
                    self.trained += 1
                    self._lock.notify_all()
                result = self._train(job.config, progress=progress, observe=observe)
            state = DONE
        except Cancelled:
            state = CANCELLED
        except ValueError as err:  # the core's readable message
            error = str(err)
        except Exception as err:  # noqa: BLE001 - one line for every waiting session, the traceback in the log
            log.exception("MLM lab training failed")
            error, unexpected = f"{type(err).__name__}: {err}"[:300], True
        finally:
            with self._lock:
                if job.cancel.is_set() and state != DONE:
                    state = CANCELLED
                job.result, job.error, job.unexpected = result, error, unexpected
                self._end(job, state)


def _run_lab(config: mlm.LabConfig, *, progress=None, observe=None) -> mlm.LabResult:
    """The lab's training (looked up at each call: tests replace ``mlm.run_lab``)."""
    return mlm.run_lab(config, progress=progress, observe=observe)


def session_alive(session_id: str) -> bool:
    """Whether the Streamlit session is still open (always, where there is no server: AppTest, the bench)."""
    from streamlit.runtime import Runtime

    if not Runtime.exists():
        return True
    return Runtime.instance().is_active_session(session_id)


def session_id() -> str:
    """This script run's session (a waiter of the queue)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else "no-session"


@st.cache_resource(show_spinner=False)
def queue() -> TrainingQueue:
    """The server's one training queue, in the server's computation slots."""
    return TrainingQueue(_run_lab, slot=resources.computing, workers=max(1, resources.policy().parallel_runs - 1),
                         alive=session_alive)


def describe(status: Status) -> dict[str, Any]:
    """A status as plain numbers (the bench prints it)."""
    return {"job": status.job, "state": status.state, "place": status.place, "of": status.of,
            "fraction": round(status.fraction, 3), "waiters": status.waiters}
