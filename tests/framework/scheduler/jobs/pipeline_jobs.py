"""Two jobs after the daily rollup, for the scheduler's pipeline test: a check that fails,
and a report that needs the check, so it must be skipped."""

from __future__ import annotations

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.partitions import Daily
from edgebatch.framework.scheduler import AfterUpstream, Schedule


@job(
    inputs=["silver/device_daily"],
    partitions=Daily(column="date"),
    upstream=["device_daily"],
    retry=Retry(attempts=1),
    schedule=Schedule(triggers=[AfterUpstream("device_daily")]),
)
def daily_check(ctx) -> None:
    """A quality check that finds every day wrong."""
    raise RuntimeError(f"check of {ctx.partition} found the day incomplete")


@job(
    inputs=["silver/device_daily"],
    partitions=Daily(column="date"),
    upstream=["daily_check"],
    schedule=Schedule(triggers=[AfterUpstream("device_daily")]),
)
def daily_report(ctx) -> None:
    """A report that must not go out on unchecked days."""
