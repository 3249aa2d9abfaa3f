"""The water bill's arithmetic: billing periods, estimates for gaps, tiers, pro-rating.

Pure `Decimal` rules over small inputs (a month's registry rows and tariffs, and each
meter's measured volume per day), kept apart from Spark so that every rounding point is
in one readable place; docs/gold.md (`## Water billing`) states the same rules for
anyone implementing them elsewhere. Money and volumes never pass through a float here:
the only float is a window's mean flow, which the job turns into a whole number of
nano-m3 per window before it sums anything.
"""

from __future__ import annotations

import bisect
import dataclasses
import datetime as dt
import itertools
from collections.abc import Iterable, Mapping, Sequence
from decimal import ROUND_HALF_UP, Context, Decimal
from typing import TYPE_CHECKING

from edgebatch.framework.errors import FrameworkError

if TYPE_CHECKING:
    import pyarrow as pa

M3 = Decimal("0.001")  # consumption and thresholds: DECIMAL(14,3)
PRICE = Decimal("0.0001")  # unit price on the bill: DECIMAL(12,4)
CENT = Decimal("0.01")  # amounts: DECIMAL(14,2)
FINE = Decimal("0.000000001")  # a volume before it is billed: DECIMAL(.., 9)
RATIO = Decimal("0.0001")  # utilisation, change against last year
DAY_S = 86_400
FEE_TIER = "fee"
_WIDE = Context(prec=40)  # ratios: 40 significant digits before their rounding


class BillingError(FrameworkError):
    """Reference data a month cannot be billed with (a meter without a tariff, ...)."""


def half_up(value: Decimal, quantum: Decimal) -> Decimal:
    """`value` rounded half up (away from zero on a tie) to `quantum`."""
    return value.quantize(quantum, rounding=ROUND_HALF_UP)


def ratio(numerator: Decimal, denominator: Decimal | int, quantum: Decimal) -> Decimal:
    """`numerator / denominator`, computed with 40 significant digits, rounded half up."""
    quotient = _WIDE.divide(Decimal(numerator), Decimal(denominator))
    return quotient.quantize(quantum, rounding=ROUND_HALF_UP, context=_WIDE)


@dataclasses.dataclass(frozen=True)
class Registration:
    """A registry row of a water meter: who it bills, where, from when to when."""

    tenant: str
    meter: str
    customer: str
    site: str | None
    tariff_class: str | None
    installed_on: dt.date
    removed_on: dt.date | None


@dataclasses.dataclass(frozen=True)
class Tier:
    tier: int
    tier_from: Decimal  # m3 per month
    unit_price: Decimal


@dataclasses.dataclass(frozen=True)
class Schedule:
    """A tariff's tiers and fee for a period of so many days of a month of so many days:
    each tier's pro-rated bounds `[lower, upper)` (the last one open) and printed unit
    price, and the fee's printed price and pro-rated amount."""

    tiers: tuple[tuple[str, Decimal, Decimal | None, Decimal], ...]
    fee_price: Decimal
    fee_amount: Decimal


@dataclasses.dataclass(frozen=True)
class Tariff:
    """One validity of a tariff class: its tiers in order, fee per month, currency."""

    tenant: str
    tariff_class: str
    valid_from: dt.date
    valid_to: dt.date | None
    tiers: tuple[Tier, ...]
    fixed_fee: Decimal
    currency: str
    # Schedules by (days, month days): a year of 2,000 meters is some 26,000 periods
    # but only a few dozen period lengths, each priced the same way.
    _schedules: dict[tuple[int, int], Schedule] = dataclasses.field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def schedule(self, days: int, month_days: int) -> Schedule:
        """The tiers' bounds pro-rated to `days` of `month_days`, prices and fee as billed."""
        found = self._schedules.get((days, month_days))
        if found is None:
            bounds = [ratio(t.tier_from * days, month_days, M3) for t in self.tiers]
            found = Schedule(
                tuple(
                    (f"T{t.tier}", lower, upper, half_up(t.unit_price, PRICE))
                    for t, lower, upper in zip(self.tiers, bounds, [*bounds[1:], None], strict=True)
                ),
                half_up(self.fixed_fee, PRICE),
                ratio(self.fixed_fee * days, month_days, CENT),
            )
            self._schedules[(days, month_days)] = found
        return found


