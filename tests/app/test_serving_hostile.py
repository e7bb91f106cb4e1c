"""The serving policy against hostile links (issue 20, classes 5 and 6).

Class 5: ``allow_models`` cannot be escaped: ``..``, ``//..``, symlinks, ``~``, relative paths, URLs, backslashes, NUL
bytes and long ids are read the way the file system will read them, folder patterns only allow what really lies under
them, Hub-id patterns never allow a local folder, and the app loads exactly the resolved folder it checked.

Class 6: ``max_params`` is checked before loading, from the weight files of every format (a pickle is never run), a
folder that cannot be counted is refused before loading, a refused folder is never loaded, and counts never read
``0M``.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import tempfile
import zipfile
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from dynmask_app.server import resources, runner
from dynmask_app.server.serving import ServingPolicy, format_params, load_policy
from dynmask_app.state import AppState
from dynmask_core.models.weights import count_weights
from tests import ROOT
from tests.core.tiny_models import tiny_bert

NOT_AMONG = "loads only its bundled models"
UNSIZED = "could not be sized before loading"


# ------------------------------------------------------------------------------------------------ helpers


def _save_tiny(folder: Path, **kwargs) -> int:
    """A tiny random BERT saved with ``save_pretrained`` (safetensors); its parameter count."""
    model = tiny_bert()
    model.save_pretrained(folder, **kwargs)
    return sum(p.numel() for p in model.parameters())


def _save_tiny_bin(folder: Path, shards: int = 1) -> int:
    """A tiny random BERT as PyTorch pickles only (``pytorch_model.bin``, or shards and their index)."""
    model = tiny_bert()
    folder.mkdir(parents=True, exist_ok=True)
    model.config.save_pretrained(folder)
    state = model.state_dict()
    if shards == 1:
        torch.save(state, folder / "pytorch_model.bin")
    else:
        names = list(state)
        weight_map = {}
        for i in range(shards):
            file = f"pytorch_model-{i + 1:05d}-of-{shards:05d}.bin"
            part = {k: state[k] for k in names[i::shards]}
            torch.save(part, folder / file)
            weight_map.update(dict.fromkeys(part, file))
        (folder / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    return sum(p.numel() for p in model.parameters())


def _gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def _write_gguf(path: Path, shapes: list[tuple[int, ...]]) -> int:
    """A GGUF v3 file: two metadata values (a string, an array of strings), then the tensors' infos."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(shapes), 2)
    out += _gguf_string("general.architecture") + struct.pack("<I", 8) + _gguf_string("llama")
    out += _gguf_string("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 3)
    out += b"".join(_gguf_string(t) for t in ("a", "b", "c"))
    total = 0
    for i, shape in enumerate(shapes):
        out += _gguf_string(f"blk.{i}.weight") + struct.pack("<I", len(shape)) + struct.pack(f"<{len(shape)}Q", *shape)
        out += struct.pack("<IQ", 0, 0)
        n = 1
        for d in shape:
            n *= d
        total += n
    path.write_bytes(out + bytes(64))
    return total


class _Boom:
    """A pickle that runs a shell command when unpickled (it must never be)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _evil_zip(path: Path, marker: Path) -> None:
    """A zip laid out like ``torch.save``'s whose ``data.pkl`` runs a command."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", pickle.dumps({"w": _Boom(marker)}, protocol=2))
        archive.writestr("archive/version", "3\n")


@pytest.fixture()
def never_load(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The app's loader replaced by one that fails the test: what it was asked to load."""
    asked: list[str] = []

    def load(model_id: str, *args, **kwargs):
        asked.append(model_id)
        raise AssertionError(f"the loader was called for {model_id}")

    monkeypatch.setattr(runner, "load", load)
    return asked


def _with_policy(monkeypatch: pytest.MonkeyPatch, policy: ServingPolicy) -> None:
    monkeypatch.setattr(resources, "policy", lambda: policy)


@pytest.fixture()
def tree(tmp_path: Path) -> dict[str, Path]:
    """``allowed/`` with a model, ``outside/tiny`` with a model, and symlinks in ``allowed/`` pointing outside."""
    allowed, outside = tmp_path / "allowed", tmp_path / "outside"
    _save_tiny(allowed / "tiny")
    _save_tiny(outside / "tiny")
    (allowed / "sub").mkdir()
    (allowed / "to_outside").symlink_to(outside, target_is_directory=True)
    (allowed / "tiny_link").symlink_to(outside / "tiny", target_is_directory=True)
    (allowed / "inner_link").symlink_to(allowed / "tiny", target_is_directory=True)
    (tmp_path / "allowed_link").symlink_to(allowed, target_is_directory=True)
    return {"root": tmp_path, "allowed": allowed, "outside": outside}


# ------------------------------------------------------------------------------------------------ class 5: paths


@pytest.mark.parametrize("spelling", ["{allowed}/../outside/tiny", "{allowed}//../outside/tiny",
                                      "{allowed}/sub/../../outside/tiny", "{allowed}/./../outside/tiny",
                                      "{allowed}/../allowed/../outside/tiny", "{allowed}/to_outside/tiny",
                                      "{allowed}/tiny_link", "{allowed}/tiny_link/", "{allowed}/sub/../tiny_link"])
def test_a_folder_pattern_does_not_allow_paths_that_escape_it(tree, spelling: str) -> None:
    model_id = spelling.format(allowed=tree["allowed"])
    policy = ServingPolicy(allow_models=(f"{tree['allowed']}/*",))
    with pytest.raises(ValueError, match=NOT_AMONG) as err:
        policy.check_model(model_id)
    message = str(err.value)
    assert "\n" not in message and os.path.realpath(tree["outside"]) not in message


@pytest.mark.parametrize("spelling", ["{allowed}/tiny", "{allowed}//tiny", "{allowed}/./tiny/", "{allowed}/sub/../tiny",
                                      "{allowed}/inner_link", "{root}/allowed_link/tiny",
                                      "{root}/outside/../allowed/tiny"])
def test_a_folder_that_really_lies_under_the_pattern_is_allowed_as_its_resolved_path(tree, spelling: str) -> None:
    model_id = spelling.format(allowed=tree["allowed"], root=tree["root"])
    policy = ServingPolicy(allow_models=(f"{tree['allowed']}/*",))
    assert policy.check_model(model_id) == os.path.realpath(tree["allowed"] / "tiny")


@pytest.mark.parametrize("pattern", ["{allowed}/tiny/", "{allowed}/tiny", "{allowed}//tiny", "{root}/allowed_link/t*"])
def test_patterns_are_resolved_too(tree, pattern: str) -> None:
    """A trailing slash, ``//``, a symlinked folder in the pattern: the pattern's folder is resolved like the id."""
    policy = ServingPolicy(allow_models=(pattern.format(allowed=tree["allowed"], root=tree["root"]),))
    assert policy.check_model(f"{tree['allowed']}/tiny") == os.path.realpath(tree["allowed"] / "tiny")
    with pytest.raises(ValueError, match=NOT_AMONG):
        policy.check_model(f"{tree['allowed']}/tiny/../../outside/tiny")


def test_home_and_relative_folders_are_resolved_before_matching(tree, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tree["root"]
    monkeypatch.setenv("HOME", str(home))
    resolved = os.path.realpath(tree["allowed"] / "tiny")
    by_home = ServingPolicy(allow_models=("~/allowed/*",))
    assert by_home.check_model("~/allowed/tiny") == resolved
    by_path = ServingPolicy(allow_models=(f"{tree['allowed']}/*",))
    assert by_path.check_model("~/allowed/tiny") == resolved
    monkeypatch.chdir(tree["allowed"])
    assert by_path.check_model("./tiny") == resolved
    assert by_path.check_model("./sub/../tiny/") == resolved
    for escape in ("~/allowed/../outside/tiny", "~/allowed/to_outside/tiny", "./../outside/tiny", "../outside/tiny",
                   "./tiny_link", "~", "~/allowed/..", "."):
        for policy in (by_home, by_path):
            with pytest.raises(ValueError, match=NOT_AMONG):
                policy.check_model(escape)


@pytest.mark.parametrize("allow_hub", [False, True])
def test_a_hub_pattern_never_allows_a_local_folder_that_looks_like_a_hub_id(tree, monkeypatch: pytest.MonkeyPatch,
                                                                           allow_hub: bool) -> None:
    """``org/x`` is a Hub id, whatever exists in the server's working directory: an ``org/x`` folder there is not
    loaded by the Hub pattern ``org/*`` (transformers would read the folder first)."""
    monkeypatch.chdir(tree["root"])
    (tree["root"] / "org").mkdir()
    _save_tiny(tree["root"] / "org" / "tiny")
    policy = ServingPolicy(allow_models=("org/*",), allow_hub=allow_hub)
    with pytest.raises(ValueError, match="Hugging Face Hub" if not allow_hub else "could not be loaded here"):
        policy.check_model("org/tiny")
    with pytest.raises(ValueError, match=NOT_AMONG):
        policy.check_model("./org/tiny")  # spelled as a folder: a Hub pattern does not match it
    assert ServingPolicy(allow_models=("./org/*",)).check_model("./org/tiny") == \
        os.path.realpath(tree["root"] / "org" / "tiny")
    if allow_hub:
        assert policy.check_model("org/other") == "org/other"  # a Hub id still matches its pattern


@pytest.mark.parametrize("model_id", ["file:///etc", "FILE://localhost/tmp/x", "http://example.com/m", "C:\\models\\x",
                                      "..\\..\\etc", "/tmp/a\\..\\..\\etc", "/tmp/a\x00/../../etc", "/tmp/\n/../etc",
                                      "/" + "a/" * 600, "org/..", "org//x", "org/./x", "org/x/y"])
def test_ids_that_are_neither_a_hub_id_nor_a_folder_path_are_refused_even_under_star(model_id: str) -> None:
    policy = ServingPolicy(allow_models=("*",), allow_hub=True)
    with pytest.raises(ValueError) as err:
        policy.check_model(model_id)
    assert "\n" not in str(err.value) and "\x00" not in str(err.value)


@pytest.mark.parametrize("patterns", ["/srv/models/*/../../etc", "/srv/*/..", "./m/*/../x"])
def test_a_pattern_that_climbs_out_after_a_wildcard_is_refused_when_read(patterns: str) -> None:
    with pytest.raises(ValueError, match="allow_models"):
        load_policy({"DYNMASK_ALLOW_MODELS": patterns})


def test_the_app_loads_the_resolved_folder_it_checked_and_keeps_the_typed_name(tree, monkeypatch) -> None:
    _with_policy(monkeypatch, ServingPolicy(allow_models=(f"{tree['allowed']}/*",)))
    typed = f"{tree['allowed']}//sub/../tiny/"
    loaded = runner.load_model(typed)
    assert loaded.info["source"] == os.path.realpath(tree["allowed"] / "tiny")  # what was checked is what loaded
    assert loaded.id == typed


def test_an_escaping_folder_never_reaches_the_loader(tree, monkeypatch, never_load) -> None:
    _with_policy(monkeypatch, ServingPolicy(allow_models=(f"{tree['allowed']}/*",)))
    for typed in (f"{tree['allowed']}/../outside/tiny", f"{tree['allowed']}/tiny_link"):
        with pytest.raises(ValueError, match=NOT_AMONG):
            runner.load_model(typed)
    assert never_load == []


@pytest.mark.parametrize("how", ["dotdot", "symlink"])
def test_a_link_to_a_folder_outside_the_allowed_one_shows_one_message_and_loads_nothing(tmp_path, monkeypatch,
                                                                                        how: str) -> None:
    """The tests' server allows ``<tmp>/*``; the bundled shapes ViT lies outside it, reached by ``..`` or a symlink."""
    outside = ROOT / "assets" / "models" / "shapes-vit"
    if Path(os.path.realpath(outside)).is_relative_to(os.path.realpath(tempfile.gettempdir())):
        pytest.skip("the repository lies inside the temporary folder the tests' server allows")
    if how == "dotdot":
        model_id = f"{tempfile.gettempdir()}/..{outside}"
    else:
        (tmp_path / "link").symlink_to(outside, target_is_directory=True)
        model_id = str(tmp_path / "link")
    asked: list[str] = []
    real_load = runner.load

    def load(target, *args, **kwargs):
        asked.append(target)
        return real_load(target, *args, **kwargs)

    monkeypatch.setattr(runner, "load", load)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(AppState(model=model_id).to_query_params())
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all(NOT_AMONG in e for e in errors)
    assert not any(os.path.realpath(str(a)) == os.path.realpath(outside) for a in asked)


# ------------------------------------------------------------------------------------------------ class 6: size


def _folder(kind: str, folder: Path) -> int:
    """A model folder of one weight format; its parameter count."""
    if kind == "safetensors":
        return _save_tiny(folder)
    if kind == "safetensors-sharded":
        n = _save_tiny(folder, max_shard_size="50KB")
        assert (folder / "model.safetensors.index.json").is_file()
        return n
    if kind == "pytorch_model.bin":
        return _save_tiny_bin(folder)
    if kind == "pytorch_model.bin-sharded":
        return _save_tiny_bin(folder, shards=3)
    if kind == "pth":  # a training checkpoint: the state dict nested in a dict
        model = tiny_bert()
        folder.mkdir(parents=True)
        model.config.save_pretrained(folder)
        torch.save({"epoch": 3, "state_dict": model.state_dict()}, folder / "weights.pth")
        return sum(p.numel() for p in model.parameters())
    if kind == "gguf":
        folder.mkdir(parents=True)
        tiny_bert().config.save_pretrained(folder)
        return _write_gguf(folder / "model.gguf", [(99, 32), (32, 32), (4, 8, 37)])
    if kind == "transformers_weights":  # the config names the file transformers loads, past a small decoy
        n = _save_tiny(folder)
        (folder / "model.safetensors").rename(folder / "real.safetensors")
        from safetensors.torch import save_file

        save_file({"w": torch.zeros(3)}, folder / "model.safetensors")
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(json.dumps({**config, "transformers_weights": "real.safetensors"}))
        return n
    raise AssertionError(kind)


KINDS = ["safetensors", "safetensors-sharded", "pytorch_model.bin", "pytorch_model.bin-sharded", "pth", "gguf",
         "transformers_weights"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_folder_over_max_params_is_refused_by_its_count_and_never_loaded(tmp_path, monkeypatch, never_load,
                                                                           kind: str) -> None:
    n = _folder(kind, tmp_path / "model")
    assert count_weights(tmp_path / "model").n_params == n
    _with_policy(monkeypatch, ServingPolicy(allow_models=(f"{tmp_path}/*",), max_params=1000))
    with pytest.raises(ValueError) as err:
        runner.load_model(f"{tmp_path}/model")
    message = str(err.value)
    assert f"has {n:,} parameters; this server runs models up to 1,000 parameters" in message, message
    assert "max_params" in message and "\n" not in message and never_load == []


def _unsized(kind: str, folder: Path, marker: Path) -> None:
    """A folder whose weights cannot be counted without loading them (or no weights at all)."""
    if kind == "missing":
        return
    folder.mkdir(parents=True)
    tiny_bert().config.save_pretrained(folder)
    if kind == "tf_model.h5":
        (folder / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(4096))
    elif kind == "flax_model.msgpack":
        (folder / "flax_model.msgpack").write_bytes(b"\x81\xa6params\x80" + bytes(4096))
    elif kind == "legacy pickle":
        torch.save(tiny_bert().state_dict(), folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    elif kind == "pickle that runs code":
        _evil_zip(folder / "pytorch_model.bin", marker)
    elif kind == "plain pickle that runs code":
        (folder / "pytorch_model.bin").write_bytes(pickle.dumps(_Boom(marker)))
    elif kind == "index naming a file outside":
        _save_tiny(folder.parent / "elsewhere")
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"weight_map": {"w": "../elsewhere/model.safetensors"}}))
    elif kind == "config naming a file outside":
        _save_tiny(folder.parent / "elsewhere")
        config = json.loads((folder / "config.json").read_text())
        (folder / "config.json").write_text(
            json.dumps({**config, "transformers_weights": "../elsewhere/model.safetensors"}))
    elif kind == "broken safetensors header":
        (folder / "model.safetensors").write_bytes(struct.pack("<Q", 10**12) + b"{}")
    elif kind != "config only":
        raise AssertionError(kind)


UNSIZED_KINDS = ["tf_model.h5", "flax_model.msgpack", "legacy pickle", "pickle that runs code",
                 "plain pickle that runs code", "index naming a file outside", "config naming a file outside",
                 "broken safetensors header", "config only", "missing"]


@pytest.mark.parametrize("kind", UNSIZED_KINDS)
def test_a_folder_that_cannot_be_counted_is_refused_before_loading(tmp_path, monkeypatch, never_load,
                                                                   kind: str) -> None:
    marker = tmp_path / "ran"
    _unsized(kind, tmp_path / "model", marker)
    _with_policy(monkeypatch, ServingPolicy(allow_models=(f"{tmp_path}/*",)))
    with pytest.raises(ValueError, match=UNSIZED) as err:
        runner.load_model(f"{tmp_path}/model")
    assert never_load == [] and not marker.exists()  # nothing loaded, no pickle run
    assert "\n" not in str(err.value) and "max_params" in str(err.value)
    # the same words for every such folder, a missing one included: they do not tell whether it exists
    missing = ServingPolicy(allow_models=(f"{tmp_path}/*",))
    with pytest.raises(ValueError) as other:
        missing.check_weights(f"{tmp_path}/nothing-here", f"{tmp_path}/nothing-here")
    assert str(err.value).replace(f"{tmp_path}/model", "<id>") == \
        str(other.value).replace(f"{tmp_path}/nothing-here", "<id>")


def test_uncountable_copies_next_to_a_countable_one_do_not_block_it(tmp_path) -> None:
    """A Hub clone often holds the same model as safetensors, an old pickle, TensorFlow and Flax: the safetensors
    transformers loads are counted, the rest ignored; a checkpoint's training_args.bin is never unpickled."""
    folder, marker = tmp_path / "model", tmp_path / "ran"
    n = _save_tiny(folder)
    torch.save(tiny_bert().state_dict(), folder / "pytorch_model.bin", _use_new_zipfile_serialization=False)
    (folder / "tf_model.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + bytes(64))
    (folder / "flax_model.msgpack").write_bytes(bytes(64))
    _evil_zip(folder / "training_args.bin", marker)
    counted = count_weights(folder)
    assert (counted.n_params, counted.blocking) == (n, False) and not marker.exists()
    assert ServingPolicy(allow_models=(f"{tmp_path}/*",), max_params=n).check_weights(str(folder), str(folder)) == n


def test_an_allowed_pickle_only_folder_still_loads(tmp_path, monkeypatch) -> None:
    n = _save_tiny_bin(tmp_path / "model")
    _with_policy(monkeypatch, ServingPolicy(allow_models=(f"{tmp_path}/*",), max_params=n))
    loaded = runner.load_model(f"{tmp_path}/model")
    assert sum(p.numel() for p in loaded.model.parameters()) == n


@pytest.mark.parametrize(("n", "limit", "has", "up_to"), [
    (34_314, 1_000, "34,314 parameters", "1,000 parameters"),
    (150_000, 100_000, "150,000 parameters", "100,000 parameters"),
    (400_000, 200_000, "400,000 parameters", "200,000 parameters"),
    (1_500_000, 1_000_000, "1.5M parameters", "1M parameters"),
    (1_000_400, 1_000_000, "1,000,400 parameters", "1,000,000 parameters"),  # rounded alike: exact
    (22_713_216, 20_000_000, "22.7M parameters", "20M parameters"),
    (7_241_732_096, 200_000_000, "7.2B parameters", "200M parameters"),
])
def test_counts_and_limits_read_readably_never_0m(n: int, limit: int, has: str, up_to: str) -> None:
    with pytest.raises(ValueError) as err:
        ServingPolicy(max_params=limit).check_size("/srv/models/x", n)
    message = str(err.value)
    assert f"has {has}; this server runs models up to {up_to}" in message, message
    assert " 0M" not in message and "\n" not in message
    largest = dict(ServingPolicy(max_params=limit).rows())["Largest model"]  # the About panel
    assert largest == format_params(limit) and not largest.startswith("0")


def test_a_limit_from_the_environment_reads_as_set() -> None:
    policy = load_policy({"DYNMASK_MAX_PARAMS": "100000"})
    assert dict(policy.rows())["Largest model"] == "100,000 parameters"
    with pytest.raises(ValueError, match="up to 100,000 parameters"):
        policy.check_size("/srv/models/x", 100_001)
