"""The demo's verdict: its figures recomputed independently from the landing files.

The jobs compute from bronze with Spark; this module recomputes the same figures in
plain Python from what the collector landed and the reference CSVs the demo loaded,
and lists every difference. So `edgebatch demo --once` fails on a lost or duplicated
reading, a consent gate that let a subject through or kept one out, a bill for a
customer who should (not) have one, or a bill line that differs from `demo_bills`'
recomputation of the month (to the cent), not only on a run that failed.

Pure functions over values: the demo reads the files and tables, these compare.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from edgebatch.cli.demo_bills import (
    BillingInputError,
    BillingReference,
    BillLine,
    DailyFlow,
    bill_lines,
)

WindowKey = tuple[str, str, str, float]  # tenant, device, metric, window start (epoch s)
GRANTED = "granted"


@dataclasses.dataclass(frozen=True)
class Registration:
    tenant: str
    device: str
    kind: str
    subject: str
    installed_on: dt.date
    removed_on: dt.date | None

    def covers(self, day: dt.date) -> bool:
        return self.installed_on <= day and (self.removed_on is None or day < self.removed_on)


@dataclasses.dataclass(frozen=True)
class Reference:
    """The registry and each subject's latest consent, as the CSVs the demo loaded say."""

    registrations: tuple[Registration, ...]
    consent: Mapping[tuple[str, str], str]  # (tenant, subject) -> latest status
    # water meters, tariffs and customers, for the bills (none: no bill is recomputed)
    billing: BillingReference | None = None

    @classmethod
    def read(cls, folder: Path) -> Reference:
        regs = []
        with (folder / "devices.csv").open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                regs.append(
                    Registration(
                        row["tenant"],
                        row["device"],
                        row["kind"],
                        row["subject"],
                        dt.date.fromisoformat(row["installed_on"]),
                        dt.date.fromisoformat(row["removed_on"]) if row["removed_on"] else None,
                    )
                )
        events: list[tuple[str, str, str, str]] = []
        consent_file = folder / "consent.csv"
        if consent_file.is_file():
            with consent_file.open(newline="", encoding="utf-8") as f:
                events = [
                    (r["tenant"], r["subject"], r["at"], r["status"]) for r in csv.DictReader(f)
                ]
        return cls(tuple(regs), latest_consent(events), BillingReference.read(folder))

    def registration(self, tenant: str, device: str, day: dt.date) -> Registration | None:
        for reg in self.registrations:
            if reg.tenant == tenant and reg.device == device and reg.covers(day):
                return reg
        return None

    def withheld_reason(self, tenant: str, device: str, day: dt.date) -> str | None:
        """Why silver keeps a window of this device and day out, or None if it lets it in."""
        reg = self.registration(tenant, device, day)
        if reg is None:
            return "unregistered"
        status = self.consent.get((tenant, reg.subject))
        if status is None:
            return "no_consent"
        return None if status == GRANTED else "withdrawn"


def latest_consent(events: Iterable[tuple[str, str, str, str]]) -> dict[tuple[str, str], str]:
    """Each (tenant, subject)'s latest status by time; at the same time, withdrawn wins."""
    latest: dict[tuple[str, str], tuple[dt.datetime, int, str]] = {}
    for tenant, subject, at, status in events:
        when = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
        rank = (when, 0 if status == GRANTED else 1, status)
        key = (tenant, subject)
        if key not in latest or rank[:2] > latest[key][:2]:
            latest[key] = rank
    return {key: value[2] for key, value in latest.items()}


def landed_windows(lines: Iterable[bytes | str]) -> dict[WindowKey, int]:
    """Readings per window and metric from batch landing lines, each batch counted once
    (a resent batch lands twice with the same id; its revisions are separate batches)."""
    seen: set[tuple[str, str]] = set()
    readings: dict[WindowKey, int] = {}
    for line in lines:
        if not line.strip():
            continue
        record = json.loads(line)
        payload = record["payload"]
        start = float(record["norm"]["ws"])
        for metric in payload["metrics"]:
            batch = (payload["batch_id"], metric["name"])
            if batch in seen:
                continue
            seen.add(batch)
            key = (payload["tenant"], payload["device"], metric["name"], start)
            readings[key] = readings.get(key, 0) + int(metric["count"])
    return readings


def day_of(start: float) -> dt.date:
    return dt.datetime.fromtimestamp(start, dt.UTC).date()


@dataclasses.dataclass
class Counts:
    windows: int = 0
    readings: int = 0

    def add(self, readings: int) -> None:
        self.windows += 1
        self.readings += readings


