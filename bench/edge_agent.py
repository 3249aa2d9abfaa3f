"""The edge agent: throughput through windows and sketches, footprint at 1,000 readings/s,
and bytes on the wire, each beside a baseline measured in the same run.

- throughput: readings per CPU-second (one core) through `Windower` (count, sum, min, max,
  mean, m2, sketch, first/last) including window close and encoding; baseline: the obvious
  per-reading loop (Welford update and `DDSketch.add` per reading) over the same readings;
- footprint: the agent as its own process (`python -m edgebatch.edge`) against a real
  Mosquitto, simulator at 1,000 readings/s over 20 metrics, receipts from a stand-in
  collector; baseline: a forwarder publishing every reading as JSON at QoS 1, same rate;
- wire: bytes of an hour at 1 Hz x 20 metrics with 60 s windows, with MQTT framing and the
  receipts; baseline: every reading as its own JSON message in the same conventions
  (`v`, `tenant`, `device`, RFC 3339 `ts`, `metric`, `value`, `unit`).
"""

from __future__ import annotations

import json
import math
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure, median_of

T0 = 1_767_225_600.0
METRICS = 20
READINGS = 200_000
REPEATS = 5
RATE_HZ = 1000.0
SETTLE_S = 6.0
SAMPLE_S = 5.0
SAMPLES = 4
MQTT_FRAMING = 2 + 2 + 2  # fixed header (short packets), topic length, packet id
PUBACK = 4


def _readings(n: int, per_second: float) -> list[tuple[float, str, float, str]]:
    rng = random.Random(1)
    names = [f"sim_{k:02d}" for k in range(METRICS)]
    return [
        (T0 + i / per_second, names[i % METRICS], 10.0 + i % METRICS + rng.gauss(0, 1), "u")
        for i in range(n)
    ]


# ---------------------------------------------------------------- throughput


def _ours(readings: list) -> float:
    from edgebatch.edge.window import Windower, WindowParams
    from edgebatch.edge.wire.summary import metric_summary

    clock = [0.0]
    start = time.process_time()
    w = Windower(WindowParams(size_s=60.0), wall=lambda: T0 + 3600, monotonic=lambda: clock[0])
    for i in range(0, len(readings), 2048):
        w.ingest(readings[i : i + 2048])
        for closed in w.due():
            [metric_summary(m) for m in closed.metrics]
    clock[0] = 1e9  # the idle timeout closes what is left
    for closed in w.due():
        [metric_summary(m) for m in closed.metrics]
    return len(readings) / (time.process_time() - start)


def _per_reading_baseline(readings: list) -> float:
    from ddsketch import DDSketch

    start = time.process_time()
    state: dict[tuple[float, str], list] = {}
    for ts, name, value, _ in readings:
        key = (math.floor(ts / 60.0) * 60.0, name)
        s = state.get(key)
        if s is None:
            s = state[key] = [0, 0.0, 0.0, math.inf, -math.inf, DDSketch(0.01), ts, ts]
        n = s[0] + 1
        delta = value - s[1]
        s[1] += delta / n
        s[2] += delta * (value - s[1])
        s[0] = n
        s[3] = min(s[3], value)
        s[4] = max(s[4], value)
        s[5].add(value)
        s[7] = ts
    for s in state.values():
        [s[5].get_quantile_value(q) for q in (0.5, 0.95, 0.99)]
    return len(readings) / (time.process_time() - start)


def _whole_agent() -> float:
    """Readings per CPU-second through the whole loop but the network: simulator, journal,
    alarm rules, windows, outbox commits."""
    from edgebatch.edge.agent import Agent
    from edgebatch.edge.config import from_dict

    with tempfile.TemporaryDirectory() as tmp:
        config = from_dict(
            {
                "agent": {"tenant": "acme", "device": "bench", "data_dir": tmp},
                "window": {"size_s": 1.0},
                "health": {"interval_s": 3600.0},
                "alarm": [{"name": "hot", "metric": "sim_03", "above": 100.0}],
                "source": [
                    {
                        "kind": "simulator",
                        "metric_count": METRICS,
                        "rate_hz": 10_000.0,
                        "total": READINGS,
                        "realtime": False,
                    }
                ],
            },
            environ={},
        )
        agent = Agent(config, connect=False)
        start = time.process_time()
        while not agent.sources[0].exhausted:
            agent.step()
        agent.commit_due_windows()
        seconds = time.process_time() - start
        agent.close()
    return READINGS / seconds


