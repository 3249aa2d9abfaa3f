"""Partition planning is a value: which partitions run, and a reason for every one left out."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebatch.framework.definitions import define_job
from edgebatch.framework.errors import PartitionError
from edgebatch.framework.partitions import Daily, Monthly
from edgebatch.framework.planning import (
    FILLING,
    LOADED,
    LOADED_UNKNOWN,
    NAMED,
    NOT_DUE,
    NOT_LOADED,
    RERUN,
    plan_partitions,
    record_run,
)
from edgebatch.framework.requests import RunRequest, RunRequestError
from edgebatch.framework.state import StateStore

TODAY = dt.date(2026, 11, 20)
T = dt.datetime(2026, 11, 20, 6, 0, tzinfo=dt.UTC)


def _noop(ctx):
    return None


DAILY = define_job("daily", [_noop], inputs=["bronze/edge_batches"], partitions=Daily())
MONTHLY = define_job("monthly", [_noop], partitions=Monthly(start="2026-09"))


def test_an_incremental_daily_run_takes_every_day_with_new_or_late_input():
    loaded = {"2026-11-17": T, "2026-11-18": T, "2026-11-20": T}
    inputs = {
        "2026-11-17": T - dt.timedelta(hours=1),  # loaded after its newest file: done
        "2026-11-18": T + dt.timedelta(hours=2),  # a late revision arrived since
        "2026-11-19": T,  # never loaded
        "2026-11-20": T,
    }
    plan = plan_partitions(
        DAILY, RunRequest("daily"), loaded=loaded, input_changes=inputs, today=TODAY
    )
    assert plan.to_run == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert plan.reason("2026-11-17") == LOADED
    assert plan.reason("2026-11-18").startswith("new input since it was last loaded at 2026-11-20")
    assert plan.reason("2026-11-19") == NOT_LOADED
    assert plan.reason("2026-11-20") == FILLING
    assert plan.log_lines()[0] == "plan for daily: 3 partition(s) to run, 1 skipped"
    assert "  2026-11-17: skip, already loaded" in "\n".join(plan.log_lines())


def test_without_a_look_at_the_inputs_an_incremental_run_does_what_is_not_loaded():
    plan = plan_partitions(MONTHLY, RunRequest("monthly"), loaded={"2026-09": T}, today=TODAY)
    assert plan.to_run == ["2026-10", "2026-11"]
    assert plan.reason("2026-09") == LOADED_UNKNOWN
    assert plan.reason("2026-11") == NOT_LOADED


def test_a_range_skips_what_is_loaded_and_what_is_not_due_and_rerun_takes_the_rest():
    request = RunRequest("daily", start="2026-11-18", end="2026-11-22")
    plan = plan_partitions(DAILY, request, loaded={"2026-11-18": T}, today=TODAY)
    assert plan.to_run == ["2026-11-19", "2026-11-20"]
    assert [(d.key, d.reason) for d in plan.skipped] == [
        ("2026-11-18", LOADED_UNKNOWN),
        ("2026-11-21", NOT_DUE),
        ("2026-11-22", NOT_DUE),
    ]
    rerun = plan_partitions(
        DAILY, request.replace(rerun=True), loaded={"2026-11-18": T}, today=TODAY
    )
    assert rerun.to_run == ["2026-11-18", "2026-11-19", "2026-11-20"]
    assert rerun.reason("2026-11-18") == RERUN


def test_named_partitions_run_as_named_and_bad_ones_name_the_job():
    plan = plan_partitions(MONTHLY, RunRequest("monthly", partitions=("2026-10", "2026-10")))
    assert [(d.key, d.runs, d.reason) for d in plan.decisions] == [("2026-10", True, NAMED)]
    with pytest.raises(PartitionError, match="job 'monthly'.*2026-13"):
        plan_partitions(MONTHLY, RunRequest("monthly", partitions=("2026-13",)))


def test_a_request_is_partitions_or_a_range_not_both():
    with pytest.raises(RunRequestError, match="not both"):
        RunRequest("daily", partitions=("2026-11-01",), start="2026-11-01")
    assert RunRequest("daily").incremental and not RunRequest("daily", start="x").incremental


def test_a_repeated_run_key_records_nothing_new(tmp_path):
    request = RunRequest("monthly", run_key="monthly@2026-11-20T06:00", triggered_by="ann")
    plan = plan_partitions(MONTHLY, request, today=TODAY)
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        first, created = record_run(store, MONTHLY, request, plan)
        again, created_again = record_run(store, MONTHLY, request, plan)
        assert (created, created_again) == (True, False) and again == first
        assert len(store.list_runs()) == 1 and len(store.list_audit(action="trigger")) == 1
        lines = [ln.message for ln in store.read_logs(first.id)]
        assert lines[0] == (
            "requested: cli request by ann for what is due (incremental), "
            "run_key monthly@2026-11-20T06:00"
        )
        assert "plan for monthly: 3 partition(s) to run, 0 skipped" in lines
        assert first.priority == MONTHLY.priority
