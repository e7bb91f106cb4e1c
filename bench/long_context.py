"""Long inputs under static masks: one SmolLM2-shaped attention layer (9 heads, head dim 64, batch 1), per path.

An attention-only microbenchmark of ONE layer (not the whole model): random float32 queries, keys and values of
SmolLM2-135M's shape, the decoder's causal mask ANDed with ``sliding_window``, ``bigbird`` and ``strided`` at their
registry defaults, as the model would run them. Paths (dynmask_core/sparse_attention.py):

* ``eager``: the eager path with a dense bool mask (full (H, Q, K) float32 scores and weights);
* ``sdpa``: torch SDPA with the dense bool mask (the baseline of every ratio);
* ``flex``: ``torch.compile(flex_attention)`` with a BlockMask built from the tile layout; a mask_mod that does
  not compile is reported as such, and eager flex (full scores) runs instead where it fits;
* ``blockwise``: the exact eager path one query block (128) at a time over the tiles with an allowed entry.

Each length runs in a fresh child process. Per path it reports the time to build its mask input (dense mask,
tile layout, BlockMask: made once per forward and shared by the 30 layers of the model, so kept apart), the
median time of the attention call, and the peak memory of each: the growth of the process's resident set
(VmHWM, reset through /proc/self/clear_refs before each call, minus VmRSS before it), with glibc's mmap threshold
pinned (``MALLOC_MMAP_THRESHOLD_``) so that freed large blocks go back to the system between calls. Flex's first
call (compiling) is timed apart and excluded. Paths whose estimated peak passes ``--limit-gb`` (eager at 8k needs
~3 x 9 x 8192² x 4 B = 7.2 GB) are skipped, and the output says so.

One intra-op thread by default (``--threads``): this machine is shared, and with torch's default of 2 threads on 2
busy cores every small op waits for the other thread (measured: the tile layout of a 1000-token window took 20 ms
with 1 thread and 90-970 ms with 2, load average ~4). The big dense calls gain from 2 threads on an idle machine;
ratios are only comparable at the same thread count.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/long_context.py [--quick] [--lengths 512,1024] [--threads 1]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

HEADS, HEAD_DIM = 9, 64
MASKS = ("sliding_window", "bigbird", "strided")
DEFAULT_LENGTHS = (512, 1024, 2048, 4096, 8192)
QUICK_LENGTHS = (512, 1024)
PATHS = ("eager", "sdpa", "flex", "blockwise")


# ----------------------------------------------------------------------------------------------------------------
# Child: one length, every mask and path
# ----------------------------------------------------------------------------------------------------------------


def _status() -> dict[str, int]:
    out = {}
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def measure(fn):
    """(result, seconds, peak bytes above the resident set before the call)."""
    gc.collect()
    base = _status()["VmRSS"]
    with open("/proc/self/clear_refs", "w") as f:  # resets VmHWM to the current resident set
        f.write("5")
    start = time.perf_counter()
    result = fn()
    seconds = time.perf_counter() - start
    return result, seconds, max(0, _status()["VmHWM"] - base)


def child(length: int, masks: list[str], repeats: int, block: int, limit: float, paths: list[str],
          flex_failed: dict[str, str]) -> None:
    import torch

    from dynmask_core import sparse_attention as sa
    from dynmask_core.masks import MaskContext, get_strategy

    torch.manual_seed(0)
    query, key, value = (torch.randn(1, HEADS, length, HEAD_DIM) for _ in range(3))

    def emit(**row):
        print(json.dumps({"length": length, **row}), flush=True)

    for strategy_id in masks:
        entry = get_strategy(strategy_id)
        ctx = MaskContext(q_len=length, k_len=length, n_heads=HEADS)
        mask = [sa.causal_mod(), entry.mask_mod(entry.resolve({}), ctx)]
        one_mask(strategy_id, mask, query, key, value, repeats, block, limit, paths, emit, flex_failed)


def one_mask(strategy_id, mask, query, key, value, repeats, block, limit, paths, emit, flex_failed) -> None:
    """Every path on one mask (the causal mask AND the strategy's), emitting one row per path."""
    from dynmask_core import sparse_attention as sa
    from dynmask_core.masks import dense

    length = query.shape[2]
    scale = HEAD_DIM**-0.5
    scores_bytes = HEADS * length * length * 4
    mod = sa.as_mask_mod(mask)
    layout, layout_s, layout_peak = measure(lambda: sa.block_layout(mask, length, length, HEADS, block))
    base = {"mask": strategy_id, "density": layout.density, "tiles": layout.tile_density}
    reference = None

    def run(path, call, build_s, build_peak, **extra):
        nonlocal reference
        out, _, peak = measure(call)
        times = [measure(call)[1] for _ in range(repeats)]
        err = None if reference is None else float((out - reference).abs().max())
        if path == "sdpa":
            reference = out
        emit(**base, path=path, build_s=build_s, build_peak=build_peak, seconds=statistics.median(times),
             repeats=repeats, peak=peak, err=err, **extra)

    if "sdpa" in paths or "eager" in paths:
        allowed, dense_s, dense_peak = measure(lambda: dense(mod, length, length, HEADS).unsqueeze(0))
        if "sdpa" in paths:
            run("sdpa", lambda: sa.sdpa_attention(query, key, value, allowed, scale), dense_s, dense_peak)
        if "eager" in paths:
            if 3 * scores_bytes > limit:
                emit(**base, path="eager", skipped=f"needs ~{3 * scores_bytes / 2**30:.1f} GB (3 x (H, Q, K) "
                                                    f"float32) > --limit-gb")
            else:
                run("eager", lambda: sa.eager_attention(query, key, value, allowed, scale), dense_s, dense_peak)
        del allowed
    if "flex" in paths:
        block_mask, bm_s, bm_peak = measure(lambda: sa.flex_block_mask(mask, length, length, HEADS, block))

        def flex_call(compiled=True):
            return sa.flex_attention(query, key, value, mask, scale, block_mask=block_mask, compiled=compiled,
                                     fallback=False)

        try:
            if strategy_id in flex_failed:
                raise RuntimeError(flex_failed[strategy_id])
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                _, compile_s, _ = measure(flex_call)
        except Exception as exc:  # noqa: BLE001  (the mask_mod does not compile: report, try eager flex)
            why = str(exc) if strategy_id in flex_failed else f"compile failed: {sa.error_line(exc)[:100]}"
            if 3 * scores_bytes > limit:
                emit(**base, path="flex", skipped=f"{why}; eager flex needs ~{3 * scores_bytes / 2**30:.1f} GB",
                     flex_failed=why)
            else:
                run("flex (eager)", lambda: flex_call(False), bm_s, bm_peak, note=why, flex_failed=why)
        else:
            run("flex", flex_call, bm_s, bm_peak, compile_s=compile_s)
        del block_mask
    if "blockwise" in paths:
        stats: dict = {}
        sa.blockwise_attention(query, key, value, mask, scale, block=block, layout=layout, stats=stats)
        run("blockwise", lambda: sa.blockwise_attention(query, key, value, mask, scale, block=block, layout=layout),
            layout_s, layout_peak, tiles_visited=stats["tiles"], largest_scores=stats["largest"])


# ----------------------------------------------------------------------------------------------------------------
# Child, --model: the whole bundled SmolLM2 with every attention layer on one path
# ----------------------------------------------------------------------------------------------------------------

BENCH_ATTENTION = "dynmask_bench_long_context"


def model_child(length: int, masks: list[str], block: int, paths: list[str], flex_failed: dict[str, str]) -> None:
    """One forward of the whole model per (mask, path): 30 layers, the mask input made once per forward (in the
    first layer, timed with the forward), the next-token logits of the last position only."""
    import torch
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    from dynmask_core import sparse_attention as sa
    from dynmask_core.masks import MaskContext, dense, get_strategy
    from dynmask_core.models.loader import load

    model = load("smollm2", device="cpu").model
    state: dict = {}

    def attention(module, query, key, value, attention_mask, scaling=None, dropout=0.0, **kwargs):
        h, q_len, k_len = query.shape[1], query.shape[2], key.shape[2]
        if key.shape[1] != h:  # grouped-query attention: repeat the K/V heads
            key = key.repeat_interleave(h // key.shape[1], dim=1)
            value = value.repeat_interleave(h // value.shape[1], dim=1)
        mask, path, cache = state["mask"], state["path"], state["cache"]
        scale = scaling if scaling is not None else query.shape[-1] ** -0.5
        offset = k_len - q_len
        if path == "sdpa":
            if "dense" not in cache:
                cache["dense"] = dense(sa.as_mask_mod(mask), q_len, k_len, h, offset).unsqueeze(0)
            out = sa.sdpa_attention(query, key, value, cache["dense"], scale)
        elif path == "flex":
            if "block_mask" not in cache:
                cache["block_mask"] = sa.flex_block_mask(mask, q_len, k_len, h, block, offset)
            out = sa.flex_attention(query, key, value, mask, scale, offset, block_mask=cache["block_mask"],
                                    fallback=False)
        else:
            if "layout" not in cache:
                cache["layout"] = sa.block_layout(mask, q_len, k_len, h, block, offset)
            out = sa.blockwise_attention(query, key, value, mask, scale, offset, block, layout=cache["layout"])
        return out.transpose(1, 2).contiguous(), None

    AttentionInterface.register(BENCH_ATTENTION, attention)
    AttentionMaskInterface.register(BENCH_ATTENTION, lambda *args, **kwargs: None)  # masks are ours: none from HF
    model.set_attn_implementation(BENCH_ATTENTION)
    ids = torch.randint(100, model.config.vocab_size, (1, length), generator=torch.Generator().manual_seed(0))

    def forward(tokens=ids):
        state["cache"] = {}
        with torch.inference_mode():
            return model(input_ids=tokens, use_cache=False, logits_to_keep=1).logits[0, -1]

    state.update(mask=None, path="sdpa")
    forward(ids[:, :64])  # touches every weight once (they are mmapped): later peaks are the forward's own

    for strategy_id in masks:
        entry = get_strategy(strategy_id)
        ctx = MaskContext(q_len=length, k_len=length, n_heads=model.config.num_attention_heads)
        state["mask"] = [sa.causal_mod(), entry.mask_mod(entry.resolve({}), ctx)]
        reference = None
        for path in paths:
            row = {"length": length, "mask": strategy_id, "path": path, "density": None, "tiles": None}
            state["path"] = path
            compile_s = None
            if path == "flex":
                if strategy_id in flex_failed:
                    print(json.dumps({**row, "skipped": flex_failed[strategy_id]}), flush=True)
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        _, compile_s, _ = measure(forward)
                except Exception as exc:  # noqa: BLE001
                    print(json.dumps({**row, "skipped": f"compile failed: {sa.error_line(exc)[:100]}"}), flush=True)
                    continue
            logits, seconds, peak = measure(forward)
            err = None if reference is None else float((logits - reference).abs().max())
            if path == "sdpa":
                reference = logits
            layout = sa.block_layout(state["mask"], length, length, 1, block)
            print(json.dumps({**row, "density": layout.density, "tiles": layout.tile_density, "seconds": seconds,
                              "peak": peak, "err": err, "compile_s": compile_s, "build_s": None,
                              "build_peak": None}), flush=True)


# ----------------------------------------------------------------------------------------------------------------
# Parent: one child per length, then the table
# ----------------------------------------------------------------------------------------------------------------


def _mb(n: float | None) -> str:
    return "-" if n is None else f"{n / 2**20:.0f}"


def _s(x: float | None) -> str:
    return "-" if x is None else (f"{x:.3f}" if x < 10 else f"{x:.1f}")


def table(rows: list[dict]) -> str:
    head = (f"{'len':>5} {'mask':<15} {'density':>8} {'tiles':>6} {'path':<13} {'build s':>8} {'build MB':>8} "
            f"{'time s':>8} {'x sdpa':>7} {'peak MB':>8} {'x sdpa':>7} {'max|err|':>8}  note")
    lines = [head, "-" * len(head)]
    sdpa = {(r["length"], r["mask"]): r for r in rows if r.get("path") == "sdpa" and "seconds" in r}
    for r in rows:
        ref = sdpa.get((r["length"], r["mask"]))
        note = r.get("skipped") or r.get("note") or ""
        if r.get("compile_s") is not None:
            note = f"first call (compile) {r['compile_s']:.1f} s" + (f"; {note}" if note else "")
        if r.get("tiles_visited") is not None:
            note = f"{r['tiles_visited']} tiles visited" + (f"; {note}" if note else "")
        if "seconds" not in r:
            density = "-" if r.get("density") is None else f"{r['density']:.4f}"
            tiles = "-" if r.get("tiles") is None else f"{r['tiles']:.3f}"
            lines.append(f"{r['length']:>5} {r['mask']:<15} {density:>8} {tiles:>6} "
                         f"{r['path']:<13} {'':>8} {'':>8} {'skipped':>8} {'':>7} {'':>8} {'':>7} {'':>8}  {note}")
            continue
        t_ratio = f"{r['seconds'] / ref['seconds']:.2f}" if ref else "-"
        m_ratio = f"{r['peak'] / ref['peak']:.2f}" if ref and ref["peak"] else "-"
        err = "-" if r.get("err") is None else f"{r['err']:.1e}"
        lines.append(f"{r['length']:>5} {r['mask']:<15} {r['density']:>8.4f} {r['tiles']:>6.3f} {r['path']:<13} "
                     f"{_s(r['build_s']):>8} {_mb(r['build_peak']):>8} {_s(r['seconds']):>8} {t_ratio:>7} "
                     f"{_mb(r['peak']):>8} {m_ratio:>7} {err:>8}  {note}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default=",".join(map(str, DEFAULT_LENGTHS)), help="comma-separated lengths")
    parser.add_argument("--quick", action="store_true", help=f"lengths {QUICK_LENGTHS} only")
    parser.add_argument("--masks", default=",".join(MASKS))
    parser.add_argument("--paths", default=",".join(PATHS))
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per case (2 from 4k, 1 from 8k)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (0: torch's default, 2 here); see the module docstring")
    parser.add_argument("--block", type=int, default=128, help="tile side of flex and blockwise")
    parser.add_argument("--limit-gb", type=float, default=4.0, help="skip a path whose estimated peak is larger")
    parser.add_argument("--child", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--flex-failed", default="{}", help=argparse.SUPPRESS)  # mask -> why, from earlier lengths
    parser.add_argument("--model", action="store_true",
                        help="whole bundled SmolLM2 forwards instead of one attention layer (slow: one forward per "
                             "mask and path, paths sdpa,flex,blockwise unless --paths says otherwise)")
    args = parser.parse_args()
    if args.model and args.paths == ",".join(PATHS):
        args.paths = "sdpa,flex,blockwise"  # eager would hold 30 layers' worth of (H, Q, K) weights in turn
    masks, paths = args.masks.split(","), args.paths.split(",")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child and args.model:
        model_child(args.child, masks, args.block, paths, json.loads(args.flex_failed))
        return
    if args.child:
        child(args.child, masks, args.repeats, args.block, args.limit_gb * 2**30, paths, json.loads(args.flex_failed))
        return

    import torch

    lengths = QUICK_LENGTHS if args.quick else tuple(int(x) for x in args.lengths.split(","))
    if args.model:
        print("WHOLE MODEL: the bundled SmolLM2-135M-Instruct (30 layers, 9 query / 3 KV heads), one forward per row "
              "(batch 1, random token ids, logits of the last position only), every attention layer on the path")
    else:
        print(__doc__.splitlines()[0])
    print(f"torch {torch.__version__}, {os.cpu_count()} CPUs, {args.threads or torch.get_num_threads()} intra-op "
          f"threads, tile {args.block}, float32; load average at start {os.getloadavg()}")
    print("masks: the decoder's causal mask AND the strategy at its registry defaults; density = allowed share of "
          "Q x K; tiles = share of 128x128 tiles with an allowed entry")
    rows: list[dict] = []
    flex_failed: dict[str, str] = {}
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(128 * 1024), "HF_HUB_OFFLINE": "1"}
    started = time.perf_counter()
    for length in lengths:
        repeats = args.repeats if length < 4096 else max(1, args.repeats - (1 if length < 8192 else 2))
        cmd = [sys.executable, __file__, "--child", str(length), "--masks", args.masks, "--paths", args.paths,
               "--repeats", str(repeats), "--threads", str(args.threads), "--block", str(args.block),
               "--limit-gb", str(args.limit_gb), "--flex-failed", json.dumps(flex_failed)] + \
            (["--model"] if args.model else [])
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        got = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
        rows.extend(got)
        for r in got:  # a mask_mod that did not compile at one length will not at the next: skip the attempt
            if r.get("flex_failed") and r["mask"] not in flex_failed:
                why = r["flex_failed"].removeprefix("compile failed: ")
                flex_failed[r["mask"]] = f"compile failed at length {length}: {why}"
        print(f"  length {length}: {len(got)} rows in {time.perf_counter() - t0:.0f} s "
              f"(load {os.getloadavg()[0]:.2f})", flush=True)
        if proc.returncode:
            print(f"  length {length}: child exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
    print()
    print(table(rows))
    print()
    if args.model:
        print("time = one whole forward, making the mask input once (first layer) included; flex's compile forward "
              "excluded (first call); peak = resident-set growth during that forward; max|err| = largest |logit "
              "difference| against the sdpa path.")
        print(f"total {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()}")
        return
    print("build = making the path's mask input once (dense bool mask for eager/sdpa, BlockMask for flex, tile layout "
          "for blockwise; shared by every layer of a forward). time = median attention call; peak = resident-set "
          "growth during one call (fresh child process per length). x sdpa = ratio to dense SDPA in the same run.")
    print(f"total {time.perf_counter() - started:.0f} s; load average at end {os.getloadavg()}")


if __name__ == "__main__":
    main()
