"""The MLM lab's training queue (:mod:`dynmask_app.server.training`) and its bundled run: identical settings train
once, distinct settings take turns in the computation slots with their place shown, an error reaches every waiting
session, Cancel stops a job only when nobody else waits for it, and the page opens on the bundled run."""

from __future__ import annotations

import json
import threading
import time
from contextlib import contextmanager
from dataclasses import replace

import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from dynmask_app.server import resources, training
from dynmask_app.views import mlm as mlm_view
from dynmask_core.lessons import mlm
from tests import ROOT
from tests.app.pages import ok

MLM = "pages/5_MLM_lab.py"
TINY = mlm.LabConfig(steps=4, batch_size=8, hidden_size=32, layers=1, heads=2, intermediate_size=64, warmup_steps=1,
                     eval_every=2)


class FakeLab:
    """A stand-in for ``run_lab``: counts its calls and how many run at once, reports progress (so a cancelled job
    stops), and ends when its seed's gate opens (or raises what ``fail`` names for that seed)."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.running = 0
        self.most = 0
        self.gates: dict[int, threading.Event] = {}
        self.fail: dict[int, Exception] = {}
        self.started = threading.Event()
        self._lock = threading.Lock()

    def gate(self, seed: int) -> threading.Event:
        with self._lock:
            return self.gates.setdefault(seed, threading.Event())

    def __call__(self, config, *, progress=None, observe=None, **kwargs):
        with self._lock:
            self.calls.append(config.seed)
            self.running += 1
            self.most = max(self.most, self.running)
        self.started.set()
        try:
            if config.seed in self.fail:
                raise self.fail[config.seed]
            gate = self.gate(config.seed)
            while not gate.wait(0.01):
                progress(0.5, f"static: step 2/4 (seed {config.seed})")
            observe("static", [{"step": 1, "train_loss": 1.0}], [{"step": 0, "heldout_loss": 2.0,
                                                                   "masked_accuracy": 0.1}])
            return ("result", config.seed)
        finally:
            with self._lock:
                self.running -= 1


def slots(n: int):
    """``n`` computation slots, as :func:`resources.computing` hands them out."""
    semaphore = threading.BoundedSemaphore(n)

    @contextmanager
    def slot():
        with semaphore:
            yield

    return slot


def until(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


@pytest.fixture
def fake() -> FakeLab:
    lab = FakeLab()
    yield lab
    for seed in list(lab.gates) + list(range(10)):
        lab.gate(seed).set()  # no worker is left waiting


def test_identical_settings_from_two_sessions_train_once(fake) -> None:
    queue = training.TrainingQueue(fake, slot=slots(2), workers=2)
    ids: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def session(name: str) -> None:
        barrier.wait()
        ids[name] = queue.request(TINY, name)

    threads = [threading.Thread(target=session, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert ids["a"] == ids["b"]  # one job for both
    until(lambda: queue.status(ids["a"]).state == training.RUNNING)
    status = queue.status(ids["a"])
    assert status.waiters == 2 and (status.place, status.of) == (1, 1)
    fake.gate(TINY.seed).set()
    a, b = queue.wait(ids["a"], 20), queue.wait(ids["b"], 20)
    assert a.state == b.state == training.DONE and a.result is b.result  # the same shared result
    assert fake.calls == [TINY.seed] and queue.trained == 1
    again = queue.request(TINY, "c")  # a later press: the kept result, at once
    assert queue.status(again).state == training.DONE and fake.calls == [TINY.seed]


def test_distinct_settings_queue_in_one_slot_and_show_their_place(fake) -> None:
    queue = training.TrainingQueue(fake, slot=slots(1), workers=1)
    first = queue.request(TINY, "a")
    until(lambda: queue.status(first).state == training.RUNNING)
    second = queue.request(replace(TINY, seed=1), "b")
    third = queue.request(replace(TINY, seed=2), "c")
    assert queue.place(first) == (1, 3) and queue.place(second) == (2, 3) and queue.place(third) == (3, 3)
    assert queue.status(second).state == training.QUEUED
    fake.gate(0).set()
    until(lambda: queue.status(second).state == training.RUNNING)
    assert queue.place(second) == (1, 2) and queue.place(third) == (2, 2)
    fake.gate(1).set()
    fake.gate(2).set()
    assert queue.wait(third, 20).state == training.DONE
    assert fake.calls == [0, 1, 2] and fake.most == 1  # one at a time, in the order asked


def test_the_app_queue_takes_the_servers_computation_slots(fake, monkeypatch) -> None:
    """The server's queue (parallel_runs=1): a training holds the one computation slot; a second setting waits at
    place 2; a Run of another page waits for the same slot."""
    monkeypatch.setenv("DYNMASK_PARALLEL_RUNS", "1")
    monkeypatch.setattr(mlm, "run_lab", fake)
    for cached in (resources.policy, resources.slots, training.queue):
        cached.clear()
    try:
        queue = training.queue()
        assert resources.policy().parallel_runs == 1 and queue.workers == 1
        first = queue.request(TINY, "a")
        until(lambda: queue.status(first).state == training.RUNNING)
        second = queue.request(replace(TINY, seed=1), "b")
        assert queue.status(second).state == training.QUEUED and queue.place(second) == (2, 2)
        assert not resources.slots().acquire(blocking=False)  # the training holds the only slot
        fake.gate(0).set()
        fake.gate(1).set()
        assert queue.wait(second, 20).state == training.DONE
        assert resources.slots().acquire(blocking=False)  # every slot is free again
        resources.slots().release()
    finally:
        for seed in range(3):
            fake.gate(seed).set()
        monkeypatch.undo()
        for cached in (resources.policy, resources.slots, training.queue):
            cached.clear()


@pytest.mark.parametrize("error, shown, unexpected", [(RuntimeError("boom"), "RuntimeError: boom", True),
                                                      (ValueError("no corpus here"), "no corpus here", False)])
def test_a_failed_job_tells_every_waiting_session_and_the_queue_goes_on(fake, error, shown, unexpected) -> None:
    queue = training.TrainingQueue(fake, slot=slots(1), workers=1)
    fake.fail[5] = error
    blocker = queue.request(TINY, "x")  # the failing job waits behind this one, with two sessions
    bad = queue.request(replace(TINY, seed=5), "a")
    assert queue.request(replace(TINY, seed=5), "b") == bad
    fake.gate(0).set()
    a, b = queue.wait(bad, 20), queue.status(bad)
    assert a.state == b.state == training.FAILED and a.error == b.error == shown and a.unexpected is unexpected
    assert queue.status(blocker).state == training.DONE
    after = queue.request(replace(TINY, seed=6), "c")  # the queue keeps working
    fake.gate(6).set()
    assert queue.wait(after, 20).state == training.DONE
    del fake.fail[5]
    retried = queue.request(replace(TINY, seed=5), "a")  # a failed setting is tried again on the next press
    assert retried != bad
    fake.gate(5).set()
    assert queue.wait(retried, 20).state == training.DONE


def test_cancel_by_one_of_two_waiters_leaves_the_job_running(fake) -> None:
    queue = training.TrainingQueue(fake, slot=slots(1), workers=1)
    job = queue.request(TINY, "a")
    queue.request(TINY, "b")
    until(lambda: queue.status(job).state == training.RUNNING)
    assert queue.cancel(job, "a") is False
    time.sleep(0.1)
    status = queue.status(job)
    assert status.state == training.RUNNING and status.waiters == 1
    assert queue.cancel(job, "b") is True  # the last one: the job stops at its next progress report
    assert queue.wait(job, 20).state == training.CANCELLED
    assert queue.request(TINY, "c") != job  # a new press starts anew


def test_a_waiting_job_is_cancelled_at_once_and_the_places_close_up(fake) -> None:
    queue = training.TrainingQueue(fake, slot=slots(1), workers=1)
    first = queue.request(TINY, "a")
    until(lambda: queue.status(first).state == training.RUNNING)
    second = queue.request(replace(TINY, seed=1), "b")
    third = queue.request(replace(TINY, seed=2), "c")
    assert queue.cancel(second, "b") is True and queue.status(second).state == training.CANCELLED
    assert queue.place(third) == (2, 2)
    fake.gate(0).set()
    fake.gate(2).set()
    assert queue.wait(third, 20).state == training.DONE and fake.calls == [0, 2]


def test_a_job_whose_sessions_all_left_is_dropped_but_a_running_one_finishes(fake) -> None:
    gone: set[str] = set()
    queue = training.TrainingQueue(fake, slot=slots(1), workers=1, alive=lambda w: w not in gone)
    first = queue.request(TINY, "a")
    until(lambda: queue.status(first).state == training.RUNNING)
    second = queue.request(replace(TINY, seed=1), "b")
    gone.update({"a", "b"})  # both tabs closed
    fake.gate(0).set()
    fake.gate(1).set()
    assert queue.wait(first, 20).state == training.DONE  # running when they left: finished and kept
    assert queue.wait(second, 20).state == training.CANCELLED and fake.calls == [0]


def test_a_real_tiny_training_through_the_queue() -> None:
    queue = training.TrainingQueue(training._run_lab, slot=slots(1), workers=1)
    job = queue.request(replace(TINY, seed=7), "a")
    status = queue.wait(job, 120)
    assert status.state == training.DONE, status.error
    assert isinstance(status.result, mlm.LabResult) and status.result.config.seed == 7
    assert set(status.live) == {"static", "dynamic"} and status.fraction == 1.0


# ------------------------------------------------------------------------------------------------ the bundled run


def test_the_bundled_run_is_the_labs_current_default() -> None:
    data = mlm_view.BUNDLED_RUN.read_bytes()
    assert len(data) < 300_000  # small: the default's 700 steps per recipe weigh about 0.1 MB
    run = mlm.parse_run(data, mlm_view.BUNDLED_RUN.name)
    assert run.config == mlm.LabConfig()  # every field: regenerate it (see views/mlm.py) when the default changes
    config = json.loads(data)["config"]
    assert {k: config[k] for k in mlm.LabConfig().to_dict()} == mlm.LabConfig().to_dict()
    assert run.device == "cpu" and run.seconds > 0


@pytest.fixture
def fresh_queue():
    """The server's training queue, new for the test (finished results of other tests are not kept)."""
    training.queue.clear()
    yield
    training.queue.clear()