@dataclasses.dataclass(frozen=True)
class Expected:
    """What silver should hold, recomputed: readings let in, and those withheld by reason."""

    total: int
    allowed: int
    withheld: dict[str, Counts]
    # (tenant, month 'YYYY-MM') -> customers whose meters sent readings silver lets in
    billable: dict[tuple[str, str], set[str]]
    denied: set[tuple[str, str]]  # (tenant, subject) without consent
    # (tenant, month) -> consented customers with a meter registered some day of the month
    # (billed on an estimate for the days without readings)
    may_bill: dict[tuple[str, str], set[str]] = dataclasses.field(default_factory=dict)
    # each water meter's flow per day as silver should hold it, and the reference it is
    # priced with: the bills' lines are recomputed from these (None: they are not)
    flow: DailyFlow | None = None
    billing: BillingReference | None = None
    consented: frozenset[tuple[str, str]] = frozenset()

    def bill_lines(self, tenant: str, month: dt.date) -> list[BillLine] | None:
        """The month's recomputed bill lines of `tenant`; None without flow or tariffs."""
        if self.flow is None or self.billing is None:
            return None
        return bill_lines(self.flow, self.billing, self.consented, tenant, month)


def expected_figures(
    windows: Mapping[WindowKey, int], reference: Reference, flow: DailyFlow | None = None
) -> Expected:
    withheld: dict[str, Counts] = {}
    billable: dict[tuple[str, str], set[str]] = {}
    allowed = 0
    for (tenant, device, _metric, start), readings in windows.items():
        day = day_of(start)
        reason = reference.withheld_reason(tenant, device, day)
        if reason is None:
            allowed += readings
            reg = reference.registration(tenant, device, day)
            if reg is not None and reg.kind == "water_meter":
                billable.setdefault((tenant, f"{day:%Y-%m}"), set()).add(reg.subject)
        else:
            withheld.setdefault(reason, Counts()).add(readings)
    denied = {
        (r.tenant, r.subject)
        for r in reference.registrations
        if reference.consent.get((r.tenant, r.subject)) != GRANTED
    }
    may_bill: dict[tuple[str, str], set[str]] = {}
    for tenant, month in {(k[0], f"{day_of(k[3]):%Y-%m}") for k in windows}:
        first = dt.date.fromisoformat(f"{month}-01")
        after = (first + dt.timedelta(days=32)).replace(day=1)
        may_bill[(tenant, month)] = {
            r.subject
            for r in reference.registrations
            if r.tenant == tenant
            and r.kind == "water_meter"
            and r.installed_on < after
            and (r.removed_on is None or r.removed_on > first)
            and reference.consent.get((tenant, r.subject)) == GRANTED
        }
    consented = frozenset(k for k, status in reference.consent.items() if status == GRANTED)
    return Expected(
        sum(windows.values()), allowed, withheld, billable, denied, may_bill,
        flow, reference.billing, consented,
    )  # fmt: skip


@dataclasses.dataclass(frozen=True)
class Observed:
    """What the tables hold, read by the demo (delta-rs) after the chain ran."""

    bronze_readings: int
    silver_readings: int
    quarantined: int
    withheld: dict[str, Counts]
    # gold table -> rows (only tables that exist)
    gold: dict[str, list[dict[str, Any]]]
    # gold table -> (subject column, tenant column) for tables about a subject
    subject_columns: dict[str, tuple[str, str]]


def mismatches(expected: Expected, observed: Observed) -> list[str]:
    """Every way the tables differ from the recomputation; empty when they agree."""
    out = []
    if observed.bronze_readings != expected.total:
        out.append(
            f"bronze counts {observed.bronze_readings} readings, the landing files "
            f"{expected.total}: not exactly once"
        )
    if observed.silver_readings + observed.quarantined != expected.allowed:
        out.append(
            f"silver holds {observed.silver_readings} readings (+{observed.quarantined} "
            f"quarantined), the consent rules let in {expected.allowed}"
        )
    for reason in sorted(set(expected.withheld) | set(observed.withheld)):
        want = expected.withheld.get(reason, Counts())
        got = observed.withheld.get(reason, Counts())
        if (want.windows, want.readings) != (got.windows, got.readings):
            out.append(
                f"withheld ({reason}): silver/withheld has {got.windows} windows "
                f"{got.readings} readings, recomputed {want.windows} windows {want.readings}"
            )
    for table, rows in sorted(observed.gold.items()):
        cols = observed.subject_columns.get(table)
        if cols is None:
            continue
        subject, tenant = cols
        leaked = sorted(
            {(r[tenant], r[subject]) for r in rows if (r[tenant], r[subject]) in expected.denied}
        )
        if leaked:
            out.append(f"{table} has rows about subjects without consent: {leaked}")
    out.extend(bill_mismatches(expected, observed.gold.get("gold/water_bills")))
    return out


