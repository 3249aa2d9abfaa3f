"""Water bills: a month of meter windows priced into bill lines per customer, and the
demand per site against what the site can supply.

One calendar month per iteration (`Monthly`, column `month`):

1. Spark reads only that month's days of `silver/readings` (partition pruning on
   `date`; consented rows only, through the gate), only water meters' `flow`, and turns
   each window into m3 (`mean x minutes / 1000` as DECIMAL(18,9)) and seconds covered,
   summed per meter and day: a few rows per meter reach the driver, never the windows.
2. The registry and tariffs (reference data, small) give the billing periods: a meter's
   days in the month per registry row, split where its tariff changes.
3. `edgebatch.framework.reports.billing` prices each period in `Decimal`: measured
   volume plus an estimate for uncovered time, tiers pro-rated by days, the fee.
4. The lines of consented customers go to `gold/water_bills`; the sums per site, with
   the site's capacity, last year's month and a 12-month moving average, to
   `gold/water_demand`.

A month's rows are replaced as a whole, so a rerun changes nothing. docs/gold.md
(`## Water billing`) states every rule and rounding point.

    edgebatch run water_bills --partition 2026-11
    spark-submit --properties-file spark-defaults.conf jobs/water_bills.py --partition 2026-11
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal

from edgebatch.framework.consent import consented, subject_free
from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, not_null, unique
from edgebatch.framework.partitions import Monthly
from edgebatch.framework.reports import billing
from edgebatch.framework.reports.bills import WATER_BILLS
from edgebatch.framework.scheduler import AfterUpstream, Schedule
from edgebatch.warehouse.reference import CONSENT, CUSTOMERS, DEVICES, SITES, TARIFFS
from edgebatch.warehouse.tables import declare

READINGS = "silver/readings"
DEFAULT_LANGUAGE = "en"

WATER_DEMAND = declare(
    "gold/water_demand",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, site STRING NOT NULL, meters INT NOT NULL,
    consumption_m3 DECIMAL(14,3) NOT NULL, estimated_periods INT NOT NULL,
    capacity_m3 DECIMAL(14,3), utilisation DECIMAL(9,4),
    previous_year_m3 DECIMAL(14,3), change_vs_previous_year DECIMAL(9,4),
    moving_average_12m_m3 DECIMAL(14,3) NOT NULL, months_in_average INT NOT NULL
    """,
    partition_by=("tenant", "month"),
    keys=("tenant", "month", "site"),
    comment="Monthly water consumption per site against its supply capacity, with the same "
    "month a year before and a 12-month moving average.",
)
subject_free(WATER_DEMAND.name, "sums per site over all its customers' meters; no customer")

BILL_EXPECTATIONS = Expectations(
    unique(WATER_BILLS.keys, action="fail", name="one_line_per_key"),
    in_range("consumption_m3", min=0, action="fail"),
    in_range("amount", min=0, action="fail"),
    not_null("customer_name", action="fail"),
)


@job(
    inputs=[READINGS, DEVICES.name, TARIFFS.name, CUSTOMERS.name, SITES.name, CONSENT.name],
    outputs=[WATER_BILLS.name, WATER_DEMAND.name],
    partitions=Monthly(column="month"),
    pool="default",
    priority=40,
    retry=Retry(attempts=2, backoff_s=30),
    timeout_s=3600,
    upstream=("silver_readings",),
    tags=("gold", "billing"),
    schedule=Schedule(triggers=[AfterUpstream("silver_readings")]),
    # gold/water_demand's year-ago and 12-month figures read the months before: a backfill
    # bills them first, one month at a time.
    in_order=True,
)
def water_bills(ctx):
    """Bill lines per customer, meter, period and tier, and demand per site, for one month."""
    from edgebatch.warehouse.tables import ensure_table

    month = dt.date.fromisoformat(ctx.bounds["start"])
    for spec in (DEVICES, TARIFFS, CUSTOMERS, SITES, WATER_DEMAND):
        ensure_table(ctx.spark, ctx.root, spec)
    daily = _daily_usage(ctx)
    registrations = _registrations(ctx, month)
    tariffs = billing.tariffs_from_rows(r.asDict() for r in _reference(ctx, TARIFFS).collect())
    periods = billing.periods(month, registrations, tariffs)
    customers = {
        (r.tenant, r.customer): (r.name, r.language) for r in _reference(ctx, CUSTOMERS).collect()
    }
    month_days = (billing.month_end(month) - month).days

    meter_month: dict[tuple[str, str], billing.Usage] = defaultdict(billing.Usage)
    for (tenant, meter, _), usage in daily.items():
        meter_month[(tenant, meter)] += usage
    measured = {p: billing.measured(p, daily) for p in periods}
    class_month: dict[tuple[str, str | None], billing.Usage] = defaultdict(billing.Usage)
    for p, usage in measured.items():
        class_month[(p.registration.tenant, p.registration.tariff_class)] += usage

    lines, used = [], {}
    unnamed = set()
    for p in periods:
        reg = p.registration
        used[p] = billing.consumption(
            p,
            measured[p],
            meter_month[(reg.tenant, reg.meter)],
            class_month[(reg.tenant, reg.tariff_class)],
        )
        name, language = customers.get((reg.tenant, reg.customer), (None, None))
        if name is None:
            unnamed.add((reg.tenant, reg.customer))
        for line in billing.bill_lines(p, used[p], month_days):
            lines.append(
                {
                    "tenant": reg.tenant,
                    "month": month,
                    "customer": reg.customer,
                    "customer_name": name or reg.customer,
                    "language": language or DEFAULT_LANGUAGE,
                    "currency": p.tariff.currency,
                    **line,
                }
            )
    if unnamed:
        ctx.log.warning(
            "%d customers have no row in reference/customers; billed under their id in %s: %s",
            len(unnamed), DEFAULT_LANGUAGE, ", ".join(f"{t}/{c}" for t, c in sorted(unnamed)),
        )  # fmt: skip
    estimated = sum(1 for c in used.values() if c.estimated)
    ctx.log.info(
        "%d meters' windows on %d meter-days; %d billing periods (%d with an estimate), "
        "%d bill lines for %d customers",
        len(meter_month), len(daily), len(periods), estimated, len(lines),
        len({(r["tenant"], r["customer"]) for r in lines}),
    )  # fmt: skip

    bills = ctx.spark.createDataFrame(lines, schema=WATER_BILLS.struct())
    ctx.write(BILL_EXPECTATIONS.apply(ctx, bills).frame, WATER_BILLS.name)
    demand = _demand(ctx, month, used)
    ctx.write(ctx.spark.createDataFrame(demand, schema=WATER_DEMAND.struct()), WATER_DEMAND.name)
    return None


