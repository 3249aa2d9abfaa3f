"""Definitions, partitionings and the registry: pure values, checked without Spark."""

from __future__ import annotations

import datetime as dt

import pytest

from edgebatch.framework.definitions import Retry, command, define_job, job, sql
from edgebatch.framework.errors import JobDefinitionError, PartitionError, UnknownJobError
from edgebatch.framework.partitions import ByValue, Daily, DeviceHash, Monthly, Unpartitioned
from edgebatch.framework.registry import JobRegistry, discover
from tests.framework.conftest import make_settings


def noop(ctx):
    return None


def test_monthly_partitions_cover_a_range_and_own_their_rows():
    part = Monthly(column="date", start="2025-11")
    assert part.between("2025-11", "2026-02") == ["2025-11", "2025-12", "2026-01", "2026-02"]
    assert part.up_to(dt.date(2026, 1, 15)) == ["2025-11", "2025-12", "2026-01"]
    assert part.current(dt.date(2026, 1, 15)) == "2026-01"
    assert part.bounds("2025-12") == {
        "partition": "2025-12",
        "start": "2025-12-01",
        "end": "2026-01-01",
    }
    assert part.predicate("2025-12") == (
        "`date` >= DATE '2025-12-01' AND `date` < DATE '2026-01-01'"
    )


@pytest.mark.parametrize(
    ("part", "bad"),
    [
        (Monthly(), "2025-13"),
        (Monthly(), "2025-1"),
        (Daily(), "2025-02-30"),
        (DeviceHash(buckets=4), "4"),
        (ByValue(column="tenant", values=("acme",)), "other"),
        (ByValue(column="tenant"), "a b"),
        (Unpartitioned(), "2025"),
    ],
)
def test_a_key_the_partitioning_rejects_is_a_clear_error(part, bad):
    with pytest.raises(PartitionError, match="partition"):
        part.validate(bad)


def test_value_partitions_quote_their_predicate():
    assert (
        ByValue(column="tenant", values=("o'neil",)).predicate("o'neil") == "`tenant` = 'o''neil'"
    )
    assert Daily().between("2026-02-27", "2026-03-01") == ["2026-02-27", "2026-02-28", "2026-03-01"]
    with pytest.raises(PartitionError, match="ends before"):
        Daily().between("2026-03-01", "2026-02-27")


def test_retry_backoff_grows_and_is_capped():
    r = Retry(attempts=5, backoff_s=1, max_backoff_s=3, jitter=0)
    assert [r.delay(n) for n in (1, 2, 3, 4)] == [1, 2, 3, 3]
    jittered = Retry(backoff_s=10, jitter=0.2)
    assert 8 <= jittered.delay(1, rand=lambda: 0.0) <= 12
    assert jittered.delay(1, rand=lambda: 1.0) == pytest.approx(12)


def test_a_decorated_function_becomes_a_frozen_job_with_its_steps(tmp_path):
    script = tmp_path / "legacy.sh"
    script.write_text("#!/bin/sh\necho $1\n")

    @job(
        steps=[command(str(script), "{partition}"), sql("q.sql", relative_to=tmp_path)],
        partitions=Monthly(),
        pool="critical",
        priority=9,
        upstream=["loader"],
        contacts=["ops@example.com"],
        tags=["billing"],
    )
    def bill(ctx):
        """Monthly bills."""

    assert bill.name == "bill"
    assert [s.kind for s in bill.steps] == ["command", "sql", "python"]
    assert bill.description == "Monthly bills."
    assert bill.summary()["upstream"] == ["loader"]
    with pytest.raises(AttributeError):
        bill.pool = "default"  # type: ignore[misc]
    before = bill.definition_hash()
    script.write_text("#!/bin/sh\necho changed\n")
    assert define_job("bill", [noop]).definition_hash() != before


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "Bad-Name"}, "job name"),
        ({"name": "ok", "retry": Retry(attempts=0)}, "attempts"),
        ({"name": "ok", "timeout_s": 0}, "timeout_s"),
        ({"name": "ok", "upstream": ["ok"]}, "itself"),
        ({"name": "ok", "write": "upsert"}, "write must be"),
    ],
)
def test_a_wrong_definition_names_the_job_and_the_field(kwargs, message):
    with pytest.raises(JobDefinitionError, match=message):
        define_job(steps=[noop], **kwargs)


def test_registry_finds_unknown_jobs_cycles_and_pools():
    a = define_job("a", [noop], upstream=["c"])
    b = define_job("b", [noop], upstream=["a"])
    c = define_job("c", [noop], upstream=["b"])
    with pytest.raises(JobDefinitionError, match="cycle: a -> c -> b -> a"):
        JobRegistry([a, b, c]).check()
    with pytest.raises(JobDefinitionError, match="unknown upstream job 'zz'"):
        JobRegistry([define_job("x", [noop], upstream=["zz"])]).check()
    with pytest.raises(JobDefinitionError, match="pool 'urgent'"):
        JobRegistry([define_job("x", [noop], pool="urgent")], pools={"default"}).check()
    reg = JobRegistry([define_job("meter_monthly", [noop])])
    with pytest.raises(UnknownJobError, match="did you mean meter_monthly"):
        reg.get("meter_montly")


def test_upstream_order_puts_every_dependency_first():
    load = define_job("load", [noop])
    clean = define_job("clean", [noop], upstream=["load"])
    bill = define_job("bill", [noop], upstream=["clean", "load"])
    assert JobRegistry([load, clean, bill]).check().upstream_order("bill") == ["load", "clean"]


def test_discovery_finds_the_package_jobs_and_configured_folders(tmp_path):
    registry = discover(make_settings(tmp_path))
    assert {"meter_monthly", "long_backfill", "short_critical"} <= {j.name for j in registry}
    assert registry.pools is not None and {"critical", "default", "backfill"} <= registry.pools
