"""The demo's verdict: the figures recomputed from landing lines and reference CSVs, and
every way the tables can disagree with them (a lost or doubled reading, a consent gate
that leaks, a bill too many or too few) named as a mismatch that fails `--once`."""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from pathlib import Path

from edgebatch.cli.demo_bills import BillLine, flow_by_day
from edgebatch.cli.demo_checks import (
    Counts,
    Observed,
    Reference,
    bill_mismatches,
    bill_summary,
    expected_figures,
    landed_windows,
    latest_consent,
    mismatches,
)
from edgebatch.cli.demo_fleet import DemoDevice, Replay, choose, last_full_month
from edgebatch.edge.profiles import PROFILES
from edgebatch.edge.wire import Batch
from edgebatch.warehouse.collector.limits import normalized_times
from edgebatch.warehouse.collector.parsing import parse_message
from edgebatch.warehouse.collector.records import envelope
from tests.warehouse.helpers import encode_batch, metric

NOV_10 = dt.datetime(2026, 11, 10, tzinfo=dt.UTC).timestamp()
NOV_20 = dt.datetime(2026, 11, 20, tzinfo=dt.UTC).timestamp()


def landing_line(tenant: str, device: str, start: float, count: int, revision: int = 0) -> bytes:
    """A batch as the collector lands it (its own parser and envelope)."""
    _, payload = encode_batch(
        tenant=tenant,
        device=device,
        window_start=start,
        window_end=start + 3600,
        revision=revision,
        metrics=[metric("flow", 5.0, start, count=count)],
        agent="sim/1",
    )
    topic = f"edgebatch/{tenant}/{device}/batch"
    message = parse_message(topic, payload)
    assert isinstance(message, Batch)
    return envelope(topic, payload, time.time(), normalized_times(message))


def reference(tmp_path: Path) -> Reference:
    (tmp_path / "devices.csv").write_text(
        "tenant,device,site,kind,subject_type,subject,tariff_class,installed_on,removed_on\n"
        "w,m1,n,water_meter,customer,c1,residential,2025-01-01,\n"
        "w,m2,n,water_meter,customer,c2,residential,2026-11-15,\n"  # installed mid-month
        "w,m3,n,water_meter,customer,c3,residential,2025-01-01,2026-11-15\n"  # removed
        "w,m4,n,water_meter,customer,c4,residential,2025-01-01,\n"  # withdrew consent
        "h,p1,a,patient_monitor,patient,pat-1,,2025-01-01,\n"  # never consented
    )
    (tmp_path / "consent.csv").write_text(
        "tenant,subject,status,at,source\n"
        "w,c1,granted,2025-01-01T00:00:00Z,contract\n"
        "w,c2,granted,2025-01-01T00:00:00Z,contract\n"
        "w,c3,granted,2025-01-01T00:00:00Z,contract\n"
        "w,c4,granted,2025-01-01T00:00:00Z,contract\n"
        "w,c4,withdrawn,2026-11-25T10:00:00Z,portal\n"
    )
    return Reference.read(tmp_path)


def test_a_resent_batch_counts_once_and_a_revision_adds_its_late_readings():
    lines = [
        landing_line("w", "m1", NOV_10, 60),
        landing_line("w", "m1", NOV_10, 60),  # resent after a lost receipt: the same batch id
        landing_line("w", "m1", NOV_10, 2, revision=1),  # late readings of the same window
        b"",
    ]
    assert landed_windows(lines) == {("w", "m1", "flow", NOV_10): 62}


def test_the_latest_consent_event_decides_and_a_tie_withdraws():
    events = [
        ("t", "a", "2026-01-01T00:00:00Z", "granted"),
        ("t", "a", "2026-02-01T00:00:00Z", "withdrawn"),
        ("t", "b", "2026-02-01T00:00:00Z", "withdrawn"),
        ("t", "b", "2026-03-01T00:00:00+00:00", "granted"),
        ("t", "c", "2026-02-01T00:00:00Z", "granted"),
        ("t", "c", "2026-02-01T00:00:00Z", "withdrawn"),
    ]
    assert latest_consent(events) == {
        ("t", "a"): "withdrawn",
        ("t", "b"): "granted",
        ("t", "c"): "withdrawn",
    }


