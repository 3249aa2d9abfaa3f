"""Exactly-once accounting through crashes: the agent runs as a subprocess against a real
Mosquitto; it is killed with SIGKILL mid-window and restarted, the broker is stopped and
started, and the broker is killed with SIGKILL once. A stand-in collector sends receipts.
The sum of `count` over the distinct summaries must equal the readings the simulator
produced, and a resend must be byte-for-byte its original."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import tomllib
from pathlib import Path

import pytest

from tests.edge.helpers import ReceiptCollector, agent_config, wait_for
from tests.support.mosquitto import Mosquitto

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _toml(value: object) -> str:
    if isinstance(value, dict):
        raise TypeError("nested tables are written by _write_toml")
    return json.dumps(value)


def write_toml(path: Path, config: dict) -> Path:
    """Just enough TOML for an agent config: tables of scalars and arrays of such tables."""
    lines: list[str] = []
    for name, table in config.items():
        if isinstance(table, list):
            for item in table:
                lines.append(f"[[{name}]]")
                lines += [f"{k} = {_toml(v)}" for k, v in item.items()]
        else:
            lines.append(f"[{name}]")
            lines += [f"{k} = {_toml(v)}" for k, v in table.items()]
    path.write_text("\n".join(lines) + "\n")
    tomllib.loads(path.read_text())
    return path


def start_agent(config_path: Path, log: Path) -> subprocess.Popen[bytes]:
    out = log.open("ab")
    return subprocess.Popen(
        [sys.executable, "-m", "edgebatch.edge", "--config", str(config_path)],
        stdout=out,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def test_every_reading_is_counted_once_through_agent_and_broker_crashes(
    own_broker: Mosquitto, tmp_path: Path
):
    total = 2400
    config = agent_config(
        tmp_path / "agent",
        own_broker,
        source=[{"kind": "simulator", "metric_count": 4, "rate_hz": 300.0, "total": total}],
        alarm=[{"name": "spike", "metric": "sim_01", "kind": "threshold", "above": 13.5}],
    )
    path = write_toml(tmp_path / "agent.toml", config)
    log = tmp_path / "agent.log"
    collector = ReceiptCollector(own_broker)
    agent = start_agent(path, log)
    try:
        wait_for(lambda: collector.readings() > 0, 20, "the first summary")
        time.sleep(0.4)
        agent.send_signal(signal.SIGKILL)  # mid-window: 1 s windows, readings every 3 ms
        agent.wait(10)
        agent = start_agent(path, log)

        time.sleep(1.5)
        own_broker.stop()
        time.sleep(1.5)
        own_broker.start()

        time.sleep(1.5)
        own_broker.kill()
        time.sleep(0.5)
        own_broker.start()

        wait_for(lambda: collector.readings() >= total, 60, f"{total} readings summarised")
        time.sleep(2.0)  # resends after the receipt timeout must not add anything
        assert agent.poll() is None, log.read_text()[-3000:]
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(15)
        collector.close()
    assert code == 0, log.read_text()[-3000:]
    assert collector.rejected == []
    assert collector.readings() == total
    revisions = [b.revision for b in collector.batches.values()]
    assert revisions.count(0) >= total / 300 - 1  # about one summary per second of readings
    resent_differently = {i: p for i, p in collector.payloads.items() if len(p) > 1}
    assert resent_differently == {}
    assert collector.heartbeats, "heartbeats flowed"
