"""The CLI end to end, the bundled models, and loading a local folder like any Hugging Face id."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from dynmask_core.engine import MaskPlan, run
from dynmask_core.modalities import encode_text
from tests import ROOT


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "dynmask_core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_cli_lists_every_strategy_with_kind_and_params():
    out = _cli("strategies", "--json")
    assert out.returncode == 0, out.stderr
    rows = {r["id"]: r for r in json.loads(out.stdout)}
    assert {"none", "causal", "sliding_window", "topk", "random_static", "random_dynamic"} <= set(rows)
    assert rows["sliding_window"]["kind"] == "static" and rows["topk"]["kind"] == "dynamic"
    radius = rows["sliding_window"]["params"][0]
    assert radius == {"name": "radius", "type": "int", "default": 2, "min": 0, "max": 512, "choices": [],
                      "help": radius["help"]}


def test_cli_run_writes_the_documented_files(tmp_path):
    out = _cli("run", "--model", "minilm", "--text", "The film was wonderful.", "--strategy", "sliding_window",
               "--param", "radius=2", "--compose", "and:causal", "--layers", "0,2", "--heads", "0-3",
               "--mode", "hard", "--seed", "7", "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    record = json.loads((tmp_path / "run.json").read_text())
    masks = np.load(tmp_path / "masks.npy")
    attn = np.load(tmp_path / "attention.npy")
    base = np.load(tmp_path / "baseline_attention.npy")
    n = len(record["tokens"])
    assert masks.dtype == np.bool_ and attn.dtype == np.float32 and base.dtype == np.float32
    assert masks.shape == attn.shape == base.shape == (6, 12, n, n)
    assert record["model"] == "minilm" and record["mode"] == "hard" and record["seed"] == 7
    assert record["layers"] == [0, 2] and record["heads"] == [0, 1, 2, 3]
    terms = record["strategy"]["terms"]
    assert terms[0] == {"op": "and", "strategy": "sliding_window", "params": {"radius": 2, "causal": False,
                                                                          "sinks": 0}}
    assert terms[1]["strategy"] == "causal" and terms[1]["op"] == "and"
    assert set(record["outputs"]["masked"]["probs"]) == {"negative", "positive"}
    assert {"kl", "cosine", "top1_changed", "prob_delta"} <= set(record["metrics"])
    assert {"baseline_forward_s", "masked_forward_s", "total_s"} <= set(record["timings"])
    i, j = np.meshgrid(np.arange(n), np.arange(n), indexing="ij")
    expected = (j <= i) & (i - j <= 2)
    assert (masks[0, 0] == expected).all() and masks[1].all() and masks[0, 4:].all()
    assert (attn[masks == False] == 0).all()  # noqa: E712


@pytest.mark.parametrize("args, message", [
    (["--strategy", "sliding_window", "--param", "radius=-1"], "radius must be an integer between 0 and 512"),
    (["--strategy", "nope"], "unknown strategy 'nope'; choose one of:"),
    (["--param", "radius"], "--param takes name=value"),
    (["--compose", "xor:causal"], "--compose takes and:ID"),
    (["--layers", "a-b"], "--layers takes indices like 0,2 or 0-3"),
    (["--layers", "40"], "layers must be between 0 and 5"),
    (["--mode", "multiply"], "--mode must be one of hard, bias, gate, naive_multiply"),
    (["--model", "not a model!"], "is neither a bundled model"),
])
def test_cli_bad_arguments_exit_nonzero_with_one_line(tmp_path, args, message):
    out = _cli("run", "--text", "hello world", "--out", str(tmp_path / "o"), *args)
    assert out.returncode == 2
    lines = [line for line in out.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_cli_empty_text_is_refused(tmp_path):
    out = _cli("run", "--text", "   ", "--out", str(tmp_path))
    assert out.returncode == 2 and "--text is empty" in out.stderr


def test_minilm_sentiment_head_reads_clear_sentences(minilm):
    pos = run(minilm, encode_text(minilm, "I absolutely loved this film, it was wonderful."), MaskPlan.of("none"))
    neg = run(minilm, encode_text(minilm, "This was a terrible, boring waste of my evening."), MaskPlan.of("none"))
    assert pos.outputs["top1"] == "positive" and neg.outputs["top1"] == "negative"


def test_long_text_is_truncated_and_reported(minilm):
    x = encode_text(minilm, "word " * 2000)
    assert x.truncated and len(x.tokens) == 512 and x.n_tokens_before > 512


def test_empty_text_is_refused(minilm):
    with pytest.raises(ValueError, match="The text is empty"):
        encode_text(minilm, "  \n ")


def test_local_folder_loads_like_a_hub_id(tmp_path):
    import transformers as tf

    from dynmask_core.models import load

    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", "."]
    (tmp_path / "vocab.txt").write_text("\n".join(vocab))
    tf.BertTokenizer(str(tmp_path / "vocab.txt")).save_pretrained(tmp_path)
    cfg = tf.BertConfig(vocab_size=len(vocab), hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                        intermediate_size=37, id2label={0: "no", 1: "yes"}, label2id={"no": 0, "yes": 1})
    torch.manual_seed(0)
    tf.BertForSequenceClassification(cfg).save_pretrained(tmp_path)
    loaded = load(str(tmp_path), device="cpu")
    assert loaded.task == "classifier" and loaded.labels == ("no", "yes") and loaded.n_layers == 2
    r = run(loaded, encode_text(loaded, "the cat sat on the mat."), MaskPlan.of("causal"))
    assert r.masks.shape == (2, 4, 9, 9) and set(r.outputs["probs"]) == {"no", "yes"}
    assert "kl" in r.metrics


def test_unknown_hub_id_offline_says_what_to_do():
    from dynmask_core.models import load

    with pytest.raises(ValueError, match="HF_HUB_OFFLINE=1.*bundled model or a local folder"):
        load("some-org/some-model-that-is-not-here")


def test_smollm2_bundled_causal_lm_with_gqa(smollm2):
    x = encode_text(smollm2, "The capital of France is")
    base = run(smollm2, x, MaskPlan.of("none"))
    assert base.outputs["top1"].strip() == "Paris"
    assert base.attention.shape[:2] == (30, 9)
    r = run(smollm2, x, MaskPlan.of("sliding_window", {"radius": 1}))
    n = len(x.tokens)
    future = torch.triu(torch.ones(n, n, dtype=torch.bool), diagonal=1)
    assert not r.masks[..., future].any() and torch.all(r.attention[..., future] == 0)
    assert len(r.outputs["top5"]) == 5 and r.metrics["next_token_kl"] > 0


@pytest.mark.parametrize("args, message", [
    (["--strategy", "sliding_window", "--param", "radius=inf"], "radius must be an integer between 0 and 512"),
    (["--strategy", "topk", "--param", "k=1e400"], "k must be an integer between 1 and 4096"),
    (["--device", "foo"], "device must be cpu or cuda"),
    (["--layers", "0-30000000"], "--layers ranges go from low to high, at most 4095"),
    (["--max-tokens", "0"], "--max-tokens must be from 1 to 10,000,000"),
    (["--model", "a" * 300], "is neither a bundled model"),
    (["--model", "~nosuchuser/x"], "is neither a bundled model"),
])
def test_cli_odd_arguments_get_one_line_not_a_traceback(tmp_path, args, message):
    out = _cli("run", "--text", "hello world", "--out", str(tmp_path / "o"), *args)
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert message in out.stderr


def test_max_tokens_is_capped_at_the_model_limit(minilm):
    x = encode_text(minilm, "word " * 700, max_tokens=2000)
    assert len(x.tokens) == 512 and x.truncated
    short = encode_text(minilm, "hi there.", max_tokens=1)  # cannot go below the special tokens
    assert short.truncated == (len(short.tokens) < short.n_tokens_before)


@pytest.mark.parametrize("args, message", [
    (["--seed", "nan"], "--seed must be a whole number"),
    (["--max-tokens", "many"], "--max-tokens takes a whole number"),
    (["--no-such-flag"], "unrecognized arguments: --no-such-flag"),
    ([], "one of the arguments --text --image --audio --sample is required"),
])
def test_cli_option_errors_are_exactly_one_line(tmp_path, args, message):
    """Options argparse itself checks print one line too, not the usage block."""
    base = ["run", "--out", str(tmp_path / "o")] + ([] if args == [] else ["--text", "hello"])
    out = _cli(*base, *args)
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert out.returncode == 2 and len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], lines
