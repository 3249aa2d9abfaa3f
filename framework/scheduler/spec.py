"""What a job declares about when it runs: triggers, a batch window, preconditions, limits.

All values, checked when the job is defined (`Schedule.validate`, called by
`define_job`) and against the other jobs and the tables when the registry loads
(`Schedule.check_references`), so a cron that does not parse, an unknown time zone,
an unknown upstream job or a trigger on an unknown table is refused before any
scheduler starts, naming the job and the field::

    @job(
        upstream=["bronze_load"],
        partitions=Daily(column="date"),
        schedule=Schedule(
            triggers=[AfterUpstream("bronze_load"), Cron("0 2 * * *", tz="Europe/Paris")],
            window=Window("22:00", "06:00", tz="Europe/Paris"),
            preconditions=[TableFresh("bronze/edge_batches", within_s=3600)],
            precondition_deadline_s=4 * 3600,
        ),
    )
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from collections.abc import Collection, Sequence
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from edgebatch.framework.errors import JobDefinitionError

CatchUp = Literal["once", "all", "skip"]
CATCH_UP = ("once", "all", "skip")
_HHMM = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


def zone(name: str, *, job: str, field: str) -> ZoneInfo:
    """The time zone `name`, or a `JobDefinitionError` naming job and field."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise JobDefinitionError(
            f"job {job!r}: {field} names unknown time zone {name!r} "
            "(an IANA name such as 'UTC' or 'Europe/Paris')"
        ) from None


