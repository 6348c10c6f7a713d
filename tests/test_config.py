"""Config files, flags and environment: bad config fails in one line before any work."""

import json
import socket

import pytest

from dialogforge.config import Role
from dialogforge.config_file import apply_flags, load_config_file
from dialogforge.errors import ConfigError

GOOD_TOML = """
[models.default]
backend = "openai"
base_url = "http://127.0.0.1:9/v1"
model = "qwen3-32b"

[models.roles.agent]
model = "qwen3-235b"
temperature = 0.7

[generation]
n = 12
mode = "task"
"""


def test_toml_and_yaml_files_resolve_per_role(tmp_path):
    toml = tmp_path / "run.toml"
    toml.write_text(GOOD_TOML)
    yml = tmp_path / "run.yaml"
    yml.write_text("models:\n  default:\n    backend: openai\n    base_url: http://127.0.0.1:9/v1\n  roles:\n    judge:\n      model: judge-model\n")
    config = load_config_file(toml)
    assert config.models.for_role(Role.AGENT).model == "qwen3-235b"
    assert config.models.for_role(Role.AGENT).temperature == 0.7
    assert config.models.for_role(Role.USER_SIMULATOR).model == "qwen3-32b"
    assert config.generation["n"] == 12
    assert load_config_file(yml).models.for_role(Role.JUDGE).model == "judge-model"


def test_the_reasoning_field_and_the_context_budgets_are_set_per_role_in_the_file(tmp_path):
    from dialogforge.config import GenerationSettings
    from dialogforge.models.openai_client import build_openai_chat

    path = tmp_path / "run.toml"
    path.write_text(GOOD_TOML + '[generation.limits]\nagent_context_tokens = 30000\nuser_context_tokens = 12000\n'
                    '[models.roles.user_simulator]\nreasoning_field = "none"\n[models.roles.judge]\nreasoning_field = "reasoning"\n')
    config = load_config_file(path)
    fields = {role: build_openai_chat(config.models.for_role(role)).reasoning_field for role in Role}
    assert fields[Role.AGENT] == "reasoning_content" and fields[Role.USER_SIMULATOR] is None and fields[Role.JUDGE] == "reasoning"
    limits = GenerationSettings.model_validate(config.generation).limits
    assert (limits.agent_context_tokens, limits.user_context_tokens) == (30_000, 12_000)


def test_flags_override_the_file_and_base_url_implies_openai():
    from dialogforge.config import ModelsConfig

    config = apply_flags(ModelsConfig(), backend=None, base_url="http://127.0.0.1:8000/v1", model="m")
    assert config.default.backend == "openai" and config.default.model == "m"


@pytest.mark.parametrize("text, needle", [
    ("[models.default]\nbackend = \"openai\"\ntemprature = 0.5\n", "models.default.temprature: Extra inputs are not permitted"),
    ("[models.default]\ntemperature = \"hot\"\n", "models.default.temperature"),
    ("[models.roles.agent]\nmodle = \"x\"\n", "Extra inputs are not permitted"),
    ("[models.roles.critic]\nmodel = \"x\"\n", "models.roles.critic"),
    ("[generation]\nn = 0\n", "greater than or equal to 1"),
    ("[models.roles.agent]\nreasoning_field = \"reasoning content\"\n", "reasoning_field: String should match pattern"),
    ("[generation.limits]\nagent_context_tokens = 500\n", "greater than or equal to 2000"),
    ("[models\n", "not valid TOML"),
    ("surprise = 1\n", "surprise: Extra inputs are not permitted"),
])
def test_bad_config_files_name_file_and_field(tmp_path, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        load_config_file(path)
    message = str(info.value)
    assert message.startswith(str(path)) and needle in message and "\n" not in message


def _one_line(result, needle):
    assert result.code == 2, (result.out, result.err)
    lines = result.err.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], result.err


def test_bad_config_stops_generate_before_any_work(tmp_path, run_cli):
    db = tmp_path / "run.db"
    bad = tmp_path / "bad.toml"
    bad.write_text("[models.default]\nbakend = \"openai\"\n")
    _one_line(run_cli("generate", "--config", str(bad), "--db", str(db)), "bakend")
    assert not db.exists()


def test_missing_key_variable(tmp_path, run_cli):
    db = tmp_path / "run.db"
    cfg = tmp_path / "run.toml"
    cfg.write_text("[models.default]\nbackend = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\napi_key_env = \"DF_TEST_ABSENT_KEY\"\n")
    _one_line(run_cli("generate", "--config", str(cfg), "--db", str(db)), "DF_TEST_ABSENT_KEY")
    assert not db.exists()


def test_unreachable_endpoint(tmp_path, run_cli):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = tmp_path / "run.db"
    _one_line(run_cli("generate", "--base-url", f"http://127.0.0.1:{port}/v1", "--db", str(db)), "unreachable")
    assert not db.exists()


def test_config_show_masks_secrets(tmp_path, run_cli):
    cfg = tmp_path / "run.toml"
    cfg.write_text("[models.default]\nbackend = \"openai\"\nbase_url = \"http://user:hunter2@127.0.0.1:9/v1\"\napi_key_env = \"DF_TEST_KEY\"\n")
    result = run_cli("config", "--show", "--config", str(cfg), env={"DF_TEST_KEY": "sk-very-secret-123"})
    assert result.code == 0, result.err
    assert "sk-very-secret-123" not in result.out and "hunter2" not in result.out
    view = json.loads(result.out)
    assert view["models"]["agent"]["api_key"] == "set (masked)"
    assert view["models"]["agent"]["base_url"] == "http://user:***@127.0.0.1:9/v1"