@dataclasses.dataclass(frozen=True)
class Usage:
    """Volume measured (sum of the windows' volumes, each whole nano-m3) and seconds covered."""

    m3: Decimal = Decimal(0)
    seconds: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.m3 + other.m3, self.seconds + other.seconds)

    @classmethod
    def of_nano(cls, nano: int, seconds: int) -> Usage:
        """From a whole number of nano-m3, the unit the windows' volumes are summed in."""
        return cls(Decimal(nano).scaleb(-9), seconds)


@dataclasses.dataclass(frozen=True)
class Period:
    """Days `[start, end)` of one meter billed to one customer under one tariff validity."""

    registration: Registration
    tariff: Tariff
    start: dt.date
    end: dt.date  # excluded

    @property
    def days(self) -> int:
        return (self.end - self.start).days


@dataclasses.dataclass(frozen=True)
class Consumption:
    """A period's billed consumption (DECIMAL(14,3)) and whether it includes an estimate."""

    m3: Decimal
    estimated: bool
    measured: Usage
    gap_seconds: int


def month_end(month: dt.date) -> dt.date:
    """The first day of the next month."""
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def tariffs_from_rows(rows: Iterable[Mapping]) -> list[Tariff]:
    """Group `reference/tariffs` rows into validities, tiers by number; checks the unit."""
    grouped: dict[tuple, list[Mapping]] = {}
    for row in rows:
        if row["unit"] != "m3":
            raise BillingError(
                f"tariff {row['tenant']}/{row['tariff_class']} from {row['valid_from']}: unit "
                f"{row['unit']!r} is not m3 (meters are billed in m3)"
            )
        key = (row["tenant"], row["tariff_class"], row["valid_from"], row["valid_to"])
        grouped.setdefault(key, []).append(row)
    tariffs = []
    for (tenant, cls, valid_from, valid_to), group in sorted(grouped.items(), key=_tariff_key):
        group.sort(key=lambda r: r["tier"])
        fees = {r["fixed_fee"] for r in group}
        currencies = {r["currency"] for r in group}
        where = f"tariff {tenant}/{cls} from {valid_from}"
        if len(fees) != 1 or len(currencies) != 1:
            raise BillingError(f"{where}: its tiers disagree on fixed_fee or currency")
        tiers = tuple(Tier(r["tier"], r["tier_from"], r["unit_price"]) for r in group)
        if tiers[0].tier_from != 0:
            raise BillingError(f"{where}: the first tier must start at 0 m3")
        if any(b.tier_from <= a.tier_from for a, b in zip(tiers, tiers[1:], strict=False)):
            raise BillingError(f"{where}: tier_from must grow with the tier")
        tariffs.append(
            Tariff(tenant, cls, valid_from, valid_to, tiers, fees.pop(), currencies.pop())
        )
    return tariffs


def _tariff_key(item: tuple) -> tuple:
    tenant, cls, valid_from, _ = item[0]
    return (tenant, cls, valid_from)


def periods(
    month: dt.date, registrations: Iterable[Registration], tariffs: Sequence[Tariff]
) -> list[Period]:
    """The month's billing periods: each registry row's days in the month, split where the
    tariff of its class changes. A day without a valid tariff is an error, not a gift."""
    first, end = month, month_end(month)
    by_class: dict[tuple[str, str], list[Tariff]] = {}
    for t in tariffs:
        by_class.setdefault((t.tenant, t.tariff_class), []).append(t)
    out = []
    for reg in registrations:
        start = max(reg.installed_on, first)
        stop = min(reg.removed_on or end, end)
        if start >= stop:
            continue
        if reg.tariff_class is None:
            raise BillingError(
                f"meter {reg.tenant}/{reg.meter} (customer {reg.customer}) has no tariff_class "
                f"in reference/devices from {reg.installed_on}"
            )
        day = start
        for t in sorted(
            by_class.get((reg.tenant, reg.tariff_class), []), key=lambda t: t.valid_from
        ):
            t_end = t.valid_to or end
            if t.valid_from > day or t_end <= day:
                continue
            cut = min(t_end, stop)
            out.append(Period(reg, t, day, cut))
            day = cut
            if day >= stop:
                break
        if day < stop:
            raise BillingError(
                f"meter {reg.tenant}/{reg.meter}: no tariff of class {reg.tariff_class!r} is "
                f"valid on {day} (reference/tariffs)"
            )
    return out


