"""The dashboard in headless Chromium (Debian's, driven by Playwright) against the real app:
uvicorn on a free port, a SQLite store, and a warm runner on the suite's SparkSession that
executes what the page asks for, as a worker would. Screenshots go to
var/test-artifacts/dashboard/ for a person to look at."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.api.web.conftest import PASSWORD, add_users, dashboard_settings
from tests.support.extras import in_ci, require
from tests.support.net import free_port
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from edgebatch.framework.state import StateStore

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[3] / "var" / "test-artifacts" / "dashboard"


@dataclass
class Served:
    url: str
    store: StateStore


class _Worker(threading.Thread):
    """Starts every queued run in the warm runner: what a worker process does, in-process."""

    def __init__(self, runner, store) -> None:
        super().__init__(name="dashboard-test-worker", daemon=True)
        self.runner, self.store = runner, store
        self.stop = threading.Event()
        self.started: set[int] = set()

    def run(self) -> None:
        while not self.stop.wait(0.2):
            for run in self.store.list_runs(state="queued", limit=10):
                if run.id not in self.started:
                    self.started.add(run.id)
                    self.runner.start(run.id)


@pytest.fixture
def served(spark, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    import uvicorn

    from edgebatch.api.app import create_app
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore

    require("playwright")
    if not CHROMIUM.exists():
        message = "Debian's chromium is not installed (deps/system-packages.sh test does it)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    monkeypatch.setenv("EDGEBATCH_DASH_STEP_S", "0.8")
    settings = dashboard_settings(tmp_path / "home", max_parallel_iterations=2)
    store = StateStore.from_settings(settings)
    add_users(store)
    _seed_history(store)
    _seed_fleet(settings)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, store=store),
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
        )
    )
    serving = threading.Thread(target=server.run, name="dashboard-uvicorn", daemon=True)
    serving.start()
    wait_until(lambda: server.started, 30, "uvicorn to start")
    runner = Runner(spark, store, settings, discover(settings))
    worker = _Worker(runner, store)
    worker.start()
    try:
        yield Served(f"http://127.0.0.1:{port}", store)
    finally:
        worker.stop.set()
        worker.join(5)
        runner.close()
        server.should_exit = True
        serving.join(10)
        store.close()


# Past runs for the plots: (days back, job, state); none 7 or 8 days back, so the page's
# "last 7 days" holds no run at its edge.
HISTORY = [
    (days, job, "failed" if job == "line_report" and days % 4 == 0 else "succeeded")
    for days in (1, 2, 3, 4, 5, 6, 9, 10, 11, 12)
    for job in ("plant_energy", "line_report")
]


def _seed_history(store: StateStore) -> None:
    """Runs of the last two weeks, stamped in the past as the store allows (`at=`)."""
    now = datetime.now(UTC).replace(microsecond=0)
    for n, (days, job, state) in enumerate(HISTORY):
        made = now - timedelta(days=days, hours=n % 5)
        run = store.create_run(job, partitions=[f"2026-11-{10 + n % 9:02d}"], at=made)
        store.claim_run(run.id, "seeded-history", at=made + timedelta(seconds=20 + n % 4 * 10))
        took = timedelta(seconds=30 + (n * 7) % 40 + (15 if job == "line_report" else 0))
        ended = made + timedelta(seconds=60) + took
        store.transition_run(
            run.id, state, error="seeded failure" if state == "failed" else None, at=ended
        )


DEVICES = ("press-01", "press-02", "chiller-01", "boiler-07")


def _seed_fleet(settings) -> None:
    """An hour of heartbeats of four devices (one silent for two hours) and three alarms,
    written as the bronze load writes them."""
    from edgebatch.warehouse.uri import WarehouseRoot
    from tests.api.fleet_tables import write_alarms, write_health

    root = WarehouseRoot.parse(settings.warehouse_root)
    now = datetime.now(UTC).replace(microsecond=0)
    rows = []
    for d, device in enumerate(DEVICES):
        silent = timedelta(hours=2) if device == "boiler-07" else timedelta()
        for i in range(30):
            wave = (i * (3 + d)) % 17
            rows.append(
                {
                    "tenant": "acme",
                    "device": device,
                    "ts": now - silent - timedelta(minutes=2 * i),
                    "received_at": now - silent - timedelta(minutes=2 * i),
                    "cpu_percent": min(97.0, 12.0 + 4 * wave + 15 * d),
                    "memory_percent": 35.0 + wave + 5 * d,
                    "disk_percent": 40.0 + 10 * d + i / 10,
                    "outbox_backlog": (d * 7 + i) % 5,
                    "shed_count": d,
                }
            )
    write_health(root, rows)
    write_alarms(
        root,
        [
            {
                "alarm_id": "a1" * 16,
                "tenant": "acme",
                "device": "press-02",
                "rule": "threshold",
                "metric": "pressure_bar",
                "value": 9.4,
                "threshold": 8.0,
                "severity": "critical",
                "ts": now - timedelta(minutes=3),
            },
            {
                "alarm_id": "a2" * 16,
                "tenant": "acme",
                "device": "chiller-01",
                "rule": "zscore",
                "metric": "temp_c",
                "value": 14.2,
                "baseline": 6.5,
                "severity": "warning",
                "ts": now - timedelta(minutes=25),
            },
            {
                "alarm_id": "a3" * 16,
                "tenant": "acme",
                "device": "press-01",
                "rule": "threshold",
                "metric": "vibration_mm_s",
                "value": 7.1,
                "threshold": 7.0,
                "severity": "info",
                "ts": now - timedelta(hours=5),
            },
        ],
    )


def _shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky top bar where it belongs
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def test_an_operator_signs_in_starts_a_run_and_watches_it_succeed_live(served: Served):
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-background-networking", "--disable-dev-shm-usage"],
        )
        context = browser.new_context(
            locale="en-US", timezone_id="UTC", viewport={"width": 1440, "height": 900}
        )
        page = context.new_page()
        problems: list[str] = []
        page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
        # Chromium logs every 4xx as a console error ("Failed to load resource"): the 401
        # before sign-in and the 404s of routes this server lacks are expected; 5xx are not.
        page.on(
            "console",
            lambda msg: (
                problems.append(f"console: {msg.text}")
                if msg.type == "error" and not msg.text.startswith("Failed to load resource")
                else None
            ),
        )
        page.on(
            "response",
            lambda r: problems.append(f"{r.status} from {r.url}") if r.status >= 500 else None,
        )
        try:
            # Signed out: the page sends the browser to sign in, and back afterwards.
            page.goto(served.url + "/")
            page.wait_for_url(re.compile(r"/login\?next=%2F$"))
            page.fill("#username", "olga")
            page.fill("#password", "wrong password")
            page.click("#login-submit")
            expect(page.locator("#login-error")).to_contain_text("wrong")
            expect(page.locator("#live")).to_be_hidden()  # nothing live before signing in
            _shot(page, "01-sign-in")
            page.fill("#password", PASSWORD)
            page.click("#login-submit")
            page.wait_for_url(served.url + "/")
            expect(page.locator("#user-name")).to_have_text("olga · operator")

            # Start a run from the form (a change: it carries the CSRF token).
            expect(page.locator("#submit-card")).to_be_visible()
            page.fill("#submit-job", "plant_energy")
            page.fill("#submit-partitions", "2026-11-02, 2026-11-03")
            page.click("#submit-run")
            page.wait_for_url(re.compile(r"/runs/\d+$"))
            run_id = int(page.url.rsplit("/", 1)[1])

            # Live: lines arrive while the run is still running, without a reload.
            state = page.locator("#run-state")
            lines = page.locator("#log .log-line")
            expect(state).to_have_attribute("data-state", "running", timeout=60_000)
            expect(lines.first).to_be_visible(timeout=30_000)
            seen_running = lines.count()
            expect(page.locator("#log-stream")).to_have_text("Following live")
            _shot(page, "02-run-running")
            log_pane = page.locator("#log")
            expect(log_pane).to_contain_text("reading meter block 4 of 4", timeout=60_000)
            expect(state).to_have_attribute("data-state", "succeeded", timeout=90_000)
            expect(page.locator("#log-stream")).to_have_text("Log complete", timeout=10_000)
            assert lines.count() > seen_running
            expect(page.locator("#iterations-table tbody tr")).to_have_count(2)
            expect(page.locator("#run-rows")).to_have_text("2,468")
            _shot(page, "03-run-succeeded-en")

            # Each line once, in order, none missing (the last comes just after the run's end).
            stored = [x.id for x in served.store.read_logs(run_id, limit=10_000)]
            wait_until(
                lambda: (
                    [int(x) for x in lines.evaluate_all("ns => ns.map(n => n.dataset.id)")]
                    == stored
                ),
                10,
                "the log pane to show every stored line",
            )
            expect(lines.last).to_contain_text(f"run {run_id} succeeded")

            # German: the switcher reloads the page in German, numbers and dates with it.
            page.select_option("#lang-select", "de")
            page.wait_for_url(re.compile(rf"/runs/{run_id}$"))
            expect(page.locator("html")).to_have_attribute("lang", "de")
            expect(state).to_have_text("erfolgreich")
            expect(page.locator("h2").first).to_have_text("Iterationen")
            expect(page.locator("#run-rows")).to_have_text("2.468")
            expect(page.locator("#run-created")).to_have_text(re.compile(r"^\d\d\.\d\d\.\d{4}, "))
            expect(page.locator("#log-stream")).to_have_text("Protokoll vollständig")
            _shot(page, "04-run-succeeded-de")

            page.goto(served.url + "/")
            expect(page.locator(f'#runs-table tr[data-run="{run_id}"] .badge')).to_have_text(
                "erfolgreich"
            )
            week = [state for days, _, state in HISTORY if days <= 6] + ["succeeded"]
            rate = week.count("succeeded") / len(week)
            expect(page.locator("#tile-rate")).to_have_text(f"{rate * 100:.1f} %".replace(".", ","))
            expect(page.locator("#chart-durations .uplot")).to_be_visible()
            job = page.locator("#jobs-table tr", has_text="plant_energy")
            expect(job.locator(".badge")).to_have_text("erfolgreich")
            expect(job.locator("svg.sparkline")).to_be_visible()
            _shot(page, "05-runs-de")
            page.goto(served.url + "/workers")
            expect(page.locator("#live")).to_be_visible()
            expect(page.locator("#unavailable")).to_be_hidden()
            _shot(page, "06-workers-de")

            # The fleet: sparklines per device, and an alarm acknowledged (a change: CSRF).
            page.goto(served.url + "/devices")
            expect(page.locator("#devices-table tbody tr")).to_have_count(len(DEVICES))
            expect(page.locator("#tile-online")).to_have_text("3")
            expect(page.locator("#tile-alarms")).to_have_text("3")
            expect(page.locator("#devices-table tbody tr").first.locator("svg path")).to_have_count(
                3
            )
            page.locator('#devices-table tr[data-device="acme/press-02"]').click()
            expect(page.locator("#chart-device .uplot")).to_be_visible()
            expect(page.locator("#device-card")).to_contain_text("Speicher")
            critical = page.locator("#alarms-table tr", has_text="press-02")
            critical.get_by_role("button", name="Bestätigen").click()
            expect(critical).to_contain_text("olga")
            expect(page.locator("#tile-alarms")).to_have_text("2")
            _shot(page, "06-devices-de")

            # The table the run wrote, and its history (read by delta-rs behind the API).
            page.goto(served.url + "/tables")
            row = page.locator("#tables-table tr", has_text="dash/plant_energy")
            expect(row.locator("td").nth(2)).to_have_text("2.468")
            row.click()
            expect(page.locator("#history-table tbody tr").first).to_be_visible()
            _shot(page, "07-tables-de")

            # A viewer sees the same pages, in Spanish here, but no form and no buttons.
            viewer = browser.new_context(
                locale="es-ES", timezone_id="UTC", viewport={"width": 1440, "height": 900}
            )
            as_viewer = viewer.new_page()
            as_viewer.goto(served.url + "/login")
            as_viewer.fill("#username", "vera")
            as_viewer.fill("#password", PASSWORD)
            as_viewer.click("#login-submit")
            as_viewer.wait_for_url(served.url + "/")
            expect(as_viewer.locator("#user-name")).to_have_text("vera · lector")
            expect(as_viewer.locator(f'tr[data-run="{run_id}"] .badge')).to_have_text("correcta")
            expect(as_viewer.locator("#submit-card")).to_be_hidden()
            failed = next(i + 1 for i, (_, _, st) in enumerate(HISTORY) if st == "failed")
            as_viewer.goto(f"{served.url}/runs/{failed}")
            expect(as_viewer.locator("#run-state")).to_have_text("fallida")
            expect(as_viewer.locator("#run-actions")).to_be_hidden()
            _shot(as_viewer, "08-run-failed-viewer-es")
            viewer.close()
        finally:
            browser.close()
    assert problems == []