def _reference(ctx, spec):
    from edgebatch.warehouse.reference import read_reference

    return read_reference(ctx.spark, ctx.root, spec)


def _daily_usage(ctx) -> dict[tuple[str, str, dt.date], billing.Usage]:
    """Per tenant, meter and day: the windows' m3 (each DECIMAL(18,9)) and seconds, summed.

    Only the month's `date` partitions are read (the predicate is on the partition
    column, and the gate's semi join keeps it next to the scan), only the columns used.
    """
    from pyspark.sql import functions as F

    windows = (
        ctx.table(READINGS)
        .where(ctx.predicate("date"))
        .where((F.col("kind") == "water_meter") & (F.col("metric") == "flow"))
    )
    seconds = F.unix_timestamp("window_end") - F.unix_timestamp("window_start")
    # m3 = mean flow (l/min) x minutes / 1000, in that order, then to DECIMAL(18,9)
    # (Spark's cast rounds half up): one exact decimal per window, summed exactly.
    m3 = (F.col("mean") * (seconds / F.lit(60.0)) / F.lit(1000.0)).cast("decimal(18,9)")
    per_day = (
        windows.select("tenant", "device", "date", m3.alias("m3"), seconds.alias("s"))
        .groupBy("tenant", "device", "date")
        .agg(F.sum("m3").alias("m3"), F.sum("s").alias("s"), F.count(F.lit(1)).alias("n"))
    )
    out = {}
    read = 0
    for r in per_day.collect():
        out[(r.tenant, r.device, r.date)] = billing.Usage(Decimal(r.m3), int(r.s))
        read += r.n
    ctx.count_in(read)
    return out


def _registrations(ctx, month: dt.date) -> list[billing.Registration]:
    """Water meters' registry rows overlapping the month, of customers with consent now."""
    from pyspark.sql import functions as F

    devices = (
        _reference(ctx, DEVICES)
        .where(F.col("kind") == "water_meter")
        .where(F.col("installed_on") < F.lit(billing.month_end(month)))
        .where(F.col("removed_on").isNull() | (F.col("removed_on") > F.lit(month)))
    )
    rows = devices.join(consented(ctx.spark, ctx.root), ["tenant", "subject"], "left_semi")
    return [
        billing.Registration(
            r.tenant, r.device, r.subject, r.site, r.tariff_class, r.installed_on, r.removed_on
        )
        for r in rows.collect()
    ]


def _demand(ctx, month: dt.date, used: dict[billing.Period, billing.Consumption]) -> list[dict]:
    """Per site: the month's billed consumption against its capacity, last year, 12 months."""
    from pyspark.sql import functions as F

    capacity = {(r.tenant, r.site): r.capacity_m3_per_day for r in _reference(ctx, SITES).collect()}
    earlier = (
        ctx.table(WATER_DEMAND.name)
        .where(F.col("month") >= F.lit(billing.add_months(month, -12)))
        .where(F.col("month") < F.lit(month))
        .select("tenant", "site", "month", "consumption_m3")
    )
    history: dict[tuple[str, str], dict[dt.date, Decimal]] = defaultdict(dict)
    for r in earlier.collect():
        history[(r.tenant, r.site)][r.month] = r.consumption_m3
    return billing.demand_rows(month, used, capacity, history)


if __name__ == "__main__":
    raise SystemExit(main(water_bills))