def test_the_page_shows_the_bundled_run_without_pressing_anything(fresh_queue) -> None:
    at = AppTest.from_file(str(ROOT / MLM), default_timeout=180).run()
    ok(at)
    run = mlm.load_run(mlm_view.BUNDLED_RUN)
    frame = at.dataframe[0].value
    assert list(frame.iloc[:, 0]) == ["static", "dynamic"]
    assert frame.iloc[0, 2] == round(run.static.final["heldout_loss"], 3)
    label = next(m.value for m in at.markdown if "bundled run" in m.value)
    assert "this repo's 2-core CPU" in label and "seed 0" in label and "700 steps" in label
    assert f"{run.seconds:.0f} s" in label and mlm_view.BUNDLED_COMMAND in label
    assert not at.get("progress") and "mlm.cancel" not in [b.key for b in at.button]
    assert training.queue().trained == 0  # nothing was trained
    at.slider(key="mlm.steps").set_value(100).run()  # other settings: no run until Train both
    ok(at)
    assert not at.dataframe


def _session(sid: str, query: dict[str, str] | None = None) -> AppTest:
    at = AppTest.from_file(str(ROOT / MLM), default_timeout=180)
    at.session_state["test.sid"] = sid
    if query:
        at.query_params.update(query)
    return at.run()


