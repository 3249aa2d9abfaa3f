"""Water bills recomputed from the landing files and the reference CSVs, in plain Python.

The water_bills job prices with Spark and `framework.reports.billing`; this module is a
second implementation of docs/gold.md (`## Water billing`) that shares none of that code,
so a bill that disagrees with it to the cent points at a defect in one of the two. The
demo's verdict (`demo_checks`) compares its bills with `gold/water_bills`, and the job's
own tests use it as their expected figures.

From the landing lines it rebuilds what silver holds of each meter's flow: each batch and
metric once (a resent batch lands twice), a window's revisions folded in order as silver
folds them, each window turned into a whole number of nano-m3 and summed per tenant,
meter and UTC day. From the registry, tariffs, customers and consent it builds each
billing period day by day (a day gets its registry row and the tariff valid on it; runs
of days with the same pair are the periods) and prices them with `Decimal` only.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from collections import defaultdict
from collections.abc import Container, Iterable, Mapping
from decimal import ROUND_HALF_UP, Decimal, localcontext
from pathlib import Path
from typing import NamedTuple

DAY_S = 86_400
FLOW = "flow"
WATER_METER = "water_meter"


class BillLine(NamedTuple):
    """One line of `gold/water_bills`, its columns in the table's order."""

    tenant: str
    month: dt.date
    customer: str
    customer_name: str
    language: str
    currency: str
    meter: str
    period_start: dt.date
    period_end: dt.date
    tier: str
    consumption_m3: Decimal
    unit_price: Decimal
    amount: Decimal
    estimated: bool


@dataclasses.dataclass(frozen=True)
class Usage:
    """Whole nano-m3 and seconds of windows (of a meter and day, or summed over days)."""

    nano: int = 0
    seconds: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.nano + other.nano, self.seconds + other.seconds)

    @property
    def m3(self) -> Decimal:
        return Decimal(self.nano).scaleb(-9)


DailyFlow = Mapping[tuple[str, str, dt.date], Usage]  # (tenant, meter, UTC day) -> usage


def _seconds(epoch: float) -> int:
    """Whole seconds of a time as bronze stores it (microseconds), as `unix_seconds`."""
    return int(round(epoch * 1_000_000)) // 1_000_000


def flow_by_day(lines: Iterable[bytes | str]) -> dict[tuple[str, str, dt.date], Usage]:
    """Each tenant's meters' flow per UTC day from batch landing lines.

    A window's parts (revision 0 and its corrections; a resent batch counts once) fold
    into one mean in (revision, batch id) order with Chan's formula, from each part's
    mean as sent (its sum over its count when it has none), as silver merges them. A
    window's volume is `rint(mean * (seconds / 60) / 1000 * 1e9)` nano-m3, the day that
    of its start."""
    parts: dict[tuple[str, str, float, float], dict[str, tuple[int, int, float]]] = {}
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        payload = record["payload"]
        for metric in payload["metrics"]:
            if metric["name"] != FLOW or not metric["count"]:
                continue
            key = (payload["tenant"], payload["device"], record["norm"]["ws"], record["norm"]["we"])
            mean = metric.get("mean")
            if mean is None:
                mean = metric["sum"] / metric["count"]
            parts.setdefault(key, {})[payload["batch_id"]] = (
                int(payload["revision"]),
                int(metric["count"]),
                float(mean),
            )
    out: dict[tuple[str, str, dt.date], Usage] = defaultdict(Usage)
    for (tenant, meter, ws, we), by_id in parts.items():
        n, mean = 0, 0.0
        for _, (_, count, part_mean) in sorted(by_id.items(), key=lambda i: (i[1][0], i[0])):
            n += count
            mean = mean + (part_mean - mean) * count / n
        seconds = _seconds(float(we)) - _seconds(float(ws))
        nano = round(mean * (seconds / 60.0) / 1000.0 * 1e9)
        day = dt.datetime.fromtimestamp(_seconds(float(ws)), dt.UTC).date()
        out[(tenant, meter, day)] += Usage(nano, seconds)
    return dict(out)


def _date(text: str | None) -> dt.date | None:
    return dt.date.fromisoformat(text) if text else None


@dataclasses.dataclass(frozen=True)
class Meter:
    """A water meter's registry row."""

    tenant: str
    meter: str
    customer: str
    tariff_class: str
    installed_on: dt.date
    removed_on: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return self.installed_on <= day and (self.removed_on is None or day < self.removed_on)


@dataclasses.dataclass(frozen=True)
class Validity:
    """One validity of a tariff class: its tiers as (tier, tier_from, unit_price)."""

    valid_from: dt.date
    valid_to: dt.date | None
    tiers: tuple[tuple[int, Decimal, Decimal], ...]
    fixed_fee: Decimal
    currency: str

    def covers(self, day: dt.date) -> bool:
        return self.valid_from <= day and (self.valid_to is None or day < self.valid_to)


class BillingInputError(ValueError):
    """Reference data the bills cannot be recomputed with (the job fails on it too)."""


