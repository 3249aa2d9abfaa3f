"""The warm runner on real Spark and Delta: iterations, retries, pools, schema errors, logs."""

from __future__ import annotations

import time

import pytest

from edgebatch.framework.errors import PartitionError, UnknownJobError
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import IterationState, RunState
from edgebatch.warehouse.tables import REGISTRY
from tests.framework.conftest import MONTHS, table_rows


def test_two_failing_partitions_are_retried_alone_and_the_run_succeeds(runner, faults, clean_table):
    (faults / "meter_monthly.2025-03").write_text("1")
    (faults / "meter_monthly.2025-08").write_text("1")

    run = runner.run(RunRequest("meter_monthly", start=MONTHS[0], end=MONTHS[1]))

    assert run.state == RunState.SUCCEEDED, run.error
    its = {i.partition_key: i for i in runner.store.list_iterations(run.id)}
    assert len(its) == 12
    retried = {
        k: runner.store.list_attempts(i.id)[0].error for k, i in its.items() if i.attempts == 2
    }
    assert set(retried) == {"2025-03", "2025-08"}, retried
    assert all(i.attempts == 1 for k, i in its.items() if k not in ("2025-03", "2025-08"))
    assert all(i.state == IterationState.SUCCEEDED and i.rows_out for i in its.values())
    failed = runner.store.list_attempts(its["2025-03"].id)[0]
    assert failed.state == "failed" and "injected fault" in failed.error
    assert table_rows(runner) == clean_table


def test_a_failed_run_is_retried_as_a_run_of_only_its_failed_partitions(
    runner, faults, clean_table
):
    (faults / "meter_monthly_once.2025-02").write_text("1")
    (faults / "meter_monthly_once.2025-11").write_text("1")
    first = runner.run(RunRequest("meter_monthly_once", start=MONTHS[0], end=MONTHS[1]))
    assert first.state == RunState.FAILED
    assert "2 of 12 iteration(s) failed" in first.error
    assert "2025-02" in first.error and "2025-11" in first.error

    second = runner.wait(runner.retry(first.id).id)

    assert second.state == RunState.SUCCEEDED, second.error
    assert second.retry_of == first.id
    assert [i.partition_key for i in runner.store.list_iterations(second.id)] == [
        "2025-02",
        "2025-11",
    ]
    assert table_rows(runner) == clean_table


def test_a_backfill_range_skips_loaded_partitions_unless_asked_to_rerun(runner):
    runner.run(RunRequest("meter_monthly", partitions=("2025-01", "2025-02")))
    again = runner.run(RunRequest("meter_monthly", start="2025-01", end="2025-03"))
    assert [i.partition_key for i in runner.store.list_iterations(again.id)] == ["2025-03"]
    rerun = runner.run(RunRequest("meter_monthly", start="2025-01", end="2025-02", rerun=True))
    assert len(runner.store.list_iterations(rerun.id)) == 2


def test_a_critical_job_overtakes_a_running_backfill(runner):
    long = runner.submit(RunRequest("long_backfill"))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # wait until the backfill holds the cores
        its = runner.store.list_iterations(long.id)
        if its and its[0].tasks_done >= 4:
            break
        time.sleep(0.1)
    else:
        pytest.fail("the backfill never started its tasks")

    short = runner.run(RunRequest("short_critical"))
    long_now = runner.store.get_run(long.id)
    long_done = runner.wait(long.id)

    assert short.state == RunState.SUCCEEDED and long_done.state == RunState.SUCCEEDED
    assert long_now.state == RunState.RUNNING, "the backfill should still be running"
    assert short.ended_at < long_done.ended_at
    its = runner.store.list_iterations(long.id)
    assert its[0].tasks_total >= 100 and its[0].stages_total >= 1


def test_an_output_that_disagrees_with_its_table_fails_naming_job_and_partition(runner):
    before = table_rows(runner) if _exists(runner) else []
    run = runner.run(RunRequest("wrong_schema", partitions=("2025-05",)))
    assert run.state == RunState.FAILED
    (it,) = runner.store.list_iterations(run.id)
    assert "wrong_schema" in it.error and "2025-05" in it.error and "kwhh" in it.error
    assert (table_rows(runner) if _exists(runner) else []) == before


def _exists(runner) -> bool:
    from delta.tables import DeltaTable

    return DeltaTable.isDeltaTable(
        runner.spark, REGISTRY.get("test/meter_monthly").location(runner.root)
    )


def test_bad_requests_are_clear_errors_before_anything_runs(runner):
    with pytest.raises(UnknownJobError, match="meter_monthly"):
        runner.submit(RunRequest("meter_montly"))
    with pytest.raises(PartitionError, match="meter_monthly.*2025-13"):
        runner.submit(RunRequest("meter_monthly", partitions=("2025-13",)))
    assert runner.store.list_runs() == []


