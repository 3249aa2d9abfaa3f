"""`edgebatch demo`: the whole path on one machine, on the embedded defaults.

A Mosquitto on a free loopback port, a collector, three simulated water meters that
replay two days of readings (windows, alarms, health, outbox with receipts), then the
bronze load and the daily rollup through the framework's runner, in a local Spark, on
a `file://` warehouse, with runs recorded in the SQLite state store. It prints what
landed and where to look.
"""

from __future__ import annotations

import datetime as dt
import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from edgebatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console

TENANT = "demo-water"
DEVICES = ("meter-001", "meter-002", "meter-003")
DAYS = 2
READINGS_PER_DEVICE = DAYS * 86400 // 5  # per metric: one reading every 5 s
MOSQUITTO = "/usr/sbin/mosquitto"
PRESSURE_ANOMALIES = "anomaly_rate = 0.002, anomaly_size = 1.5"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not listen on port {port} within {timeout:g} s")


def _start_broker(workdir: Path) -> tuple[subprocess.Popen, int]:
    binary = MOSQUITTO if Path(MOSQUITTO).exists() else shutil.which("mosquitto")
    if not binary:
        raise RuntimeError("mosquitto is not installed (make demo installs Debian's mosquitto)")
    port = _free_port()
    (workdir / "mosquitto").mkdir(parents=True, exist_ok=True)
    conf = workdir / "mosquitto.conf"
    conf.write_text(
        f"listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"
        f"persistence_location {workdir / 'mosquitto'}/\nautosave_interval 1\n"
        f"user {getpass.getuser()}\nmax_queued_messages 100000\n"
    )
    log = open(workdir / "mosquitto.log", "wb")  # noqa: SIM115 - lives as long as the broker
    proc = subprocess.Popen([binary, "-c", str(conf)], stdout=log, stderr=subprocess.STDOUT)
    _wait_port(port, proc, "mosquitto")
    return proc, port


def _agent_config(workdir: Path, device: str, port: int, start: float, seed: int) -> Path:
    path = workdir / f"{device}.toml"
    path.write_text(
        f"""
[agent]
tenant = "{TENANT}"
device = "{device}"
data_dir = "{workdir / device}"
poll_interval_s = 0.01

[window]
size_s = 60.0
allowed_lateness_s = 5.0
idle_timeout_s = 1.0
correction_delay_s = 1.0
max_past_s = {DAYS * 86400 + 86400}

[mqtt]
host = "127.0.0.1"
port = {port}
receipt_timeout_s = 10.0
drain_rate_per_s = 2000.0
max_inflight = 100

[health]
interval_s = 2.0

[[metric]]
name = "flow"
unit = "l/min"

[[metric]]
name = "pressure"
unit = "bar"

[[alarm]]
name = "pressure-high"
metric = "pressure"
kind = "threshold"
above = 4.2
hysteresis = 0.3
severity = "critical"

[[source]]
kind = "simulator"
rate_hz = {2 / 5}
total = {2 * READINGS_PER_DEVICE}
realtime = false
start_ts = {start}
seed = {seed}
metrics = [
  {{ name = "flow", unit = "l/min", base = 12.0, noise = 2.5, drift_per_s = 0.00002 }},
  {{ name = "pressure", unit = "bar", base = 3.1, noise = 0.2, {PRESSURE_ANOMALIES} }},
]
"""
    )
    return path


def _cli() -> list[str]:
    exe = Path(sys.executable).parent / "edgebatch"
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "edgebatch.cli"]


def _land(settings: Settings, workdir: Path, port: int) -> dict[str, int]:
    """Broker, collector and agents until every agent has a receipt for all it sent."""
    env = {**os.environ, "EDGEBATCH_HOME": str(settings.home)}
    env["EDGEBATCH_WAREHOUSE_ROOT"] = settings.warehouse_root
    collector = subprocess.Popen(
        [*_cli(), "collect", "--host", "127.0.0.1", "--port", str(port),
         "--client-id", "demo-collector", "--max-age", "0.5", "--log-level", "WARNING"],
        env=env,
    )  # fmt: skip
    start = (
        dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        - dt.timedelta(days=DAYS)
    ).timestamp()
    agents = [
        subprocess.Popen(
            [
                *_cli(),
                "agent",
                "--config",
                str(_agent_config(workdir, d, port, start, i)),
                "--until-drained",
                "--log-level",
                "WARNING",
            ],
            env=env,
        )  # fmt: skip
        for i, d in enumerate(DEVICES)
    ]
    try:
        deadline = time.monotonic() + 300
        for agent in agents:
            agent.wait(timeout=max(1.0, deadline - time.monotonic()))
            if agent.returncode != 0:
                raise RuntimeError(f"an agent exited with status {agent.returncode}")
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.terminate()
        collector.send_signal(signal.SIGTERM)
        try:
            collector.wait(timeout=30)
        except subprocess.TimeoutExpired:
            collector.kill()
    return {"devices": len(DEVICES), "readings": 2 * READINGS_PER_DEVICE * len(DEVICES)}


