"""The static vs dynamic MLM masking lab: BERT's 15% / 80-10-10 rule, the two recipes, the CLI and a short training."""

from __future__ import annotations

import json
import math

import pytest
import torch

from dynmask_core.cli import main
from dynmask_core.lessons import mlm

TEXT = ("Dynamic masking draws a new pattern every time a sequence is fed to the model, while static masking "
        "draws it once during preprocessing and reuses the same masked copy in every epoch of training, which "
        "is what the original BERT recipe did before RoBERTa changed it.")

TINY = mlm.LabConfig(steps=40, batch_size=16, hidden_size=32, layers=1, heads=2, intermediate_size=64,
                     warmup_steps=4, eval_every=20)


def _within(observed: float, p: float, n: int, sigmas: float = 5.0) -> bool:
    """``observed`` share of ``n`` Bernoulli(p) trials is within ``sigmas`` binomial standard deviations."""
    return abs(observed - p) <= sigmas * math.sqrt(p * (1 - p) / n)


def test_the_rule_picks_15_percent_and_splits_80_10_10_never_touching_specials():
    n, vocab, mask_id = 60_000, 1000, 3
    gen = torch.Generator().manual_seed(1)
    ids = torch.randint(10, vocab, (n,), generator=gen)
    special = set(range(0, n, 7))  # every 7th position is a "special token" that must never be picked
    maskable = [i for i in range(n) if i not in special]
    draw = mlm.mask_tokens(ids, maskable, mask_id=mask_id, vocab_size=vocab, seed=123, random_ids=range(10, vocab))

    picked = draw.positions
    assert not special & set(picked)
    assert _within(len(picked) / len(maskable), 0.15, len(maskable))
    actions = [draw.actions[i] for i in picked]
    for action, share in zip(mlm.ACTIONS, mlm.SPLIT):
        assert _within(actions.count(action) / len(picked), share, len(picked)), action
    for i, (old, new, action) in enumerate(zip(draw.original, draw.ids, draw.actions)):
        if action is None or action == "keep":
            assert new == old, i
        elif action == "mask":
            assert new == mask_id
        else:
            assert 10 <= new < vocab
    assert sum(draw.ids[i] != draw.original[i] for i in picked if draw.actions[i] == "random") > 0.9 * actions.count(
        "random")  # a random swap almost always changes the token (it may draw the same one, as in BERT)


def test_at_least_one_position_is_picked_when_any_is_maskable():
    for seed in range(40):
        draw = mlm.mask_tokens([101, 2023, 102], [1], mask_id=103, vocab_size=30522, seed=seed)
        assert draw.positions == (1,)
    assert mlm.mask_tokens([101, 102], [], mask_id=103, vocab_size=30522, seed=0).positions == ()
    loose = [mlm.mask_tokens([101, 2023, 102], [1], mask_id=103, vocab_size=30522, seed=s, at_least_one=False)
             for s in range(40)]
    assert any(not d.positions for d in loose)


def test_static_repeats_one_draw_dynamic_redraws_and_seeds_reproduce():
    static = mlm.mask_text(TEXT, recipe="static", seed=11, epochs=6)
    dynamic = mlm.mask_text(TEXT, recipe="dynamic", seed=11, epochs=6)
    assert len(static.draws) == 6 and len({d for d in static.draws}) == 1
    assert len({d.positions for d in dynamic.draws}) == 6  # 50+ maskable tokens: six different picks
    assert dynamic.draws[0] == static.draws[0]  # epoch 0 is the same draw for both recipes
    assert mlm.mask_text(TEXT, recipe="dynamic", seed=11, epochs=6) == dynamic
    assert mlm.mask_text(TEXT, recipe="dynamic", seed=12, epochs=6).draws != dynamic.draws
    assert mlm.mask_text(TEXT, recipe="static", seed=12, epochs=1).draws[0] != static.draws[0]
    specials = {0, len(static.tokens) - 1}
    assert static.tokens[0] == "[CLS]" and static.tokens[-1] == "[SEP]"
    assert all(not specials & set(d.positions) for d in dynamic.draws)


