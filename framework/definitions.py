"""Jobs as values: declared once, then run alike from the CLI, spark-submit, a scheduler or the API.

`@job(...)` turns a function into a frozen `Job`; `define_job(...)` builds one from
steps (Python functions, Spark SQL files, commands), so existing batch scripts come in
as they are. Executing a job is the runner's business, not the definition's::

    @job(outputs=["silver/meter_monthly"], partitions=Monthly(start="2026-01"), pool="default")
    def meter_monthly(ctx):
        return ctx.table("bronze/edge_batches").where(ctx.predicate_on("window_start"))...
"""

from __future__ import annotations

import dataclasses
import hashlib
import inspect
import json
import random
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from edgebatch.framework.errors import JobDefinitionError
from edgebatch.framework.notify.contacts import parse_contacts, parse_duration, parse_notify_on
from edgebatch.framework.partitions import Partitioning, Unpartitioned
from edgebatch.framework.scheduler.spec import Schedule
from edgebatch.settings import QUEUE_NAME, QUEUE_NAME_RULE

if TYPE_CHECKING:
    from edgebatch.framework.context import IterationContext

_JOB_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
WriteMode = Literal["replace", "merge", "append"]


@dataclasses.dataclass(frozen=True)
class Retry:
    """Attempts per iteration (the first included) and exponential backoff between them."""

    attempts: int = 3
    backoff_s: float = 5.0
    max_backoff_s: float = 300.0
    jitter: float = 0.2

    def delay(self, failed_attempt: int, rand: Callable[[], float] = random.random) -> float:
        """Seconds to wait after attempt `failed_attempt` (1-based) failed."""
        base = min(self.max_backoff_s, self.backoff_s * 2 ** (failed_attempt - 1))
        return max(0.0, base * (1 + self.jitter * (2 * rand() - 1)))


@dataclasses.dataclass(frozen=True)
class PythonStep:
    """A function over Spark: `fn(ctx)` returns a DataFrame to commit, a dict of them, or None."""

    fn: Callable[[IterationContext], Any]
    name: str = ""

    kind = "python"

    @property
    def label(self) -> str:
        return self.name or self.fn.__name__

    def identity(self) -> str:
        try:
            return inspect.getsource(self.fn)
        except (OSError, TypeError):
            return f"{self.fn.__module__}.{self.fn.__qualname__}"


@dataclasses.dataclass(frozen=True)
class SqlStep:
    """A Spark SQL file; `:partition`, `:start` and `:end` are bound as named parameters.

    Statements are separated by `;` at a line end. If the last one is a query, its
    result is the step's output, committed like a Python step's DataFrame.
    """

    path: Path
    name: str = ""

    kind = "sql"

    @property
    def label(self) -> str:
        return self.name or self.path.name

    def identity(self) -> str:
        return self.path.read_text() if self.path.exists() else str(self.path)


@dataclasses.dataclass(frozen=True)
class CommandStep:
    """An executable or script, run as is; `{partition}`, `{start}`, `{end}` are filled in.

    Its output lines go to the iteration's log; a non-zero exit fails the attempt.
    """

    argv: tuple[str, ...]
    name: str = ""
    env: tuple[tuple[str, str], ...] = ()
    cwd: Path | None = None

    kind = "command"

    @property
    def label(self) -> str:
        return self.name or Path(self.argv[0]).name

    def identity(self) -> str:
        return json.dumps([self.argv, self.env])


Step = PythonStep | SqlStep | CommandStep


def python(fn: Callable[[IterationContext], Any], name: str = "") -> PythonStep:
    return PythonStep(fn=fn, name=name)


def sql(path: str | Path, name: str = "", *, relative_to: str | Path | None = None) -> SqlStep:
    """A SQL step; a relative path is taken from the calling module's folder."""
    p = Path(path)
    if not p.is_absolute():
        base = Path(relative_to) if relative_to else _caller_dir()
        p = base / p
    return SqlStep(path=p, name=name)


