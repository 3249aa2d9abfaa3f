"""The job commands of `edgebatch`: jobs, run, submit, runs, logs, retry, cancel.

Thin: each parses its arguments, calls the runner, launcher or store, and prints. Exit
status 0 means the run succeeded, 1 that it did not, 2 a usage or config error.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.state import Run, StateStore
    from edgebatch.settings import Settings


def _context(config: str | None) -> tuple[Settings, StateStore]:
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import load_settings

    settings = load_settings(config)
    return settings, StateStore.from_settings(settings)


def _registry(settings: Settings) -> JobRegistry:
    from edgebatch.framework.registry import discover

    return discover(settings)


def _console():
    from rich.console import Console

    return Console(highlight=False)


def _request_args(p: argparse.ArgumentParser) -> None:
    from edgebatch.framework.requests import add_request_arguments

    add_request_arguments(p)


def _reap(store: StateStore, settings: Settings) -> None:
    fw = settings.framework
    store.reap_orphans(unleased_grace=fw.lease_ttl_s * 2, queued_ttl=fw.queued_ttl_s)


def jobs(argv: list[str], config: str | None) -> int:
    argparse.ArgumentParser(prog="edgebatch jobs", description="list the jobs").parse_args(argv)
    from rich.table import Table

    settings, store = _context(config)
    registry = _registry(settings)
    table = Table("job", "partitions", "pool", "priority", "upstream", "outputs", "last run")
    for job in registry:
        last = store.list_runs(job=job.name, limit=1)
        table.add_row(
            job.name,
            job.partitioning.describe(),
            job.pool,
            str(job.priority),
            ", ".join(job.upstream),
            ", ".join(job.outputs),
            f"{last[0].id} {last[0].state}" if last else "",
        )
    _console().print(table)
    return 0


def run(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(prog="edgebatch run", description="run a job in this process")
    p.add_argument("job")
    _request_args(p)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    from edgebatch.cli.spark import quiet_session
    from edgebatch.framework.planning import plan_partitions
    from edgebatch.framework.requests import request_from_arguments
    from edgebatch.framework.runner import Runner

    settings, store = _context(config)
    registry = _registry(settings)
    request = request_from_arguments(args.job, args)
    # Refuse an unknown job or a bad partition before paying for a Spark session.
    plan_partitions(registry.get(args.job), request)
    spark = quiet_session(settings)
    runner = Runner(spark, store, settings, registry)
    try:
        started = runner.submit(request)
        final = _follow(runner, store, started.id, quiet=args.quiet)
    except KeyboardInterrupt:
        runner.close(cancel=True)
        return 130
    runner.close(cancel=False)
    return _report(store, final)


def _follow(runner, store: StateStore, run_id: int, *, quiet: bool) -> Run:
    """Wait for a run, with a progress bar of iterations and Spark tasks."""
    if quiet or not sys.stdout.isatty():
        return runner.wait(run_id)
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from edgebatch.framework.state import ITERATION_MOVES

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[tasks]}"),
    ) as bar:
        task = bar.add_task(f"run {run_id}", total=None, tasks="")
        while True:
            final = runner.wait(run_id, timeout=0.5)
            its = store.list_iterations(run_id)
            done = sum(1 for i in its if i.state not in ITERATION_MOVES)
            tasks = f"tasks {sum(i.tasks_done for i in its)}/{sum(i.tasks_total for i in its)}"
            bar.update(task, total=len(its) or None, completed=done, tasks=tasks)
            if final.finished:
                return final


def _report(store: StateStore, run: Run) -> int:
    from rich.table import Table

    from edgebatch.framework.state import RunState

    table = Table("partition", "state", "attempts", "rows out", "seconds", "error")
    for it in store.list_iterations(run.id):
        secs = (
            f"{(it.ended_at - it.started_at).total_seconds():.1f}"
            if it.started_at and it.ended_at
            else ""
        )
        table.add_row(
            it.partition_key,
            str(it.state),
            str(it.attempts),
            "" if it.rows_out is None else str(it.rows_out),
            secs,
            (it.error or "")[:80],
        )
    console = _console()
    console.print(table)
    console.print(
        f"run {run.id} of {run.job}: {run.state}" + (f": {run.error}" if run.error else "")
    )
    return 0 if run.state == RunState.SUCCEEDED else 1


def submit(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch submit", description="run a job as its own spark-submit application"
    )
    p.add_argument("job")
    _request_args(p)
    p.add_argument("--master", help="spark://host:7077, yarn, local[*] (default: the config's)")
    p.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--quiet", action="store_true", help="do not echo the driver's output")
    args = p.parse_args(argv)
    from edgebatch.framework.launcher import submit as launch
    from edgebatch.framework.requests import request_from_arguments

    conf = {}
    for item in args.conf:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--conf {item!r} is not KEY=VALUE")
        conf[key] = value
    settings, store = _context(config)
    job = _registry(settings).get(args.job)
    final, code = launch(
        job,
        request_from_arguments(job.name, args),
        settings,
        store,
        master=args.master,
        conf=conf,
        config_file=config or (settings.source if settings.source != "defaults" else None),
        echo=not args.quiet,
    )
    _report(store, final)
    return code if code else (0 if final.state == "succeeded" else 1)


def runs(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(prog="edgebatch runs", description="list runs, newest first")
    p.add_argument("--job")
    p.add_argument("--state", action="append", help="queued, running, succeeded, failed, ...")
    p.add_argument("--limit", type=int, default=30)
    args = p.parse_args(argv)
    settings, store = _context(config)
    _reap(store, settings)
    listed = store.list_runs(job=args.job, state=args.state, limit=args.limit)
    console = _console()
    console.print(runs_table(store, listed, width=console.width))
    return 0


def runs_table(store: StateStore, listed: list[Run], *, width: int):
    """Runs as a table that fits `width`: id, job, state, partitions done/total and start
    are never cut; trigger, requester, end and error come along only while they fit."""
    from rich.console import Console
    from rich.table import Table

    from edgebatch.framework.state import IterationState

    counts = store.iteration_counts(r.id for r in listed)
    essential = {
        "run": [str(r.id) for r in listed],
        "job": [r.job for r in listed],
        "state": [str(r.state) for r in listed],
        "done": [
            f"{counts[r.id].get(IterationState.SUCCEEDED, 0)}/{len(r.partitions)}" for r in listed
        ],
        "started": [f"{r.started_at:%Y-%m-%d %H:%M}" if r.started_at else "" for r in listed],
    }
    optional = {
        "trigger": [
            r.trigger + (f" (retry of {r.retry_of})" if r.retry_of else "") for r in listed
        ],
        "by": [r.triggered_by for r in listed],
        "ended": [f"{r.ended_at:%H:%M:%S}" if r.ended_at else "" for r in listed],
        "error": [(r.error or "")[:60] for r in listed],
    }
    measure = Console(width=width)

    def build(extra: list[str]) -> Table:
        table = Table(box=None, pad_edge=False)
        for name in essential:
            table.add_column(name, no_wrap=True, overflow="fold")
        for name in extra:
            table.add_column(name, overflow="fold")
        for i in range(len(listed)):
            table.add_row(*(essential[n][i] for n in essential), *(optional[n][i] for n in extra))
        return table

    chosen: list[str] = []
    for name in optional:
        wider = build([*chosen, name])
        if measure.measure(wider).maximum <= width:
            chosen.append(name)
    return build(chosen)


def logs(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(prog="edgebatch logs", description="print a run's log")
    p.add_argument("run", type=int)
    p.add_argument("--follow", "-f", action="store_true", help="keep printing until it ends")
    p.add_argument("--iteration", type=int, help="only this iteration's lines")
    args = p.parse_args(argv)
    settings, store = _context(config)
    store.get_run(args.run)
    names = {i.id: i.partition_key for i in store.list_iterations(args.run)}
    cursor = 0
    while True:
        lines = store.read_logs(args.run, after_id=cursor, iteration_id=args.iteration)
        for line in lines:
            if line.iteration_id and line.iteration_id not in names:
                names = {i.id: i.partition_key for i in store.list_iterations(args.run)}
            where = (
                f" [{names.get(line.iteration_id, line.iteration_id)}]" if line.iteration_id else ""
            )
            print(f"{line.ts:%Y-%m-%d %H:%M:%S} {line.level:<7}{where} {line.message}", flush=True)
            cursor = line.id
        if lines:
            continue
        if not args.follow or store.get_run(args.run).finished:
            return 0
        _reap(store, settings)
        time.sleep(0.5)


def retry(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch retry", description="run again only the partitions a run did not finish"
    )
    p.add_argument("run", type=int)
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args(argv)
    from edgebatch.cli.spark import quiet_session
    from edgebatch.framework.runner import Runner

    settings, store = _context(config)
    registry = _registry(settings)
    spark = quiet_session(settings)
    runner = Runner(spark, store, settings, registry)
    started = runner.retry(args.run)
    final = _follow(runner, store, started.id, quiet=args.quiet)
    runner.close(cancel=False)
    return _report(store, final)


def cancel(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch cancel", description="cancel a queued or running run"
    )
    p.add_argument("run", type=int)
    args = p.parse_args(argv)
    from edgebatch.framework.enqueue import cancel_run

    _, store = _context(config)
    run = store.get_run(args.run)
    if run.finished:
        print(f"run {run.id} has already ended: {run.state}")
        return 0
    run = cancel_run(store, run.id)
    print(f"run {run.id} of {run.job}: {run.state} (its process stops at its next heartbeat)")
    return 0
