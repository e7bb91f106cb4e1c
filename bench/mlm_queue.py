"""The MLM lab's training queue under several sessions at once ("forty students at once", issue 22 item 9).

Sessions are simulated by threads that drive the server's queue directly (:func:`dynmask_app.server.training.queue`,
the same singleton, computation slots and ``run_lab`` the page uses; no browser, no Streamlit session): each thread
asks for a training, then polls its status every 0.2 s as the page's fragment does every 2 s, recording the places
it was shown. The server is this process: its CPU seconds are ``time.process_time()`` (every thread of it).

(a) baseline: one session trains one config; (b) three sessions ask for the same config at once (computed once:
expected about 1x the baseline's CPU and wall); (c) three sessions ask at once for three seeds with
``parallel_runs=1`` (they queue: about 3x, each waiting session sees its place). Ratios are against (a) measured in
the same run; nothing is asserted. The config is the lab's default model with fewer steps (``--steps``, default 150
per recipe instead of 700) so the whole bench takes a few minutes on this repo's 2-core CPU; the finished results are
forgotten between the scenarios. The machine is shared: the load average is printed.

    .venv/bin/python bench/mlm_queue.py [--steps 150]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["DYNMASK_PARALLEL_RUNS"] = "1"  # one computation slot: trainings queue
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import logging  # noqa: E402

logging.getLogger("streamlit").setLevel(logging.ERROR)  # "no runtime" warnings: there is no server here

from dynmask_app.server import resources, training  # noqa: E402
from dynmask_core.lessons import mlm  # noqa: E402

POLL_S = 0.2


def session(name: str, config: mlm.LabConfig, out: dict, start: threading.Barrier) -> None:
    """One simulated session: asks, then polls until its training has ended."""
    queue = training.queue()
    start.wait()
    t0 = time.perf_counter()
    job = queue.request(config, name)
    places: list[str] = []
    while True:
        status = queue.status(job)
        if status.state == training.QUEUED:
            seen = f"{status.place}/{status.of}"
            if not places or places[-1] != seen:
                places.append(seen)
        if status.state not in training.ACTIVE:
            break
        time.sleep(POLL_S)
    out[name] = {"job": job, "state": status.state, "wall": time.perf_counter() - t0, "places": places,
                 "error": status.error}


def scenario(configs: dict[str, mlm.LabConfig]) -> dict:
    """Runs the sessions at once on a fresh queue; wall and process CPU seconds, and what each session saw."""
    training.queue.clear()
    queue = training.queue()
    before = queue.trained
    out: dict = {}
    start = threading.Barrier(len(configs) + 1)
    threads = [threading.Thread(target=session, args=(name, config, out, start)) for name, config in configs.items()]
    for thread in threads:
        thread.start()
    start.wait()
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for thread in threads:
        thread.join()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    for name, seen in out.items():
        if seen["state"] != training.DONE:
            raise RuntimeError(f"{name}: {seen['state']} {seen['error']}")
    return {"wall": wall, "cpu": cpu, "trained": queue.trained - before, "sessions": out}


def report(label: str, run: dict, base: dict | None) -> None:
    ratio = "" if base is None else (f"  wall {run['wall'] / base['wall']:.2f}x, CPU {run['cpu'] / base['cpu']:.2f}x "
                                     "of (a)")
    print(f"{label}: wall {run['wall']:.1f} s, server CPU {run['cpu']:.1f} s, trainings run {run['trained']}{ratio}")
    for name, seen in sorted(run["sessions"].items()):
        places = ", ".join(seen["places"]) or "none (already running at its first look)"
        print(f"    {name}: job {seen['job']}, done after {seen['wall']:.1f} s; places shown while queued: {places}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=150, help="optimizer steps per recipe (the lab's default: 700)")
    args = parser.parse_args()
    config = replace(mlm.LabConfig(), steps=args.steps)
    print(f"config: the lab's default with steps={config.steps} per recipe; parallel_runs="
          f"{resources.policy().parallel_runs}, training workers {training.queue().workers}; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")
    t0 = time.perf_counter()
    mlm.run_lab(replace(config, steps=2, eval_every=1))  # warm-up: tokenizer, corpus (cached), torch
    print(f"warm-up (tokenizer, corpus, 2 steps): {time.perf_counter() - t0:.1f} s")

    a = scenario({"a1": config})
    report("(a) one session, one training", a, None)
    b = scenario({f"b{i}": config for i in range(1, 4)})
    report("(b) three sessions, the same settings at once", b, a)
    c = scenario({f"c{i}": replace(config, seed=i) for i in range(1, 4)})
    report("(c) three sessions, three seeds at once (parallel_runs=1)", c, a)
    print(f"load average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
