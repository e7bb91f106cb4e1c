"""Attribution overhead: integrated gradients through the dynmask engine vs plain Captum on the plain model.

Ours: IG (50 steps, Gauss-Legendre) on MiniLM's input embeddings, the model's attention being the dynmask function
(the mask plan ``none``), through :func:`dynmask_core.attribution.methods.attribute_side` -- the code path the page
and ``python -m dynmask_core attribute`` take, one side. Plain: Captum's ``LayerIntegratedGradients`` on the embedding
layer of the same weights with transformers' own eager attention, same target (the probability of "positive"), same
steps, same batch. Both in this process, interleaved; prints the ratio of medians and the absolute CPU time.

Target (issue: attribution overlays): ours <= 1.2x plain Captum, MiniLM, 32 tokens, 50 steps.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/attribution.py [--tokens 32] [--steps 50] [--repeats 15]
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from captum.attr import LayerIntegratedGradients  # noqa: E402

from bench.engine_overhead import sentence_of  # noqa: E402
from dynmask_core.attribution.methods import attribute_side  # noqa: E402
from dynmask_core.attribution.targets import resolve_target  # noqa: E402
from dynmask_core.masks import MaskPlan  # noqa: E402
from dynmask_core.modalities.text import baseline_token_id  # noqa: E402
from dynmask_core.models import load  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()

    loaded = load("minilm", device="cpu")
    x = sentence_of(loaded, args.tokens)
    target = resolve_target(loaded, "positive", loaded(x.inputs))
    plans = {"none": MaskPlan.of("none").resolved(),
             "sliding_window(radius=2)": MaskPlan.of("sliding_window", {"radius": 2}).resolved()}

    plain = copy.deepcopy(loaded.model)
    plain.set_attn_implementation("eager")
    ids, mask = x.inputs["input_ids"], x.inputs["attention_mask"]
    tok = loaded.tokenizer
    special = torch.isin(ids, torch.tensor(tok.all_special_ids))
    base_ids = torch.where(special, ids, torch.full_like(ids, baseline_token_id(tok)))

    def positive(input_ids):
        m = mask.expand(input_ids.shape[0], -1)
        hidden = plain(input_ids=input_ids, attention_mask=m).last_hidden_state
        return torch.softmax(loaded.head(hidden, m), dim=-1)[:, target.index]

    lig = LayerIntegratedGradients(positive, plain.get_input_embeddings())

    def plain_call():
        lig.attribute(ids, baselines=base_ids, n_steps=args.steps, return_convergence_delta=True)

    calls = {"plain Captum (LayerIntegratedGradients, eager attention)": plain_call}
    for name, plan in plans.items():
        calls[f"dynmask IG, mask {name}"] = (
            lambda p=plan: attribute_side(loaded, x, p, target, "ig", args.steps))

    for fn in calls.values():  # warm up
        fn()
    wall: dict[str, list[float]] = {k: [] for k in calls}
    cpu: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.repeats):
        for name, fn in calls.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            wall[name].append(time.perf_counter() - w)
            cpu[name].append(time.process_time() - c)
    base = statistics.median(wall[next(iter(calls))])
    print(f"IG, {args.steps} steps, MiniLM, {args.tokens} tokens, {args.repeats} interleaved repeats, "
          f"torch threads {torch.get_num_threads()}")
    for name in calls:
        mw, mc = statistics.median(wall[name]), statistics.median(cpu[name])
        print(f"  {name:<58} wall {mw * 1000:8.1f} ms  CPU {mc * 1000:8.1f} ms  ratio {mw / base:5.2f}x")
    ours = statistics.median(wall["dynmask IG, mask none"]) / base
    print(f"target: dynmask IG (mask none) <= 1.20x plain Captum: {ours:.2f}x -> {'met' if ours <= 1.2 else 'MISSED'}")


if __name__ == "__main__":
    main()