# ---------------------------------------------------------------- footprint

_FORWARDER = """
import json, random, sys, time
import paho.mqtt.client as mqtt
port, rate, metrics = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="raw-forwarder", clean_session=False)
c.max_inflight_messages_set(100)
c.connect("127.0.0.1", port)
c.loop_start()
rng, t0, i = random.Random(0), time.time(), 0
names = [f"sim_{k:02d}" for k in range(metrics)]
while True:
    due = int((time.time() - t0) * rate)
    while i < due:
        ts = t0 + i / rate
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + ".%03dZ" % (ts % 1 * 1000)
        doc = {"v": 1, "tenant": "acme", "device": "raw", "ts": stamp, "metric": names[i % metrics],
               "value": 10.0 + rng.gauss(0, 1), "unit": "u"}
        c.publish("edgebatch/acme/raw/reading", json.dumps(doc), qos=1)
        i += 1
    time.sleep(0.05)
"""


def _measure(proc: subprocess.Popen) -> tuple[float, float]:
    """Median CPU percent of one core and median RSS in MB over SAMPLES intervals."""
    import psutil

    p = psutil.Process(proc.pid)
    time.sleep(SETTLE_S)
    cpu, rss = [], []
    for _ in range(SAMPLES):
        before = sum(p.cpu_times()[:2])
        time.sleep(SAMPLE_S)
        cpu.append(100.0 * (sum(p.cpu_times()[:2]) - before) / SAMPLE_S)
        rss.append(p.memory_info().rss / 2**20)
    if proc.poll() is not None:
        raise RuntimeError(f"measured process exited with {proc.returncode}")
    return statistics.median(cpu), statistics.median(rss)


