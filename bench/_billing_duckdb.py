"""The billing benchmark's baseline: the water billing rules as one DuckDB SQL script.

The same rules as the job (docs/gold.md, `## Water billing`), over the same rows: the
windows as Parquet (the benchmark's cached copy of `silver/readings`) and the reference
CSVs the job's `reference_load` reads. Every division and rounding is done in integers
(nano-m3, milli-m3, 1/10,000 of a currency unit, cents) with half-up rounding written out
as `(2a + b) // 2b`, because DuckDB divides DECIMALs as DOUBLEs: the bills are exact.

    bill_totals(folder) -> {("2025-01", "cust-100001"): Decimal("31.27"), ...}
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

from bench._billing_data import METRIC, YEAR

THREADS = 2


def half_up_div(a: str, b: str) -> str:
    """SQL for `a / b` rounded half up, for integers a >= 0 and b > 0."""
    return f"((2 * ({a}) + ({b})) // (2 * ({b})))"


def script(folder: Path, first: str, end: str) -> str:
    readings = folder / "parquet" / "readings" / "*" / "*.parquet"
    ref = folder / "reference"
    return f"""
    WITH
    consent AS (
      SELECT tenant, subject FROM (
        SELECT tenant, subject, status, row_number() OVER (
          PARTITION BY tenant, subject ORDER BY "at" DESC, status DESC) AS n
        FROM read_csv('{ref / "consent.csv"}', header = true,
          columns = {{'tenant': 'VARCHAR', 'subject': 'VARCHAR', 'status': 'VARCHAR',
                      'at': 'TIMESTAMPTZ', 'source': 'VARCHAR'}}))
      WHERE n = 1 AND status = 'granted'
    ),
    devices AS (
      SELECT * FROM read_csv('{ref / "devices.csv"}', header = true,
        columns = {{'tenant': 'VARCHAR', 'device': 'VARCHAR', 'site': 'VARCHAR',
                    'kind': 'VARCHAR', 'subject_type': 'VARCHAR', 'subject': 'VARCHAR',
                    'tariff_class': 'VARCHAR', 'installed_on': 'DATE', 'removed_on': 'DATE'}})
      WHERE kind = 'water_meter'
    ),
    tariffs AS (
      SELECT * FROM read_csv('{ref / "tariffs.csv"}', header = true,
        columns = {{'tenant': 'VARCHAR', 'tariff_class': 'VARCHAR', 'valid_from': 'DATE',
                    'valid_to': 'DATE', 'tier': 'INTEGER', 'tier_from': 'DECIMAL(18,3)',
                    'unit': 'VARCHAR', 'unit_price': 'DECIMAL(18,6)',
                    'fixed_fee': 'DECIMAL(18,2)', 'currency': 'VARCHAR'}})
    ),
    -- a meter's measured volume (nano-m3) and seconds covered per day, consented rows only
    daily AS (
      SELECT r.tenant, r.device AS meter, r.date,
             sum(CAST(round_even(r.mean * (epoch(r.window_end - r.window_start) / 60.0)
                                 / 1000.0 * 1e9, 0) AS HUGEINT)) AS nano,
             sum(CAST(epoch(r.window_end - r.window_start) AS BIGINT)) AS seconds
      FROM read_parquet('{readings}', hive_partitioning = true) r
      SEMI JOIN consent c ON c.tenant = r.tenant AND c.subject = r.subject
      WHERE r.date >= DATE '{first}' AND r.date < DATE '{end}'
        AND r.metric = '{METRIC}' AND r.kind = 'water_meter'
      GROUP BY ALL
    ),
    months AS (
      SELECT CAST(m AS DATE) AS month, CAST(m + INTERVAL 1 MONTH AS DATE) AS month_end,
             datediff('day', CAST(m AS DATE), CAST(m + INTERVAL 1 MONTH AS DATE)) AS month_days
      FROM range(TIMESTAMP '{first}', TIMESTAMP '{end}', INTERVAL 1 MONTH) t(m)
    ),
    validities AS (
      SELECT DISTINCT tenant, tariff_class, valid_from, valid_to, fixed_fee, currency
      FROM tariffs
    ),
    -- billing periods: a registry row's days in the month, split where its tariff changes
    periods AS (
      SELECT d.tenant, d.device AS meter, d.subject AS customer, d.tariff_class,
             m.month, m.month_end, m.month_days, v.valid_from, v.fixed_fee, v.currency,
             greatest(m.month, d.installed_on, v.valid_from) AS p_start,
             least(m.month_end, coalesce(d.removed_on, m.month_end),
                   coalesce(v.valid_to, m.month_end)) AS p_end
      FROM devices d CROSS JOIN months m
      JOIN validities v ON v.tenant = d.tenant AND v.tariff_class = d.tariff_class
    ),
    periods_in AS (
      SELECT *, datediff('day', p_start, p_end) AS days FROM periods WHERE p_start < p_end
    ),
    meter_month AS (
      SELECT d.tenant, d.meter, m.month, sum(d.nano) AS nano, sum(d.seconds) AS seconds
      FROM daily d JOIN months m ON d.date >= m.month AND d.date < m.month_end
      GROUP BY ALL
    ),
    class_month AS (
      SELECT p.tenant, p.tariff_class, p.month, sum(d.nano) AS nano, sum(d.seconds) AS seconds
      FROM periods_in p JOIN daily d ON d.tenant = p.tenant AND d.meter = p.meter
        AND d.date >= p.p_start AND d.date < p.p_end
      GROUP BY ALL
    ),
    measured AS (
      SELECT p.*, coalesce(sum(d.nano), 0) AS nano, coalesce(sum(d.seconds), 0) AS seconds
      FROM periods_in p LEFT JOIN daily d ON d.tenant = p.tenant AND d.meter = p.meter
        AND d.date >= p.p_start AND d.date < p.p_end
      GROUP BY ALL
    ),
    used AS (
      SELECT x.*,
        greatest(x.days * 86400 - x.seconds, 0) AS gap,
        CASE WHEN coalesce(mm.seconds, 0) > 0 THEN mm.nano ELSE cm.nano END AS basis_nano,
        CASE WHEN coalesce(mm.seconds, 0) > 0 THEN mm.seconds ELSE cm.seconds END AS basis_s
      FROM measured x
      LEFT JOIN meter_month mm ON mm.tenant = x.tenant AND mm.meter = x.meter
        AND mm.month = x.month
      LEFT JOIN class_month cm ON cm.tenant = x.tenant AND cm.tariff_class = x.tariff_class
        AND cm.month = x.month
    ),
    consumption AS (
      SELECT u.*,
        {
        half_up_div(
            "u.nano + CASE WHEN u.gap > 0 AND coalesce(u.basis_s, 0) > 0 THEN "
            + half_up_div("u.basis_nano * u.gap", "u.basis_s")
            + " ELSE 0 END",
            "1000000",
        )
    } AS milli
      FROM used u
    ),
    tiers AS (
      SELECT c.tenant, c.month, c.customer, c.meter, c.p_start, c.milli, t.tier,
        {half_up_div("CAST(t.tier_from * 1000 AS HUGEINT) * c.days", "c.month_days")} AS lo,
        lead({half_up_div("CAST(t.tier_from * 1000 AS HUGEINT) * c.days", "c.month_days")})
          OVER (PARTITION BY c.tenant, c.month, c.meter, c.p_start ORDER BY t.tier) AS hi,
        {half_up_div("CAST(t.unit_price * 1000000 AS HUGEINT)", "100")} AS price
      FROM consumption c JOIN tariffs t ON t.tenant = c.tenant
        AND t.tariff_class = c.tariff_class AND t.valid_from = c.valid_from
    ),
    lines AS (
      SELECT tenant, month, customer,
        {half_up_div("(least(milli, coalesce(hi, milli)) - lo) * price", "100000")} AS cents
      FROM tiers WHERE least(milli, coalesce(hi, milli)) - lo > 0
      UNION ALL
      SELECT tenant, month, customer,
        {half_up_div("CAST(fixed_fee * 100 AS HUGEINT) * days", "month_days")} AS cents
      FROM consumption
    )
    SELECT strftime(month, '%Y-%m') AS month, customer, sum(cents) AS cents
    FROM lines GROUP BY ALL
    """


def bill_totals(
    folder: Path, first: str = f"{YEAR}-01-01", end: str = f"{YEAR + 1}-01-01"
) -> dict[tuple[str, str], Decimal]:
    """Each bill's total by month and customer, for the months in [first, end)."""
    import duckdb

    con = duckdb.connect()
    con.execute(f"SET threads = {THREADS}")
    rows = con.execute(script(folder, first, end)).fetchall()
    con.close()
    return {(m, c): Decimal(int(cents)) / 100 for m, c, cents in rows}
