"""Bad schedules are refused when jobs load, naming the job and the field."""

from __future__ import annotations

import pytest

from edgebatch.framework.errors import JobDefinitionError
from edgebatch.framework.registry import JobRegistry
from edgebatch.framework.scheduler import (
    AfterUpstream,
    Cron,
    MinRows,
    Schedule,
    TableVersion,
    Window,
)
from tests.framework.scheduler.conftest import make_job


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        (
            Schedule(triggers=[Cron("61 * * * *")]),
            ["'hourly'", "schedule.triggers[0] (cron)", "61"],
        ),
        (Schedule(triggers=[Cron("not a cron")]), ["'hourly'", "does not parse"]),
        (Schedule(triggers=[Cron("0 * * * *", tz="Mars/Olympus")]), ["unknown time zone", "Mars"]),
        (Schedule(triggers=[Cron("0 * * * *", catch_up="some")]), ["catch_up", "once, all, skip"]),  # type: ignore[arg-type]
        (Schedule(window=Window("22:00", "6am")), ["schedule.window end", "HH:MM"]),
        (Schedule(window=Window("22:00", "06:00", tz="Nowhere/City")), ["window tz", "Nowhere"]),
        (Schedule(max_running=0), ["max_running"]),
        (
            Schedule(triggers=[Cron("0 * * * *"), Cron("0 * * * *")]),
            ["schedule.triggers[1]", "repeats"],
        ),
    ],
)
def test_a_bad_schedule_is_refused_naming_job_and_field(schedule, words):
    with pytest.raises(JobDefinitionError) as err:
        make_job("hourly", schedule=schedule)
    for word in words:
        assert word in str(err.value)


def test_an_unknown_upstream_in_a_trigger_is_refused_when_jobs_load():
    daily = make_job("daily", schedule=Schedule(triggers=[AfterUpstream("bronze_lod")]))
    with pytest.raises(JobDefinitionError, match=r"'daily'.*triggers\[0\].*'bronze_lod'"):
        JobRegistry([daily]).check()


def test_a_trigger_on_an_unknown_table_is_refused_when_jobs_load():
    job = make_job("watcher", schedule=Schedule(triggers=[TableVersion("bronze/edge_batchez")]))
    with pytest.raises(JobDefinitionError, match=r"'watcher'.*unknown table 'bronze/edge_batchez'"):
        JobRegistry([job]).check()
    fine = make_job("watcher2", schedule=Schedule(triggers=[TableVersion("bronze/edge_batches")]))
    JobRegistry([fine]).check()


def test_a_precondition_on_an_unknown_table_is_refused():
    job = make_job("floor", schedule=Schedule(preconditions=[MinRows("silver/nothing", 10)]))
    with pytest.raises(JobDefinitionError, match=r"'floor'.*preconditions\[0\].*silver/nothing"):
        JobRegistry([job]).check()


def test_a_job_output_counts_as_a_known_table():
    writer = make_job("writer", outputs=["silver/things"])
    reader = make_job("reader", schedule=Schedule(triggers=[TableVersion("silver/things")]))
    JobRegistry([writer, reader]).check()
