"""Water bills: a month of meter windows priced into bill lines per customer, and the
demand per site against what the site can supply.

One calendar month per partition (`Monthly`, column `month`); a backfill covers up to 12
consecutive months per iteration (`span=12`), billed in order:

1. Spark reads only those months' days of `silver/readings` (partition pruning on
   `date`; consented rows only, through the gate), only water meters' `flow`, and turns
   each window into whole nano-m3 (`mean x minutes / 1000`, rounded to 10^-9 m3) and
   seconds covered,
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
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

from edgebatch.framework.consent import consented_pairs
from edgebatch.framework.definitions import Retry
from edgebatch.framework.entry import main
from edgebatch.framework.expectations import Expectations, in_range, not_null, unique
from edgebatch.framework.gold import monthly_gold, monthly_table
from edgebatch.framework.reports import billing
from edgebatch.framework.reports.bills import WATER_BILLS
from edgebatch.warehouse.reference import (
    CONSENT,
    CUSTOMERS,
    DEVICES,
    SITES,
    TARIFFS,
    reference_rows,
)

READINGS = "silver/readings"
DEFAULT_LANGUAGE = "en"

WATER_DEMAND = monthly_table(
    "gold/water_demand",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, site STRING NOT NULL, meters INT NOT NULL,
    consumption_m3 DECIMAL(14,3) NOT NULL, estimated_periods INT NOT NULL,
    capacity_m3 DECIMAL(14,3), utilisation DECIMAL(9,4),
    previous_year_m3 DECIMAL(14,3), change_vs_previous_year DECIMAL(9,4),
    moving_average_12m_m3 DECIMAL(14,3) NOT NULL, months_in_average INT NOT NULL
    """,
    keys=("tenant", "month", "site"),
    comment="Monthly water consumption per site against its supply capacity, with the same "
    "month a year before and a 12-month moving average.",
    no_subject="sums per site over all its customers' meters; no customer",
)

BILL_EXPECTATIONS = Expectations(
    unique(WATER_BILLS.keys, action="fail", name="one_line_per_key"),
    in_range("consumption_m3", min=0, action="fail"),
    in_range("amount", min=0, action="fail"),
    not_null("customer_name", action="fail"),
)


@monthly_gold(
    "billing",
    inputs=[READINGS, DEVICES.name, TARIFFS.name, CUSTOMERS.name, SITES.name, CONSENT.name],
    outputs=[WATER_BILLS.name, WATER_DEMAND.name],
    retry=Retry(attempts=2, backoff_s=30),
    # gold/water_demand's year-ago and 12-month figures read the months before: a backfill
    # bills them oldest first.
    in_order=True,
    # A backfill bills up to a year per iteration: one read of the windows, one commit per
    # table (12 monthly iterations each paid the Spark and Delta overheads on their own).
    span=12,
)
def water_bills(ctx):
    """Bill lines per customer, meter, period and tier, and demand per site, month by month."""
    from edgebatch.warehouse.tables import arrow_rows, frame

    months = [
        dt.date.fromisoformat(ctx.job.partitioning.bounds(k)["start"]) for k in ctx.partition_keys
    ]
    # The reference reads are small Spark jobs that mostly wait (Delta logs, scheduling):
    # they run beside the windows' scan, in this iteration's job group, not after it.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="water-bills-reference") as pool:
        reference = pool.submit(ctx.in_thread(_reference_inputs), ctx, months)
        daily = _daily_usage(ctx)
        registrations, tariffs, customers, (capacity, history) = reference.result()
    lines: list[dict] = []
    demand: list[dict] = []
    for month in months:
        billed, used = _bill_month(ctx, month, daily, registrations, tariffs, customers)
        lines += billed
        # Months in order: each month's demand reads the ones billed before it.
        for row in billing.demand_rows(month, used, capacity, history):
            history[(row["tenant"], row["site"])][month] = row["consumption_m3"]
            demand.append(row)

    # The bills' expectations first, over the lines in Arrow (no Spark job): a failing
    # one fails the iteration before any commit.
    checked = BILL_EXPECTATIONS.apply(ctx, arrow_rows(WATER_BILLS, lines))
    bills = ctx.spark.createDataFrame(checked.frame)
    # Then two tables, two Delta commits that mostly wait on the log: side by side.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="water-bills-demand") as pool:
        demand_written = pool.submit(
            ctx.in_thread(ctx.write), frame(ctx.spark, WATER_DEMAND, demand), WATER_DEMAND.name
        )
        ctx.write(bills, WATER_BILLS.name)
        demand_written.result()
    return None