def command(
    *argv: str, name: str = "", env: dict[str, str] | None = None, cwd: str | Path | None = None
) -> CommandStep:
    if not argv:
        raise JobDefinitionError("a command step needs a program to run")
    return CommandStep(
        argv=tuple(str(a) for a in argv),
        name=name,
        env=tuple(sorted((env or {}).items())),
        cwd=Path(cwd) if cwd else None,
    )


def _caller_dir() -> Path:
    for frame in inspect.stack()[2:]:
        if frame.filename != __file__:
            return Path(frame.filename).resolve().parent
    return Path.cwd()


@dataclasses.dataclass(frozen=True)
class Job:
    """A job definition. `outputs` are registry table names; `write` says how a step's frame
    is committed per partition: `replace` (Delta replaceWhere on the partition's rows),
    `merge` (insert rows whose key is new) or `append`."""

    name: str
    steps: tuple[Step, ...]
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    write: WriteMode = "replace"
    partitioning: Partitioning = dataclasses.field(default_factory=Unpartitioned)
    pool: str = "default"
    priority: int = 0
    queue: str = "default"
    retry: Retry = dataclasses.field(default_factory=Retry)
    timeout_s: float | None = None
    upstream: tuple[str, ...] = ()
    contacts: tuple[str, ...] = ()
    # What the contacts hear of (framework/notify/contacts.py), and the deadline after a
    # run is queued by which it should have ended: past it, an SLA miss.
    notify_on: tuple[str, ...] = ("failure", "skipped", "sla_miss")
    sla: timedelta | None = None
    tags: tuple[str, ...] = ()
    description: str = ""
    source_file: str = ""
    schedule: Schedule = dataclasses.field(default_factory=Schedule)
    # Iterations one at a time, in partition order: for a job whose partition reads the
    # ones before it (a moving average over earlier months), so a backfill computes each
    # month from finished earlier months whatever `max_parallel_iterations` says.
    in_order: bool = False
    # Up to this many consecutive partitions of a run share one iteration (one read of
    # their inputs, one commit per output): a backfill of a year of months pays the
    # per-iteration cost once instead of twelve times. Each partition keeps its own
    # iteration record; they succeed, fail and are retried together.
    span: int = 1

    def summary(self) -> dict[str, Any]:
        """What the state store and the API show of the definition."""
        extra: dict[str, Any] = {"in_order": True} if self.in_order else {}
        if self.span > 1:
            extra["span"] = self.span
        return extra | {
            "description": self.description,
            "steps": [{"kind": s.kind, "name": s.label} for s in self.steps],
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "write": self.write,
            "partitioning": self.partitioning.describe(),
            "partition_column": self.partitioning.column,
            "pool": self.pool,
            "priority": self.priority,
            "queue": self.queue,
            "retry": dataclasses.asdict(self.retry),
            "timeout_s": self.timeout_s,
            "upstream": list(self.upstream),
            "contacts": list(self.contacts),
            "notify_on": list(self.notify_on),
            "sla_s": self.sla.total_seconds() if self.sla else None,
            "tags": list(self.tags),
            "source_file": self.source_file,
            "schedule": self.schedule.summary(),
        }

    def definition_hash(self) -> str:
        """Changes whenever the definition or a step's code changes."""
        text = json.dumps(
            [self.summary(), repr(self.partitioning), [s.identity() for s in self.steps]],
            sort_keys=True,
            default=str,
        )
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def define_job(
    name: str,
    steps: Sequence[Step | Callable[..., Any]],
    *,
    inputs: Iterable[str] = (),
    outputs: Iterable[str] = (),
    write: WriteMode = "replace",
    partitions: Partitioning | None = None,
    pool: str = "default",
    priority: int = 0,
    queue: str = "default",
    retry: Retry | int | None = None,
    timeout_s: float | None = None,
    upstream: Iterable[str] = (),
    contacts: Iterable[str] = (),
    notify_on: Iterable[str] | None = None,
    sla: str | float | timedelta | None = None,
    tags: Iterable[str] = (),
    description: str = "",
    source_file: str = "",
    schedule: Schedule | None = None,
    in_order: bool = False,
    span: int = 1,
) -> Job:
    """A job from its steps, checked on the spot: errors name the job and the field."""
    if not isinstance(name, str) or not _JOB_NAME.match(name):
        raise JobDefinitionError(
            f"job name {name!r} must be lower case letters, digits and _, starting with a letter"
        )
    built: list[Step] = []
    for step in steps:
        if isinstance(step, PythonStep | SqlStep | CommandStep):
            built.append(step)
        elif callable(step):
            built.append(PythonStep(fn=step))
        else:
            raise JobDefinitionError(f"job {name!r}: step {step!r} is not a function or step")
    if not built:
        raise JobDefinitionError(f"job {name!r} has no steps")
    if not isinstance(queue, str) or not QUEUE_NAME.match(queue):
        raise JobDefinitionError(f"job {name!r}: queue {queue!r} must be {QUEUE_NAME_RULE}")
    if write not in ("replace", "merge", "append"):
        raise JobDefinitionError(f"job {name!r}: write must be replace, merge or append")
    if isinstance(retry, int):
        retry = Retry(attempts=retry + 1)
    retry = retry or Retry()
    if retry.attempts < 1:
        raise JobDefinitionError(f"job {name!r}: retry attempts must be at least 1")
    if timeout_s is not None and timeout_s <= 0:
        raise JobDefinitionError(f"job {name!r}: timeout_s must be positive")
    upstream = tuple(upstream)
    if name in upstream:
        raise JobDefinitionError(f"job {name!r} names itself as upstream")
    schedule = schedule or Schedule()
    if not isinstance(schedule, Schedule):
        raise JobDefinitionError(f"job {name!r}: schedule must be a Schedule, got {schedule!r}")
    schedule.validate(name)
    partitioning = partitions or Unpartitioned()
    if not isinstance(span, int) or isinstance(span, bool) or span < 1:
        raise JobDefinitionError(f"job {name!r}: span must be a whole number of at least 1")
    if span > 1 and type(partitioning).between is Partitioning.between:
        raise JobDefinitionError(
            f"job {name!r}: span={span} needs partitions in an order (daily, monthly); "
            f"{partitioning.kind} partitions have none"
        )
    contacts = tuple([contacts] if isinstance(contacts, str) else contacts)
    parse_contacts(contacts, job=name)
    contacts = tuple(c.strip() for c in contacts)
    if not source_file:
        source_file = _declaring_file()
    first = built[0]
    return Job(
        name=name,
        steps=tuple(built),
        inputs=tuple(inputs),
        outputs=tuple(outputs),
        write=write,
        partitioning=partitioning,
        pool=pool,
        priority=priority,
        queue=queue,
        retry=retry,
        timeout_s=timeout_s,
        upstream=upstream,
        contacts=tuple(dict.fromkeys(contacts)),
        notify_on=tuple(str(e) for e in parse_notify_on(notify_on, job=name)),
        sla=parse_duration(sla, job=name),
        tags=tuple(tags),
        description=description
        or (inspect.getdoc(first.fn) or "" if isinstance(first, PythonStep) else ""),
        source_file=source_file,
        schedule=schedule,
        in_order=bool(in_order),
        span=span,
    )


def _declaring_file() -> str:
    for frame in inspect.stack()[1:]:
        if frame.filename != __file__:
            return str(Path(frame.filename).resolve())
    return ""


def job(
    name: str | None = None,
    *,
    steps: Sequence[Step | Callable[..., Any]] = (),
    **options: Any,
) -> Callable[[Callable[..., Any]], Job]:
    """Decorate a function over an `IterationContext` to declare a job (its last step).

    The decorated name is bound to the `Job`, which is what the registry discovers.
    """

    def wrap(fn: Callable[..., Any]) -> Job:
        options.setdefault("source_file", str(Path(inspect.getfile(fn)).resolve()))
        options.setdefault("description", inspect.getdoc(fn) or "")
        return define_job(name or fn.__name__, [*steps, fn], **options)

    return wrap
