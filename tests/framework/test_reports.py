"""PDF reports read back with pypdf: bills with amounts formatted per language, run reports
whose figures are the state store's, an archive that rewrites nothing on a rerun, and the
bill job from a gold Delta table through the runner."""

from __future__ import annotations

import datetime as dt
import io
from decimal import Decimal
from pathlib import Path

import pytest
from pypdf import PdfReader

from edgebatch.framework.reports.archive import ReportArchive, ReportError
from edgebatch.framework.reports.bills import WATER_BILLS, Bill, BillLine, bills_from_rows
from edgebatch.framework.reports.locale import Formatter, ReportLanguageError
from edgebatch.framework.reports.pdf import render_bill, render_run_report
from edgebatch.framework.reports.runs import build_run_report
from edgebatch.framework.state import StateStore
from edgebatch.warehouse.uri import WarehouseRoot
from tests.support.consent import grant

NOV = dt.date(2026, 11, 1)


def text_of(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    text = "\n".join(page.extract_text() for page in reader.pages)
    return text.replace("\xa0", " ").replace("\u202f", " ")


def bill_rows(customer: str = "c1", language: str = "en") -> list[dict]:
    base = {
        "tenant": "acme",
        "month": NOV,
        "customer": customer,
        "customer_name": "Ana Müller",
        "language": language,
        "currency": "EUR",
        "meter": "m-001",
        "period_start": NOV,
        "period_end": dt.date(2026, 11, 30),
    }
    return [
        {
            **base,
            "tier": "T1",
            "consumption_m3": Decimal("1000.000"),
            "unit_price": Decimal("1.0000"),
            "amount": Decimal("1000.00"),
            "estimated": False,
        },
        {
            **base,
            "tier": "T2",
            "consumption_m3": Decimal("117.280"),
            "unit_price": Decimal("2.0000"),
            "amount": Decimal("234.56"),
            "estimated": True,
        },
    ]


@pytest.mark.parametrize(
    ("language", "total", "line", "words"),
    [
        ("en", "€1,234.56", "€1,000.00", ("Water bill", "Total", "estimated", "1,000.000")),
        (
            "de",
            "1.234,56 €",
            "1.000,00 €",
            ("Wasserrechnung", "Gesamtbetrag", "geschätzt", "1.000,000"),
        ),
        ("es", "1.234,56 €", "1.000,00 €", ("Factura de agua", "Total", "estimado", "Importe")),
    ],
)
def test_a_bill_reads_back_with_amounts_formatted_for_its_language(
    language, total, line, words
) -> None:
    (bill,) = bills_from_rows(bill_rows(language=language))
    assert bill.total == Decimal("1234.56")
    text = text_of(render_bill(bill))
    assert f"{Formatter(language).word('total')}: {total}" in text
    assert line in text
    for word in words:
        assert word in text, (word, text)
    assert "Ana Müller" in text


def test_dates_follow_the_language() -> None:
    (bill,) = bills_from_rows(bill_rows())
    assert "Nov 30, 2026" in text_of(render_bill(bill, "en"))
    assert "30.11.2026" in text_of(render_bill(bill, "de"))
    assert "30 nov 2026" in text_of(render_bill(bill, "es"))


def test_money_is_never_a_float_and_languages_are_checked() -> None:
    with pytest.raises(TypeError, match="Decimal"):
        Formatter("en").money(1234.56, "EUR")  # type: ignore[arg-type]
    with pytest.raises(ReportLanguageError, match="en, de, es"):
        Formatter("fr")


def test_the_same_bill_renders_to_the_same_bytes_and_is_not_rewritten(tmp_path) -> None:
    (bill,) = bills_from_rows(bill_rows())
    pdf = render_bill(bill)
    assert render_bill(bill) == pdf
    archive = ReportArchive(WarehouseRoot.parse((tmp_path / "wh").as_uri()))
    assert archive.write("bills", "acme", "2026-11", "c1", pdf) is True
    path = Path(archive.path("bills", "acme", "2026-11", "c1"))
    assert path == tmp_path / "wh/reports/bills/acme/2026-11/c1.pdf"
    mtime = path.stat().st_mtime_ns
    assert archive.write("bills", "acme", "2026-11", "c1", pdf) is False
    assert path.stat().st_mtime_ns == mtime
    assert [r.id for r in archive.list("bills", "acme")] == ["c1"]
    with pytest.raises(ReportError, match="report id '../x'"):
        archive.path("bills", "acme", "2026-11", "../x")
    with pytest.raises(ReportError, match="kind 'secrets'"):
        archive.list("secrets", "acme")


def test_run_report_numbers_are_the_state_stores(tmp_path) -> None:
    store = StateStore(f"sqlite:///{tmp_path / 'state.db'}")
    day = dt.datetime(2026, 11, 30, 8, 0, tzinfo=dt.UTC)
    ok = store.create_run("device_daily", partitions=["a", "b"], at=day)
    its = store.create_iterations(ok.id, ["a", "b"], at=day)
    store.claim_run(ok.id, holder="t", at=day)
    for n, it in enumerate(its):
        store.claim_iteration(ok.id, at=day)
        store.transition_iteration(it.id, "succeeded", rows_out=1200 + n, at=day)
    store.transition_run(ok.id, "succeeded", at=day + dt.timedelta(seconds=75))
    bad = store.create_run("bronze_load", partitions=["x"], at=day)
    (it,) = store.create_iterations(bad.id, ["x"], at=day)
    store.claim_run(bad.id, holder="t", at=day)
    store.claim_iteration(bad.id, at=day)
    store.transition_iteration(it.id, "failed", error="disk full", at=day)
    store.transition_run(bad.id, "failed", error="disk full", at=day + dt.timedelta(seconds=5))
    store.create_run("device_daily", at=day + dt.timedelta(days=1))  # another day: left out

    report = build_run_report(store, day.date(), day.date() + dt.timedelta(days=1))
    store.close()
    assert [r.run_id for r in report.runs] == [ok.id, bad.id]
    first, second = report.runs
    assert (first.iterations, first.failed_iterations, first.rows_out) == (2, 0, 2401)
    assert first.seconds == pytest.approx(75.0)
    assert (second.state, second.failed_iterations, second.error) == ("failed", 1, "disk full")
    assert report.rows_out == 2401 and len(report.failures) == 1

    en = text_of(render_run_report(report, "en"))
    assert "Runs: 2 · Failures: 1 · Rows written: 2,401" in en
    assert "disk full" in en and "75.0" in en
    de = text_of(render_run_report(report, "de"))
    assert "Läufe: 2 · Fehler: 1 · Geschriebene Zeilen: 2.401" in de and "75,0" in de
    es = text_of(render_run_report(report, "es"))
    assert "Ejecuciones: 2 · Fallos: 1" in es and "30 nov 2026" in es


@pytest.mark.integration
def test_the_bill_job_writes_one_pdf_per_customer_and_a_rerun_rewrites_nothing(
    spark, tmp_path
) -> None:
    from edgebatch.framework.registry import discover
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import RunState
    from edgebatch.settings import Settings, StateSettings, WarehouseSettings
    from edgebatch.warehouse.tables import ensure_table

    home = tmp_path / "home"
    home.mkdir()
    root = WarehouseRoot.parse((tmp_path / "warehouse").as_uri())
    settings = Settings(
        home=home,
        warehouse=WarehouseSettings(root=root.uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
    )
    ensure_table(spark, root, WATER_BILLS)
    rows = bill_rows("c1", "de") + bill_rows("c2", "es")
    oct_row = {**bill_rows("c1")[0], "month": dt.date(2026, 10, 1)}
    df = spark.createDataFrame([*rows, oct_row], WATER_BILLS.struct())
    df.write.format("delta").mode("append").save(WATER_BILLS.location(root))
    grant(spark, root, "acme", ["c1", "c2"])

    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    try:
        first = runner.run(RunRequest("bill_reports", partitions=("2026-11",)))
        archive = ReportArchive(root)
        listed = archive.list("bills", "acme")
        mtimes = [
            Path(archive.path("bills", "acme", "2026-11", r.id)).stat().st_mtime_ns for r in listed
        ]
        again = runner.run(RunRequest("bill_reports", partitions=("2026-11",), rerun=True))
        today = dt.datetime.now(dt.UTC).date().isoformat()
        daily = runner.run(RunRequest("run_report", partitions=(today,)))
    finally:
        runner.close()
    assert first.state == RunState.SUCCEEDED, first.error
    assert again.state == RunState.SUCCEEDED, again.error
    assert [(r.period, r.id) for r in listed] == [("2026-11", "c2"), ("2026-11", "c1")]
    assert "1.234,56 €" in text_of(archive.read("bills", "acme", "2026-11", "c1"))
    assert "Factura de agua" in text_of(archive.read("bills", "acme", "2026-11", "c2"))
    after = [
        Path(archive.path("bills", "acme", "2026-11", r.id)).stat().st_mtime_ns for r in listed
    ]
    assert after == mtimes
    (it,) = store.list_iterations(again.id)
    assert it.rows_out == 0  # nothing rewritten
    assert daily.state == RunState.SUCCEEDED, daily.error
    assert [r.id for r in archive.list("runs", "_all", today)] == [
        "run-report-es",
        "run-report-en",
        "run-report-de",
    ]
    report = text_of(archive.read("runs", "_all", today, "run-report-en"))
    # The two bill runs are finished when the report is made; the report's own run is not.
    assert "bill_reports" in report and "Runs: 3 · Failures: 0 · Rows written: 2" in report
    store.close()


def test_bill_total_is_exact_to_the_cent() -> None:
    lines = tuple(
        BillLine("m", NOV, NOV, "T1", Decimal("0.100"), Decimal("0.1000"), Decimal("0.10"), False)
        for _ in range(3)
    )
    bill = Bill("acme", NOV, "c", "C", "en", "EUR", lines)
    assert bill.total == Decimal("0.30")
    assert "$0.30" not in text_of(render_bill(bill)) and "€0.30" in text_of(render_bill(bill))
