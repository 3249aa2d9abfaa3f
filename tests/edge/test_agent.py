"""The agent against a real broker: alarms leave at once, heartbeats carry the device and the
agent, an outage's backlog drains at the configured pace, credentials and TLS come from the
config, and the CLI and the imports stay device-sized."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from edgebatch.edge.agent import Agent
from edgebatch.edge.cli import main as agent_main
from edgebatch.edge.config import from_dict
from tests.edge.helpers import ReceiptCollector, agent_config, write_toml
from tests.support.mosquitto import make_test_certificates
from tests.support.wait import wait_until

pytestmark = pytest.mark.integration


@contextmanager
def running(config: dict) -> Iterator[Agent]:
    agent = Agent(from_dict(config, environ={}))
    thread = threading.Thread(target=agent.run, daemon=True)
    thread.start()
    try:
        yield agent
    finally:
        agent.stop_requested.set()
        thread.join(10)
        assert not thread.is_alive()


def test_an_alarm_is_published_at_once_not_at_window_close(broker, collector, tmp_path: Path):
    config = agent_config(
        tmp_path,
        broker,
        window={"size_s": 3600.0, "idle_timeout_s": 3600.0},
        source=[{"kind": "simulator", "rate_hz": 50.0,
                 "metrics": [{"name": "pressure", "unit": "bar", "base": 5.0, "noise": 0.01,
                              "anomaly_rate": 0.2, "anomaly_size": 3.0}]}],
        alarm=[{"name": "pressure-high", "metric": "pressure", "above": 7.0, "hysteresis": 0.5,
                "severity": "critical"}],
    )  # fmt: skip
    with running(config) as agent:
        wait_until(lambda: collector.alarms, 10, "an alarm")
        alarm = next(iter(collector.alarms.values())).event
        assert (alarm.rule, alarm.metric, alarm.severity) == ("pressure-high", "pressure",
                                                               "critical")  # fmt: skip
        assert alarm.value > 7.0 and alarm.threshold == 7.0
        assert time.time() - alarm.ts < 5
        assert collector.batches == {}  # the hour-long window is still open
        wait_until(lambda: agent.outbox.backlog()["backlog"] == 0 or None, 10, "receipts")


def test_heartbeats_report_the_device_the_backlog_and_rejected_readings(
    broker, collector, tmp_path: Path
):
    readings = tmp_path / "r.jsonl"
    now = time.time()
    lines = [
        {"ts": now, "metric": "flow", "value": 1.0},
        {"ts": now, "metric": "flow", "value": "NaN"},
        {"ts": now, "metric": "bogus", "value": 1.0},
    ]
    readings.write_text("".join(json.dumps(x) + "\n" for x in lines) + "not json\n")
    config = agent_config(
        tmp_path / "agent",
        broker,
        metric=[{"name": "flow", "unit": "l/s"}],
        source=[{"kind": "file", "path": str(readings)}],
    )
    with running(config):
        beat = wait_until(
            lambda: [h for h in collector.heartbeats.values() if h.figures["rejected"]],
            10,
            "a heartbeat with rejects",
        )[0]
    f = beat.figures
    assert f["rejected"] == {"not_finite": 1, "unknown_metric": 1, "bad_json": 1}
    assert 0 <= f["cpu_percent"] <= 100 * 64 and 0 < f["memory_percent"] < 100
    assert 0 < f["disk_percent"] <= 100 and len(f["load"]) == 3 and f["uptime_s"] > 0
    assert f["process"]["rss_bytes"] > 1_000_000
    assert set(f["outbox"]) >= {"backlog", "bytes"}
    assert f["shed"] == {"coarsened": 0, "dropped_heartbeats": 0, "dropped_summaries": 0,
                         "dropped_readings": 0}  # fmt: skip


def test_a_backlog_drains_at_the_configured_pace_after_an_outage(make_broker, tmp_path: Path):
    broker = make_broker(start=False)  # the agent begins offline
    total = 600
    config = agent_config(
        tmp_path / "agent",
        broker,
        window={"size_s": 0.1, "allowed_lateness_s": 0.0},
        # Offline for seconds, the reconnect backoff could reach 16 s on a busy machine and
        # eat the drain's time budget; this test is about the pace, so cap it.
        mqtt={
            "drain_rate_per_s": 20.0,
            "max_inflight": 5,
            "receipt_timeout_s": 30.0,
            "reconnect_max_s": 2.0,
        },
        health={"interval_s": 3600.0},
        source=[{"kind": "simulator", "rate_hz": 200.0, "total": total, "metric_count": 1}],
    )
    with running(config) as agent:
        wait_until(lambda: agent.sources[0].exhausted or None, 10, "the simulator to finish")
        wait_until(lambda: agent.outbox.backlog()["backlog"] >= 30 or None, 10, "a backlog")
        backlog = agent.outbox.backlog()["backlog"]
        broker.start()
        collector = ReceiptCollector(broker)
        try:
            wait_until(lambda: collector.readings() == total or None, 20, "the backlog drained")
        finally:
            collector.close()
            broker.stop()
    batch_times = sorted(collector.times)
    span = batch_times[-1] - batch_times[0]
    assert len(collector.batches) >= backlog >= 30
    # 20 per second after a burst of at most max_inflight: never a flood.
    assert (len(batch_times) - 5) / span <= 20 * 1.25
    one_second = max(sum(1 for t in batch_times if t0 <= t < t0 + 1.0) for t0 in batch_times)
    assert one_second <= 20 + 5 + 1


def test_credentials_and_tls_come_from_the_config_and_the_environment(make_broker, tmp_path: Path):
    ca, cert, key = make_test_certificates(tmp_path / "certs")
    broker = make_broker(passwords={"meter": "s3cret"}, tls=(ca, cert, key))
    collector = ReceiptCollector(broker, username="meter", password="s3cret", ca_file=ca)
    try:
        base = agent_config(
            tmp_path / "agent",
            broker,
            mqtt={"username": "meter", "tls": True, "ca_file": str(ca)},
            source=[{"kind": "simulator", "rate_hz": 100.0, "total": 100, "metric_count": 2}],
        )
        wrong = from_dict(base, environ={"EDGEBATCH_MQTT_PASSWORD": "nope"})
        agent = Agent(wrong)
        publisher = agent.publisher
        assert publisher is not None
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            agent.step()
            publisher.loop(0.02)
        assert not publisher.connected and collector.batches == {}
        agent.close()

        right = from_dict(base, environ={"EDGEBATCH_MQTT_PASSWORD": "s3cret"})
        agent = Agent(right)
        try:
            publisher = agent.publisher
            assert publisher is not None

            def pumped() -> bool:
                agent.step()
                publisher.loop(0.02)
                return collector.readings() >= 100

            wait_until(pumped, 15, "100 readings over TLS", interval=0)
            assert publisher.connected and collector.readings() == 100
        finally:
            agent.close()
    finally:
        collector.close()
        broker.stop()


def test_the_cli_exits_when_drained_and_refuses_a_wrong_key(broker, tmp_path: Path, capsys):
    good = agent_config(
        tmp_path / "agent",
        broker,
        source=[{"kind": "simulator", "rate_hz": 500.0, "total": 500, "metric_count": 2}],
    )
    path = write_toml(tmp_path / "agent.toml", good)
    assert agent_main(["--config", str(path), "--check"]) == 0
    assert "ok; device acme/" in capsys.readouterr().out

    bad = write_toml(tmp_path / "bad.toml", {**good, "window": {"sise_s": 1.0}})
    assert agent_main(["--config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "unknown key 'sise_s'" in err and str(bad) in err and "did you mean 'size_s'" in err

    collector = ReceiptCollector(broker)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "edgebatch.cli", "agent", "--config", str(path),
             "--until-drained", "--log-level", "WARNING"],
            capture_output=True, timeout=60, text=True,
        )  # fmt: skip
    finally:
        collector.close()
    assert done.returncode == 0, done.stderr
    assert collector.readings() == 500


def test_the_agent_imports_no_server_dependencies():
    code = (
        "import sys, json; import edgebatch.edge.cli, edgebatch.edge.agent, "
        "edgebatch.edge.publisher, edgebatch.edge.health; "
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    heavy = {"pyspark", "fastapi", "sqlalchemy", "delta", "uvicorn", "alembic", "pydantic"}
    assert loaded & heavy == set()
    assert {"paho", "sqlite3"} <= loaded


def test_readings_piped_on_stdin_are_all_summarised_before_the_agent_exits(
    broker, collector, tmp_path: Path
):
    now = time.time() - 5
    lines = [json.dumps({"ts": now + i * 0.01, "metric": "flow", "value": i}) for i in range(300)]
    lines.insert(100, "x" * 10_000)  # oversized: counted and skipped
    config = agent_config(
        tmp_path / "agent",
        broker,
        metric=[{"name": "flow", "unit": "l/s"}],
        source=[{"kind": "stdin", "max_line_bytes": 512}],
    )
    path = write_toml(tmp_path / "agent.toml", config)
    done = subprocess.run(
        [sys.executable, "-m", "edgebatch.edge", "--config", str(path), "--until-drained"],
        input="\n".join(lines) + "\n", capture_output=True, timeout=60, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "oversized_line" in done.stderr
    wait_until(lambda: collector.readings() == 300 or None, 10, "300 readings")
    flow = [m for b in collector.batches.values() for m in b.metrics]
    assert sum(m.sum for m in flow) == sum(range(300))
    assert {m.unit for m in flow} == {"l/s"}


def test_the_system_source_reads_the_device_through_psutil():
    from edgebatch.edge.sources import SystemSource, SystemSourceConfig
    from edgebatch.edge.window import Rejects

    src = SystemSource(SystemSourceConfig(interval_s=60.0), None, Rejects())
    now = time.time()
    got = {name: value for _, name, value, _ in src.poll(now, 100)}
    assert {"sys.cpu_percent", "sys.memory_percent", "sys.disk_percent", "sys.load1"} <= set(got)
    assert 0 < got["sys.memory_percent"] < 100
    assert src.poll(now + 1, 100) == []  # not again before its interval
    assert set(got) <= set(src.metrics())


def test_a_source_that_fails_is_counted_and_the_others_keep_going(tmp_path: Path):
    unreadable = tmp_path / "a-directory"
    unreadable.mkdir()
    config = agent_config(
        tmp_path / "agent",
        None,
        source=[
            {"kind": "file", "path": str(unreadable)},
            {"kind": "simulator", "rate_hz": 1000.0, "total": 50, "realtime": False},
        ],
    )
    agent = Agent(from_dict(config, environ={}), connect=False)
    try:
        agent.step()
        agent.step()
        assert agent.rejects.counts["source_error"] == 2
        assert agent.readings_polled == 50
    finally:
        agent.close()


def test_a_full_outbox_sheds_summaries_and_heartbeats_but_no_alarm_and_says_so(
    make_broker, tmp_path: Path
):
    from edgebatch.edge.alarms import AlarmEngine
    from edgebatch.edge.sources import SimulatorConfig, SimulatorSource
    from edgebatch.edge.window import Rejects

    broker = make_broker(start=False)  # down while the outbox fills
    total = 1600
    sim = {"kind": "simulator", "rate_hz": 400.0, "total": total, "seed": 3,
           "metrics": [{"name": "a", "base": 10.0, "noise": 1.0},
                       {"name": "b", "base": 5.0, "noise": 1.0}]}  # fmt: skip
    rule = {"name": "a-high", "metric": "a", "above": 12.5, "hysteresis": 1.5}
    config = agent_config(
        tmp_path / "agent",
        broker,
        window={"size_s": 0.1, "allowed_lateness_s": 0.0},
        outbox={"max_bytes": 8192, "max_coarse_span_s": 0.5},
        health={"interval_s": 0.2},
        source=[sim],
        alarm=[rule],
    )
    settings = from_dict(config, environ={})
    offline_sim = SimulatorConfig(
        metrics=settings.sources[0].config.metrics,
        rate_hz=400.0, total=total, seed=3, realtime=False, start_ts=time.time(),
    )  # fmt: skip
    readings = SimulatorSource(offline_sim, None, Rejects()).poll(0, total)
    expected_alarms = len(AlarmEngine(settings.alarms).check(readings))
    assert expected_alarms >= 2

    with running(config) as agent:
        wait_until(lambda: agent.sources[0].exhausted or None, 10, "the simulator to finish")
        wait_until(lambda: agent.windower.open_windows == 0 or None, 10, "windows to close")
        shed = agent.outbox.counters()
        broker.start()
        collector = ReceiptCollector(broker)
        try:
            wait_until(
                lambda: agent.outbox.backlog()["backlog"] == 0 or None, 20, "a drained outbox"
            )
            final = agent.outbox.counters()
            wait_until(
                lambda: (
                    any(h.figures["shed"] == final for h in collector.heartbeats.values()) or None
                ),
                10,
                "a heartbeat reporting the shedding",
            )
        finally:
            collector.close()
            broker.stop()
    assert shed["coarsened"] > 0 and shed["dropped_heartbeats"] > 0
    assert final["dropped_summaries"] > 0
    assert len(collector.alarms) == expected_alarms
    assert collector.readings() + final["dropped_readings"] == total
    spans = {round(b.window_end - b.window_start, 3) for b in collector.batches.values()}
    assert max(spans) > 0.1  # coarsened summaries were delivered as such


def test_an_unwritable_data_dir_stops_the_agent_with_one_clear_line(tmp_path: Path, caplog):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the data_dir should be")
    path = write_toml(
        tmp_path / "agent.toml",
        agent_config(blocker / "state", None, source=[{"kind": "simulator"}]),
    )
    assert agent_main(["--config", str(path)]) == 1
    assert any("agent stopped (data_dir" in r.getMessage() for r in caplog.records)
