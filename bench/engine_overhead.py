"""Engine overhead: a dynmask forward with full capture vs transformers' own eager forward with
``output_attentions=True``, same model, same input, same process, interleaved. Prints ratios of medians.

Target (issue: the masked-attention core): ``none`` with full capture <= 1.10x eager on MiniLM at 32 tokens.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/engine_overhead.py [--tokens 32] [--repeats 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from transformers import BertModel  # noqa: E402

from dynmask_core.engine import MaskPlan, forward, run  # noqa: E402
from dynmask_core.modalities import encode_text  # noqa: E402
from dynmask_core.models import load  # noqa: E402


def sentence_of(loaded, n_tokens: int):
    words = ("the quick brown fox jumps over the lazy dog while students watch attention masks change " * 20).split()
    text_input = encode_text(loaded, " ".join(words), max_tokens=n_tokens)
    assert len(text_input.tokens) == n_tokens
    return text_input


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=200)
    args = parser.parse_args()

    loaded = load("minilm", device="cpu")
    eager = BertModel.from_pretrained(loaded.model.config._name_or_path, attn_implementation="eager").eval()
    x = sentence_of(loaded, args.tokens)
    plans = {
        "none": MaskPlan.of("none").resolved(),
        "topk(k=4)": MaskPlan.of("topk", {"k": 4}).resolved(),
        "sliding_window(radius=2)": MaskPlan.of("sliding_window", {"radius": 2}).resolved(),
    }

    def eager_call():
        with torch.inference_mode():
            eager(**x.inputs, output_attentions=True)

    calls = {"eager (transformers, output_attentions)": eager_call}
    for name, plan in plans.items():
        calls[f"dynmask {name}, full capture"] = (lambda p=plan: forward(loaded.model, x.inputs, p, capture=True))
    calls["dynmask none, no capture"] = lambda: forward(loaded.model, x.inputs, plans["none"], capture=False)

    for fn in calls.values():  # warm up
        for _ in range(10):
            fn()
    times: dict[str, list[float]] = {k: [] for k in calls}
    for _ in range(args.repeats):  # interleaved: drift and noise hit every variant alike
        for name, fn in calls.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)

    base = statistics.median(times["eager (transformers, output_attentions)"])
    print(f"MiniLM-L6, {args.tokens} tokens, {args.repeats} interleaved repeats, {torch.get_num_threads()} threads")
    print(f"{'variant':<46} {'median ms':>10} {'ratio':>7}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<46} {med * 1e3:>10.2f} {med / base:>6.2f}x")
    t0 = time.perf_counter()
    for _ in range(20):
        run(loaded, x, plans["none"])
    full = (time.perf_counter() - t0) / 20
    print(f"{'full run() (baseline + masked + metrics)':<46} {full * 1e3:>10.2f} {full / base:>6.2f}x")
    ratio = statistics.median(times["dynmask none, full capture"]) / base
    print(f"RESULT none-with-capture / eager = {ratio:.3f}x (target <= 1.10x): {'MET' if ratio <= 1.10 else 'NOT MET'}")


if __name__ == "__main__":
    main()
