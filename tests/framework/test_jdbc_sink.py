"""The database sink against a real PostgreSQL: a Delta partition copied row for row,
reruns that change nothing, a throttle that holds, failures that leave the old rows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from edgebatch.errors import ConfigError
from edgebatch.framework.sinks.jdbc import JdbcSink, JdbcTarget, SinkError, paced_rows
from edgebatch.settings import load_settings
from tests.support.consent import grant
from tests.support.postgres import PostgresServer, postgres_server

pytestmark = pytest.mark.integration

SCHEMA = "tenant STRING, month STRING, meter STRING, m3 DECIMAL(12,3), amount DECIMAL(12,2)"


@pytest.fixture(scope="module")
def postgres() -> Iterator[PostgresServer]:
    with postgres_server() as server:
        yield server


@pytest.fixture
def database(postgres: PostgresServer) -> str:
    name = f"sink_{uuid.uuid4().hex[:10]}"
    postgres.create_database(name)
    return name


def target(postgres: PostgresServer, database: str, **kw) -> JdbcTarget:
    return JdbcTarget(
        url=f"jdbc:postgresql://127.0.0.1:{postgres.port}/{database}",
        user=postgres.user,
        password="",
        table=kw.pop("table", "public.bills"),
        **kw,
    )


def pg_rows(postgres: PostgresServer, database: str, sql: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database
    ) as conn:
        return [tuple(r) for r in conn.execute(sql).fetchall()]


def gold_table(spark, path: Path, months: dict[str, int]):
    """A small partitioned Delta table: `months` maps a month to its row count."""
    rows = [
        ("acme", month, f"m{i:05d}", Decimal(f"{i}.125"), Decimal(f"{i * 3}.07"))
        for month, n in months.items()
        for i in range(n)
    ]
    spark.createDataFrame(rows, SCHEMA).write.format("delta").partitionBy("tenant", "month").mode(
        "overwrite"
    ).save(str(path))
    return spark.read.format("delta").load(str(path))


def test_partition_rows_equal_delta_and_rerun_changes_nothing(
    spark, tmp_path, postgres, database
) -> None:
    df = gold_table(spark, tmp_path / "bills", {"2026-10": 30, "2026-11": 40})
    sink = JdbcSink(target(postgres, database, rows_per_second=0))
    part = {"tenant": "acme", "month": "2026-11"}

    first = sink.write_partition(df, part)
    query = "SELECT tenant, month, meter, m3, amount FROM public.bills ORDER BY month, meter"
    after_first = pg_rows(postgres, database, query)
    expected = sorted(
        tuple(r) for r in df.where("month = '2026-11'").collect()
    )  # Delta rows, Decimal to Decimal
    assert first.inserted == 40 and first.deleted == 0
    assert after_first == expected

    again = sink.write_partition(df, part)
    assert again.deleted == 40 and again.inserted == 40
    assert pg_rows(postgres, database, query) == after_first

    other = sink.write_partition(df, {"tenant": "acme", "month": "2026-10"})
    assert other.inserted == 30
    assert len(pg_rows(postgres, database, query)) == 70
    assert no_staging_tables(postgres, database)


def test_a_rewritten_partition_replaces_exactly_its_rows(
    spark, tmp_path, postgres, database
) -> None:
    df = gold_table(spark, tmp_path / "bills", {"2026-10": 5, "2026-11": 12})
    sink = JdbcSink(target(postgres, database, rows_per_second=0))
    sink.write_partition(df, {"tenant": "acme", "month": "2026-10"})
    sink.write_partition(df, {"tenant": "acme", "month": "2026-11"})
    smaller = gold_table(spark, tmp_path / "bills2", {"2026-11": 3})
    result = sink.write_partition(smaller, {"tenant": "acme", "month": "2026-11"})
    assert (result.deleted, result.inserted) == (12, 3)
    counts = pg_rows(
        postgres, database, "SELECT month, count(*) FROM public.bills GROUP BY month ORDER BY 1"
    )
    assert counts == [("2026-10", 5), ("2026-11", 3)]


def test_throttle_keeps_the_measured_rate_below_the_limit(
    spark, tmp_path, postgres, database
) -> None:
    df = gold_table(spark, tmp_path / "bills", {"2026-11": 600})
    limit = 400.0
    sink = JdbcSink(target(postgres, database, rows_per_second=limit, batch_size=50, connections=2))
    started = time.monotonic()
    result = sink.write_partition(df, {"tenant": "acme", "month": "2026-11"})
    elapsed = time.monotonic() - started
    assert result.inserted == 600
    # 600 rows at 400 rows/s cannot take less than 1.5 s, whatever else is slow.
    assert result.stage_seconds >= 600 / limit
    assert result.rows_per_second <= limit
    assert 600 / elapsed <= limit


def test_paced_never_releases_more_than_the_budget() -> None:
    rate, batch = 2000.0, 100
    start = time.monotonic()
    released = 0
    for _ in paced_rows(range(1050), rate, batch):
        released += 1
        # At any moment, released rows are at most rate x elapsed.
        assert released <= rate * (time.monotonic() - start)
    assert released == 1050
    assert time.monotonic() - start >= 1050 / rate


def test_a_failure_while_staging_leaves_the_previous_content(
    spark, tmp_path, postgres, database
) -> None:
    df = gold_table(spark, tmp_path / "bills", {"2026-11": 20})
    sink = JdbcSink(target(postgres, database, rows_per_second=0, batch_size=5, connections=1))
    part = {"tenant": "acme", "month": "2026-11"}
    sink.write_partition(df, part)
    before = pg_rows(postgres, database, "SELECT * FROM public.bills ORDER BY meter")

    # PostgreSQL refuses NUL in text: the staging write fails after some batches went in.
    rows = [("acme", "2026-11", f"n{i:03d}", Decimal("1.000"), Decimal("2.00")) for i in range(19)]
    rows.append(("acme", "2026-11", "bad\x00meter", Decimal("1.000"), Decimal("2.00")))
    broken = spark.createDataFrame(rows, SCHEMA).coalesce(1)
    with pytest.raises(Exception, match=r"(?i)0x00|null|nul"):
        sink.write_partition(broken, part)
    assert pg_rows(postgres, database, "SELECT * FROM public.bills ORDER BY meter") == before
    assert no_staging_tables(postgres, database)


def test_a_failure_while_swapping_rolls_back_the_delete(
    spark, tmp_path, postgres, database
) -> None:
    df = gold_table(spark, tmp_path / "bills", {"2026-11": 10})
    sink = JdbcSink(target(postgres, database, rows_per_second=0))
    part = {"tenant": "acme", "month": "2026-11"}
    sink.write_partition(df, part)
    before = pg_rows(postgres, database, "SELECT * FROM public.bills ORDER BY meter")
    # A rule of the BI database that the new rows break: the insert fails after the delete.
    pg_rows_exec(postgres, database, "ALTER TABLE public.bills ADD CHECK (amount < 1000)")
    big = gold_table(spark, tmp_path / "big", {"2026-11": 500})
    with pytest.raises(SinkError, match="the table is unchanged"):
        sink.write_partition(big, part)
    assert pg_rows(postgres, database, "SELECT * FROM public.bills ORDER BY meter") == before
    assert no_staging_tables(postgres, database)


def no_staging_tables(postgres: PostgresServer, database: str) -> bool:
    sql = "SELECT count(*) FROM pg_tables WHERE tablename LIKE '%\\_\\_stage\\_%'"
    return pg_rows(postgres, database, sql) == [(0,)]


def pg_rows_exec(postgres: PostgresServer, database: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(
        host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database, autocommit=True
    ) as conn:
        conn.execute(sql)


def test_config_names_the_key_and_the_file(tmp_path, monkeypatch) -> None:
    config = tmp_path / "edgebatch.toml"
    config.write_text(
        '[sinks.databases.bi]\nurl = "jdbc:postgresql://db:5432/bi"\nuser = "bi"\n'
        'password_env = "BI_PW"\nrows_per_second = 250\nbatch_size = 100\n'
        '[sinks.databases.bi.tables]\n"gold/water_bills" = "public.water_bills"\n'
    )
    monkeypatch.setenv("BI_PW", "s3cret")
    settings = load_settings(config, environ={})
    t = JdbcTarget.from_settings(settings, "bi", "gold/water_bills")
    assert (t.table, t.password, t.rows_per_second, t.batch_size) == (
        "public.water_bills",
        "s3cret",
        250.0,
        100,
    )
    with pytest.raises(SinkError, match=r"key 'tables' in \[sinks.databases.bi\] of .*edgebatch"):
        JdbcTarget.from_settings(settings, "bi", "gold/other")
    with pytest.raises(SinkError, match="no database 'nope'"):
        JdbcTarget.from_settings(settings, "nope", "gold/water_bills")

    config.write_text('[sinks.databases.bi]\nurl = "postgres://db/bi"\n')
    with pytest.raises(ConfigError, match=r"key 'url'.*jdbc:postgresql.*|edgebatch.toml"):
        load_settings(config, environ={})
    config.write_text('[sinks.databases.bi]\nurl = "jdbc:postgresql://db/bi"\nbatch_size = 0\n')
    with pytest.raises(ConfigError, match=r"edgebatch.toml.*batch_size|batch_size.*edgebatch"):
        load_settings(config, environ={})


def test_the_bills_job_copies_a_month_to_the_configured_database(
    spark, tmp_path, postgres, database
) -> None:
    import datetime as dt

    from edgebatch.framework.registry import discover
    from edgebatch.framework.reports.bills import WATER_BILLS
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState, StateStore
    from edgebatch.settings import (
        DatabaseSinkSettings,
        Settings,
        SinksSettings,
        StateSettings,
        WarehouseSettings,
    )
    from edgebatch.warehouse.tables import ensure_table
    from edgebatch.warehouse.uri import WarehouseRoot

    home = tmp_path / "home"
    home.mkdir()
    root = WarehouseRoot.parse((tmp_path / "warehouse").as_uri())
    bi = DatabaseSinkSettings(
        url=f"jdbc:postgresql://127.0.0.1:{postgres.port}/{database}",
        user=postgres.user,
        tables={WATER_BILLS.name: "public.water_bills"},
        rows_per_second=0,
    )
    settings = Settings(
        home=home,
        warehouse=WarehouseSettings(root=root.uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        sinks=SinksSettings(databases={"bi": bi}),
    )
    ensure_table(spark, root, WATER_BILLS)

    def line(month: dt.date, customer: str, amount: str) -> dict:
        return {
            "tenant": "acme",
            "month": month,
            "customer": customer,
            "customer_name": customer.upper(),
            "language": "en",
            "currency": "EUR",
            "meter": "m1",
            "period_start": month,
            "period_end": month + dt.timedelta(days=27),
            "tier": "T1",
            "consumption_m3": Decimal("10.500"),
            "unit_price": Decimal("1.2345"),
            "amount": Decimal(amount),
            "estimated": False,
        }

    nov, oct_ = dt.date(2026, 11, 1), dt.date(2026, 10, 1)
    lines = [line(nov, "c1", "12.96"), line(nov, "c2", "0.01"), line(oct_, "c1", "5.00")]
    spark.createDataFrame(lines, WATER_BILLS.struct()).write.format("delta").mode("append").save(
        WATER_BILLS.location(root)
    )
    grant(spark, root, "acme", ["c1", "c2"])
    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    try:
        first = runner.run(RunRequest("bills_to_database", partitions=("2026-11",)))
        again = runner.run(RunRequest("bills_to_database", partitions=("2026-11",), rerun=True))
    finally:
        runner.close()
        store.close()
    assert first.state == RunState.SUCCEEDED, first.error
    assert again.state == RunState.SUCCEEDED, again.error
    got = pg_rows(
        postgres,
        database,
        "SELECT month, customer, amount, unit_price FROM public.water_bills ORDER BY customer",
    )
    assert got == [
        (nov, "c1", Decimal("12.96"), Decimal("1.2345")),
        (nov, "c2", Decimal("0.01"), Decimal("1.2345")),
    ]


def test_two_writes_of_one_partition_at_once_leave_one_copy(
    spark, tmp_path, postgres, database
) -> None:
    """Both swaps are held at the target's lock until both wait, then let go together:
    without the sink's own lock, each would delete the old rows and insert its copy."""
    import threading

    import psycopg

    from tests.support.wait import wait_until

    df = gold_table(spark, tmp_path / "bills", {"2026-11": 50})
    sink = JdbcSink(target(postgres, database, rows_per_second=0))
    part = {"tenant": "acme", "month": "2026-11"}
    sink.write_partition(df, part)  # the table exists: both writes below replace rows
    errors: list[BaseException] = []

    def write() -> None:
        try:
            sink.write_partition(df, part)
        except BaseException as exc:  # pragma: no cover - reported by the assert below
            errors.append(exc)

    def waiting() -> int:
        sql = (
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock'"
        )
        with psycopg.connect(
            host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database
        ) as conn:
            row = conn.execute(sql, (database,)).fetchone()
            return int(row[0]) if row else 0

    with psycopg.connect(
        host="127.0.0.1", port=postgres.port, user=postgres.user, dbname=database
    ) as gate:
        gate.execute("LOCK TABLE public.bills IN EXCLUSIVE MODE")
        threads = [threading.Thread(target=write) for _ in range(2)]
        for t in threads:
            t.start()
        wait_until(lambda: waiting() >= 2, 120, "both swaps waiting on the target")
        gate.commit()
    for t in threads:
        t.join()
    assert errors == []
    rows = pg_rows(postgres, database, "SELECT meter, count(*) FROM public.bills GROUP BY meter")
    assert len(rows) == 50 and {n for _, n in rows} == {1}
    assert no_staging_tables(postgres, database)