def _footprints() -> tuple[tuple[float, float], tuple[float, float]]:
    import paho.mqtt.client as mqtt

    from edgebatch.edge.wire import Alarm, Batch, encode_receipt, parse_message, topic
    from tests.support.mosquitto import Mosquitto

    with tempfile.TemporaryDirectory() as tmp:
        broker = Mosquitto(Path(tmp) / "mq")
        broker.start()
        collector = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-collector")

        def land(client: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
            m = parse_message(msg.topic, bytes(msg.payload))
            if isinstance(m, Batch):
                landed = m.batch_id
            elif isinstance(m, Alarm):
                landed = m.alarm_id
            else:  # subscribed to batches and alarms only
                return
            receipt = encode_receipt([landed], time.time())
            client.publish(topic(m.tenant, m.device, "receipt"), receipt, 1)

        collector.on_message = land
        collector.connect(broker.host, broker.port)
        collector.subscribe([("edgebatch/+/+/batch", 1), ("edgebatch/+/+/alarm", 1)])
        collector.loop_start()
        config = Path(tmp) / "agent.toml"
        config.write_text(
            f"""
[agent]
tenant = "acme"
device = "bench"
data_dir = "{tmp}/agent"
log_level = "WARNING"
[window]
size_s = 10.0
[mqtt]
port = {broker.port}
[health]
interval_s = 10.0
[[source]]
kind = "simulator"
rate_hz = {RATE_HZ}
metric_count = {METRICS}
"""
        )
        try:
            agent = subprocess.Popen([sys.executable, "-m", "edgebatch.edge", "--config", config])
            try:
                ours = _measure(agent)
            finally:
                agent.terminate()
                agent.wait(20)
            raw = subprocess.Popen(
                [sys.executable, "-c", _FORWARDER, str(broker.port), str(RATE_HZ), str(METRICS)]
            )
            try:
                baseline = _measure(raw)
            finally:
                raw.kill()
                raw.wait(10)
        finally:
            collector.loop_stop()
            broker.stop()
    return ours, baseline


# ---------------------------------------------------------------- bytes on the wire


def _wire_bytes() -> tuple[int, int, int]:
    from edgebatch.edge.window import Windower, WindowParams
    from edgebatch.edge.wire import encode_batch, encode_receipt, format_ts, topic
    from edgebatch.edge.wire.summary import metric_summary

    readings = _readings(3600 * METRICS, per_second=METRICS)  # 1 Hz per metric, one hour
    clock = [0.0]
    w = Windower(WindowParams(size_s=60.0), wall=lambda: T0 + 7200, monotonic=lambda: clock[0])
    w.ingest(readings)
    clock[0] = 1e9
    batch_topic = topic("acme", "meter-1", "batch")
    receipt_topic = topic("acme", "meter-1", "receipt")
    ours = 0
    for closed in w.due():
        batch_id, payload = encode_batch(
            tenant="acme", device="meter-1", window_start=closed.start, window_end=closed.end,
            revision=0, metrics=[metric_summary(m) for m in closed.metrics],
            agent="edgebatch-edge/0.1.0",
        )  # fmt: skip
        receipt = encode_receipt([batch_id], closed.end + 1)
        ours += len(payload) + len(batch_topic) + MQTT_FRAMING + PUBACK
        ours += len(receipt) + len(receipt_topic) + MQTT_FRAMING + PUBACK
    raw_topic = topic("acme", "meter-1", "batch").replace("/batch", "/reading")
    raw = 0
    for ts, name, value, unit in readings:
        doc = {"v": 1, "tenant": "acme", "device": "meter-1", "ts": format_ts(ts),
               "metric": name, "value": value, "unit": unit}  # fmt: skip
        raw += len(json.dumps(doc, separators=(",", ":"))) + len(raw_topic) + MQTT_FRAMING + PUBACK
    return ours, raw, len(readings)


def run() -> list[Figure]:
    readings = _readings(READINGS, per_second=10_000.0)
    ours = median_of(lambda: _ours(readings), repeats=REPEATS)
    naive = median_of(lambda: _per_reading_baseline(readings), repeats=REPEATS)
    whole = median_of(_whole_agent, repeats=3)
    wire_ours, wire_raw, n = _wire_bytes()
    (cpu, rss), (raw_cpu, raw_rss) = _footprints()
    return [
        Figure(
            "readings_per_core_second",
            ours,
            "readings/s",
            baseline=naive,
            baseline_name="per-reading Welford + DDSketch.add",
            target=200_000,
            better="higher",
            target_on="value",
            note=f"{READINGS} readings, {METRICS} metrics, 60 s windows; CPU time, median of "
            f"{REPEATS}",
        ),
        Figure(
            "agent_loop_readings_per_core_second",
            whole,
            "readings/s",
            note="simulator, journal, alarm rules, windows and outbox commits, no network; "
            "median of 3",
        ),
        Figure(
            "agent_rss_at_1000_per_s",
            rss,
            "MB",
            baseline=raw_rss,
            baseline_name="raw JSON forwarder (paho, QoS 1)",
            target=40,
            target_on="value",
            note=f"agent process, {METRICS} metrics, 10 s windows, receipts on; median of "
            f"{SAMPLES} samples",
        ),
        Figure(
            "agent_cpu_at_1000_per_s",
            cpu,
            "% of one core",
            baseline=raw_cpu,
            baseline_name="raw JSON forwarder (paho, QoS 1)",
            target=5,
            target_on="value",
            note=f"median over {SAMPLES} x {SAMPLE_S:g} s after {SETTLE_S:g} s settling",
        ),
        Figure(
            "wire_bytes_per_hour_20_metrics_1hz",
            wire_ours,
            "bytes",
            baseline=wire_raw,
            baseline_name="every reading as its own JSON message",
            target=1 / 20,
            target_on="ratio",
            note=f"{n} readings; 60 s windows; MQTT framing, PUBACKs and receipts counted; "
            f"raw/ours = {wire_raw / wire_ours:.1f}x",
        ),
    ]


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    for figure in run():
        print(figure.as_dict())