def test_iteration_logs_and_progress_are_recorded(runner):
    run = runner.run(RunRequest("meter_monthly", partitions=("2025-04",)))
    lines = runner.store.read_logs(run.id)
    text = "\n".join(line.message for line in lines)
    assert "generating readings from 2025-04-01 to 2025-05-01" in text
    assert "partition 2025-04 succeeded" in text
    (it,) = runner.store.list_iterations(run.id)
    assert any(line.iteration_id == it.id for line in lines)
    assert it.rows_out == 90


def test_cancel_stops_a_running_run(runner):
    run = runner.submit(RunRequest("long_backfill"))
    time.sleep(2)
    cancelled = runner.cancel(run.id)
    assert cancelled.state == RunState.CANCELLED
    (it,) = runner.store.list_iterations(run.id)
    assert it.state == IterationState.CANCELLED


def test_a_step_that_raises_fails_naming_job_partition_step_attempt_with_its_whole_traceback(
    runner,
):
    run = runner.run(RunRequest("deep_failure"))

    assert run.state == RunState.FAILED
    (it,) = runner.store.list_iterations(run.id)
    where = "job 'deep_failure', partition 'all', step 'deep_failure', attempt 1"
    assert it.error == f"{where}: RuntimeError: the check around it failed too"
    assert where in run.error
    (failure,) = [
        ln.message
        for ln in runner.store.read_logs(run.id, iteration_id=it.id)
        if ln.level == "ERROR"
    ]
    # Whole: every frame from the framework's boundary down, and the chained cause.
    assert "in run_steps" in failure and "in deep_failure" in failure
    assert "in _dive" in failure and "[Previous line repeated 9 more times]" in failure
    assert "ValueError: the bottom of user code\nwith a second line of detail" in failure
    assert "The above exception was the direct cause of the following exception" in failure


def test_an_in_order_job_runs_its_partitions_one_at_a_time_in_partition_order(runner):
    run = runner.run(RunRequest("months_in_order", partitions=("2025-03", "2025-01", "2025-02")))
    assert run.state == RunState.SUCCEEDED, run.error
    its = sorted(runner.store.list_iterations(run.id), key=lambda i: i.started_at)
    assert [i.partition_key for i in its] == ["2025-01", "2025-02", "2025-03"]
    assert all(a.ended_at <= b.started_at for a, b in zip(its, its[1:], strict=False)), its


def test_a_spanning_job_runs_consecutive_months_together_and_retries_the_span(
    runner, faults, clean_table
):
    (faults / "meter_spans.2025-06").write_text("1")  # the first month of the second span

    run = runner.run(RunRequest("meter_spans", start=MONTHS[0], end=MONTHS[1]))

    assert run.state == RunState.SUCCEEDED, run.error
    its = {i.partition_key: i for i in runner.store.list_iterations(run.id)}
    assert len(its) == 12 and all(i.state == IterationState.SUCCEEDED for i in its.values())
    # Spans of five: Jan-May, Jun-Oct (failed once, so all five tried twice), Nov-Dec.
    assert {k for k, i in its.items() if i.attempts == 2} == {
        "2025-06", "2025-07", "2025-08", "2025-09", "2025-10",
    }  # fmt: skip
    assert all(i.attempts == 1 for k, i in its.items() if not "2025-06" <= k <= "2025-10")
    lines = [line.message for line in runner.store.read_logs(run.id)]
    months = sorted(m for m in lines if m.startswith("months "))
    assert months == [
        "months 2025-01 2025-02 2025-03 2025-04 2025-05",
        "months 2025-06 2025-07 2025-08 2025-09 2025-10",
        "months 2025-11 2025-12",
    ], lines
    assert any(m.startswith("partition 2025-01..2025-05 succeeded") for m in lines), lines
    # Rows are counted on the span's first iteration; every month's rows were replaced.
    assert sum(i.rows_out or 0 for i in its.values()) == len(clean_table)
    assert table_rows(runner) == clean_table
    # Loaded months are loaded, whichever iteration carried them.
    plan = runner.plan(RunRequest("meter_spans", start=MONTHS[0], end=MONTHS[1]))
    assert plan.to_run == [], plan.decisions


def test_spans_never_bridge_a_gap_or_exceed_their_length():
    from types import SimpleNamespace

    from edgebatch.framework.runner import spans_of
    from tests.framework.jobs.meters import meter_spans

    keys = ["2025-01", "2025-02", "2025-04", "2025-05", "2025-06", "2025-07", "2025-08", "2025-09"]
    spans = spans_of(meter_spans, [SimpleNamespace(partition_key=k) for k in keys])
    assert [[i.partition_key for i in s] for s in spans] == [
        ["2025-01", "2025-02"],
        ["2025-04", "2025-05", "2025-06", "2025-07", "2025-08"],
        ["2025-09"],
    ]


def test_a_span_needs_ordered_partitions():
    from edgebatch.framework.definitions import JobDefinitionError, define_job
    from edgebatch.framework.partitions import ByValue

    with pytest.raises(JobDefinitionError, match="span=3 needs partitions in an order"):
        define_job("by_site", [lambda ctx: None], partitions=ByValue(column="site"), span=3)
    with pytest.raises(JobDefinitionError, match="span must be a whole number"):
        define_job("zero", [lambda ctx: None], span=0)
