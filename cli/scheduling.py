"""`edgebatch scheduler`, `edgebatch schedule` and `edgebatch trigger`: parse, call, print."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import signal
import threading
from typing import Any


def scheduler(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch scheduler",
        description="the manager: evaluates triggers and holds runs until they may start; "
        "start two against one PostgreSQL store and the second stands by",
    )
    p.add_argument("--holder", help="this scheduler's name in the leader lease")
    p.add_argument("--once", action="store_true", help="one pass, then exit")
    p.add_argument(
        "--pause",
        action="append",
        default=[],
        metavar="JOB",
        help="do not evaluate this job's triggers (added to [scheduler] paused; repeatable)",
    )
    args = p.parse_args(argv)
    from edgebatch.cli.commands import _context, _registry
    from edgebatch.framework.scheduler.loop import Scheduler

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    settings, store = _context(config)
    registry = _registry(settings)
    paused = (*settings.scheduler.paused, *args.pause)
    unknown = sorted(set(paused) - {job.name for job in registry})
    if unknown:
        p.error(f"--pause / [scheduler] paused names no job: {', '.join(unknown)}")
    settings = dataclasses.replace(
        settings, scheduler=dataclasses.replace(settings.scheduler, paused=paused)
    )
    if paused:
        logging.getLogger(__name__).info("paused (triggers not evaluated): %s", ", ".join(paused))
    from edgebatch.framework.registry import record_job

    for job in registry:
        record_job(store, job)
    from edgebatch.framework.notify.dispatcher import Dispatcher

    sched = Scheduler(store, registry, settings, holder=args.holder)
    # Contacts hear of outcomes from every scheduler process, standby included: each event
    # is recorded once per run and deliveries are claimed in the store, in a thread of
    # their own so delivery never delays a scheduling pass.
    notifier = Dispatcher(store, registry, settings)
    if args.once:
        report = sched.step()
        notifier.run_once()
        print(
            f"leader={report.leader} enqueued={report.enqueued} released={report.released} "
            f"skipped={report.skipped} failed={report.failed} waiting={report.waiting}"
        )
        sched.resign()
        return 0
    stop = threading.Event()

    def _stop(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    logging.getLogger(__name__).info(
        "scheduler %s on %r: %d job(s), a pass every %g s, lease %g s",
        sched.holder,
        store,
        len(registry),
        settings.scheduler.loop_interval_s,
        settings.scheduler.lease_ttl_s,
    )
    notifier.start()
    try:
        sched.run(stop)
    finally:
        notifier.stop(timeout=settings.notify.timeout_s * 4 + 10)
    return 0


def schedule(argv: list[str], config: str | None) -> int:
    argparse.ArgumentParser(
        prog="edgebatch schedule",
        description="jobs with their triggers, next fire times and last run",
    ).parse_args(argv)
    import datetime as dt

    from rich.table import Table

    from edgebatch.cli.commands import _console, _context, _registry
    from edgebatch.framework.scheduler.triggers import next_fire

    settings, store = _context(config)
    registry = _registry(settings)
    now = dt.datetime.now(dt.UTC)
    cursors = store.cursors()
    leader = store.get_leadership(settings.scheduler.lease_name)
    table = Table("job", "trigger", "next", "upstream", "window", "last run")
    for job in registry:
        last = store.last_run(job.name)
        last_text = (
            f"{last.id} {last.state}" + (f" ({last.error})" if last and last.error else "")
            if last
            else ""
        )
        window = job.schedule.window.describe() if job.schedule.window else ""
        triggers = job.schedule.triggers or ()
        if not triggers:
            table.add_row(job.name, "manual", "", ", ".join(job.upstream), window, last_text)
        for i, trigger in enumerate(triggers):
            table.add_row(
                job.name if i == 0 else "",
                trigger.key,
                next_fire(trigger, cursors.get((job.name, trigger.key)), now),
                ", ".join(job.upstream) if i == 0 else "",
                window if i == 0 else "",
                last_text if i == 0 else "",
            )
    console = _console()
    console.print(table)
    if leader is None or leader.expires_at < now:
        console.print("no scheduler leads: start `edgebatch scheduler`")
    else:
        console.print(
            f"leader: {leader.holder} (term {leader.term}, lease until "
            f"{leader.expires_at:%H:%M:%S} UTC)"
        )
    return 0


def trigger(argv: list[str], config: str | None) -> int:
    p = argparse.ArgumentParser(
        prog="edgebatch trigger",
        description="ask for a run of a job now; a worker (or, for jobs with upstream jobs, "
        "windows or preconditions, the scheduler first) picks it up",
    )
    p.add_argument("job")
    from edgebatch.framework.requests import add_request_arguments, request_from_arguments

    add_request_arguments(p)
    args = p.parse_args(argv)
    import uuid

    from edgebatch.cli.commands import _context, _registry
    from edgebatch.framework.scheduler.enqueue import enqueue
    from edgebatch.framework.state import TriggerKind

    settings, store = _context(config)
    job = _registry(settings).get(args.job)
    request = request_from_arguments(job.name, args, trigger=TriggerKind.CLI)
    if request.run_key is None:
        request = request.replace(run_key=f"{job.name}@manual:{uuid.uuid4().hex[:16]}")
    done = enqueue(
        store,
        job,
        request,
        why=f"manual trigger by {request.requester()}",
        limits=settings.scheduler,
    )
    if not done.created:
        print(
            f"run {done.run.id} of {job.name} exists for run key {request.run_key} "
            f"({done.run.state}); nothing new"
        )
        return 0
    held = " (held until the scheduler's checks pass)" if done.held else ""
    print(f"run {done.run.id} of {job.name} queued{held}: edgebatch logs {done.run.id} --follow")
    return 0
