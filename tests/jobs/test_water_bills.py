"""Water bills end to end: wire messages landed by the collector's code, bronze, silver,
then `water_bills`; every bill line equal, to the cent, to a plain-Python `Decimal`
computation read straight from the same landing files; a rerun changes nothing; a
withdrawal and `consent_erase` remove the customer's bills.

The messages land in the session's shared warehouse (tests/support/landed.py) with the
other gold modules' data; the tenant `tw` and its reference rows (registry, tariffs,
customers, sites, consent) are this module's own, added to the example files, and every
figure below is `tw`'s.

November 2026 for tenant `tw`, at coarse windows (several days each):
- m1 (residential, c1): the whole month; the residential tariff changes on the 16th;
  one window has a late revision; it also sends pressure (not billed).
- m2 (residential, c2): installed on the 20th (its window before is withheld).
- m3 (commercial): c3's until the 20th, then moved to c6.
- m4 (commercial, c4): nothing from the 16th to the 19th.
- m5 (residential, c5): c5 never consented.
- m7 (residential, c7): installed on the 25th, sends nothing; c7 has no customers row.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import pytest

from edgebatch.cli.demo_bills import BillingReference, bill_lines, flow_by_day
from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import encode_batch, topic
from edgebatch.edge.wire.summary import metric_summary
from edgebatch.framework.requests import RunRequest
from edgebatch.framework.state import IterationState, RunState
from tests.support.landed import Landing, Warehouse, lands_adding

TENANT = "tw"
MONTH = dt.date(2026, 11, 1)
DAYS = calendar.monthrange(MONTH.year, MONTH.month)[1]

DEVICES_CSV = """tenant,device,site,kind,subject_type,subject,tariff_class,installed_on,removed_on
tw,m1,north,water_meter,customer,c1,residential,2025-01-01,
tw,m2,north,water_meter,customer,c2,residential,2026-11-20,
tw,m3,south,water_meter,customer,c3,commercial,2025-01-01,2026-11-20
tw,m3,south,water_meter,customer,c6,commercial,2026-11-20,
tw,m4,south,water_meter,customer,c4,commercial,2025-06-01,
tw,m5,north,water_meter,customer,c5,residential,2025-01-01,
tw,m7,north,water_meter,customer,c7,residential,2026-11-25,
"""
TARIFFS_CSV = """\
tenant,tariff_class,valid_from,valid_to,tier,tier_from,unit,unit_price,fixed_fee,currency
tw,residential,2025-01-01,2026-11-16,1,0,m3,1.850000,8.50,EUR
tw,residential,2025-01-01,2026-11-16,2,10,m3,2.400000,8.50,EUR
tw,residential,2025-01-01,2026-11-16,3,30,m3,3.100000,8.50,EUR
tw,residential,2026-11-16,,1,0,m3,1.950000,8.90,EUR
tw,residential,2026-11-16,,2,10,m3,2.555550,8.90,EUR
tw,residential,2026-11-16,,3,30,m3,3.300000,8.90,EUR
tw,commercial,2025-01-01,,1,0,m3,1.700000,25.00,EUR
tw,commercial,2025-01-01,,2,100,m3,1.550000,25.00,EUR
"""
GRANTED = ("c1", "c2", "c3", "c4", "c6", "c7")
CUSTOMERS_CSV = """tenant,customer,name,language
tw,c1,Anna Schmidt,de
tw,c2,Brian Walsh,en
tw,c3,Carmen Ruiz,es
tw,c4,Harbour Bakery,en
tw,c5,Elena Torres,es
tw,c6,Dieter Braun,de
"""
SITES_CSV = """tenant,site,name,capacity_m3_per_day
tw,north,North reservoir,20
tw,south,South station,30.5
"""


def _lines(csv_text: str) -> str:
    """The rows of a CSV text without its header (they are added to the example files)."""
    return "".join(f"{line}\n" for line in csv_text.strip().splitlines()[1:])


CONSENT_ROWS = "".join(f"{TENANT},{c},granted,2025-01-01T00:00:00Z,contract\n" for c in GRANTED)
REFERENCE_ROWS = {
    "devices.csv": _lines(DEVICES_CSV),
    "tariffs.csv": _lines(TARIFFS_CSV),
    "customers.csv": _lines(CUSTOMERS_CSV),
    "sites.csv": _lines(SITES_CSV),
    "consent.csv": CONSENT_ROWS,
}


# -- the messages: deterministic flows in multiples of 1/8 l/min ------------------------

# Coarse windows (an agent that was offline long merges its backlog so): each window runs
# from one anchor day to the next, so silver has three days to build, not thirty.
ANCHORS = (1, 16, 20, DAYS + 1)
SENDS = {  # meter -> anchors its windows start on
    "m1": (1, 16, 20),
    "m2": (16, 20),  # its window from the 16th is before it was installed: withheld
    "m3": (1, 16, 20),
    "m4": (1, 20),  # nothing from the 16th to the 19th: a gap
    "m5": (1, 16, 20),
}
SILVER_DAYS = tuple(f"2026-11-{d:02d}" for d in ANCHORS[:-1])


def _flow(meter: str, day: int) -> float:
    base = {"m1": 1.5, "m2": 0.75, "m3": 4.0, "m4": 3.25, "m5": 1.0}[meter]
    return base + (day % 7) / 8


def _stats(name: str, unit: str, value: float, start: float) -> dict:
    stats = MetricStats(name, unit)
    values = [value - 0.25, value + 0.25, value, value]
    stats.add_chunk(values, [start + 60 * i for i in range(1, 5)])
    return metric_summary(stats)


def _at(day: int) -> float:
    return (dt.datetime(2026, 11, 1, tzinfo=dt.UTC) + dt.timedelta(days=day - 1)).timestamp()


def _messages() -> list[tuple[str, bytes, float]]:
    out = []
    for meter, days in SENDS.items():
        for day in days:
            start, end = _at(day), _at(ANCHORS[ANCHORS.index(day) + 1])
            metrics = [_stats("flow", "l/min", _flow(meter, day), start)]
            if meter == "m1":
                metrics.append(_stats("pressure", "bar", 3.0, start))
            _, payload = encode_batch(
                tenant=TENANT, device=meter, window_start=start, window_end=end,
                revision=0, metrics=metrics, agent="test/1",
            )  # fmt: skip
            out.append((topic(TENANT, meter, "batch"), payload, end + 30))
            if (meter, day) == ("m1", 16):  # late readings for one window
                _, late = encode_batch(
                    tenant=TENANT, device=meter, window_start=start, window_end=end,
                    revision=1, metrics=[_stats("flow", "l/min", 9.5, start)], agent="test/1",
                )  # fmt: skip
                out.append((topic(TENANT, meter, "batch"), late, end + 600))
    return out


@lands_adding("water_bills", REFERENCE_ROWS)
def _landing() -> Landing:
    landing = Landing()
    landing.add(_messages())
    landing.days |= {dt.date.fromisoformat(day) for day in SILVER_DAYS}
    return landing


# -- the independent computation, from the landing files --------------------------------


def _half_up(value: Decimal, places: str) -> Decimal:
    return value.quantize(Decimal(places), rounding=ROUND_HALF_UP)


def _rows(csv_text: str) -> list[dict[str, str]]:
    header, *lines = csv_text.strip().splitlines()
    return [dict(zip(header.split(","), line.split(","), strict=True)) for line in lines]


def _expected_lines(landing: Path, granted: tuple[str, ...]) -> set[tuple]:
    """Every bill line of `tw`, recomputed in plain Python from the landing files and the
    CSVs (`edgebatch.cli.demo_bills`: docs/gold.md's rules, none of the job's code)."""
    lines = [
        line
        for path in sorted((landing / "batch").rglob("*.jsonl"))
        for line in path.read_bytes().splitlines()
    ]
    reference = BillingReference.from_rows(
        _rows(DEVICES_CSV), _rows(TARIFFS_CSV), _rows(CUSTOMERS_CSV)
    )
    consented = {(TENANT, c) for c in granted}
    return set(bill_lines(flow_by_day(lines), reference, consented, TENANT, MONTH))


# -- the run ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def billed(gold_warehouse: Warehouse) -> Warehouse:
    """The session's warehouse (landed, bronze and silver loaded) with the month billed."""
    gold_warehouse.run("water_bills", partitions=("2026-11",))
    return gold_warehouse


