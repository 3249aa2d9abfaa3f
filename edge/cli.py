"""`edgebatch agent --config agent.toml`: parse arguments, load the config, run the agent.

A thin shell over `edgebatch.edge.agent`; exit codes: 0 done, 1 the agent failed,
2 the config or the arguments are wrong (the message names the key and the file).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys

from edgebatch.errors import ConfigError, EdgebatchError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="edgebatch agent",
        description="Run the edge agent: window summaries, alarms and health over MQTT.",
    )
    p.add_argument("--config", required=True, help="the agent's TOML file (EDGEBATCH_* override)")
    p.add_argument("--check", action="store_true", help="check the config and exit")
    p.add_argument(
        "--log-level",
        choices=("DEBUG", "INFO", "WARNING", "ERROR"),
        help="default: [agent] log_level of the config",
    )
    p.add_argument(
        "--until-drained",
        action="store_true",
        help="exit once the sources are exhausted and everything sent has a receipt",
    )
    return p


def main(argv: list[str]) -> int:
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    from edgebatch.edge.config import load

    try:
        config = load(args.config)
    except ConfigError as exc:
        print(f"edgebatch agent: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(
        level=args.log_level or config.agent.log_level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if args.check:
        kinds = ", ".join(s.kind for s in config.sources)
        print(
            f"{args.config}: ok; device {config.agent.tenant}/{config.agent.device}, "
            f"sources {kinds}, {len(config.alarms)} alarm rule(s), "
            f"broker {config.mqtt.host}:{config.mqtt.port}"
        )
        return 0
    from edgebatch.edge.agent import Agent

    try:
        agent = Agent(config)
        return agent.run(until_drained=args.until_drained)
    except (EdgebatchError, OSError, sqlite3.Error) as exc:
        # A data_dir that cannot be written, a full disk: say so in one line for the journal.
        logging.getLogger("edgebatch.edge").error(
            "agent stopped (data_dir %s): %s", config.agent.data_dir, exc
        )
        return 1
