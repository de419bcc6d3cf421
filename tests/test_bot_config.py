"""The bot's config file: defaults, one clear line per bad key, environment overrides."""

from __future__ import annotations

import dataclasses
import re
import tomllib
from pathlib import Path

import pytest

from bot.config import SECTIONS, ConfigError, load_config, parse_config

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "config.example.toml"
E2E = ROOT / "tests" / "e2e.config.toml"


def problems_of(data: dict, env: dict | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, env or {})
    return caught.value.problems


def test_missing_file_means_defaults(tmp_path):
    config = load_config(tmp_path / "absent.toml", env={})
    assert config.discord.token == ""
    assert config.discord.api_base == "https://discord.com/api/v10"
    assert config.style.default_size in config.style.sizes
    assert config.bot.progress_edit_interval_s == 2.0
    assert config.limits.max_attachment_bytes == 10 * 1024 * 1024


def test_example_config_states_the_defaults():
    # The example is the documentation: its values must be what the bot does without it.
    assert load_config(EXAMPLE, env={}) == load_config(ROOT / "no-such-file.toml", env={})


def test_every_key_in_the_example_is_commented():
    lines = EXAMPLE.read_text().splitlines()
    keys = 0
    for index, line in enumerate(lines):
        if re.match(r"^[a-z_]+\s*=", line):
            keys += 1
            above = next(text for text in reversed(lines[:index]) if not re.match(r"^[a-z_]+\s*=", text))
            assert above.startswith("#"), f"key without a comment: {line}"
    in_example = sum(len(section) for section in tomllib.loads(EXAMPLE.read_text()).values())
    known = sum(len(dataclasses.fields(section)) for section in SECTIONS.values())
    # The sizes and steps that default by device are shown commented out, with each device's values.
    by_device = {"sizes", "default_size", "steps", "strip_size", "strip_steps"}
    for key in by_device:
        assert sum(1 for line in lines if re.match(rf"^#\s+{key}\s*=", line)) == 2, key
    assert keys == in_example == known - len(by_device)


def test_sizes_and_steps_default_by_the_painting_device():
    cpu = parse_config({"executor": {"device": "cpu"}}, {}).style
    gpu = parse_config({"executor": {"device": "cuda"}}, {}).style
    assert (cpu.default_size, cpu.strip_size) == (512, 128) and max(cpu.sizes) == 512
    assert (gpu.default_size, gpu.strip_size) == (1024, 256) and max(gpu.sizes) == 1024
    assert all(size in gpu.steps for size in gpu.sizes)
    ray = parse_config({"executor": {"kind": "ray", "num_gpus": 1.0}}, {}).style
    assert ray.default_size == 1024
    # What the file says wins; the strip never gets larger than the smallest result offered.
    mine = parse_config({"executor": {"device": "cuda"}, "style": {"sizes": [96, 192], "steps": {"96": 5, "192": 9}}},
                        {}).style
    assert (mine.sizes, mine.default_size, mine.strip_size) == ((96, 192), 192, 96)


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ({"discrod": {}}, "unknown section [discrod]"),
        ({"discord": {"tokn": "x"}}, "[discord] unknown key 'tokn'"),
        ({"limits": {"per_user_jobs": "two"}}, "[limits] per_user_jobs must be a whole number, not 'two'"),
        ({"limits": {"per_user_jobs": True}}, "[limits] per_user_jobs must be a whole number"),
        ({"limits": {"queue_length": 0}}, "[limits] queue_length must be greater than 0"),
        ({"discord": {"sync_guilds": ["123"]}}, "[discord] sync_guilds must be a list of whole numbers"),
        ({"discord": {"gallery_channel": 1.5}}, "[discord] gallery_channel is gone: Share now posts within the server"),
        ({"discord": {"gallery_channels": {"1": 1.5}}}, "[discord] gallery_channels must map server ids to channel ids"),
        ({"discord": {"gallery_channels": [1]}}, "[discord] gallery_channels must be a table like"),
        ({"discord": {"api_base": "discord.com/api"}}, "[discord] api_base must start with http:// or https://"),
        ({"discord": {"gateway_url": "https://x"}}, "[discord] gateway_url must start with ws:// or wss://"),
        ({"executor": {"kind": "cloud"}}, "[executor] kind must be one of 'local', 'ray', not 'cloud'"),
        ({"executor": {"device": "tpu"}}, "[executor] device must be one of 'auto', 'cpu', 'cuda'"),
        ({"bot": {"log_level": "LOUD"}}, "[bot] log_level must be one of"),
        ({"style": {"default_size": 300}}, "[style] default_size 300 must be one of sizes [256, 512]"),
        ({"style": {"sizes": [512, 1024]}}, "[style] steps has no entry for size(s) [1024]"),
        ({"style": {"steps": [1, 2]}}, "[style] steps must be a table"),
        ({"style": {"steps": {"big": 3}}}, "[style] steps must map sizes to whole numbers of steps"),
        ({"style": {"variants": 0}}, "[style] variants must be between 1 and 10"),
        ({"style": {"default_strength": 11}}, "[style] default_strength must be between 1 and 10"),
        ({"style": {"base_style_weight": 1e6}}, "[style] base_style_weight is gone: the stylizer now balances style"),
        ({"style": {"content_weight": 0}}, "[style] content_weight must be greater than 0"),
        ({"style": {"sizes": list(range(16, 16 + 26)), "default_size": 16,
                    "steps": {str(size): 10 for size in range(16, 16 + 26)}}},
         "[style] sizes lists 26 sizes; Discord offers at most 25 choices"),
        ({"style": {"tv_weight": -1}}, "[style] tv_weight must not be negative"),
        ({"journal": {"keep_finished_hours": "forever"}}, "[journal] keep_finished_hours must be a number"),
        ({"journal": {"max_bytes": "2 GiB"}}, "[journal] max_bytes must be a whole number"),
        ({"journal": {"max_bytes": 1_000_000}},
         "[journal] max_bytes must be at least twice [limits] max_attachment_bytes (20971520), not 1000000"),
        ({"bot": {"health_file": 3}}, "[bot] health_file must be a string, not 3"),
        ({"executor": {"ray_resources": {"painter": 0}}}, "[executor] ray_resources must be a table of custom"),
        ({"executor": {"ray_resources": {"GPU": 1}}}, "[executor] ray_resources must be a table of custom"),
        ({"executor": {"ray_resources": {"painter": "one"}}}, "[executor] ray_resources must be a table"),
        ({"executor": {"ray_resources": ["painter"]}}, "[executor] ray_resources must be a table"),
        ({"executor": {"replica_wait_s": 0}}, "[executor] replica_wait_s must be greater than 0"),
    ],
)
def test_each_bad_key_gets_its_own_message(data, expected):
    problems = problems_of(data)
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems


def test_all_problems_are_reported_at_once():
    problems = problems_of({"limits": {"per_user_jobs": "two", "bogus": 1}, "executor": {"kind": "x"}})
    assert len(problems) == 3
    assert any("bogus" in problem for problem in problems)


def test_invalid_toml_is_one_line(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_text("[discord\ntoken = 1")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert len(caught.value.problems) == 1
    assert "is not valid TOML" in caught.value.problems[0]


def test_environment_overrides_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[discord]\ntoken = "from-file"\napi_base = "https://file.example/api"\n'
                    '[journal]\npath = "file.sqlite3"\n')
    env = {"DISCORD_TOKEN": "from-env", "DISCORD_API_BASE": "http://127.0.0.1:9/api/v10",
           "DISCORD_GATEWAY_URL": "ws://127.0.0.1:9/gateway", "STYLEBOT_JOURNAL": str(tmp_path / "j.sqlite3")}
    config = load_config(path, env=env)
    assert config.discord.token == "from-env"
    assert config.discord.api_base == "http://127.0.0.1:9/api/v10"
    assert config.discord.gateway_url == "ws://127.0.0.1:9/gateway"
    assert config.journal.path == str(tmp_path / "j.sqlite3")
    assert load_config(path, env={}).discord.token == "from-file"


def test_empty_environment_variable_does_not_blank_the_file(tmp_path):
    path = tmp_path / "config.toml"
    path.write_text('[discord]\ntoken = "from-file"\n')
    assert load_config(path, env={"DISCORD_TOKEN": ""}).discord.token == "from-file"


def test_ray_resources_reach_the_executor_as_numbers():
    from bot.app import make_executor

    config = parse_config({"executor": {"kind": "ray", "ray_resources": {"painter": 1}, "replica_wait_s": 45}},
                          env={})
    executor = make_executor(config)
    assert executor.resources == {"painter": 1.0} and executor.replica_wait_s == 45.0


def test_steps_table_keys_become_sizes():
    config = parse_config({"style": {"sizes": [64, 128], "default_size": 64, "steps": {"64": 5, "128": 9}}}, {})
    assert config.steps_for(64) == 5
    assert config.steps_for(128) == 9
    assert config.steps_for(4096) == 9, "a size no longer configured gets the most steps configured"


def test_e2e_config_is_small_and_random():
    config = load_config(E2E, env={})
    assert config.executor.weights == "random"
    assert config.executor.device == "cpu"
    assert config.style.sizes == (48, 64)
    assert dict(config.style.steps) == {48: 6, 64: 8}
    assert config.style.variants == 3
    assert config.style.content_weight == 1e4
    assert config.limits.per_user_jobs == 2
    assert config.limits.queue_length == 4
