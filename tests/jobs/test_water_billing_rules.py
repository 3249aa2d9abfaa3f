"""The bill's arithmetic on its own (no Spark): the worked example of docs/gold.md, the
estimate's fallbacks, the errors for reference data a month cannot be billed with, and
the demand trend's year-before and moving average."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from edgebatch.framework.reports import billing
from edgebatch.framework.reports.billing import BillingError, Registration, Usage

NOV = dt.date(2026, 11, 1)
D = Decimal


def _tariffs(unit: str = "m3") -> list[billing.Tariff]:
    rows = []
    for valid_from, valid_to, prices, fee in [
        (dt.date(2025, 1, 1), dt.date(2026, 11, 16), ("1.85", "2.40", "3.10"), "8.50"),
        (dt.date(2026, 11, 16), None, ("1.95", "2.55", "3.30"), "8.90"),
    ]:
        for tier, (tier_from, price) in enumerate(zip(("0", "10", "30"), prices, strict=True), 1):
            rows.append(
                {
                    "tenant": "t", "tariff_class": "res", "valid_from": valid_from,
                    "valid_to": valid_to, "tier": tier, "tier_from": D(tier_from), "unit": unit,
                    "unit_price": D(price), "fixed_fee": D(fee), "currency": "EUR",
                }
            )  # fmt: skip
    return billing.tariffs_from_rows(rows)


def _meter(installed: dt.date = dt.date(2025, 1, 1), removed: dt.date | None = None, cls="res"):
    return Registration("t", "m1", "c1", "north", cls, installed, removed)


def test_the_worked_example_of_the_docs():
    first, second = billing.periods(NOV, [_meter()], _tariffs())
    assert (first.start, first.end, second.start, second.end) == (
        NOV, dt.date(2026, 11, 16), dt.date(2026, 11, 16), dt.date(2026, 12, 1),
    )  # fmt: skip
    used = billing.Consumption(D("31.400"), False, Usage(D("31.4"), 15 * 86400), 0)

    lines = billing.bill_lines(first, used, 30)

    assert [(x["tier"], x["consumption_m3"], x["unit_price"], x["amount"]) for x in lines] == [
        ("T1", D("5.000"), D("1.8500"), D("9.25")),
        ("T2", D("10.000"), D("2.4000"), D("24.00")),
        ("T3", D("16.400"), D("3.1000"), D("50.84")),
        ("fee", D("0.000"), D("8.5000"), D("4.25")),
    ]
    assert lines[0]["period_end"] == dt.date(2026, 11, 15)


def test_thresholds_and_fee_are_pro_rated_by_days_and_rounded_half_up():
    (period,) = billing.periods(NOV, [_meter(dt.date(2026, 11, 20))], _tariffs())
    used = billing.Consumption(D("4.000"), True, Usage(), 0)

    lines = billing.bill_lines(period, used, 30)

    # 10 m3 x 11 / 30 = 3.6666.. -> 3.667; fee 8.90 x 11 / 30 = 3.2633.. -> 3.26
    assert [(x["tier"], x["consumption_m3"], x["amount"], x["estimated"]) for x in lines] == [
        ("T1", D("3.667"), D("7.15"), True),
        ("T2", D("0.333"), D("0.85"), True),
        ("fee", D("0.000"), D("3.26"), False),
    ]


def test_a_gap_is_estimated_at_the_meters_rate_then_its_classs_then_not_at_all():
    (period,) = billing.periods(NOV, [_meter(dt.date(2026, 11, 20))], _tariffs())
    day = 86400
    measured = Usage(D("10.000000001"), 10 * day)  # one day of the 11 missing

    own = billing.consumption(period, measured, Usage(D("30"), 20 * day), Usage(D("1"), day))
    by_class = billing.consumption(period, Usage(), Usage(), Usage(D("2.5"), 2 * day))
    nothing = billing.consumption(period, Usage(), Usage(), Usage())
    complete = billing.consumption(period, Usage(D("1.0005"), 11 * day), Usage(), Usage())

    assert (own.m3, own.estimated, own.gap_seconds) == (D("11.500"), True, day)
    assert (by_class.m3, by_class.estimated) == (D("13.750"), True)
    assert (nothing.m3, nothing.estimated) == (D("0.000"), True)
    assert (complete.m3, complete.estimated) == (D("1.001"), False)  # half up


def test_reference_data_a_month_cannot_be_billed_with_is_an_error_naming_it():
    with pytest.raises(BillingError, match=r"meter t/m1: no tariff of class 'biz' is valid on"):
        billing.periods(NOV, [_meter(cls="biz")], _tariffs())
    with pytest.raises(BillingError, match="has no tariff_class"):
        billing.periods(NOV, [_meter(cls=None)], _tariffs())
    with pytest.raises(BillingError, match="unit 'l' is not m3"):
        _tariffs(unit="l")
    gap = [t for t in _tariffs() if t.valid_to is None]  # nothing before the 16th
    with pytest.raises(BillingError, match="valid on 2026-11-01"):
        billing.periods(NOV, [_meter()], gap)


def test_a_meter_outside_the_month_has_no_period_and_a_removal_ends_its_days():
    periods = billing.periods(
        NOV,
        [_meter(removed=dt.date(2026, 11, 1)), _meter(dt.date(2026, 12, 1))]
        + [Registration("t", "m2", "c2", None, "res", dt.date(2025, 1, 1), dt.date(2026, 11, 5))],
        _tariffs(),
    )
    assert [(p.registration.meter, p.start, p.days) for p in periods] == [("m2", NOV, 4)]


def test_demand_against_capacity_a_year_before_and_the_moving_average():
    (first, second) = billing.periods(NOV, [_meter()], _tariffs())
    used = {
        first: billing.Consumption(D("40.000"), False, Usage(), 0),
        second: billing.Consumption(D("20.000"), True, Usage(), 0),
    }
    history = {
        ("t", "north"): {
            dt.date(2025, 11, 1): D("50.000"),  # a year before: not in the 12 months
            dt.date(2026, 10, 1): D("30.000"),
            dt.date(2025, 12, 1): D("10.000"),
        }
    }

    (row,) = billing.demand_rows(NOV, used.items(), {("t", "north"): D("2.5")}, history)

    assert row == {
        "tenant": "t", "month": NOV, "site": "north", "meters": 1,
        "consumption_m3": D("60.000"), "estimated_periods": 1, "capacity_m3": D("75.000"),
        "utilisation": D("0.8000"), "previous_year_m3": D("50.000"),
        "change_vs_previous_year": D("0.2000"),
        "moving_average_12m_m3": D("33.333"), "months_in_average": 3,
    }  # fmt: skip
    (alone,) = billing.demand_rows(NOV, used.items(), {}, {})
    assert (alone["capacity_m3"], alone["utilisation"], alone["previous_year_m3"]) == (
        None, None, None,
    )  # fmt: skip


def test_daily_usage_sums_a_periods_days_from_running_sums_in_whatever_order_they_came():
    import pyarrow as pa

    def day(d: dt.date) -> int:
        return (d - billing.EPOCH).days

    def of_rows(rows: list[tuple[str, str, int, int, int]]) -> billing.DailyUsage:
        names = ("tenant", "meter", "day", "nano", "seconds")
        types = (pa.string(), pa.string(), pa.int32(), pa.int64(), pa.int64())
        columns = list(zip(*rows, strict=True)) or [()] * 5
        arrays = [pa.array(c, t) for c, t in zip(columns, types, strict=True)]
        return billing.DailyUsage.of_table(pa.table(dict(zip(names, arrays, strict=True))))

    rows = [  # tenant, meter, day, nano-m3, seconds: m1 changed customer on the 3rd
        ("t", "m1", day(NOV), 1_000_000_000, 86_400),
        ("t", "m1", day(NOV) + 2, 2, 3_600),
        ("t", "m1", day(NOV) + 2, 3, 7_200),
        ("t", "m1", day(NOV) + 29, 500_000_000, 86_400),
        ("t", "m2", day(NOV) + 1, 7, 60),
        ("u", "m1", day(NOV), 11, 60),  # another tenant's meter of the same name
    ]
    week = (NOV, NOV + dt.timedelta(days=7))
    for order in (rows, rows[::-1], [rows[3], rows[5], rows[0], rows[4], rows[2], rows[1]]):
        daily = of_rows(order)

        assert daily.usage("t", "m1", *week) == Usage.of_nano(1_000_000_005, 86_400 + 10_800)
        assert daily.usage("t", "m1", NOV + dt.timedelta(days=1), NOV + dt.timedelta(days=3)) == (
            Usage.of_nano(5, 10_800)
        )
        assert daily.usage("t", "m1", NOV, dt.date(2026, 12, 1)).m3 == D("1.500000005")
        assert daily.usage("u", "m1", *week) == Usage.of_nano(11, 60)
        assert daily.usage("t", "m9", *week) == Usage()  # no windows: nothing measured
        assert daily.meters(*week) == {("t", "m1"): 3, ("t", "m2"): 1, ("u", "m1"): 1}
        assert daily.meters(dt.date(2026, 12, 1), dt.date(2027, 1, 1)) == {}
    assert of_rows([]).meters(*week) == {}
