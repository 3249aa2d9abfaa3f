"""The agent's config: the example loads, a wrong key is refused with the key, the file and a
suggestion, and the environment overrides the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgebatch.edge.config import from_dict, load
from edgebatch.edge.sources import FileSourceConfig, SimulatorConfig
from edgebatch.errors import ConfigError

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "agent.toml"


def minimal(**extra: object) -> dict[str, object]:
    return {"agent": {"tenant": "acme", "device": "d1"}, "source": [{"kind": "simulator"}], **extra}


def test_the_example_config_loads():
    cfg = load(EXAMPLE, environ={})
    assert (cfg.agent.tenant, cfg.mqtt.tls, cfg.window.size_s) == ("acme", True, 60.0)
    assert [s.kind for s in cfg.sources] == ["file", "system"]
    assert isinstance(cfg.sources[0].config, FileSourceConfig)
    assert {a.kind for a in cfg.alarms} == {"threshold", "rate", "zscore"}


def test_the_environment_overrides_the_file():
    cfg = load(
        EXAMPLE, environ={"EDGEBATCH_MQTT_PASSWORD": "s3cret", "EDGEBATCH_MQTT_PORT": "1884"}
    )
    assert (cfg.mqtt.password, cfg.mqtt.port) == ("s3cret", 1884)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (minimal(windw={}), "unknown section 'windw' in t.toml (known: agent, window"),
        (minimal(windw={}), "did you mean 'window'?"),
        (minimal(window={"size": 60}), "unknown key 'size' in [window] of t.toml"),
        (minimal(window={"size": 60}), "did you mean 'size_s'?"),
        (minimal(window={"size_s": "60"}), "key 'window.size_s' in t.toml must be float"),
        (minimal(window={"size_s": 0}), "'size_s' must be positive"),
        ({"agent": {"tenant": "a b", "device": "d"}, "source": [{"kind": "simulator"}]}, "tenant"),
        ({"agent": {"tenant": "a", "device": "d"}}, "has no [[source]]"),
        (minimal(source=[{"kind": "serial"}]), "'kind' must be one of file, simulator"),
        (minimal(source=[{"kind": "file"}]), "[source[0]] of t.toml"),
        (minimal(source=[{"kind": "file", "path": "x", "fromat": "csv"}]), "did you mean 'format'"),
        (minimal(alarm=[{"name": "a", "metric": "m", "kind": "threshold"}]), "needs 'above'"),
        (minimal(metric=[{"name": "m", "unit": "x" * 40}]), "unit must be 1 to 32"),
        (minimal(mqtt={"port": 0}), "'port' must be 1..65535"),
    ],
)
def test_a_wrong_config_is_refused_naming_the_key_and_the_file(data, message):
    with pytest.raises(ConfigError) as exc:
        from_dict(data, source="t.toml", environ={})
    assert message in str(exc.value)


def test_sub_second_timings_are_allowed_for_tests_and_fast_sensors():
    cfg = from_dict(
        minimal(
            window={"size_s": 0.25, "allowed_lateness_s": 0.05, "idle_timeout_s": 0.1},
            health={"interval_s": 0.2},
            mqtt={"receipt_timeout_s": 0.5, "reconnect_min_s": 0.01},
            source=[{"kind": "simulator", "metrics": [{"name": "t", "unit": "C", "noise": 0.1}]}],
        ),
        environ={},
    )
    assert cfg.window.size_s == 0.25
    assert isinstance(cfg.sources[0].config, SimulatorConfig)
    assert cfg.sources[0].config.metrics[0].name == "t"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[window]\nfold_every = 0\n", "'fold_every'"),
        ("[window]\nmax_past_s = -1.0\n", "'max_past_s'"),
        ("[window]\nsketch_alpha = 1.5\n", "'sketch_alpha'"),
        ("[mqtt]\nreceipt_timeout_s = 0.0\n", "'receipt_timeout_s'"),
        ("[mqtt]\nmax_inflight = 0\n", "'max_inflight'"),
    ],
)
def test_a_bad_window_or_mqtt_value_in_a_file_names_the_key_and_the_file(tmp_path, text, key):
    path = tmp_path / "agent.toml"
    path.write_text(
        '[agent]\ntenant = "acme"\ndevice = "d1"\n[[source]]\nkind = "simulator"\n' + text
    )
    with pytest.raises(ConfigError) as exc:
        load(path, environ={})
    assert key in str(exc.value) and str(path) in str(exc.value)