def bill_mismatches(expected: Expected, rows: Sequence[Mapping[str, Any]] | None) -> list[str]:
    """Bills per month. With the flow recomputed, each bill (tenant, month, customer) must
    equal the recomputation line for line, to the cent: every differing bill is named.
    Without it: every consented customer whose meter sent readings silver lets in, no
    customer without a consented meter registered that month (one with a meter but no
    readings may be billed on an estimate). Always: each line's amount in cents."""
    if rows is None:
        return []
    out = []
    billed: dict[tuple[str, str], set[str]] = {}
    lines: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        month = row["month"]
        key = (row["tenant"], f"{month:%Y-%m}" if hasattr(month, "year") else str(month)[:7])
        billed.setdefault(key, set()).add(row["customer"])
        lines.setdefault(key, []).append(row)
        amount = Decimal(row["amount"])
        if amount != amount.quantize(Decimal("0.01")):
            out.append(f"bill line {row['customer']} {row['meter']}: amount {amount} not in cents")
    for key in sorted(set(billed) | set(expected.billable)):
        if key not in billed:
            continue  # a month the billing has not run for (the first or a partial one)
        try:
            want = expected.bill_lines(key[0], dt.date.fromisoformat(f"{key[1]}-01"))
        except BillingInputError as e:
            out.append(f"bills of {key[0]} {key[1]}: not recomputed: {e}")
            continue
        if want is not None:
            out.extend(_differing_bills(want, lines[key]))
            continue
        got = billed[key]
        must = expected.billable.get(key, set())
        may = expected.may_bill.get(key, set()) | must
        if must - got or got - may:
            out.append(
                f"bills of {key[0]} {key[1]}: customers {sorted(got)}, expected {sorted(must)}"
                + (f" (missing {sorted(must - got)})" if must - got else "")
                + (f" (unexpected {sorted(got - may)})" if got - may else "")
            )
    return out


def _differing_bills(want: Sequence[BillLine], rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """One message per customer whose lines in the table differ from the recomputed ones."""
    expected: dict[str, set[BillLine]] = {}
    for line in want:
        expected.setdefault(line.customer, set()).add(line)
    got: dict[str, set[BillLine]] = {}
    for row in rows:
        line = BillLine(**{f: row[f] for f in BillLine._fields})
        line = line._replace(month=_date(line.month), period_start=_date(line.period_start),
                             period_end=_date(line.period_end))  # fmt: skip
        got.setdefault(line.customer, set()).add(line)
    out = []
    for customer in sorted(set(expected) | set(got)):
        mine, theirs = expected.get(customer, set()), got.get(customer, set())
        if mine == theirs:
            continue
        sample = next(iter(mine or theirs))
        bill = f"bill {sample.tenant} {sample.month:%Y-%m} {customer}"
        if not theirs:
            out.append(f"{bill}: recomputed {_total(mine)}, absent from gold/water_bills")
        elif not mine:
            out.append(f"{bill}: {_total(theirs)} in gold/water_bills, recomputed none")
        else:
            out.append(
                f"{bill}: {_total(theirs)} in gold/water_bills, recomputed {_total(mine)}; "
                f"lines only in gold: {_lines(theirs - mine)}; "
                f"only recomputed: {_lines(mine - theirs)}"
            )
    return out


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _total(lines: Iterable[BillLine]) -> str:
    totals: dict[str, Decimal] = {}
    for line in lines:
        totals[line.currency] = totals.get(line.currency, Decimal("0")) + Decimal(line.amount)
    return ", ".join(f"{total} {currency}" for currency, total in sorted(totals.items()))


def _lines(lines: Iterable[BillLine]) -> str:
    text = [
        f"{x.meter} {x.period_start}..{x.period_end} {x.tier} {x.consumption_m3} m3 x "
        f"{x.unit_price} = {x.amount}" + (" (estimated)" if x.estimated else "")
        for x in sorted(lines)
    ]
    return "; ".join(text) or "none"


@dataclasses.dataclass(frozen=True)
class BillSummary:
    bills: int
    totals: dict[str, Decimal]  # currency -> total


def bill_summary(rows: Iterable[Mapping[str, Any]]) -> BillSummary:
    """Bills issued (one per tenant, month and customer) and their total per currency."""
    bills: set[tuple[Any, Any, Any]] = set()
    totals: dict[str, Decimal] = {}
    for row in rows:
        bills.add((row["tenant"], row["month"], row["customer"]))
        totals[row["currency"]] = totals.get(row["currency"], Decimal("0")) + Decimal(row["amount"])
    return BillSummary(len(bills), totals)
