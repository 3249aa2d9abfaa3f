"""`edgebatch collect`: parse the flags, build the collector, run it until SIGTERM or SIGINT."""

from __future__ import annotations

import argparse
import logging
import signal
import threading

from edgebatch.errors import EdgebatchError

log = logging.getLogger(__name__)

PERSISTENCE_DOC = "docs/collector.md, section 'Broker persistence'"


def persistence_warning(host: str, port: int) -> str:
    """MQTT gives a client no way to ask a broker whether it saves its state (Mosquitto's
    $SYS topics do not say either), and a Mosquitto whose autosaves fail stays up: say so."""
    return (
        f"cannot verify that the broker at {host}:{port} keeps its state on disk: MQTT gives "
        "no way to ask. Without working persistence a broker restart loses this collector's "
        "session and the messages queued for it (the agents resend what has no receipt). "
        f"Check the broker's settings and log as {PERSISTENCE_DOC} says"
    )


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgebatch collect",
        description="Land what the edge agents send: MQTT 5 shared subscription in, durable "
        "landing files out, acknowledgements and receipts only after landing.",
    )
    p.add_argument("--host", help="broker host (default: [mqtt] host)")
    p.add_argument("--port", type=int, help="broker port (default: [mqtt] port)")
    p.add_argument(
        "--client-id",
        help="stable id of this collector's persistent session (default: [mqtt] client_id, "
        "else edgebatch-collector-HOSTNAME); give each collector its own",
    )
    p.add_argument("--group", help="shared subscription group (default: [mqtt] share_group)")
    p.add_argument("--root", help="warehouse root URI (default: [warehouse] root)")
    p.add_argument(
        "--max-messages", type=int, help="land after this many (default: [collector], 5000)"
    )
    p.add_argument(
        "--max-bytes", type=int, help="land after this many bytes (default: [collector], 8 MiB)"
    )
    p.add_argument(
        "--max-age",
        type=float,
        help="land a message held this many seconds (default: [collector], 1.0)",
    )
    p.add_argument(
        "--validation-workers",
        type=int,
        help="processes that check messages beside the network loop (default: [collector], "
        "else one per core but one, at most four; 0 checks in the network thread)",
    )
    p.add_argument("--log-level", default="INFO")
    return p


def main(argv: list[str], config: str | None = None) -> int:
    args = parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    from edgebatch.settings import load_settings
    from edgebatch.warehouse.collector.buffer import FlushPolicy
    from edgebatch.warehouse.collector.config import CollectorConfig
    from edgebatch.warehouse.collector.service import Collector
    from edgebatch.warehouse.landing import open_zone
    from edgebatch.warehouse.uri import WarehouseRoot

    try:
        settings = load_settings(config)
        flush = settings.collector
        collector_config = CollectorConfig.from_settings(
            settings,
            host=args.host,
            port=args.port,
            client_id=args.client_id,
            share_group=args.group,
            policy=FlushPolicy(
                args.max_messages or flush.max_messages,
                args.max_bytes or flush.max_bytes,
                args.max_age or flush.max_age_s,
            ),
            validation_workers=args.validation_workers,
        )
        root = WarehouseRoot.parse(args.root or settings.warehouse_root)
        zone = open_zone(
            root,
            webhdfs_url=settings.warehouse.webhdfs_url,
            hdfs_user=settings.warehouse.hdfs_user,
            writer=collector_config.identity,
        )
    except EdgebatchError as exc:
        print(f"edgebatch collect: {exc}")
        return 2
    log.warning(persistence_warning(collector_config.mqtt.host, collector_config.mqtt.port))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stats = Collector(collector_config, zone).run(stop)
    log.info("collector stopped: %s", stats)
    return 0
