"""`edgebatch worker`: serve queues from a warm Spark driver until SIGTERM or SIGINT.

Parses, builds the worker from the project config and the flags, and waits; the
first signal stops it gracefully (runs finish within `[worker] stop_grace_s` or go
back to their queue), a second one stops it at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from types import FrameType


def main(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch worker", description="claim and run queued runs of some queues"
    )
    p.add_argument(
        "--queue",
        action="append",
        default=[],
        help="a queue to serve (repeatable; default: [worker] queues)",
    )
    p.add_argument("--slots", type=int, help="runs at once (default: [worker] slots)")
    p.add_argument("--master", help="Spark master URL (default: [spark] master, or local)")
    p.add_argument("--id", dest="worker_id", help="worker id (default: host:pid:random)")
    args = p.parse_args(argv)

    from edgebatch.cli.spark import quiet_session
    from edgebatch.framework.registry import discover
    from edgebatch.framework.session import spark_conf
    from edgebatch.framework.state import StateStore
    from edgebatch.framework.worker import Worker, check_worker, worker_spark_conf
    from edgebatch.settings import load_settings

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = load_settings(config)
    registry = discover(settings)
    # Refuse a bad queue, slot count or pool before paying for a Spark session.
    queues, slots, _ = check_worker(settings, registry, args.queue or None, args.slots)
    spark_settings = settings.spark
    if args.master:
        spark_settings = dataclasses.replace(spark_settings, master=args.master)
    master = spark_conf(dataclasses.replace(settings, spark=spark_settings))["spark.master"]
    extra = worker_spark_conf(settings.worker, queues, master)
    spark_settings = dataclasses.replace(spark_settings, conf={**spark_settings.conf, **extra})
    settings = dataclasses.replace(settings, spark=spark_settings)

    store = StateStore.from_settings(settings)
    spark = quiet_session(settings)
    worker = Worker(
        spark, store, settings, registry, queues=queues, slots=slots, worker_id=args.worker_id
    )
    signals = threading.Event()
    hurry = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        (hurry if signals.is_set() else signals).set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    worker.start()
    print(f"worker {worker.worker_id} serving {', '.join(worker.queues)}", flush=True)
    while not signals.wait(1.0):
        pass
    stopper = threading.Thread(target=worker.stop, daemon=True)
    stopper.start()
    while stopper.is_alive() and not hurry.is_set():
        stopper.join(0.5)
    if stopper.is_alive():
        worker.stop(grace_s=0)
    store.close()
    spark.stop()
    return 0


def list_workers(argv: list[str], config: str | None) -> int:
    """`edgebatch workers`: the workers the store knows, their queues and last health."""
    p = argparse.ArgumentParser(
        prog="edgebatch workers", description="list workers, most recently heard from first"
    )
    p.add_argument("--state", action="append", help="running, stopped or lost (repeatable)")
    args = p.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    from edgebatch.framework.state import StateStore
    from edgebatch.settings import load_settings

    settings = load_settings(config)
    with StateStore.from_settings(settings) as store:
        store.mark_lost_workers(ttl=settings.worker.lost_after_s)
        now = store.now()
        table = Table(box=None, pad_edge=False)
        for name in ("worker", "state", "queues", "beat", "cpu", "mem", "runs", "its", "exec"):
            table.add_column(name, overflow="fold")
        for w in store.list_workers(state=args.state):
            h = w.health
            table.add_row(
                w.worker_id,
                str(w.state),
                ",".join(w.queues),
                f"{(now - w.heartbeat_at).total_seconds():.0f}s ago",
                _figure(h.get("cpu_percent"), "%"),
                _figure(h.get("memory_percent"), "%"),
                f"{h.get('running_runs', '')}/{h.get('slots', '')}",
                str(h.get("running_iterations", "")),
                str(h.get("executors", "")),
            )
    Console(highlight=False).print(table)
    return 0


def _figure(value: object, unit: str) -> str:
    return f"{value:.0f}{unit}" if isinstance(value, int | float) else ""
