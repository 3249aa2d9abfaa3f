"""From triggers to run requests: each firing names its tick or event in a `run_key`.

Evaluating a trigger reads its cursor (how far it was evaluated), decides what fired
since, and returns `Firing`s and the cursor to store once they are enqueued. The
order (enqueue, then move the cursor) and the run keys make a crash anywhere harmless:
a scheduler that takes over evaluates again from the old cursor, and a firing whose
key was used already is a no-op.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import logging
from typing import Any

from edgebatch.framework.definitions import Job
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.scheduler.deltas import Tables, union
from edgebatch.framework.scheduler.spec import (
    AfterUpstream,
    Cron,
    LandingBacklog,
    TableVersion,
    Trigger,
    Upload,
)
from edgebatch.framework.state import StateStore, TriggerKind
from edgebatch.warehouse.landing.zone import LANDING, LandingZone

log = logging.getLogger(__name__)

UPLOADS = "uploads"
RUN_KEY_MAX = 300  # the length of the state store's run_key column
# Delta commit times come from the writer's clock, run times from the store's: some slack.
_COMMIT_SLACK = dt.timedelta(seconds=2)


@dataclasses.dataclass(frozen=True)
class Firing:
    """One tick or event that asks for a run, and the words its log gives for it."""

    request: RunRequest
    why: str


@dataclasses.dataclass(frozen=True)
class Evaluation:
    """What a trigger decided in one pass: firings, and the cursor to store after them."""

    firings: tuple[Firing, ...] = ()
    cursor: dict[str, Any] | None = None


def event_key(prefix: str, name: str) -> str:
    """`prefix` + `name`, or + a digest of `name` when that would not fit the store's run_key."""
    key = f"{prefix}{name}"
    if len(key) <= RUN_KEY_MAX:
        return key
    return f"{prefix}sha256:{hashlib.sha256(name.encode()).hexdigest()}"


def _iso(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse(value: str) -> dt.datetime:
    return dt.datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC)


def evaluate_cron(
    job: Job, trigger: Cron, cursor: dict[str, Any] | None, now: dt.datetime
) -> Evaluation:
    """Ticks since the last one evaluated, per the trigger's catch-up policy (pure).

    With no cursor (the first look) nothing fires: the ticks before a job was first
    scheduled were never missed. The cursor is the newest tick evaluated.
    """
    if cursor is None:
        return Evaluation(cursor={"last": _iso(now)})
    last = _parse(cursor["last"])
    ticks = trigger.ticks_between(last, now)
    if not ticks:
        return Evaluation()
    newest = ticks[-1]
    if trigger.catch_up == "all":
        chosen = ticks
    elif trigger.catch_up == "once":
        chosen = [newest]
    else:
        chosen = [t for t in ticks if (now - t).total_seconds() <= trigger.grace_s]
    missed = len(ticks) - len(chosen)
    firings = []
    for tick in chosen:
        why = f"cron {trigger.expr!r} ({trigger.tz}) tick {_iso(tick)}"
        if missed:
            why += f"; catch-up {trigger.catch_up}: {missed} missed tick(s) not run"
        firings.append(
            Firing(
                RunRequest(
                    job.name,
                    trigger=TriggerKind.SCHEDULE,
                    triggered_by="scheduler",
                    run_key=f"{job.name}@{_iso(tick)}",
                ),
                why,
            )
        )
    return Evaluation(tuple(firings), {"last": _iso(newest)})