def test_windows_are_withheld_by_registration_and_consent_as_silver_does(tmp_path):
    ref = reference(tmp_path)
    windows = {
        ("w", "m1", "flow", NOV_10): 60,
        ("w", "m2", "flow", NOV_10): 60,  # before its installation: unregistered
        ("w", "m2", "flow", NOV_20): 60,
        ("w", "m3", "flow", NOV_10): 60,
        ("w", "m3", "flow", NOV_20): 60,  # after its removal: unregistered
        ("w", "m4", "flow", NOV_10): 60,  # withdrawn later: withheld on every day
        ("h", "p1", "heart_rate", NOV_10): 30,  # no consent at all
        ("w", "m9", "flow", NOV_10): 7,  # not in the registry
    }
    expected = expected_figures(windows, ref)
    assert expected.total == 397
    assert expected.allowed == 180
    assert {k: (c.windows, c.readings) for k, c in expected.withheld.items()} == {
        "unregistered": (3, 127),
        "withdrawn": (1, 60),
        "no_consent": (1, 30),
    }
    assert expected.billable == {("w", "2026-11"): {"c1", "c2", "c3"}}
    assert ("w", "c4") in expected.denied and ("h", "pat-1") in expected.denied
    # c1..c3 had a consented meter some day of November; c4 withdrew: never billable.
    assert expected.may_bill[("w", "2026-11")] == {"c1", "c2", "c3"}


def observed(expected, **changes) -> Observed:
    values = dict(
        bronze_readings=expected.total,
        silver_readings=expected.allowed,
        quarantined=0,
        withheld={k: Counts(c.windows, c.readings) for k, c in expected.withheld.items()},
        gold={},
        subject_columns={"gold/water_bills": ("customer", "tenant")},
    )
    values.update(changes)
    return Observed(**values)


def bill_row(customer: str, amount: str, month=dt.date(2026, 11, 1)) -> dict:
    return {"tenant": "w", "month": month, "customer": customer, "meter": "m",
            "currency": "EUR", "amount": Decimal(amount)}  # fmt: skip


def test_tables_that_agree_with_the_landing_files_give_no_mismatch(tmp_path):
    expected = expected_figures(
        {("w", "m1", "flow", NOV_10): 60, ("w", "m4", "flow", NOV_10): 60}, reference(tmp_path)
    )
    bills = [bill_row("c1", "12.30"), bill_row("c1", "8.50")]
    assert mismatches(expected, observed(expected, gold={"gold/water_bills": bills})) == []


def test_every_disagreement_is_named(tmp_path):
    expected = expected_figures(
        {("w", "m1", "flow", NOV_10): 60, ("w", "m4", "flow", NOV_10): 60}, reference(tmp_path)
    )
    found = mismatches(
        expected,
        observed(
            expected,
            bronze_readings=expected.total + 60,
            silver_readings=expected.allowed - 1,
            withheld={},
            gold={"gold/water_bills": [bill_row("c1", "1.00"), bill_row("c4", "2.50")]},
        ),
    )
    text = "\n".join(found)
    assert "bronze counts 180 readings, the landing files 120: not exactly once" in text
    assert "silver holds 59 readings (+0 quarantined), the consent rules let in 60" in text
    assert "withheld (withdrawn): silver/withheld has 0 windows 0 readings, recomputed 1" in text
    assert "gold/water_bills has rows about subjects without consent: [('w', 'c4')]" in text
    assert "bills of w 2026-11: customers ['c1', 'c4'], expected ['c1'] (unexpected ['c4'])" in text
    assert len(found) == 5


def test_a_missing_bill_and_an_amount_below_the_cent_are_mismatches(tmp_path):
    expected = expected_figures(
        {("w", "m1", "flow", NOV_10): 60, ("w", "m2", "flow", NOV_20): 60}, reference(tmp_path)
    )
    found = bill_mismatches(expected, [bill_row("c1", "10.005")])
    assert found == [
        "bill line c1 m: amount 10.005 not in cents",
        "bills of w 2026-11: customers ['c1'], expected ['c1', 'c2'] (missing ['c2'])",
    ]
    # m3 was removed on the 15th and sent nothing in the span: billed on an estimate, fine.
    assert (
        bill_mismatches(expected, [bill_row("c1", "1"), bill_row("c2", "1"), bill_row("c3", "1")])
        == []
    )
    # A month the billing has not run for is not a mismatch; no bills table, no bill check.
    assert bill_mismatches(expected, []) == []
    assert bill_mismatches(expected, None) == []