def run_demo(config: str | None = None) -> int:
    from rich.console import Console
    from rich.table import Table

    from edgebatch.cli.spark import quiet_session
    from edgebatch.framework.registry import discover
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore
    from edgebatch.warehouse.tables import REGISTRY, ensure_tables, read_table
    from edgebatch.warehouse.uri import WarehouseRoot

    console = Console(highlight=False, width=max(120, Console().width))
    settings = load_settings(config)
    workdir = settings.var_dir / "demo" / dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    workdir.mkdir(parents=True, exist_ok=True)
    console.print(f"[bold]edgebatch demo[/]: {len(DEVICES)} water meters replay {DAYS} days")

    broker, port = _start_broker(workdir)
    try:
        t0 = time.monotonic()
        produced = _land(settings, workdir, port)
        console.print(
            f"agents and collector: {produced['readings']} readings from "
            f"{produced['devices']} meters landed in {time.monotonic() - t0:.1f} s "
            f"(broker on 127.0.0.1:{port})"
        )
    finally:
        broker.terminate()
        broker.wait(timeout=10)

    spark = quiet_session(settings)
    store = StateStore.from_settings(settings)
    runner = Runner(spark, store, settings, discover(settings))
    # Every declared table exists before the first run: a reader never meets a missing one.
    ensure_tables(spark, WarehouseRoot.parse(settings.warehouse_root), REGISTRY)
    runs = []
    first = (dt.datetime.now(dt.UTC) - dt.timedelta(days=DAYS)).date()
    last = first + dt.timedelta(days=DAYS - 1)
    try:
        requests = [
            RunRequest("bronze_load"),
            RunRequest("device_daily", start=str(first), end=str(last)),
        ]
        for request in requests:
            job = request.job
            run = runner.run(request)
            runs.append(run)
            console.print(
                f"run {run.id} of {job}: {run.state}" + (f" ({run.error})" if run.error else "")
            )
            if run.state != "succeeded":
                return 1
    finally:
        runner.close(cancel=False)

    root = WarehouseRoot.parse(settings.warehouse_root)
    daily = read_table(spark, root, REGISTRY.get("silver/device_daily")).where(
        f"tenant = '{TENANT}'"
    )
    table = Table("device", "metric", "date", "windows", "count", "min", "mean", "max", "stddev",
                  title="silver/device_daily")  # fmt: skip
    for r in daily.orderBy("device", "metric", "date").collect():
        table.add_row(
            r.device, r.metric, str(r.date), str(r.windows), str(r["count"]),
            f"{r.min:.2f}", f"{r.mean:.2f}", f"{r.max:.2f}", f"{r.stddev:.3f}",
        )  # fmt: skip
    console.print(table)
    counts = {
        name: read_table(spark, root, REGISTRY.get(name)).count()
        for name in ("bronze/edge_batches", "bronze/edge_alarms", "bronze/device_health")
        if name in REGISTRY
    }
    console.print("rows: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    batches = read_table(spark, root, REGISTRY.get("bronze/edge_batches"))
    total = batches.where(f"tenant = '{TENANT}'").agg({"count": "sum"}).first()
    counted = total[0] if total is not None else 0
    exactly_once = check_counts(console, produced["readings"], counted)
    console.print(
        f"\nwhere to look:\n  warehouse     {settings.warehouse_root}\n"
        f"  state store   {settings.state_url}\n"
        f"  demo files    {workdir}\n"
        f"  runs          edgebatch runs     |  edgebatch logs {runs[-1].id}\n"
        f"  tables        edgebatch tables"
    )
    return 0 if exactly_once else 1


def check_counts(console: Console, produced: int, counted: int | None) -> bool:
    """Say whether bronze counts every reading exactly once; the demo fails if not."""
    ok = counted == produced
    verdict = "exactly once" if ok else "MISMATCH: the demo fails"
    console.print(f"readings produced {produced}, counted in bronze windows {counted}: {verdict}")
    return ok