def _bill_month(
    ctx,
    month: dt.date,
    daily: billing.DailyUsage,
    registrations: list[billing.Registration],
    tariffs: list[billing.Tariff],
    customers: dict[tuple[str, str], tuple[str, str]],
) -> tuple[list[dict], list[tuple[billing.Period, billing.Consumption]]]:
    """One month's bill lines, and each billing period's consumption (for the demand)."""
    end = billing.month_end(month)
    periods = billing.periods(month, registrations, tariffs)
    month_days = (end - month).days
    measured = [billing.measured(p, daily) for p in periods]
    class_month: dict[tuple[str, str | None], billing.Usage] = defaultdict(billing.Usage)
    for p, usage in zip(periods, measured, strict=True):
        class_month[(p.registration.tenant, p.registration.tariff_class)] += usage

    lines, used = [], []
    unnamed = set()
    for p, usage in zip(periods, measured, strict=True):
        reg = p.registration
        whole_month = p.start == month and p.end == end
        consumption = billing.consumption(
            p,
            usage,
            usage if whole_month else daily.usage(reg.tenant, reg.meter, month, end),
            class_month[(reg.tenant, reg.tariff_class)],
        )
        used.append((p, consumption))
        name, language = customers.get((reg.tenant, reg.customer), (None, None))
        if name is None:
            unnamed.add((reg.tenant, reg.customer))
        billed_to = {
            "tenant": reg.tenant,
            "month": month,
            "customer": reg.customer,
            "customer_name": name or reg.customer,
            "language": language or DEFAULT_LANGUAGE,
            "currency": p.tariff.currency,
        }
        lines += billing.bill_lines(p, consumption, month_days, billed_to)
    if unnamed:
        ctx.log.warning(
            "%s: %d customers have no row in reference/customers; billed under their id in "
            "%s: %s", month.strftime("%Y-%m"), len(unnamed), DEFAULT_LANGUAGE,
            ", ".join(f"{t}/{c}" for t, c in sorted(unnamed)),
        )  # fmt: skip
    estimated = sum(1 for _, c in used if c.estimated)
    meter_days = daily.meters(month, end)
    ctx.log.info(
        "%s: %d meters' windows on %d meter-days; %d billing periods (%d with an estimate), "
        "%d bill lines for %d customers",
        month.strftime("%Y-%m"), len(meter_days), sum(meter_days.values()), len(periods),
        estimated, len(lines),
        len({(p.registration.tenant, p.registration.customer) for p in periods}),
    )  # fmt: skip
    return lines, used


def _reference_inputs(ctx, months: list[dt.date]):
    """Registrations, tariffs, customers and the demand's capacity and history."""
    from edgebatch.warehouse.tables import ensure_tables

    ensure_tables(ctx.spark, ctx.root, (DEVICES, TARIFFS, CUSTOMERS, SITES, WATER_DEMAND))
    registrations = _registrations(ctx, months[0], billing.month_end(months[-1]))
    tariffs = billing.tariffs_from_rows(r.asDict() for r in _rows(ctx, TARIFFS))
    customers = {(r.tenant, r.customer): (r.name, r.language) for r in _rows(ctx, CUSTOMERS)}
    return registrations, tariffs, customers, _demand_inputs(ctx, months[0])


def _rows(ctx, spec):
    """A small reference table's rows, held by the driver while the table's version holds
    (a warm worker bills month after month from the same registry)."""
    return reference_rows(ctx.spark, ctx.root, spec)


def _daily_usage(ctx) -> billing.DailyUsage:
    """Per tenant, meter and day: the windows' m3 (each a whole number of nano-m3) and
    seconds, summed.

    Only the months' files are read: `date`, `kind` and `metric` are partition columns
    of `silver/readings`, so Spark filters on them per file, not per row. The consent
    gate applies to each meter-day's sums (`ctx.aggregate_to_arrow`), not to each
    window, and the windows are grouped by silver's integer device and subject keys, not
    by strings.
    """
    import pyarrow.compute as pc
    from pyspark.sql import functions as F

    seconds = F.col("window_seconds")
    # m3 = mean flow (l/min) x minutes / 1000, in that order, times 10^9, rounded half to
    # even (rint) to whole nano-m3: one exact integer per window, summed exactly as a
    # BIGINT. (A DECIMAL per window cost Spark a BigDecimal per row: twice the CPU.)
    nano = F.rint(F.col("mean") * (seconds / F.lit(60.0)) / F.lit(1000.0) * F.lit(1e9))
    # Arrow, not Row pickling: a year of 2,000 meters is 730,000 meter-days, named and
    # gated in the driver.
    table = ctx.aggregate_to_arrow(
        READINGS,
        by=("tenant", "device", "date"),
        aggregates=(
            F.sum(nano.cast("long")).alias("m3"),
            F.sum(seconds).alias("s"),
            F.count(F.lit(1)).alias("n"),
        ),
        where=(ctx.predicate("date"), F.col("kind") == "water_meter", F.col("metric") == "flow"),
    )
    ctx.count_in(pc.sum(table.column("n")).as_py() or 0)
    return billing.DailyUsage.of_table(
        table.select(["tenant", "device", "date", "m3", "s"]).rename_columns(
            ["tenant", "meter", "day", "nano", "seconds"]
        )
    )


def _registrations(ctx, first: dt.date, end: dt.date) -> list[billing.Registration]:
    """Water meters' registry rows overlapping the months `[first, end)`, of customers
    with consent now."""
    allowed = consented_pairs(ctx.spark, ctx.root)
    return [
        billing.Registration(
            r.tenant, r.device, r.subject, r.site, r.tariff_class, r.installed_on, r.removed_on
        )
        for r in reference_rows(ctx.spark, ctx.root, DEVICES)
        if r.kind == "water_meter"
        and r.installed_on < end
        and (r.removed_on is None or r.removed_on > first)
        and (r.tenant, r.subject) in allowed
    ]


def _demand_inputs(
    ctx, first: dt.date
) -> tuple[dict[tuple[str, str], Decimal], dict[tuple[str, str], dict[dt.date, Decimal]]]:
    """Each site's capacity per day, and its consumption in the 12 months before `first`."""
    from pyspark.sql import functions as F

    capacity = {(r.tenant, r.site): r.capacity_m3_per_day for r in _rows(ctx, SITES)}
    earlier = (
        ctx.table(WATER_DEMAND.name)
        .where(F.col("month") >= F.lit(billing.add_months(first, -12)))
        .where(F.col("month") < F.lit(first))
        .select("tenant", "site", "month", "consumption_m3")
    )
    history: dict[tuple[str, str], dict[dt.date, Decimal]] = defaultdict(dict)
    for r in earlier.collect():
        history[(r.tenant, r.site)][r.month] = r.consumption_m3
    return capacity, history


if __name__ == "__main__":
    raise SystemExit(main(water_bills))
