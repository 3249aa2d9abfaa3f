"""`RunRequest`: the one value that asks for work, whoever asks.

The CLI (`edgebatch run`, `retry`, `submit`), a job module under plain spark-submit,
and next the scheduler and the API all build a `RunRequest` and hand it to the
runner or the launcher; nothing else starts a run. A request names what to run, not
how: which partitions (named, a range, or neither for an incremental run), whether to
run again what is already loaded, how urgent it is, who asked and why, and an
optional `run_key` that makes asking twice a no-op::

    RunRequest("device_daily")                                   # incremental
    RunRequest("device_daily", start="2026-11-01", end="2026-11-30", rerun=True)
    RunRequest("bronze_load", trigger=TriggerKind.SCHEDULE, run_key="bronze_load@2026-12-02T10:00")
"""

from __future__ import annotations

import argparse
import dataclasses
import getpass
from collections.abc import Iterable, Mapping
from typing import Any

from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.state import TriggerKind
from edgebatch.settings import QUEUE_NAME, QUEUE_NAME_RULE


class RunRequestError(FrameworkError):
    """A run request that cannot mean anything (partitions and a range at once, ...)."""


@dataclasses.dataclass(frozen=True)
class RunRequest:
    """What to run: `job` over `partitions`, or a `start`..`end` range, or (neither) what is due.

    `priority` and `queue` None mean the job's own. `triggered_by` empty means the user running
    this process. A second request carrying a `run_key` already used returns the run
    the first one made instead of creating another.
    """

    job: str
    partitions: tuple[str, ...] = ()
    start: str | None = None
    end: str | None = None
    rerun: bool = False
    priority: int | None = None
    queue: str | None = None
    trigger: TriggerKind = TriggerKind.CLI
    triggered_by: str = ""
    run_key: str | None = None
    params: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    retry_of: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "partitions", tuple(str(p) for p in self.partitions))
        object.__setattr__(self, "trigger", TriggerKind(self.trigger))
        object.__setattr__(self, "params", dict(self.params))
        if self.partitions and (self.start or self.end):
            raise RunRequestError(
                f"run of job {self.job!r}: give partitions or a --from/--to range, not both"
            )
        if self.queue is not None and not QUEUE_NAME.match(self.queue):
            raise RunRequestError(
                f"run of job {self.job!r}: queue {self.queue!r} must be {QUEUE_NAME_RULE}"
            )
        if self.run_key is not None and not self.run_key.strip():
            raise RunRequestError(f"run of job {self.job!r}: run_key is empty")

    @property
    def incremental(self) -> bool:
        """Neither partitions nor a range: the run does what is due since the last ones."""
        return not self.partitions and not self.start and not self.end

    def requester(self) -> str:
        return self.triggered_by or getpass.getuser()

    def describe(self) -> str:
        """How the request reads in a run's log."""
        if self.partitions:
            what = f"partitions {', '.join(self.partitions)}"
        elif self.start or self.end:
            what = f"range {self.start or self.end}..{self.end or self.start}"
        else:
            what = "what is due (incremental)"
        extra = " with rerun" if self.rerun else ""
        key = f", run_key {self.run_key}" if self.run_key else ""
        return f"{self.trigger} request by {self.requester()} for {what}{extra}{key}"

    def replace(self, **changes: Any) -> RunRequest:
        return dataclasses.replace(self, **changes)


def add_request_arguments(parser: argparse.ArgumentParser) -> None:
    """The command-line options of a request, the same for `edgebatch run|submit` and jobs."""
    parser.add_argument("--partition", action="append", default=[], help="a partition (repeatable)")
    parser.add_argument("--from", dest="start", help="first partition of a backfill range")
    parser.add_argument("--to", dest="end", help="last partition of a backfill range")
    parser.add_argument("--rerun", action="store_true", help="also run partitions already loaded")
    parser.add_argument("--priority", type=int, help="queue priority (default: the job's)")
    parser.add_argument("--queue", help="the queue the run waits in (default: the job's)")
    parser.add_argument(
        "--run-key", help="a name for this request: asking again with it is a no-op"
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a parameter for the job's steps (ctx.params; repeatable)",
    )


def request_from_arguments(
    job: str, args: argparse.Namespace, *, trigger: TriggerKind = TriggerKind.CLI
) -> RunRequest:
    """The request the options of `add_request_arguments` describe."""
    params: dict[str, str] = {}
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise RunRequestError(f"--param {item!r} is not KEY=VALUE")
        params[key] = value
    return RunRequest(
        job,
        partitions=tuple(args.partition),
        start=args.start,
        end=args.end,
        rerun=args.rerun,
        priority=args.priority,
        queue=getattr(args, "queue", None),
        trigger=trigger,
        run_key=args.run_key,
        params=params,
    )


def retry_request(
    job: str,
    run_id: int,
    partitions: Iterable[str],
    params: Mapping[str, Any],
    *,
    triggered_by: str = "",
) -> RunRequest:
    """A new run of the partitions of run `run_id` that did not succeed."""
    return RunRequest(
        job,
        partitions=tuple(partitions),
        trigger=TriggerKind.RETRY,
        triggered_by=triggered_by,
        params=params,
        retry_of=run_id,
    )
