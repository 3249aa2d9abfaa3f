"""The reports routes: a viewer lists and downloads its tenant's PDFs, with the PDF content
type; another tenant's viewer is refused; the run report is for all-tenant callers."""

from __future__ import annotations

import io

import pytest
from pypdf import PdfReader

from edgebatch.framework.reports.archive import ReportArchive
from edgebatch.framework.reports.bills import bills_from_rows
from edgebatch.framework.reports.pdf import render_bill
from tests.api.conftest import Api
from tests.framework.test_reports import bill_rows

pytestmark = pytest.mark.integration


@pytest.fixture
def bill_pdf(api: Api) -> bytes:
    (bill,) = bills_from_rows(bill_rows("c1", "de"))
    pdf = render_bill(bill)
    archive = ReportArchive(api.root)
    archive.write("bills", "acme", "2026-11", "c1", pdf)
    archive.write("runs", "_all", "2026-11-30", "run-report-en", b"%PDF-1.4 run report")
    return pdf


def test_a_viewer_lists_and_downloads_its_tenants_bill(api: Api, bill_pdf: bytes) -> None:
    listed = api.client.get("/api/v1/reports/acme/bills", headers=api.as_("acme_viewer"))
    assert listed.status_code == 200
    (entry,) = listed.json()
    assert entry["id"] == "c1" and entry["period"] == "2026-11" and entry["bytes"] == len(bill_pdf)

    got = api.client.get(entry["url"], headers=api.as_("acme_viewer"))
    assert got.status_code == 200
    assert got.headers["content-type"] == "application/pdf"
    assert got.content == bill_pdf
    text = PdfReader(io.BytesIO(got.content)).pages[0].extract_text().replace("\xa0", " ")
    assert "1.234,56 €" in text


def test_another_tenant_is_refused(api: Api, bill_pdf: bytes) -> None:
    url = "/api/v1/reports/acme/bills/2026-11/c1"
    assert api.client.get(url, headers=api.as_("other_viewer")).status_code == 403
    listed = api.client.get("/api/v1/reports/acme/bills", headers=api.as_("other_viewer"))
    assert listed.status_code == 403
    assert api.client.get(url).status_code == 401


def test_the_run_report_is_for_callers_who_see_every_tenant(api: Api, bill_pdf: bytes) -> None:
    url = "/api/v1/reports/_all/runs/2026-11-30/run-report-en"
    assert api.client.get(url, headers=api.as_("acme_viewer")).status_code == 403
    got = api.client.get(url, headers=api.as_("viewer"))
    assert got.status_code == 200 and got.content.startswith(b"%PDF")


def test_unknown_reports_and_bad_names_are_not_found(api: Api, bill_pdf: bytes) -> None:
    viewer = api.as_("acme_viewer")
    assert (
        api.client.get("/api/v1/reports/acme/bills/2026-11/c9", headers=viewer).status_code == 404
    )
    assert api.client.get("/api/v1/reports/acme/secrets", headers=viewer).status_code == 404
    bad = api.client.get("/api/v1/reports/acme/bills/2026-11/..%2F..%2Fx", headers=viewer)
    assert bad.status_code == 404
