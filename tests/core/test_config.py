from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from edgebatch.config import build
from edgebatch.errors import ConfigError
from edgebatch.settings import load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edgebatch.toml"
    path.write_text(text)
    return path


def test_unknown_key_names_the_key_the_section_and_the_file(tmp_path):
    path = write(tmp_path, '[warehouse]\nrot = "file:///x"\n')
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    message = str(err.value)
    assert "'rot'" in message and "[warehouse]" in message and str(path) in message
    assert "did you mean 'root'" in message


def test_wrong_type_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, '[mqtt]\nport = "eighteen"\n')
    with pytest.raises(ConfigError, match=r"mqtt\.port.*edgebatch\.toml.*must be int"):
        load_settings(path, environ={})


def test_unknown_section_is_refused(tmp_path):
    path = write(tmp_path, "[sparks]\nmaster = 'local'\n")
    with pytest.raises(ConfigError, match=r"unknown section \[sparks\]"):
        load_settings(path, environ={})


def test_missing_file_and_bad_toml_name_the_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})
    path = write(tmp_path, "[warehouse\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(path, environ={})


def test_environment_overrides_the_file(tmp_path):
    path = write(tmp_path, '[mqtt]\nport = 1883\nhost = "broker"\n')
    settings = load_settings(
        path,
        environ={"EDGEBATCH_MQTT_PORT": "2883", "EDGEBATCH_WAREHOUSE_ROOT": "hdfs://nn:9000/w"},
    )
    assert settings.mqtt.port == 2883
    assert settings.mqtt.host == "broker"
    assert settings.warehouse_root == "hdfs://nn:9000/w"


def test_bad_environment_value_names_the_variable(tmp_path):
    with pytest.raises(ConfigError, match="EDGEBATCH_MQTT_PORT"):
        load_settings(write(tmp_path, ""), environ={"EDGEBATCH_MQTT_PORT": "many"})


def test_defaults_live_under_home(tmp_path):
    settings = load_settings(write(tmp_path, ""), environ={})
    assert settings.warehouse_root == (tmp_path / "var" / "warehouse").as_uri()
    assert settings.state_url == f"sqlite:///{tmp_path / 'var' / 'state.db'}"


def test_invalid_root_scheme_is_refused(tmp_path):
    path = write(tmp_path, '[warehouse]\nroot = "s3://bucket/x"\n')
    with pytest.raises(ConfigError, match="root"):
        load_settings(path, environ={})


@dataclasses.dataclass(frozen=True)
class Rule:
    metric: str
    above: float | None = None


@dataclasses.dataclass(frozen=True)
class Agent:
    rules: list[Rule] = dataclasses.field(default_factory=list)


def test_nested_tables_and_lists_are_checked():
    agent = build(Agent, {"rules": [{"metric": "flow", "above": 3}]}, source="a.toml")
    assert agent.rules == [Rule("flow", 3.0)]
    with pytest.raises(ConfigError, match=r"rules\[0\].*unknown key 'abov'|unknown key 'abov'"):
        build(Agent, {"rules": [{"metric": "flow", "abov": 3}]}, source="a.toml")


def test_collector_section_sets_the_collector_and_flags_override_it(tmp_path):
    from edgebatch.warehouse.collector.cli import parser
    from edgebatch.warehouse.collector.config import CollectorConfig

    path = write(
        tmp_path,
        "[mqtt]\nport = 1999\n[collector]\nmax_messages = 700\nmax_age_s = 2.5\n"
        "validation_workers = 0\n",
    )
    settings = load_settings(path, environ={})
    config = CollectorConfig.from_settings(settings)
    assert (config.mqtt.port, config.policy.max_messages, config.policy.max_age_s) == (
        1999,
        700,
        2.5,
    )
    assert config.workers() == 0
    args = parser().parse_args(["--max-messages", "300"])
    assert args.max_messages == 300 and args.max_age is None  # unset flags fall back


def test_a_bad_collector_value_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "[collector]\nvalidation_workers = -5\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "validation_workers" in str(err.value) and str(path) in str(err.value)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[mqtt]\nport = 70000\n", "'port'"),
        ("[mqtt]\nreconnect_min_s = 5.0\nreconnect_max_s = 1.0\n", "'reconnect_max_s'"),
        ("[mqtt]\nkeepalive_s = -1\n", "'keepalive_s'"),
        ("[collector]\nmax_messages = 70000\n", "'max_messages'"),
    ],
)
def test_a_bad_mqtt_or_collector_value_is_a_config_error_naming_key_and_file(tmp_path, text, key):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert key in str(err.value) and str(path) in str(err.value)


def test_a_flag_beyond_the_receive_maximum_is_a_config_error_naming_flag_and_file(tmp_path):
    from edgebatch.warehouse.collector.buffer import FlushPolicy
    from edgebatch.warehouse.collector.config import CollectorConfig

    path = write(tmp_path, "")
    settings = load_settings(path, environ={})
    with pytest.raises(ConfigError) as err:
        CollectorConfig.from_settings(settings, policy=FlushPolicy(max_messages=70000))
    assert "--max-messages" in str(err.value) and str(path) in str(err.value)


def test_the_agent_and_the_project_read_mqtt_into_one_type(tmp_path):
    from edgebatch.edge.config import from_dict
    from edgebatch.settings import MqttSettings

    table = {"host": "broker", "port": 1884, "username": "u", "keepalive_s": 10}
    path = write(
        tmp_path, '[mqtt]\nhost = "broker"\nport = 1884\nusername = "u"\nkeepalive_s = 10\n'
    )
    project = load_settings(path, environ={}).mqtt
    agent = from_dict(
        {"agent": {"tenant": "a", "device": "d"}, "mqtt": table, "source": [{"kind": "simulator"}]},
        environ={},
    ).mqtt
    assert type(project) is type(agent) is MqttSettings
    assert project == agent