# -- triggers ---------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Cron:
    """Fire at each tick of a cron expression in a time zone (5 fields, or 6 with seconds).

    `catch_up` says what happens to ticks missed while no scheduler ran: `once` (one
    run for the newest missed tick), `all` (a run per missed tick) or `skip` (none;
    only ticks within `grace_s` of their time fire).
    """

    expr: str
    tz: str = "UTC"
    catch_up: CatchUp = "once"
    grace_s: float = 60.0

    kind = "cron"

    @property
    def key(self) -> str:
        return f"cron:{self.expr}@{self.tz}"

    def validate(self, job: str, field: str) -> None:
        from croniter import croniter

        if not isinstance(self.expr, str) or not croniter.is_valid(self.expr):
            raise JobDefinitionError(
                f"job {job!r}: {field} cron expression {self.expr!r} does not parse "
                "(5 fields: minute hour day month weekday, or 6 with seconds last)"
            )
        zone(self.tz, job=job, field=f"{field} tz")
        if self.catch_up not in CATCH_UP:
            raise JobDefinitionError(
                f"job {job!r}: {field} catch_up must be one of {', '.join(CATCH_UP)}, "
                f"got {self.catch_up!r}"
            )

    def ticks_between(self, after: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
        """The ticks t with `after` < t <= `until`, in UTC, oldest first (at most 10,000)."""
        from croniter import croniter

        tz = ZoneInfo(self.tz)
        it = croniter(self.expr, after.astimezone(tz))
        out: list[dt.datetime] = []
        while len(out) < 10_000:
            tick = it.get_next(dt.datetime).astimezone(dt.UTC)
            if tick > until:
                break
            out.append(tick)
        return out

    def next_after(self, after: dt.datetime) -> dt.datetime:
        from croniter import croniter

        tick: dt.datetime = croniter(self.expr, after.astimezone(ZoneInfo(self.tz))).get_next(
            dt.datetime
        )
        return tick.astimezone(dt.UTC)


@dataclasses.dataclass(frozen=True)
class LandingBacklog:
    """Fire when landing files wait to be loaded: `size_bytes` of them, or the oldest `age_s` old.

    The event is the newest waiting file: one run per backlog, and none while a run of
    the job is still queued or running (it takes what lands meanwhile).
    """

    size_bytes: int = 64 << 20
    age_s: float = 60.0

    kind = "landing"

    @property
    def key(self) -> str:
        return "landing"

    def validate(self, job: str, field: str) -> None:
        if self.size_bytes < 1 or self.age_s < 0:
            raise JobDefinitionError(f"job {job!r}: {field} needs size_bytes >= 1 and age_s >= 0")


@dataclasses.dataclass(frozen=True)
class TableVersion:
    """Fire when the Delta table `table` (a registry name) has a new version."""

    table: str

    kind = "table"

    @property
    def key(self) -> str:
        return f"table:{self.table}"

    def validate(self, job: str, field: str) -> None:
        if not self.table:
            raise JobDefinitionError(f"job {job!r}: {field} names no table")


@dataclasses.dataclass(frozen=True)
class AfterUpstream:
    """Fire when a run of job `job` succeeds, for the partitions it wrote in this job's inputs.

    Which partitions: the partition values (this job's partition column) of the data
    files the upstream run's commits added to this job's input tables, read from the
    Delta log. So a daily rollup runs for exactly the days a load touched, days revised
    by late data included. An input partitioned by another column has its values mapped
    by the job's partitioning (`Partitioning.key_of`): a monthly job after a daily one
    runs for the months of the days written. An unpartitioned job, or inputs with no
    partition column that maps, gets an incremental run instead.
    """

    job: str

    kind = "upstream"

    @property
    def key(self) -> str:
        return f"upstream:{self.job}"

    def validate(self, job: str, field: str) -> None:
        if not self.job:
            raise JobDefinitionError(f"job {job!r}: {field} names no upstream job")
        if self.job == job:
            raise JobDefinitionError(f"job {job!r}: {field} triggers the job on itself")


@dataclasses.dataclass(frozen=True)
class Upload:
    """Fire once per file put in the job's uploads folder, `landing/uploads/{job}/`.

    The run gets the file's URI as parameter `upload`. Names starting with `.` or `_`
    are ignored (write under such a name, then rename, as the collector does).
    """

    kind = "upload"

    @property
    def key(self) -> str:
        return "upload"

    def validate(self, job: str, field: str) -> None:
        return None


Trigger = Cron | LandingBacklog | TableVersion | AfterUpstream | Upload
TRIGGER_TYPES = (Cron, LandingBacklog, TableVersion, AfterUpstream, Upload)


# -- windows ----------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Window:
    """Runs may start only between `start` and `end` (HH:MM, local to `tz`; may wrap midnight)."""

    start: str
    end: str
    tz: str = "UTC"

    def validate(self, job: str, field: str) -> None:
        for name, value in (("start", self.start), ("end", self.end)):
            if not isinstance(value, str) or not _HHMM.match(value):
                raise JobDefinitionError(
                    f"job {job!r}: {field} {name} must be HH:MM (24 h), got {value!r}"
                )
        zone(self.tz, job=job, field=f"{field} tz")

    def contains(self, at: dt.datetime) -> bool:
        local = at.astimezone(ZoneInfo(self.tz)).strftime("%H:%M")
        if self.start <= self.end:
            return self.start <= local < self.end
        return local >= self.start or local < self.end

    def describe(self) -> str:
        return f"{self.start}-{self.end} {self.tz}"


@dataclasses.dataclass(frozen=True)
class FreeExecutors:
    """Runs may start only while live workers have room for `min_free` more.

    Room, per worker with a fresh heartbeat: the free executor cores it reports, or else
    its free run slots (slots less runs going), from the health in the workers table.
    """

    min_free: int = 1

    def validate(self, job: str, field: str) -> None:
        if self.min_free < 1:
            raise JobDefinitionError(f"job {job!r}: {field} min_free must be at least 1")

    def describe(self) -> str:
        return f"room on live workers for {self.min_free}"


# -- preconditions ----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class InputsComplete:
    """Each partition of the run has been loaded by job `job` (e.g. a day's bronze is in)."""

    job: str

    def validate(self, job: str, field: str) -> None:
        if not self.job:
            raise JobDefinitionError(f"job {job!r}: {field} names no job")

    def describe(self) -> str:
        return f"partitions loaded by {self.job}"


@dataclasses.dataclass(frozen=True)
class TableFresh:
    """The Delta table `table` has a commit newer than `within_s` seconds."""

    table: str
    within_s: float

    def validate(self, job: str, field: str) -> None:
        if not self.table or self.within_s <= 0:
            raise JobDefinitionError(f"job {job!r}: {field} needs a table and within_s > 0")

    def describe(self) -> str:
        return f"{self.table} written within {self.within_s:g} s"


@dataclasses.dataclass(frozen=True)
class MinRows:
    """The Delta table `table` holds at least `rows` rows (from its log's file statistics)."""

    table: str
    rows: int

    def validate(self, job: str, field: str) -> None:
        if not self.table or self.rows < 0:
            raise JobDefinitionError(f"job {job!r}: {field} needs a table and rows >= 0")

    def describe(self) -> str:
        return f"{self.table} has at least {self.rows} rows"


Precondition = InputsComplete | TableFresh | MinRows


@dataclasses.dataclass(frozen=True)
class Schedule:
    """When a job runs and what must hold before a run of it starts.

    `max_running` caps this job's runs at once (None: no cap). A run whose
    preconditions still fail `precondition_deadline_s` after it was made fails
    (None: it waits for them as long as it takes).
    """

    triggers: Sequence[Trigger] = ()
    window: Window | None = None
    free_executors: FreeExecutors | None = None
    preconditions: Sequence[Precondition] = ()
    precondition_deadline_s: float | None = None
    max_running: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "triggers", tuple(self.triggers))
        object.__setattr__(self, "preconditions", tuple(self.preconditions))

    def validate(self, job: str) -> None:
        """Checks that need no other job nor table: expressions, zones, numbers."""
        keys: set[str] = set()
        for i, trigger in enumerate(self.triggers):
            field = f"schedule.triggers[{i}] ({getattr(trigger, 'kind', type(trigger).__name__)})"
            if not isinstance(
                trigger, Cron | LandingBacklog | TableVersion | AfterUpstream | Upload
            ):
                raise JobDefinitionError(f"job {job!r}: {field} is not a trigger: {trigger!r}")
            trigger.validate(job, field)
            if trigger.key in keys:
                raise JobDefinitionError(f"job {job!r}: {field} repeats trigger {trigger.key}")
            keys.add(trigger.key)
        if self.window is not None:
            self.window.validate(job, "schedule.window")
        if self.free_executors is not None:
            self.free_executors.validate(job, "schedule.free_executors")
        for i, pre in enumerate(self.preconditions):
            pre.validate(job, f"schedule.preconditions[{i}]")
        if self.precondition_deadline_s is not None and self.precondition_deadline_s <= 0:
            raise JobDefinitionError(f"job {job!r}: schedule.precondition_deadline_s must be > 0")
        if self.max_running is not None and self.max_running < 1:
            raise JobDefinitionError(f"job {job!r}: schedule.max_running must be at least 1")

    def check_references(self, job: str, jobs: Collection[str], tables: Collection[str]) -> None:
        """Checks against the registry: upstream jobs and tables the schedule names exist."""
        for i, trigger in enumerate(self.triggers):
            field = f"schedule.triggers[{i}] ({trigger.kind})"
            if isinstance(trigger, AfterUpstream) and trigger.job not in jobs:
                raise JobDefinitionError(
                    f"job {job!r}: {field} names unknown upstream job {trigger.job!r}"
                )
            if isinstance(trigger, TableVersion) and trigger.table not in tables:
                raise JobDefinitionError(
                    f"job {job!r}: {field} is on unknown table {trigger.table!r} "
                    f"(tables: {', '.join(sorted(tables))})"
                )
        for i, pre in enumerate(self.preconditions):
            field = f"schedule.preconditions[{i}]"
            if isinstance(pre, InputsComplete) and pre.job not in jobs:
                raise JobDefinitionError(f"job {job!r}: {field} names unknown job {pre.job!r}")
            if isinstance(pre, TableFresh | MinRows) and pre.table not in tables:
                raise JobDefinitionError(f"job {job!r}: {field} is on unknown table {pre.table!r}")

    @property
    def gated(self) -> bool:
        """Whether a run must pass the scheduler's checks (besides upstream runs) to start."""
        return bool(self.window or self.free_executors or self.preconditions or self.max_running)

    def summary(self) -> dict[str, object]:
        return {
            "triggers": [{"kind": t.kind, **dataclasses.asdict(t)} for t in self.triggers],
            "window": dataclasses.asdict(self.window) if self.window else None,
            "free_executors": self.free_executors.min_free if self.free_executors else None,
            "preconditions": [
                {"kind": type(p).__name__, **dataclasses.asdict(p)} for p in self.preconditions
            ],
            "precondition_deadline_s": self.precondition_deadline_s,
            "max_running": self.max_running,
        }