EPOCH = dt.date(1970, 1, 1)


class DailyUsage:
    """Each meter's measured usage per day (whole nano-m3, seconds), kept as running sums:
    a period's usage is two binary searches, not a lookup per day (a year of 2,000 meters
    is some 300,000 periods over 730,000 meter-days). Built in Arrow and C loops
    (`itertools`), not a Python loop per meter-day."""

    def __init__(self) -> None:
        # Every meter's days side by side (since 1970-01-01), each meter's a slice
        # [lo, hi) in ascending order; the running sums of nano-m3 and seconds before each
        # position (one longer than the days).
        self._days: list[int] = []
        self._nano: list[int] = [0]
        self._seconds: list[int] = [0]
        self._spans: dict[tuple[str, str], tuple[int, int]] = {}

    @classmethod
    def of_table(cls, table: pa.Table) -> DailyUsage:
        """From an Arrow table of meter-days in any order: `tenant`, `meter`, `day` (a
        date, or days since 1970-01-01), `nano` (nano-m3) and `seconds`. A day may
        repeat, for a meter that changed customer that day.

        Sorted by the names' dictionary codes, not the strings (half the time); the
        running sums are Python integers, exact however large a fleet's year is."""
        import pyarrow as pa
        import pyarrow.compute as pc

        usage = cls()
        if table.num_rows == 0:
            return usage
        tenants = pc.dictionary_encode(table.column("tenant").combine_chunks())
        meters = pc.dictionary_encode(table.column("meter").combine_chunks())
        days = table.column("day").combine_chunks()
        if pa.types.is_date(days.type):
            days = days.cast(pa.int32())
        codes = pa.table({"t": tenants.indices, "m": meters.indices, "d": days})
        order = pc.sort_indices(codes, [("t", "ascending"), ("m", "ascending"), ("d", "ascending")])
        codes = codes.take(order)
        usage._days = codes.column("d").to_pylist()
        for name, sums in (("nano", "_nano"), ("seconds", "_seconds")):
            values = table.column(name).take(order).to_pylist()
            setattr(usage, sums, list(itertools.accumulate(values, initial=0)))
        # Each meter's slice starts where the (tenant, meter) codes change.
        t, m = codes.column("t").combine_chunks(), codes.column("m").combine_chunks()
        changed = pc.or_(pc.not_equal(t[1:], t[:-1]), pc.not_equal(m[1:], m[:-1]))
        starts = [0, *(i + 1 for i in pc.indices_nonzero(changed).to_pylist()), len(t)]
        for lo, hi in itertools.pairwise(starts):
            key = (
                tenants.dictionary[t[lo].as_py()].as_py(),
                meters.dictionary[m[lo].as_py()].as_py(),
            )
            usage._spans[key] = (lo, hi)
        return usage

    def usage(self, tenant: str, meter: str, start: dt.date, end: dt.date) -> Usage:
        """The meter's measured usage over days `[start, end)`."""
        span = self._spans.get((tenant, meter))
        if span is None:
            return Usage()
        first = bisect.bisect_left(self._days, (start - EPOCH).days, *span)
        stop = bisect.bisect_left(self._days, (end - EPOCH).days, *span)
        return Usage.of_nano(
            self._nano[stop] - self._nano[first], self._seconds[stop] - self._seconds[first]
        )

    def meters(self, start: dt.date, end: dt.date) -> dict[tuple[str, str], int]:
        """The meters with a measured day in `[start, end)`, with how many such days."""
        lo, hi = (start - EPOCH).days, (end - EPOCH).days
        found = {}
        for key, span in self._spans.items():
            n = bisect.bisect_left(self._days, hi, *span) - bisect.bisect_left(
                self._days, lo, *span
            )
            if n:
                found[key] = n
        return found


def measured(period: Period, daily: DailyUsage) -> Usage:
    """The period's measured usage: the meter's daily sums over the period's days."""
    reg = period.registration
    return daily.usage(reg.tenant, reg.meter, period.start, period.end)


def consumption(
    period: Period, usage: Usage, meter_month: Usage, class_month: Usage
) -> Consumption:
    """Measured volume plus, for the seconds no window covers, an estimate at the meter's
    average rate over the month (its class's average rate if it measured nothing; none
    if the class measured nothing either), rounded half up to the litre (0.001 m3)."""
    gap = max(period.days * DAY_S - usage.seconds, 0)
    estimate = Decimal(0)
    if gap:
        basis = meter_month if meter_month.seconds else class_month
        if basis.seconds:
            estimate = ratio(basis.m3 * gap, basis.seconds, FINE)
    return Consumption(half_up(usage.m3 + estimate, M3), gap > 0, usage, gap)


