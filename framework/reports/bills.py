"""The monthly water bill per customer: the gold table it is read from, and the bill as values.

`WATER_BILLS` is the contract between the billing job (which writes it) and the bill
reports (which read it); docs/reports.md describes each column. One row per bill line:
a meter's consumption in one tariff tier over the part of the month it was billed for.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

from edgebatch.framework.consent import subject_bearing
from edgebatch.warehouse.tables import declare

WATER_BILLS = declare(
    "gold/water_bills",
    """
    tenant STRING NOT NULL, month DATE NOT NULL, customer STRING NOT NULL,
    customer_name STRING NOT NULL, language STRING NOT NULL, currency STRING NOT NULL,
    meter STRING NOT NULL, period_start DATE NOT NULL, period_end DATE NOT NULL,
    tier STRING NOT NULL, consumption_m3 DECIMAL(14,3) NOT NULL,
    unit_price DECIMAL(12,4) NOT NULL, amount DECIMAL(14,2) NOT NULL,
    estimated BOOLEAN NOT NULL
    """,
    partition_by=("tenant", "month"),
    keys=("tenant", "month", "customer", "meter", "period_start", "tier"),
    comment="Water bill lines per customer, meter, period and tariff tier; money as decimals.",
)
# A bill is about its customer: only consented customers' bills are read, and a
# withdrawal erases them with the rest of the customer's data.
subject_bearing(WATER_BILLS.name, subject="customer")


@dataclasses.dataclass(frozen=True)
class BillLine:
    meter: str
    period_start: dt.date
    period_end: dt.date
    tier: str
    consumption_m3: Decimal
    unit_price: Decimal
    amount: Decimal
    estimated: bool


@dataclasses.dataclass(frozen=True)
class Bill:
    """One customer's bill for one month; `total` is the exact sum of the lines' amounts."""

    tenant: str
    month: dt.date
    customer: str
    customer_name: str
    language: str
    currency: str
    lines: tuple[BillLine, ...]

    @property
    def total(self) -> Decimal:
        return sum((line.amount for line in self.lines), Decimal("0"))

    @property
    def period(self) -> str:
        return f"{self.month:%Y-%m}"


def bills_from_rows(rows: Iterable[Mapping[str, Any]]) -> list[Bill]:
    """Group bill lines (rows of `WATER_BILLS`) into bills, one per tenant, month and customer."""
    grouped: dict[tuple[str, dt.date, str], list[Mapping[str, Any]]] = {}
    for row in rows:
        grouped.setdefault((row["tenant"], row["month"], row["customer"]), []).append(row)
    bills = []
    for (tenant, month, customer), group in sorted(grouped.items()):
        first = group[0]
        lines = tuple(
            sorted(
                (
                    BillLine(
                        meter=r["meter"],
                        period_start=r["period_start"],
                        period_end=r["period_end"],
                        tier=r["tier"],
                        consumption_m3=r["consumption_m3"],
                        unit_price=r["unit_price"],
                        amount=r["amount"],
                        estimated=bool(r["estimated"]),
                    )
                    for r in group
                ),
                key=lambda line: (line.meter, line.period_start, line.tier),
            )
        )
        bills.append(
            Bill(
                tenant=tenant,
                month=month,
                customer=customer,
                customer_name=first["customer_name"],
                language=first["language"],
                currency=first["currency"],
                lines=lines,
            )
        )
    return bills
