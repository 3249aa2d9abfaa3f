"""The declarations the monthly gold jobs share, written once: the job's and its tables'.

A gold job of the project's examples reads what an upstream job wrote, computes one
calendar month per iteration (partition column `month`), retries three times ten seconds
apart, may run an hour, and is queued by the scheduler whenever its upstream job has
succeeded. Only what differs is left to each job: its inputs, outputs, area tag and
priority::

    @monthly_gold("fleet", inputs=["silver/readings"], outputs=[FLEET_DAILY.name])
    def fleet(ctx): ...

Their tables are partitioned by tenant and month, and each says whose rows it holds (a
subject column: consent gate and erasure) or why it holds nobody's (`monthly_table`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from edgebatch.framework.consent import subject_bearing, subject_free
from edgebatch.framework.definitions import Job, Retry, job
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.warehouse.tables import TableSpec, declare


def monthly_gold(
    area: str,
    *,
    inputs: Iterable[str],
    outputs: Iterable[str],
    after: str = "silver_readings",
    priority: int = 40,
    **options: Any,
) -> Callable[[Callable[..., Any]], Job]:
    """`@job(...)` for a monthly gold job of `area` (its second tag) that runs after the
    upstream job `after`; `options` are any other `job` arguments, or ones to override."""
    return job(
        **{
            "inputs": list(inputs),
            "outputs": list(outputs),
            "partitions": Monthly(column="month"),
            "pool": "default",
            "priority": priority,
            "retry": Retry(attempts=3, backoff_s=10),
            "timeout_s": 3600,
            "upstream": (after,),
            "tags": ("gold", area),
            "schedule": Schedule(triggers=[AfterUpstream(after)]),
            **options,
        }
    )


def monthly_table(
    name: str,
    schema: str,
    *,
    keys: Iterable[str],
    comment: str,
    subject: str = "",
    no_subject: str = "",
) -> TableSpec:
    """Declare a gold table partitioned by (tenant, month), with either `subject`, the
    column naming the person or thing its rows are about (`subject_bearing`), or
    `no_subject`, why it holds no one's data (`subject_free`)."""
    if bool(subject) == bool(no_subject):
        raise ValueError(f"table {name!r}: give either subject or no_subject")
    spec = declare(name, schema, partition_by=("tenant", "month"), keys=keys, comment=comment)
    if subject:
        subject_bearing(spec.name, subject=subject)
    else:
        subject_free(spec.name, no_subject)
    return spec