class EventSources:
    """Where events come from: the store (upstream runs), Delta tables, the landing zone."""

    def __init__(self, store: StateStore, tables: Tables, zone: LandingZone | None) -> None:
        self.store = store
        self.tables = tables
        self.zone = zone

    def evaluate(
        self, job: Job, trigger: Trigger, cursor: dict[str, Any] | None, now: dt.datetime
    ) -> Evaluation:
        if isinstance(trigger, Cron):
            return evaluate_cron(job, trigger, cursor, now)
        if isinstance(trigger, LandingBacklog):
            return self._landing(job, trigger, now)
        if isinstance(trigger, TableVersion):
            return self._table(job, trigger, cursor)
        if isinstance(trigger, AfterUpstream):
            return self._upstream(job, trigger, cursor)
        return self._uploads(job, trigger)

    # -- landing backlog ------------------------------------------------------------------

    def _landing(self, job: Job, trigger: LandingBacklog, now: dt.datetime) -> Evaluation:
        from edgebatch.warehouse.landing import loads

        if self.zone is None or self.store.has_unfinished_run(job.name):
            return Evaluation()
        loaded = loads.loaded_files(self.zone)
        waiting = [f for f in self.zone.list() if f.name not in loaded]
        if not waiting:
            return Evaluation()
        size = sum(f.size for f in waiting)
        age = max(0.0, now.timestamp() - min(f.mtime for f in waiting))
        if size < trigger.size_bytes and age < trigger.age_s:
            return Evaluation()
        newest = waiting[-1].name  # the zone lists in landing order
        why = (
            f"landing backlog of {len(waiting)} file(s), {size} bytes, oldest {age:.0f} s "
            f"(fires at {trigger.size_bytes} bytes or {trigger.age_s:g} s); newest {newest}"
        )
        request = RunRequest(
            job.name,
            trigger=TriggerKind.EVENT,
            triggered_by="scheduler",
            run_key=event_key(f"{job.name}@landing:", newest),
        )
        return Evaluation((Firing(request, why),))

    # -- new table version ----------------------------------------------------------------

    def _table(self, job: Job, trigger: TableVersion, cursor: dict[str, Any] | None) -> Evaluation:
        version = self.tables.version(trigger.table)
        current = -1 if version is None else version
        if cursor is None:
            return Evaluation(cursor={"version": current})
        if current <= int(cursor["version"]):
            return Evaluation()
        request = RunRequest(
            job.name,
            trigger=TriggerKind.EVENT,
            triggered_by="scheduler",
            run_key=f"{job.name}@table:{trigger.table}:v{current}",
        )
        why = f"table {trigger.table} at version {current} (was {cursor['version']})"
        return Evaluation((Firing(request, why),), {"version": current})

    # -- upstream success -----------------------------------------------------------------

    def _upstream(
        self, job: Job, trigger: AfterUpstream, cursor: dict[str, Any] | None
    ) -> Evaluation:
        oldest = self.store.oldest_unfinished_run_id(trigger.job)
        if cursor is None:
            last = self.store.last_run(trigger.job)
            start = (oldest - 1) if oldest is not None else (last.id if last else 0)
            return Evaluation(cursor={"after_run": start})
        after = int(cursor["after_run"])
        firings = []
        newest = after
        for run in self.store.succeeded_runs_after(trigger.job, after):
            newest = run.id
            firing = self._after(job, trigger, run)
            if firing is not None:
                firings.append(firing)
        # Never move past a run still unfinished: it may succeed later and must be seen.
        if oldest is not None:
            newest = min(newest, max(after, oldest - 1))
        return Evaluation(tuple(firings), {"after_run": newest} if newest != after else None)

    def _after(self, job: Job, trigger: AfterUpstream, run: Any) -> Firing | None:
        key = f"{job.name}@after:{trigger.job}:{run.id}"
        column = job.partitioning.column
        touched: set[str] | None = None
        if column is not None and run.started_at is not None and run.ended_at is not None:
            touched = union(
                self.tables.partitions_written(
                    table,
                    column,
                    run.started_at - _COMMIT_SLACK,
                    run.ended_at + _COMMIT_SLACK,
                    key_of=job.partitioning.key_of,
                )
                for table in job.inputs
            )
        base = f"run {run.id} of {trigger.job} succeeded"
        if touched is None:
            return Firing(
                RunRequest(
                    job.name, trigger=TriggerKind.EVENT, triggered_by="scheduler", run_key=key
                ),
                f"{base} (an incremental run: the partitions it wrote are not known by "
                f"{column or 'partition'})",
            )
        keys = sorted(self._valid(job, touched))
        if not keys:
            log.info("job %s: %s wrote no partition of its inputs; no run", job.name, base)
            return None
        request = RunRequest(
            job.name,
            partitions=tuple(keys),
            trigger=TriggerKind.EVENT,
            triggered_by="scheduler",
            run_key=key,
        )
        return Firing(request, f"{base} and wrote {column} {', '.join(keys)}")

    @staticmethod
    def _valid(job: Job, keys: set[str]) -> set[str]:
        out = set()
        for key in keys:
            # Its own key, or the key of a value it maps (a monthly job's DATE column holds
            # the first day of the month: 2026-11-01 is partition 2026-11).
            own = job.partitioning.key_of(key)
            if own is None:
                log.info("job %s: partition %r written upstream is none of its own", job.name, key)
            else:
                out.add(own)
        return out

    # -- uploads --------------------------------------------------------------------------

    def _uploads(self, job: Job, trigger: Upload) -> Evaluation:
        if self.zone is None:
            return Evaluation()
        folder = self.zone.root.resolve(f"{LANDING}/{UPLOADS}/{job.name}")
        files = sorted(self.zone.store.list_files(folder), key=lambda f: f.path)
        if not files:
            return Evaluation()
        prefix = f"{job.name}@upload:"
        seen = self.store.run_keys_with_prefix(prefix)
        firings = []
        for f in files:
            name = f.path[len(folder) + 1 :]
            key = event_key(prefix, name)
            if key in seen:
                continue
            uri = self.zone.root.uri(f"{LANDING}/{UPLOADS}/{job.name}/{name}")
            request = RunRequest(
                job.name,
                trigger=TriggerKind.EVENT,
                triggered_by="scheduler",
                run_key=key,
                params={"upload": uri},
            )
            firings.append(Firing(request, f"file {name} uploaded ({f.size} bytes)"))
        return Evaluation(tuple(firings))


def uploads_folder(zone_root_uri: str, job: str) -> str:
    """Where files for `job` are uploaded: `{warehouse}/landing/uploads/{job}/`."""
    return f"{zone_root_uri.rstrip('/')}/{LANDING}/{UPLOADS}/{job}/"


def next_fire(trigger: Trigger, cursor: dict[str, Any] | None, now: dt.datetime) -> str:
    """When a trigger fires next, in words for `edgebatch schedule`."""
    if isinstance(trigger, Cron):
        return _iso(trigger.next_after(now))
    if isinstance(trigger, LandingBacklog):
        return f"when landing files reach {trigger.size_bytes} bytes or {trigger.age_s:g} s"
    if isinstance(trigger, TableVersion):
        seen = "" if cursor is None else f" (seen v{cursor['version']})"
        return f"on a new version of {trigger.table}{seen}"
    if isinstance(trigger, AfterUpstream):
        seen = "" if cursor is None else f" (seen up to run {cursor['after_run']})"
        return f"after a successful run of {trigger.job}{seen}"
    return f"on a file in {LANDING}/{UPLOADS}/<job>/"
