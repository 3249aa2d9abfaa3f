"""The `edgebatch` command: parses arguments and calls the library, nothing more.

Every subcommand imports what it needs when it runs, so `edgebatch agent` works on a
device where only the base install (no pyspark) is present.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable


def _agent(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.edge.cli import main as agent_main

    return agent_main(rest)


def _collect(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.warehouse.collector.cli import main as collect_main

    return collect_main(rest, config=args.config)


def _demo(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.demo import run_demo

    return run_demo(config=args.config, argv=rest)


def _tables(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.tables_report import print_tables

    return print_tables(config=args.config)


def _migrate(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import load_settings

    store = StateStore.from_settings(load_settings(args.config), upgrade=False)
    with store:
        before = store.revision()
        after = store.upgrade()
    change = "already there" if before == after else f"was {before or 'empty'}"
    print(f"state store {store!r}: revision {after} ({change})")
    return 0


def _api(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.api import main as api_main

    return api_main(rest, args.config)


def _worker(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.worker import main as worker_main

    return worker_main(rest, args.config)


def _workers(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.worker import list_workers

    return list_workers(rest, args.config)


def _notify(args: argparse.Namespace, rest: list[str]) -> int:
    from edgebatch.cli.notify import main as notify_main

    return notify_main(rest, args.config)


def _job_command(name: str) -> Handler:
    def handler(args: argparse.Namespace, rest: list[str]) -> int:
        from edgebatch.cli import commands

        return getattr(commands, name)(rest, args.config)

    return handler


def _scheduling(name: str) -> Handler:
    def handler(args: argparse.Namespace, rest: list[str]) -> int:
        from edgebatch.cli import scheduling

        return getattr(scheduling, name)(rest, args.config)

    return handler


Handler = Callable[[argparse.Namespace, list[str]], int]

# name -> (help, handler, takes the rest of the command line as its own arguments)
COMMANDS: dict[str, tuple[str, Handler, bool]] = {
    "agent": ("run the edge agent (edgebatch agent --config agent.toml)", _agent, True),
    "collect": ("land what the agents send (edgebatch collect [--help])", _collect, True),
    "demo": ("the whole platform on simulated devices (--once: check and exit)", _demo, True),
    "tables": ("list the declared Delta tables, their versions and row counts", _tables, False),
    "migrate": ("create or upgrade the state store's tables", _migrate, False),
    "jobs": ("list the jobs the registry discovers", _job_command("jobs"), True),
    "run": ("run a job in this process (--partition, --from/--to)", _job_command("run"), True),
    "submit": ("run a job as its own spark-submit application", _job_command("submit"), True),
    "runs": ("list runs (--job, --state)", _job_command("runs"), True),
    "logs": ("print a run's log (--follow)", _job_command("logs"), True),
    "retry": ("run again only the partitions a run did not finish", _job_command("retry"), True),
    "cancel": ("cancel a queued or running run", _job_command("cancel"), True),
    "scheduler": ("the manager: triggers, dependencies, a standby", _scheduling("scheduler"), True),
    "schedule": ("jobs with their next fire times and last run", _scheduling("schedule"), True),
    "trigger": ("ask for a run now (--partition P ...)", _scheduling("trigger"), True),
    "api": ("serve the REST API; manage its users and tokens", _api, True),
    "worker": ("claim and run queued runs (--queue Q ..., --slots N)", _worker, True),
    "workers": ("list workers, their queues and health (--state)", _workers, True),
    "notify": ("notify job contacts of outcomes and SLA misses (--once)", _notify, True),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgebatch", description=__doc__.splitlines()[0])
    p.add_argument(
        "--config", help="project config file (default: $EDGEBATCH_CONFIG, ./edgebatch.toml)"
    )
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (help_text, _, passthrough) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, add_help=not passthrough)
        sp.set_defaults(passthrough=passthrough)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args, rest = parser().parse_known_args(argv)
    if rest and not args.passthrough:
        parser().error(f"unrecognized arguments: {' '.join(rest)}")
    from edgebatch.errors import EdgebatchError

    try:
        return COMMANDS[args.command][1](args, rest)
    except EdgebatchError as exc:
        print(f"edgebatch {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