def _table(w: Warehouse, name: str, tenant: str | None = TENANT) -> list[tuple]:
    """A table's rows of `tenant` (None: of every tenant), sorted."""
    from edgebatch.warehouse.tables import REGISTRY, read_table

    rows = read_table(w.runner.spark, w.root, REGISTRY.get(name)).collect()
    return sorted(tuple(r) for r in rows if tenant is None or r["tenant"] == tenant)


def test_every_bill_line_equals_a_plain_decimal_computation_from_the_landing_files(billed):
    got = set(_table(billed, "gold/water_bills"))
    expected = _expected_lines(billed.landing, GRANTED)

    assert got == expected
    by_meter = defaultdict(set)
    for line in got:
        by_meter[(line[6], line[2])].add((line[7], line[8], line[9], line[13]))
    # the cases the data was built for are all there
    assert {(s, e) for s, e, _, _ in by_meter[("m1", "c1")]} == {
        (dt.date(2026, 11, 1), dt.date(2026, 11, 15)),
        (dt.date(2026, 11, 16), dt.date(2026, 11, 30)),
    }  # the tariff change splits the month
    assert {(t, est) for _, _, t, est in by_meter[("m1", "c1")]} >= {("T3", False), ("fee", False)}
    assert {s for s, _, _, _ in by_meter[("m2", "c2")]} == {dt.date(2026, 11, 20)}
    assert {e for _, e, _, _ in by_meter[("m3", "c3")]} == {dt.date(2026, 11, 19)}
    assert {s for s, _, _, _ in by_meter[("m3", "c6")]} == {dt.date(2026, 11, 20)}
    assert ("T2", False) in {(t, est) for _, _, t, est in by_meter[("m3", "c3")]}
    assert {est for _, _, t, est in by_meter[("m4", "c4")] if t != "fee"} == {True}
    assert {est for _, _, t, est in by_meter[("m7", "c7")] if t != "fee"} == {True}
    assert not any(c == "c5" for _, c in by_meter)  # no consent, no bill
    names = {(line[2], line[3], line[4]) for line in got}
    assert ("c7", "c7", "en") in names and ("c1", "Anna Schmidt", "de") in names
    assert all(isinstance(line[12], Decimal) for line in got)


