"""Each expectation action does what it declares: warn keeps the rows and says so,
quarantine moves exactly the failing rows out with the rule's name, fail commits nothing."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from edgebatch.framework.errors import JobDefinitionError
from edgebatch.framework.expectations import fresh, min_rows
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import RunState
from edgebatch.warehouse.tables import REGISTRY, read_table

DAY = "2026-11-02"


ENGINES = pytest.mark.parametrize("engine", ["spark", "arrow"])


def _run(runner, **params):
    return runner.run(RunRequest("expectation_probe", partitions=(DAY,), params=params, rerun=True))


def _ids(runner, name="test/expectation_probe") -> list[int]:
    df = read_table(runner.spark, runner.root, REGISTRY.get(name))
    return sorted(r.id for r in df.collect())


def _counts(runner, run) -> dict:
    lines = [ln.message for ln in runner.store.read_logs(run.id)]
    (record,) = [ln for ln in lines if ln.startswith("expectations {")]
    return {k: v["failed"] for k, v in json.loads(record.split(" ", 1)[1])["rules"].items()}


FAILED = {"not_null:reading": 1, "reading_0_100": 2, "unique:id": 2, "min_rows:1": 0}


@ENGINES
def test_warn_keeps_every_row_and_records_each_rules_count(runner, engine):
    run = _run(runner, engine=engine)

    assert run.state == RunState.SUCCEEDED, run.error
    assert _ids(runner) == [*range(10), 9]
    assert _counts(runner, run) == FAILED
    log = "\n".join(ln.message for ln in runner.store.read_logs(run.id))
    assert "expectation reading_0_100 (warn): 2 failing of 11 rows" in log


@ENGINES
def test_quarantine_moves_exactly_the_failing_rows_out_with_the_rules_name(runner, engine):
    params = {"not_null": "quarantine", "range": "quarantine", "unique": "quarantine"}
    params["engine"] = engine
    run = _run(runner, **params)

    assert run.state == RunState.SUCCEEDED, run.error
    assert _ids(runner) == [0, 1, 2, 4, 5, 6, 8]
    assert _counts(runner, run) == FAILED
    quarantine = read_table(runner.spark, runner.root, REGISTRY.get("quarantine/expectations"))

    def held():
        return sorted((r.rule, json.loads(r.row)["id"]) for r in quarantine.collect())

    assert held() == [
        ("not_null:reading", 3),
        ("reading_0_100", 3),
        ("reading_0_100", 7),
        ("unique:id", 9),
        ("unique:id", 9),
    ]
    assert {(r.job, r.partition) for r in quarantine.collect()} == {("expectation_probe", DAY)}
    again = _run(runner, **params)  # a rerun replaces the partition's quarantine, never adds
    assert again.state == RunState.SUCCEEDED, again.error
    assert len(held()) == 5


@ENGINES
def test_fail_fails_the_iteration_and_commits_nothing(runner, engine):
    first = _run(runner, engine=engine)
    assert first.state == RunState.SUCCEEDED, first.error
    before = _ids(runner)

    failed = _run(runner, range="fail", floor="20", min_rows="fail", engine=engine)

    assert failed.state == RunState.FAILED
    record = (failed.error or "") + "\n".join(
        ln.message for ln in runner.store.read_logs(failed.id)
    )
    assert "reading_0_100 (2 failing), min_rows:20 (1 failing)" in record
    assert _ids(runner) == before


def test_a_partition_wide_rule_cannot_quarantine_rows():
    with pytest.raises(JobDefinitionError, match="can warn or fail but not quarantine"):
        min_rows(5, action="quarantine")
    with pytest.raises(JobDefinitionError, match="can warn or fail but not quarantine"):
        fresh("received_at", max_age=dt.timedelta(hours=1), action="quarantine")
    with pytest.raises(JobDefinitionError, match="action must be one of"):
        min_rows(5, action="shout")  # type: ignore[arg-type]


def test_arrow_and_spark_agree_on_repeated_keys_with_nulls_and_several_columns(spark):
    import pyarrow as pa

    from edgebatch.framework.expectations import unique

    rule = unique(("a", "b"))
    table = pa.table(
        {
            "a": pa.array(["x", "x", None, None, "y", "x", None], pa.string()),
            "b": pa.array([1, 1, 2, 2, 1, None, None], pa.int64()),
        }
    )
    with_ids = table.append_column("i", pa.array(range(table.num_rows), pa.int64()))
    by_spark = spark.createDataFrame(with_ids).select("i", rule.failing().alias("bad"))

    assert rule.failing_in(table).to_pylist() == [
        r.bad for r in sorted(by_spark.collect(), key=lambda r: r.i)
    ]
    assert rule.failing_in(table).to_pylist() == [True, True, True, True, False, False, False]