def priced(tmp_path: Path) -> Reference:
    """The reference with a residential tariff (T2 from 100 m3, fee 9.00) and names."""
    (tmp_path / "tariffs.csv").write_text(
        "tenant,tariff_class,valid_from,valid_to,tier,tier_from,unit,unit_price,fixed_fee,currency\n"
        "w,residential,2025-01-01,,1,0,m3,2.000000,9.00,EUR\n"
        "w,residential,2025-01-01,,2,100,m3,1.500000,9.00,EUR\n"
    )
    (tmp_path / "customers.csv").write_text("tenant,customer,name,language\nw,c1,Anna,de\n")
    return reference(tmp_path)


def gold_row(line: BillLine) -> dict:
    """A bill line as the demo reads it from gold/water_bills (delta-rs: one dict per row)."""
    return line._asdict()


def test_the_bills_are_recomputed_to_the_cent_from_the_landed_flow(tmp_path):
    # m1 (c1) sends one hour of 5 l/min on the 10th, resent once, plus a late revision:
    # 0.3 m3 over 3600 s; the rest of November is estimated at that rate.
    lines = [
        landing_line("w", "m1", NOV_10, 60),
        landing_line("w", "m1", NOV_10, 60),
        landing_line("w", "m1", NOV_10, 2, revision=1),
    ]
    expected = expected_figures(landed_windows(lines), priced(tmp_path), flow_by_day(lines))

    bills = expected.bill_lines("w", dt.date(2026, 11, 1))

    assert bills is not None
    by_customer: dict[str, list[tuple]] = {}
    for b in bills:
        by_customer.setdefault(b.customer, []).append(
            (b.meter, b.period_start.day, b.period_end.day, b.tier, b.consumption_m3, b.amount,
             b.estimated)
        )  # fmt: skip
    E = Decimal
    # c1: 0.3 + 0.3 x 719 = 216.000 m3: T1 100 x 2.00, T2 116 x 1.50, the whole fee.
    assert sorted(by_customer["c1"]) == [
        ("m1", 1, 30, "T1", E("100.000"), E("200.00"), True),
        ("m1", 1, 30, "T2", E("116.000"), E("174.00"), True),
        ("m1", 1, 30, "fee", E("0.000"), E("9.00"), False),
    ]
    # c2 (m2 from the 15th, 16 days) and c3 (m3 until the 15th, 14 days) sent nothing:
    # estimated at the class's rate, thresholds and fee pro-rated (100 x 16 / 30 = 53.333).
    assert sorted(by_customer["c2"]) == [
        ("m2", 15, 30, "T1", E("53.333"), E("106.67"), True),
        ("m2", 15, 30, "T2", E("61.867"), E("92.80"), True),
        ("m2", 15, 30, "fee", E("0.000"), E("4.80"), False),
    ]
    assert sum(b.amount for b in bills if b.customer == "c3") == E("178.73")
    assert "c4" not in by_customer  # withdrawn: no bill
    names = {(b.customer, b.customer_name, b.language) for b in bills}
    assert names >= {("c1", "Anna", "de"), ("c2", "c2", "en")}  # no customers row: its id


def test_a_bill_that_differs_by_a_cent_is_a_mismatch(tmp_path):
    lines = [landing_line("w", "m1", NOV_10, 60)]
    expected = expected_figures(landed_windows(lines), priced(tmp_path), flow_by_day(lines))
    bills = expected.bill_lines("w", dt.date(2026, 11, 1))
    assert bills is not None
    rows = [gold_row(b) for b in bills]
    assert bill_mismatches(expected, rows) == []
    assert mismatches(expected, observed(expected, gold={"gold/water_bills": rows})) == []

    (fee,) = [r for r in rows if r["customer"] == "c1" and r["tier"] == "fee"]
    wrong = [dict(r, amount=r["amount"] + Decimal("0.01")) if r is fee else r for r in rows]
    assert bill_mismatches(expected, wrong) == [
        "bill w 2026-11 c1: 383.01 EUR in gold/water_bills, recomputed 383.00 EUR; "
        "lines only in gold: m1 2026-11-01..2026-11-30 fee 0.000 m3 x 9.0000 = 9.01; "
        "only recomputed: m1 2026-11-01..2026-11-30 fee 0.000 m3 x 9.0000 = 9.00"
    ]
    # the same customers, the same total, a line moved between tiers: still a difference
    t1, t2 = (
        next(r for r in rows if r["customer"] == "c1" and r["tier"] == t) for t in ("T1", "T2")
    )
    swapped = [r for r in rows if r not in (t1, t2)]
    swapped += [dict(t1, amount=t1["amount"] - 1), dict(t2, amount=t2["amount"] + 1)]
    (only,) = bill_mismatches(expected, swapped)
    assert only.startswith("bill w 2026-11 c1: 383.00 EUR in gold/water_bills, recomputed 383.00")
    # a bill missing and one too many are differing bills as well
    c2_rows = [r for r in rows if r["customer"] == "c2"]
    extra = dict(c2_rows[0], customer="c9")
    found = bill_mismatches(expected, [r for r in rows if r["customer"] != "c2"] + [extra])
    assert found == [
        "bill w 2026-11 c2: recomputed 204.27 EUR, absent from gold/water_bills",
        f"bill w 2026-11 c9: {extra['amount']} EUR in gold/water_bills, recomputed none",
    ]