def test_demand_per_site_adds_the_bills_against_the_capacity(billed):
    lines = _expected_lines(billed.landing, GRANTED)
    site = {
        "m1": "north",
        "m2": "north",
        "m5": "north",
        "m7": "north",
        "m3": "south",
        "m4": "south",
    }
    totals: dict[str, Decimal] = defaultdict(Decimal)
    for line in lines:
        totals[site[line[6]]] += line[10]
    capacity = {"north": Decimal("20") * DAYS, "south": Decimal("30.5") * DAYS}

    demand = {r[2]: r for r in _table(billed, "gold/water_demand")}

    assert set(demand) == {"north", "south"}
    for name, row in demand.items():
        (tenant, month, _, meters, used, _, cap, utilisation, previous, change, avg, n) = row
        assert (tenant, month, used, cap) == (TENANT, MONTH, totals[name], capacity[name])
        assert utilisation == _half_up(totals[name] / capacity[name], "0.0001")
        assert (previous, change, avg, n) == (None, None, totals[name], 1)
    assert demand["north"][3] == 3 and demand["south"][3] == 2  # m1 m2 m7; m3 m4


def test_rerunning_the_month_changes_no_row(billed):
    tables = ("gold/water_bills", "gold/water_demand")
    before = {t: _table(billed, t, tenant=None) for t in tables}  # every tenant's

    again = billed.runner.run(RunRequest("water_bills", partitions=("2026-11",), rerun=True))

    assert again.state == RunState.SUCCEEDED, again.error
    assert {t: _table(billed, t, tenant=None) for t in tables} == before


def test_a_withdrawal_and_the_erase_remove_the_customers_bills(billed, tmp_path):
    before = _table(billed, "gold/water_bills")
    assert any(line[2] == "c4" for line in before)

    with billed.withdrawn(tmp_path, f"{TENANT},c4,withdrawn,2026-12-01T10:00:00Z,portal"):
        after = _table(billed, "gold/water_bills")
        assert after == [line for line in before if line[2] != "c4"]
        # and billing the month again leaves c4 out for good
        again = billed.runner.run(RunRequest("water_bills", partitions=("2026-11",), rerun=True))
        assert again.state == RunState.SUCCEEDED, again.error
        assert set(_table(billed, "gold/water_bills")) == _expected_lines(
            billed.landing, tuple(c for c in GRANTED if c != "c4")
        )


def test_a_span_of_months_bills_them_as_month_after_month_would(billed):
    """Last in the module: it adds October (no windows: estimates of nothing) to the tables."""
    runner = billed.runner
    tables = ("gold/water_bills", "gold/water_demand")

    span = runner.run(RunRequest("water_bills", partitions=("2026-10", "2026-11"), rerun=True))

    assert span.state == RunState.SUCCEEDED, span.error
    its = runner.store.list_iterations(span.id)
    assert [(i.partition_key, i.state) for i in its] == [
        ("2026-10", IterationState.SUCCEEDED),
        ("2026-11", IterationState.SUCCEEDED),
    ]
    lines = [line.message for line in runner.store.read_logs(span.id)]
    assert any(m.startswith("partition 2026-10..2026-11 succeeded") for m in lines), lines
    together = {t: _table(billed, t) for t in tables}
    months = {row[1] for row in together["gold/water_demand"]}
    assert months == {dt.date(2026, 10, 1), MONTH}
    for month in ("2026-10", "2026-11"):
        run = runner.run(RunRequest("water_bills", partitions=(month,), rerun=True))
        assert run.state == RunState.SUCCEEDED, run.error
    assert {t: _table(billed, t) for t in tables} == together
