"""A job after an upstream partitioned otherwise fires for its own keys of what was written:
a monthly job after a daily one runs for the months of the days the daily run wrote."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from edgebatch.framework.partitions import ByValue, Daily, Monthly, Unpartitioned
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.framework.scheduler.loop import Scheduler
from edgebatch.framework.state import StateStore
from tests.framework.scheduler.conftest import make_job


@pytest.mark.parametrize(
    ("partitioning", "value", "key"),
    [
        (Monthly(column="month"), "2026-11-14", "2026-11"),
        (Monthly(column="month"), "2026-11-14 23:59:59", "2026-11"),
        (Monthly(column="month"), "2026-11", "2026-11"),
        (Monthly(column="month"), "demo-water", None),
        (Monthly(column="month"), "2026-13-01", None),
        (Monthly(column="month"), "2026-11-xx", None),
        (Daily(column="day"), "2026-11-14", "2026-11-14"),
        (Daily(column="day"), "2026-11-14T08:00:00", "2026-11-14"),
        (Daily(column="day"), "2026-11-140", None),
        (Daily(column="day"), "demo-water", None),
        (ByValue(column="site", values=("north",)), "north", "north"),
        (ByValue(column="site", values=("north",)), "south", None),
        (Unpartitioned(), "2026-11-14", None),
    ],
)
def test_a_partitioning_maps_an_upstream_value_to_its_own_key_or_to_none(partitioning, value, key):
    assert partitioning.key_of(value) == key


def _write(location: Path, rows: list[tuple[str, dt.date]]) -> None:
    import pyarrow as pa
    from deltalake import write_deltalake

    tenants, dates = zip(*rows, strict=True)
    table = pa.table(
        {"tenant": list(tenants), "date": pa.array(dates, pa.date32()), "v": list(range(len(rows)))}
    )
    write_deltalake(str(location), table, partition_by=["tenant", "date"], mode="append")


def test_a_monthly_job_after_a_daily_one_fires_for_the_months_of_the_days_written(
    settings, tmp_path
):
    # Real times: Delta stamps commits with the wall clock; `later` moves the store's
    # clock past the commits for a run that wrote nothing.
    later = [dt.timedelta(0)]
    real = StateStore(
        f"sqlite:///{tmp_path / 'real.db'}", clock=lambda: dt.datetime.now(dt.UTC) + later[0]
    )
    location = Path(settings.warehouse_root.removeprefix("file://")) / "silver" / "readings"
    silver = make_job("silver", outputs=["silver/readings"], partitions=Daily(column="date"))
    gold = make_job(
        "gold",
        inputs=["silver/readings"],
        upstream=["silver"],
        partitions=Monthly(column="month"),
        schedule=Schedule(triggers=[AfterUpstream("silver")]),
    )
    scheduler = Scheduler(real, JobRegistry([silver, gold]).check(), settings, holder="s")
    scheduler.step()  # first look

    first = real.create_run("silver", partitions=["2026-11-30", "2026-12-01"])
    real.transition_run(first.id, "running")
    # Two tenants, the last day of November and the first of December.
    _write(
        location,
        [
            ("acme", dt.date(2026, 11, 30)),
            ("acme", dt.date(2026, 12, 1)),
            ("globex", dt.date(2026, 11, 30)),
        ],
    )
    real.transition_run(first.id, "succeeded")
    scheduler.step()
    (down,) = real.list_runs(job="gold")
    assert down.partitions == ("2026-11", "2026-12")
    assert down.run_key == f"gold@after:silver:{first.id}"
    log = [line.message for line in real.read_logs(down.id)]
    wrote = f"run {first.id} of silver succeeded and wrote month 2026-11, 2026-12"
    assert any(wrote in m for m in log)

    # A run that wrote nothing to the input starts no monthly run at all.
    later[0] = dt.timedelta(minutes=5)
    idle = real.create_run("silver", partitions=["2026-12-02"])
    real.transition_run(idle.id, "running")
    real.transition_run(idle.id, "succeeded")
    scheduler.step()
    assert len(real.list_runs(job="gold")) == 1
    real.close()


def test_an_input_with_no_partition_column_that_maps_gets_an_incremental_run(settings, tmp_path):
    import pyarrow as pa
    from deltalake import write_deltalake

    real = StateStore(f"sqlite:///{tmp_path / 'real.db'}")
    location = Path(settings.warehouse_root.removeprefix("file://")) / "silver" / "sites"
    write_deltalake(str(location), pa.table({"site": ["north"], "v": [1]}), partition_by=["site"])
    loader = make_job("loader", outputs=["silver/sites"])
    gold = make_job(
        "gold",
        inputs=["silver/sites"],
        upstream=["loader"],
        partitions=Monthly(column="month"),
        schedule=Schedule(triggers=[AfterUpstream("loader")]),
    )
    scheduler = Scheduler(real, JobRegistry([loader, gold]).check(), settings, holder="s")
    scheduler.step()
    run = real.create_run("loader")
    real.transition_run(run.id, "running")
    write_deltalake(str(location), pa.table({"site": ["south"], "v": [2]}), mode="append")
    real.transition_run(run.id, "succeeded")
    scheduler.step()
    (down,) = real.list_runs(job="gold")
    # The sites say nothing about months: an incremental run, which takes the current month.
    assert down.run_key == f"gold@after:loader:{run.id}"
    assert any(
        "an incremental run: the partitions it wrote are not known by month" in line.message
        for line in real.read_logs(down.id)
    )
    real.close()


def test_a_monthly_job_after_a_monthly_one_fires_for_the_months_of_its_date_column(
    settings, tmp_path
):
    """A gold table's `month` is a DATE, the first day of the month: a report job after
    the job writing it runs for 2026-11, not for nothing."""
    import pyarrow as pa
    from deltalake import write_deltalake

    real = StateStore(f"sqlite:///{tmp_path / 'real.db'}")
    location = Path(settings.warehouse_root.removeprefix("file://")) / "gold" / "bills"
    billing = make_job("billing", outputs=["gold/bills"], partitions=Monthly(column="month"))
    reports = make_job(
        "reports",
        inputs=["gold/bills"],
        upstream=["billing"],
        partitions=Monthly(column="month"),
        schedule=Schedule(triggers=[AfterUpstream("billing")]),
    )
    scheduler = Scheduler(real, JobRegistry([billing, reports]).check(), settings, holder="s")
    scheduler.step()
    run = real.create_run("billing", partitions=["2026-11"])
    real.transition_run(run.id, "running")
    table = pa.table(
        {"tenant": ["w"], "month": pa.array([dt.date(2026, 11, 1)], pa.date32()), "v": [1]}
    )
    write_deltalake(str(location), table, partition_by=["tenant", "month"])
    real.transition_run(run.id, "succeeded")
    scheduler.step()
    (down,) = real.list_runs(job="reports")
    assert down.partitions == ("2026-11",)
    real.close()