@dataclasses.dataclass(frozen=True)
class BillingReference:
    """The water meters, tariffs and customers of the reference CSVs."""

    meters: tuple[Meter, ...]
    tariffs: Mapping[tuple[str, str], tuple[Validity, ...]]  # (tenant, class) -> validities
    customers: Mapping[tuple[str, str], tuple[str, str]]  # (tenant, customer) -> name, lang

    @classmethod
    def read(cls, folder: Path) -> BillingReference:
        def rows(name: str) -> list[dict[str, str]]:
            path = folder / name
            if not path.is_file():
                return []
            with path.open(newline="", encoding="utf-8") as f:
                return list(csv.DictReader(f))

        return cls.from_rows(rows("devices.csv"), rows("tariffs.csv"), rows("customers.csv"))

    @classmethod
    def from_rows(
        cls,
        devices: Iterable[Mapping[str, str]],
        tariffs: Iterable[Mapping[str, str]],
        customers: Iterable[Mapping[str, str]],
    ) -> BillingReference:
        meters = tuple(
            Meter(
                d["tenant"],
                d["device"],
                d["subject"],
                d["tariff_class"] or "",
                dt.date.fromisoformat(d["installed_on"]),
                _date(d["removed_on"]),
            )
            for d in devices
            if d["kind"] == WATER_METER
        )
        grouped: dict[tuple[str, str, str], list[Mapping[str, str]]] = defaultdict(list)
        for t in tariffs:
            grouped[(t["tenant"], t["tariff_class"], t["valid_from"])].append(t)
        validities: dict[tuple[str, str], list[Validity]] = defaultdict(list)
        for (tenant, cls_, valid_from), tier_rows in sorted(grouped.items()):
            tier_rows = sorted(tier_rows, key=lambda t: int(t["tier"]))
            first = tier_rows[0]
            if any(t["unit"] != "m3" for t in tier_rows):
                raise BillingInputError(f"tariff {tenant} {cls_} {valid_from}: unit is not m3")
            validities[(tenant, cls_)].append(
                Validity(
                    dt.date.fromisoformat(valid_from),
                    _date(first["valid_to"]),
                    tuple(
                        (int(t["tier"]), Decimal(t["tier_from"]), Decimal(t["unit_price"]))
                        for t in tier_rows
                    ),
                    Decimal(first["fixed_fee"]),
                    first["currency"],
                )
            )
        names = {(c["tenant"], c["customer"]): (c["name"], c["language"]) for c in customers}
        return cls(meters, {k: tuple(v) for k, v in validities.items()}, names)

    def validity(self, meter: Meter, day: dt.date) -> Validity:
        for v in self.tariffs.get((meter.tenant, meter.tariff_class), ()):
            if v.covers(day):
                return v
        raise BillingInputError(
            f"meter {meter.tenant}/{meter.meter}: no {meter.tariff_class or '(no class)'} "
            f"tariff valid on {day}"
        )


def _half_up(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _scaled(value: Decimal, times: int, over: int, places: str) -> Decimal:
    """`value * times / over` computed with 40 significant digits, rounded half up once."""
    with localcontext() as ctx:
        ctx.prec = 40
        return _half_up(value * times / over, places)


def month_days(month: dt.date) -> list[dt.date]:
    after = (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return [month + dt.timedelta(days=i) for i in range((after - month).days)]


def bill_lines(
    flow: DailyFlow,
    reference: BillingReference,
    consented: Container[tuple[str, str]],
    tenant: str,
    month: dt.date,
) -> list[BillLine]:
    """Every bill line of `tenant`'s `month` (its first day), by docs/gold.md's rules."""
    days = month_days(month)
    n_month = len(days)
    meters = [
        m for m in reference.meters if m.tenant == tenant and (tenant, m.customer) in consented
    ]
    # (row, validity start) -> the row's days under that validity: the billing periods
    periods: dict[tuple[int, dt.date], list[dt.date]] = defaultdict(list)
    validity_of: dict[tuple[int, dt.date], Validity] = {}
    for day in days:
        for i, m in enumerate(meters):
            if m.covers(day):
                v = reference.validity(m, day)
                periods[(i, v.valid_from)].append(day)
                validity_of[(i, v.valid_from)] = v

    def usage(meter: str, on: Iterable[dt.date]) -> Usage:
        return sum((flow.get((tenant, meter, d), Usage()) for d in on), Usage())

    meter_days: dict[str, list[dt.date]] = defaultdict(list)  # the meter's days in silver
    by_class: dict[str, Usage] = defaultdict(Usage)
    for (i, _), pdays in periods.items():
        meter_days[meters[i].meter] += pdays
        by_class[meters[i].tariff_class] += usage(meters[i].meter, pdays)

    lines = []
    for (i, valid_from), pdays in sorted(periods.items(), key=lambda p: (p[0][0], p[1][0])):
        m, v, n = meters[i], validity_of[(i, valid_from)], len(pdays)
        measured = usage(m.meter, pdays)
        gap = max(n * DAY_S - measured.seconds, 0)
        estimate = Decimal(0)
        if gap > 0:
            rate = usage(m.meter, meter_days[m.meter])
            if rate.seconds == 0:
                rate = by_class[m.tariff_class]
            if rate.seconds:
                estimate = _scaled(rate.m3, gap, rate.seconds, "0.000000001")
        used = _half_up(measured.m3 + estimate, "0.001")
        name, language = reference.customers.get((tenant, m.customer), (m.customer, "en"))
        head = (tenant, month, m.customer, name, language, v.currency, m.meter, pdays[0], pdays[-1])
        froms = [_scaled(tier_from, n, n_month, "0.001") for _, tier_from, _ in v.tiers]
        for k, (tier, _, unit_price) in enumerate(v.tiers):
            upto = used if k + 1 == len(v.tiers) else min(used, froms[k + 1])
            qty = upto - froms[k]
            if qty > 0:
                price = _half_up(unit_price, "0.0001")
                lines.append(
                    BillLine(*head, f"T{tier}", qty, price, _half_up(qty * price, "0.01"), gap > 0)
                )
        fee = _scaled(v.fixed_fee, n, n_month, "0.01")
        lines.append(
            BillLine(*head, "fee", Decimal("0.000"), _half_up(v.fixed_fee, "0.0001"), fee, False)
        )
    return lines