def test_a_month_the_reference_cannot_price_is_a_mismatch(tmp_path):
    lines = [landing_line("w", "m1", NOV_10, 60)]
    priced(tmp_path)  # the tariff ends on the 20th: m1's days after it have no price
    (tmp_path / "tariffs.csv").write_text(
        (tmp_path / "tariffs.csv").read_text().replace("2025-01-01,,", "2025-01-01,2026-11-20,")
    )
    expected = expected_figures(landed_windows(lines), Reference.read(tmp_path), flow_by_day(lines))
    found = bill_mismatches(expected, [bill_row("c1", "1.00")])
    assert found == [
        "bills of w 2026-11: not recomputed: meter w/m1: no residential tariff valid on 2026-11-20"
    ]


def test_the_bill_summary_counts_bills_per_customer_and_month_and_adds_exactly():
    rows = [bill_row("c1", "0.10"), bill_row("c1", "0.20"), bill_row("c2", "0.30")]
    rows.append(bill_row("c2", "0.40", dt.date(2026, 10, 1)))
    summary = bill_summary(rows)
    assert summary.bills == 3 and summary.totals == {"EUR": Decimal("1.00")}


def test_a_small_fleet_still_has_every_kind_and_replays_past_the_span_end():
    devices = [DemoDevice("t", f"{kind}-{i}", kind) for kind in PROFILES for i in range(3)]
    chosen = choose(devices, 8)
    assert len(chosen) == 8 and {d.kind for d in chosen} == set(PROFILES)
    assert len(choose(devices, 100)) == len(devices)
    replay = Replay(start=dt.date(2026, 11, 1), days=30, window_s=3600)
    assert replay.windows == 720
    metrics = len(PROFILES["water_meter"])
    # one reading per metric per minute, and one round more to close the last window
    assert replay.readings("water_meter") == metrics * 30 * 1440 + metrics + 1
    assert last_full_month(dt.date(2026, 12, 3)) == (dt.date(2026, 11, 1), 30)
    assert last_full_month(dt.date(2027, 1, 31)) == (dt.date(2026, 12, 1), 31)


def test_the_chain_is_not_done_while_a_trigger_has_not_seen_an_upstream_success(tmp_path):
    from edgebatch.cli.demo import triggers_caught_up
    from edgebatch.framework.registry import JobRegistry
    from edgebatch.framework.scheduler import AfterUpstream, Schedule
    from edgebatch.framework.state import StateStore
    from tests.framework.scheduler.conftest import make_job

    up = make_job("up")
    down = make_job("down", upstream=["up"], schedule=Schedule(triggers=[AfterUpstream("up")]))
    registry = JobRegistry([up, down]).check()
    with StateStore(f"sqlite:///{tmp_path / 'state.db'}") as store:
        run = store.create_run("up")
        store.transition_run(run.id, "running")
        store.transition_run(run.id, "succeeded")
        assert not triggers_caught_up(store, registry, store.list_runs())  # never evaluated
        store.set_cursor("down", "upstream:up", {"after_run": run.id - 1})
        assert not triggers_caught_up(store, registry, store.list_runs())
        store.set_cursor("down", "upstream:up", {"after_run": run.id})
        assert triggers_caught_up(store, registry, store.list_runs())
        failed = store.create_run("up")  # a failure starts nothing downstream: no wait for it
        store.transition_run(failed.id, "running")
        store.transition_run(failed.id, "failed")
        assert triggers_caught_up(store, registry, store.list_runs())


def test_the_demo_adds_its_own_devices_but_never_one_the_examples_already_have():
    from edgebatch.cli.demo import extend_csv

    base = "tenant,device,kind\nt,a,x\nt,b,x\n"
    extra = "tenant,device,kind\nt,b,y\nt,c,y\n\n"
    assert extend_csv(base, extra) == "tenant,device,kind\nt,a,x\nt,b,x\nt,c,y\n"