@pytest.mark.parametrize("call, message", [
    (lambda: mlm.mask_tokens([1, 2], [0], mask_id=3, vocab_size=10, seed=-1), "seed must be"),
    (lambda: mlm.mask_tokens([1, 2], [5], mask_id=3, vocab_size=10, seed=0), "maskable positions"),
    (lambda: mlm.mask_tokens([1, 2], [0], mask_id=3, vocab_size=10, seed=0, prob=0), "probability"),
    (lambda: mlm.mask_tokens([1, 2], [0], mask_id=3, vocab_size=10, seed=0, split=(0.5, 0.5, 0.5)), "split"),
    (lambda: mlm.mask_epochs([1, 2], [0], 3, 10, recipe="static", seed=0, epochs=0), "epochs must be"),
    (lambda: mlm.mask_epochs([1, 2], [0], 3, 10, recipe="sometimes", seed=0, epochs=1), "static, dynamic"),
    (lambda: mlm.mask_text("   ", recipe="static", seed=0, epochs=1), "must not be empty"),
    (lambda: mlm.LabConfig(steps=0).validate(), "steps must be"),
    (lambda: mlm.LabConfig(hidden_size=30, heads=4).validate(), "multiple of heads"),
    (lambda: mlm.LabConfig(lr=0.0).validate(), "lr must be"),
])
def test_bad_parameters_say_what_is_allowed(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def test_cli_mlm_mask_json(capsys):
    assert main(["mlm-mask", "--text", TEXT, "--recipe", "dynamic", "--epochs", "3", "--seed", "7", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {k: data[k] for k in ("recipe", "seed", "text")} == {"recipe": "dynamic", "seed": 7, "text": TEXT}
    tokens = data["tokens"]
    assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"
    assert [e["epoch"] for e in data["epochs"]] == [0, 1, 2]
    for epoch in data["epochs"]:
        assert epoch["masked"]
        for m in epoch["masked"]:
            assert set(m) == {"position", "token", "became", "new_token"}
            assert 0 < m["position"] < len(tokens) - 1 and m["token"] == tokens[m["position"]]
            assert m["became"] in ("mask", "random", "keep")
            if m["became"] == "mask":
                assert m["new_token"] == "[MASK]"
            elif m["became"] == "keep":
                assert m["new_token"] == m["token"]
            else:
                assert not m["new_token"].startswith("[")
    assert main(["mlm-mask", "--text", TEXT, "--recipe", "static", "--epochs", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].removeprefix("epoch 0: ") == lines[2].removeprefix("epoch 1: ") and "[MASK]" in lines[1]


@pytest.mark.parametrize("argv", [
    ["mlm-mask", "--text", "hello", "--epochs", "0"],
    ["mlm-mask", "--text", "", "--recipe", "static"],
    ["mlm-mask", "--text", "hello", "--seed", str(2**31)],
    ["mlm-mask", "--text", "hello", "--recipe", "weekly"],
    ["mlm-lab", "--out", "unused", "--steps", "0"],
])
def test_cli_bad_arguments_exit_2_with_one_line(argv, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "\n" not in err


def test_short_training_lowers_the_loss_with_the_same_start_for_both_recipes():
    corpus = mlm.build_corpus()
    assert len(corpus.train) > 1000 and len(corpus.heldout) > 100 and len(corpus.vocab) < 5000
    assert all(row[0] == mlm.CLS and row[-1] == mlm.SEP and len(row) <= TINY.max_len for row in corpus.train)
    torch_threads = torch.get_num_threads()
    static = mlm.train_recipe("static", TINY, corpus, device="cpu")
    dynamic = mlm.train_recipe("dynamic", TINY, corpus, device="cpu")
    assert torch.get_num_threads() == torch_threads
    for run in (static, dynamic):
        losses = [s["train_loss"] for s in run.steps]
        assert [s["step"] for s in run.steps] == list(range(1, TINY.steps + 1))
        assert sum(losses[:5]) / 5 - sum(losses[-5:]) / 5 > 0.5, losses
        assert [e["step"] for e in run.eval] == [0, 20, 40]
        assert run.eval[-1]["heldout_loss"] < run.eval[0]["heldout_loss"] - 0.5
        assert 0 <= run.final["masked_accuracy"] <= 1
    assert static.eval[0] == dynamic.eval[0]  # same initial weights, same held-out masking
    assert static.steps[0] != dynamic.steps[0] or static.steps[1] != dynamic.steps[1]
    again = mlm.train_recipe("static", TINY, corpus, device="cpu")
    assert again.steps == static.steps and again.eval == static.eval
    copies = mlm.train_recipe("static", mlm.LabConfig(**{**TINY.to_dict(), "static_copies": 3, "steps": 5}), corpus)
    assert len(copies.steps) == 5


def test_progress_may_cancel_the_lab():
    threads = torch.get_num_threads()

    def cancel(fraction: float, text: str) -> None:
        if fraction > 0.1:
            raise KeyboardInterrupt("cancelled")

    with pytest.raises(KeyboardInterrupt):
        mlm.run_lab(TINY, progress=cancel, device="cpu")
    assert torch.get_num_threads() == threads


def test_cli_mlm_lab_writes_metrics_json_that_loads_back(tmp_path, capsys):
    out = tmp_path / "lab"
    assert main(["mlm-lab", "--steps", "3", "--seed", "5", "--out", str(out)]) == 0
    summary = capsys.readouterr().out
    assert "static" in summary and "dynamic" in summary and "metrics.json" in summary
    data = json.loads((out / "metrics.json").read_text())
    assert set(data) >= {"config", "static", "dynamic", "seconds"}
    assert data["config"]["steps"] == 3 and data["config"]["seed"] == 5
    for recipe in ("static", "dynamic"):
        run = data[recipe]
        assert [s["step"] for s in run["steps"]] == [1, 2, 3] and all("train_loss" in s for s in run["steps"])
        assert [e["step"] for e in run["eval"]] == [0, 3]
        assert all({"heldout_loss", "masked_accuracy"} <= set(e) for e in run["eval"])
        assert set(run["final"]) == {"train_loss", "heldout_loss", "masked_accuracy"}
        assert all(math.isfinite(run["final"][k]) for k in run["final"]) and run["seconds"] > 0
        assert {"train_loss", "heldout_loss", "masked_accuracy", "seconds"} <= set(run)
    assert data["seconds"] >= data["static"]["seconds"] + data["dynamic"]["seconds"] - 1e-6
    loaded = mlm.load_run(out)
    assert loaded.to_dict() == data and loaded.config.steps == 3
    (tmp_path / "bad.json").write_text('{"config": {}}')
    with pytest.raises(ValueError, match="not an MLM lab run"):
        mlm.load_run(tmp_path / "bad.json")
