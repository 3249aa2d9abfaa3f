"""`[scheduler]` is read like every section: errors name the key and the file."""

from __future__ import annotations

import pytest

from edgebatch.errors import ConfigError
from edgebatch.settings import load_settings


def test_scheduler_settings_come_from_the_file_and_the_environment(tmp_path):
    path = tmp_path / "edgebatch.toml"
    path.write_text(
        "[scheduler]\nloop_interval_s = 2.0\nlease_ttl_s = 12.0\n"
        "max_running_per_queue = { backfill = 2 }\n"
    )
    settings = load_settings(path, environ={"EDGEBATCH_SCHEDULER_HOLDER": "sched-a"})
    cfg = settings.scheduler
    assert (cfg.loop_interval_s, cfg.lease_ttl_s, cfg.holder) == (2.0, 12.0, "sched-a")
    assert cfg.max_running_per_queue == {"backfill": 2}


def test_a_lease_shorter_than_two_passes_is_refused_naming_the_keys_and_the_file(tmp_path):
    path = tmp_path / "edgebatch.toml"
    path.write_text("[scheduler]\nloop_interval_s = 5.0\nlease_ttl_s = 6.0\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path, environ={})
    assert "lease_ttl_s" in str(err.value) and "loop_interval_s" in str(err.value)
    assert str(path) in str(err.value)