def bill_lines(
    period: Period, used: Consumption, month_days: int, billed_to: Mapping | None = None
) -> list[dict]:
    """The period's bill lines: one per tier its consumption reaches, then the fee; each
    line starts with `billed_to`'s columns (the customer's, say).

    Tier thresholds are monthly and pro-rated by the period's days: `tier_from x days /
    month_days`, rounded half up to 0.001 m3. The consumption fills the tiers in order.
    A line's amount is its consumption x the unit price (rounded half up to 4 decimals,
    as printed) rounded half up to the cent. The fee is `fixed_fee x days / month_days`
    rounded half up to the cent, on a line of its own (`tier` = `fee`, consumption 0).
    """
    schedule = period.tariff.schedule(period.days, month_days)
    meter, start = period.registration.meter, period.start
    last = period.end - dt.timedelta(days=1)
    m3 = used.m3
    base = billed_to or {}
    lines = []
    for tier, lower, upper, price in schedule.tiers:
        quantity = (m3 if upper is None or m3 <= upper else upper) - lower
        if quantity <= 0:
            continue
        lines.append(
            {
                **base,
                "meter": meter,
                "period_start": start,
                "period_end": last,
                "tier": tier,
                "consumption_m3": half_up(quantity, M3),
                "unit_price": price,
                "amount": half_up(quantity * price, CENT),
                "estimated": used.estimated,
            }
        )
    lines.append(
        {
            **base,
            "meter": meter,
            "period_start": start,
            "period_end": last,
            "tier": FEE_TIER,
            "consumption_m3": Decimal("0.000"),
            "unit_price": schedule.fee_price,
            "amount": schedule.fee_amount,
            "estimated": False,
        }
    )
    return lines


def add_months(month: dt.date, n: int) -> dt.date:
    """The first day of the month `n` months after `month`'s (before, for negative `n`)."""
    index = month.year * 12 + month.month - 1 + n
    return dt.date(index // 12, index % 12 + 1, 1)


def demand_rows(
    month: dt.date,
    used: Iterable[tuple[Period, Consumption]],
    capacity: Mapping[tuple[str, str], Decimal],
    history: Mapping[tuple[str, str], Mapping[dt.date, Decimal]],
) -> list[dict]:
    """`gold/water_demand` rows: per tenant and site, the billed consumption of the month
    against the site's capacity per day x the month's days, the same month a year before
    and the mean over the months of the last twelve that exist (`used`: each billing
    period with its consumption; `history`: earlier months' consumption per site).
    Meters without a site are left out."""
    sums: dict[tuple[str, str], Decimal] = {}
    estimated: dict[tuple[str, str], int] = {}
    meters: dict[tuple[str, str], set[str]] = {}
    for p, c in used:
        reg = p.registration
        if reg.site is None:
            continue
        key = (reg.tenant, reg.site)
        sums[key] = sums.get(key, Decimal("0.000")) + c.m3
        estimated[key] = estimated.get(key, 0) + int(c.estimated)
        meters.setdefault(key, set()).add(reg.meter)
    days = (month_end(month) - month).days
    year_ago, eleven_back = add_months(month, -12), add_months(month, -11)
    rows = []
    for key in sorted(sums):
        total = sums[key]
        per_day = capacity.get(key)
        cap = None if per_day is None else half_up(per_day * days, M3)
        past = history.get(key, {})
        previous = past.get(year_ago)
        window = [total] + [v for m, v in past.items() if eleven_back <= m < month]
        rows.append(
            {
                "tenant": key[0],
                "month": month,
                "site": key[1],
                "meters": len(meters[key]),
                "consumption_m3": total,
                "estimated_periods": estimated[key],
                "capacity_m3": cap,
                "utilisation": ratio(total, cap, RATIO) if cap else None,
                "previous_year_m3": previous,
                "change_vs_previous_year": (
                    ratio(total - previous, previous, RATIO) if previous else None
                ),
                "moving_average_12m_m3": ratio(sum(window, Decimal(0)), len(window), M3),
                "months_in_average": len(window),
            }
        )
    return rows