def _until_trained(at: AppTest, timeout: float = 60) -> AppTest:
    deadline = time.monotonic() + timeout
    while "mlm.cancel" in [b.key for b in at.button]:
        assert time.monotonic() < deadline, "the training did not end"
        time.sleep(0.2)
        at.run()
    return at


def test_two_sessions_on_the_page_share_one_training_and_a_third_queues(fresh_queue, fake, monkeypatch) -> None:
    tiny = mlm.run_lab(TINY, device="cpu")
    fake_result = fake.__call__

    def run_lab(config, **kwargs):
        fake_result(config, **kwargs)
        return replace(tiny, config=config)

    monkeypatch.setattr(mlm, "run_lab", run_lab)
    monkeypatch.setattr(training, "session_id", lambda: st.session_state["test.sid"])  # AppTest: one id for all
    a, b = _session("a", {"steps": "50", "seed": "3"}), _session("b", {"steps": "50", "seed": "3"})
    c = _session("c", {"steps": "50", "seed": "4"})
    a.button(key="mlm.train").click().run()
    until(lambda: fake.started.is_set())
    b.button(key="mlm.train").click().run()
    c.button(key="mlm.train").click().run()
    for at in (a, b, c):
        ok(at)
    assert "mlm.cancel" in [x.key for x in c.button]
    assert c.get("progress")[0].proto.text == "Queued: place 2 of 2"
    a.run()
    assert any("2 sessions wait for this same training" in x.value for x in a.caption)
    c.button(key="mlm.cancel").click().run()  # c gives up: its job (nobody else's) is cancelled
    ok(c)
    assert "mlm.cancel" not in [x.key for x in c.button] and not c.dataframe
    fake.gate(3).set()
    for at in (a, b):
        _until_trained(at)
        ok(at)
        assert list(at.dataframe[0].value.iloc[:, 0]) == ["static", "dynamic"]
        assert any("**This run** (50 steps, seed 3" in m.value for m in at.markdown)
    assert fake.calls == [3]  # one training for a and b; c's was cancelled before it started
