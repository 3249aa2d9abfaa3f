"""`edgebatch demo`: the whole platform on one machine, on the embedded defaults.

Mosquitto on a free loopback port, the collector, the scheduler, a worker and the API
(with a demo login it prints) start as their own processes; the reference data is
loaded by a run the worker takes; then one simulated agent per registered device, of
every kind, replays the last full month as fast as it can. Nothing runs the jobs but
the scheduler: the landing backlog starts the bronze load, each load starts
silver_readings for the days it wrote, and each silver run starts every gold job
registered after it for the months of those days (whatever gold jobs exist).

Once every agent has drained and every run has ended, it prints timings, a summary of
the gold tables and the dashboard's address, checked against a recomputation from the
landing files (`demo_checks`; the bills line by line, to the cent: `demo_bills`). It
then keeps everything running until Ctrl-C; `--once` stops there instead, with status 1
on any mismatch or run that did not succeed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import os
import secrets
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgebatch.cli.demo_bills import flow_by_day
from edgebatch.cli.demo_checks import (
    Counts,
    Expected,
    Observed,
    Reference,
    bill_summary,
    expected_figures,
    landed_windows,
    mismatches,
)
from edgebatch.cli.demo_fleet import (
    Replay,
    agent_config,
    choose,
    last_full_month,
    read_devices,
)
from edgebatch.cli.demo_services import Services, cli, free_port, start_broker
from edgebatch.settings import Settings, load_settings

if TYPE_CHECKING:
    from rich.console import Console

    from edgebatch.framework.state import StateStore

DEMO_USER = "demo"
UNFINISHED = ("queued", "running")
QUIET_PASSES = 3  # scheduler passes with nothing to do before the chain counts as done


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    once: bool = False
    agents: int = 30
    start: dt.date | None = None
    days: int | None = None
    window_s: float = 3600.0
    reference: Path | None = None
    timeout_s: float = 1200.0


def parse_options(argv: list[str]) -> DemoOptions:
    p = argparse.ArgumentParser(prog="edgebatch demo", description=__doc__.splitlines()[0])
    p.add_argument(
        "--once",
        action="store_true",
        help="stop at the first full set of gold "
        "tables; exit 1 on a mismatch or a run that did not succeed (CI)",
    )
    p.add_argument("--agents", type=int, default=30, help="simulated devices (default 30)")
    p.add_argument(
        "--start",
        type=dt.date.fromisoformat,
        help="first day replayed (default: the first of last month)",
    )
    p.add_argument("--days", type=int, help="days replayed (default: that whole month)")
    p.add_argument("--window-s", type=float, default=3600.0, help="the agents' window length")
    p.add_argument(
        "--reference",
        type=Path,
        help="reference CSV folder (default: examples/reference, with examples/demo added)",
    )
    p.add_argument(
        "--timeout",
        type=float,
        default=1200.0,
        help="with --once: give up (status 1) after this many seconds",
    )
    args = p.parse_args(argv)  # fmt: skip
    if args.agents < 1 or (args.days is not None and args.days < 1):
        p.error("--agents and --days must be at least 1")
    return DemoOptions(
        once=args.once,
        agents=args.agents,
        start=args.start,
        days=args.days,
        window_s=args.window_s,
        reference=args.reference,
        timeout_s=args.timeout,
    )


def replay_of(options: DemoOptions, today: dt.date) -> Replay:
    start, days = last_full_month(today)
    if options.start is not None:
        start = options.start
        days = options.days or days
    elif options.days is not None:
        days = options.days
    return Replay(start=start, days=days, window_s=options.window_s)


def compose_reference(settings: Settings, options: DemoOptions, workdir: Path) -> Path:
    """The demo's reference folder: examples/reference, each CSV extended by examples/demo's
    rows of the same name (more devices and their consent), so the shared examples stay
    as other tests know them."""
    given = options.reference
    if given is None:
        for base in (settings.home, Path.cwd()):
            if (base / "examples" / "reference" / "devices.csv").is_file():
                given = base / "examples" / "reference"
                break
    if given is None or not (given / "devices.csv").is_file():
        raise RuntimeError(
            "no reference data: run the demo from the project folder (examples/reference) "
            "or pass --reference DIR (a folder with devices.csv, tariffs.csv, consent.csv)"
        )
    out = workdir / "reference"
    out.mkdir(parents=True, exist_ok=True)
    extra = given.parent / "demo" if options.reference is None else None
    for source in sorted(given.glob("*.csv")):
        text = source.read_text(encoding="utf-8")
        more = extra / source.name if extra is not None else None
        if more is not None and more.is_file():
            text = extend_csv(text, more.read_text(encoding="utf-8"))
        (out / source.name).write_text(text, encoding="utf-8")
    return out


def extend_csv(base: str, extra: str) -> str:
    """`base` with the rows of `extra` (same header) about a thing `base` does not name:
    a row whose first two fields (tenant, device or subject) appear in `base` is left
    out, so the examples win when they come to hold the same device."""
    rows = [line for line in base.splitlines() if line.strip()]
    named = {tuple(line.split(",")[:2]) for line in rows[1:]}
    added = [
        line
        for line in extra.splitlines()[1:]
        if line.strip() and tuple(line.split(",")[:2]) not in named
    ]
    return "".join(f"{line}\n" for line in rows + added)


class Demo:
    def __init__(self, settings: Settings, options: DemoOptions, console: Console,
                 config: str | None) -> None:  # fmt: skip
        self.settings = settings
        self.options = options
        self.console = console
        self.config = config
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        self.workdir = settings.var_dir / "demo" / stamp
        self.workdir.mkdir(parents=True, exist_ok=True)
        # A warehouse and state store of its own: every figure it checks is its own.
        self.warehouse = (self.workdir / "warehouse").as_uri()
        self.state_url = f"sqlite:///{self.workdir / 'state.db'}"
        self.api_port = free_port()
        self.password = secrets.token_urlsafe(12)
        self.stop = threading.Event()
        self.t0 = time.monotonic()
        self.timings: dict[str, float] = {}
        self.registry: Any = ()
        self.replay = replay_of(options, dt.date.today())
        # The BI copy needs a database; without `[sinks.databases.bi]` the demo's scheduler
        # leaves that job alone (it still runs by hand once one is configured).
        self.paused: frozenset[str] = (
            frozenset() if "bi" in settings.sinks.databases else frozenset({"bills_to_database"})
        )

    # -- set-up -----------------------------------------------------------------------------

    def env(self, mqtt_port: int) -> dict[str, str]:
        env = {**os.environ, "EDGEBATCH_HOME": str(self.settings.home)}
        if self.config:
            env["EDGEBATCH_CONFIG"] = str(Path(self.config).resolve())
        env.update(
            EDGEBATCH_WAREHOUSE_ROOT=self.warehouse,
            EDGEBATCH_STATE_URL=self.state_url,
            EDGEBATCH_MQTT_HOST="127.0.0.1",
            EDGEBATCH_MQTT_PORT=str(mqtt_port),
            EDGEBATCH_API_DEMO="true",
            EDGEBATCH_API_HOST="127.0.0.1",
            EDGEBATCH_API_PORT=str(self.api_port),
            EDGEBATCH_SCHEDULER_LOOP_INTERVAL_S="1.0",
        )
        return env

    def mark(self, what: str) -> None:
        self.timings[what] = time.monotonic() - self.t0
        self.console.print(f"[dim]{self.timings[what]:6.1f} s[/]  {what}")

    def start_platform(self, services: Services, reference: Path) -> None:
        edgebatch = cli()
        services.run("migrate", [*edgebatch, "migrate"])
        services.run(
            "api user add",
            [*edgebatch, "api", "user", "add", DEMO_USER, "--role", "admin", "--tenant", "*",
             "--password-stdin"],
            stdin=self.password + "\n",
        )  # fmt: skip
        services.start("collector", [*edgebatch, "collect", "--client-id", "demo-collector",
                                     "--max-age", "0.5", "--log-level", "WARNING"])  # fmt: skip
        pause = [arg for job in self.paused for arg in ("--pause", job)]
        services.start("scheduler", [*edgebatch, "scheduler", "--holder", "demo-scheduler", *pause])
        services.start("worker", [*edgebatch, "worker", "--slots", "2", "--id", "demo-worker"])
        services.start("api", [*edgebatch, "api", "serve"])
        services.run(
            "trigger reference_load",
            [*edgebatch, "trigger", "reference_load", "--param", f"source={reference}"],
        )
        services.wait_port("api", self.api_port, timeout=90)
        self.mark("mosquitto, collector, scheduler, worker and API up; reference_load queued")

    def start_agents(
        self, services: Services, reference: Path, port: int
    ) -> dict[str, tuple[str, str]]:
        """One agent per chosen device; returns agent name -> (tenant, device)."""
        replay = self.replay
        fleet = choose(read_devices(reference), self.options.agents)
        kinds = sorted({d.kind for d in fleet})
        self.console.print(
            f"{len(fleet)} agents ({', '.join(kinds)}) replay {replay.days} day(s) from "
            f"{replay.start} in {replay.window_s:g}-second windows"
        )
        agents = {}
        for i, device in enumerate(fleet):
            name = f"agent-{device.tenant}-{device.device}"
            conf = self.workdir / f"{name}.toml"
            conf.write_text(
                agent_config(device, replay, data_dir=self.workdir / name, port=port, seed=i)
            )
            services.start(name, [*cli(), "agent", "--config", str(conf), "--log-level",
                                  "WARNING"])  # fmt: skip
            agents[name] = (device.tenant, device.device)
        return agents

    # -- waiting for the chain --------------------------------------------------------------

    def wait_for_chain(
        self, services: Services, store: StateStore, agents: dict[str, tuple[str, str]]
    ) -> bool:
        """Until every agent's span has landed and every run ended with nothing left to
        load; False if stopped or out of time first. An agent whose windows have all
        landed is stopped: its replay is over (its heartbeats would only keep loads going)."""
        from edgebatch.warehouse.landing import loads, open_zone
        from edgebatch.warehouse.uri import WarehouseRoot

        zone = open_zone(WarehouseRoot.parse(self.warehouse), writer="demo")
        landed = LandedSpan(zone, self.replay)
        running = dict(agents)
        quiet = 0
        seen_gold: set[str] = set()
        last_line = ""
        deadline = self.t0 + self.options.timeout_s
        while not self.stop.wait(1.0):
            if time.monotonic() > deadline:
                self.console.print(f"[red]timed out after {self.options.timeout_s:g} s[/]")
                return False
            services.check_alive(["mosquitto", "collector", "scheduler", "worker", "api", *running])
            if running:
                windows = landed.update()
                for name, key in sorted(running.items()):
                    if windows.get(key, 0) >= self.replay.windows:
                        services.stop(name)
                        del running[name]
                if not running:
                    self.mark(
                        f"all {len(agents)} agents' windows landed ({landed.total} windows): "
                        "agents stopped"
                    )
            runs = store.list_runs(limit=10_000)
            for run in runs:
                if run.state == "succeeded" and run.job not in seen_gold and _is_gold(run.job):
                    seen_gold.add(run.job)
                    if len(seen_gold) == 1:
                        self.mark(f"first gold table: run {run.id} of {run.job} succeeded")
            unfinished = [r for r in runs if r.state in UNFINISHED]
            waiting = loads.backlog(zone).files
            line = _progress(runs, waiting, len(agents) - len(running), len(agents))
            if line != last_line:
                self.console.print(f"[dim]{time.monotonic() - self.t0:6.1f} s[/]  {line}")
                last_line = line
            idle = (
                not running
                and not unfinished
                and waiting == 0
                and triggers_caught_up(store, self.registry, runs, self.paused)
            )
            quiet = quiet + 1 if idle else 0
            if quiet >= QUIET_PASSES:
                self.mark("the chain is done: nothing left to load, no run queued or running")
                return True
        return False


class LandedSpan:
    """Windows of the replayed span landed so far per device, read from new files only."""

    def __init__(self, zone: Any, replay: Replay) -> None:
        self.zone = zone
        self.lo, self.hi = replay.start_ts, replay.start_ts + replay.days * 86400
        self.seen_files: set[str] = set()
        self.windows: dict[tuple[str, str], set[float]] = {}

    @property
    def total(self) -> int:
        return sum(len(w) for w in self.windows.values())

    def update(self) -> dict[tuple[str, str], int]:
        import json

        from edgebatch.warehouse.landing.zone import LANDING

        for f in self.zone.list(("batch",)):
            if f.name in self.seen_files:
                continue
            self.seen_files.add(f.name)
            data = self.zone.store.read(self.zone.root.resolve(f"{LANDING}/{f.name}"))
            for line in data.splitlines():
                if not line.strip():
                    continue
                record = json.loads(line)
                ws = float(record["norm"]["ws"])
                if self.lo <= ws < self.hi:
                    payload = record["payload"]
                    key = (payload["tenant"], payload["device"])
                    self.windows.setdefault(key, set()).add(ws)
        return {key: len(w) for key, w in self.windows.items()}


def triggers_caught_up(
    store: StateStore, registry: Any, runs: list[Any], paused: frozenset[str] = frozenset()
) -> bool:
    """Whether the scheduler has looked at every succeeded run that a job's `AfterUpstream`
    trigger waits for (its cursor is past it): until then a downstream run may still come."""
    from edgebatch.framework.scheduler import AfterUpstream

    newest: dict[str, int] = {}
    for run in runs:
        if run.state == "succeeded":
            newest[run.job] = max(newest.get(run.job, 0), run.id)
    for job in registry:
        if job.name in paused:
            continue
        for trigger in job.schedule.triggers:
            if not isinstance(trigger, AfterUpstream) or trigger.job not in newest:
                continue
            cursor = store.get_cursor(job.name, trigger.key)
            if cursor is None or int(cursor["after_run"]) < newest[trigger.job]:
                return False
    return True


def _is_gold(job: str) -> bool:
    return job in _GOLD_JOBS


# The jobs that write a gold table, as the registry found them when the demo started.
_GOLD_JOBS: set[str] = set()


def _progress(runs: list[Any], waiting: int, agents_done: int, agents: int) -> str:
    by_job: dict[str, dict[str, int]] = {}
    for run in runs:
        by_job.setdefault(run.job, {}).setdefault(str(run.state), 0)
        by_job[run.job][str(run.state)] += 1
    parts = [
        f"{job} " + "/".join(f"{n} {state}" for state, n in sorted(states.items()))
        for job, states in sorted(by_job.items())
    ]
    return f"agents done {agents_done}/{agents}; landing files waiting: {waiting}; runs: " + (
        "; ".join(parts) or "none yet"
    )


# -- reading what the chain produced ------------------------------------------------------


def _rows(root: Any, name: str, columns: list[str] | None = None) -> list[dict[str, Any]] | None:
    """A table's rows with delta-rs (no Spark in the demo's own process); None if absent."""
    from deltalake import DeltaTable

    from edgebatch.warehouse.tables import REGISTRY

    location = REGISTRY.get(name).location(root) if name in REGISTRY else root.qualified(name)
    if not DeltaTable.is_deltatable(location):
        return None
    rows: list[dict[str, Any]] = DeltaTable(location).to_pyarrow_table(columns=columns).to_pylist()
    return rows


def observe(warehouse: str) -> tuple[Observed, list[str]]:
    import json

    from edgebatch.framework.consent import subject_tables
    from edgebatch.warehouse.tables import REGISTRY
    from edgebatch.warehouse.uri import WarehouseRoot

    root = WarehouseRoot.parse(warehouse)
    gold_names = sorted(s.name for s in REGISTRY if s.name.startswith("gold/"))
    gold = {n: rows for n in gold_names if (rows := _rows(root, n)) is not None}
    withheld: dict[str, Counts] = {}
    for row in _rows(root, "silver/withheld") or []:
        c = withheld.setdefault(row["reason"], Counts())
        c.windows += int(row["windows"])
        c.readings += int(row["readings"])
    quarantined = sum(
        int(json.loads(r["row"]).get("count") or 0)
        for r in _rows(root, "quarantine/expectations") or []
        if r["job"] == "silver_readings"
    )
    observed = Observed(
        bronze_readings=_bronze_readings(
            _rows(root, "bronze/edge_batches", ["batch_id", "metric", "count"]) or []
        ),
        silver_readings=sum(
            int(r["count"]) for r in _rows(root, "silver/readings", ["count"]) or []
        ),
        quarantined=quarantined,
        withheld=withheld,
        gold=gold,
        subject_columns={c.table: (c.subject, c.tenant) for c in subject_tables()},
    )
    return observed, gold_names


def _bronze_readings(rows: list[dict[str, Any]]) -> int:
    seen: set[tuple[str, str]] = set()
    total = 0
    for r in rows:
        key = (r["batch_id"], r["metric"])
        if key not in seen:
            seen.add(key)
            total += int(r["count"])
    return total


def recompute(warehouse: str, reference: Path) -> Expected:
    from edgebatch.warehouse.landing import open_zone
    from edgebatch.warehouse.landing.zone import LANDING
    from edgebatch.warehouse.uri import WarehouseRoot

    root = WarehouseRoot.parse(warehouse)
    zone = open_zone(root, writer="demo")
    lines: list[bytes] = []
    for f in zone.list(("batch",)):
        lines.extend(zone.store.read(root.resolve(f"{LANDING}/{f.name}")).splitlines())
    # the windows per metric for the counts; the flow per meter and day for the bills
    return expected_figures(landed_windows(lines), Reference.read(reference), flow_by_day(lines))


def print_summary(console: Console, observed: Observed, gold_names: list[str]) -> None:
    from rich.table import Table

    from edgebatch.framework.consent import subject_tables

    bills = observed.gold.get("gold/water_bills")
    if bills is None:
        console.print("bills: gold/water_bills absent (no billing job has run)")
    else:
        summary = bill_summary(bills)
        totals = ", ".join(f"{total:,.2f} {cur}" for cur, total in sorted(summary.totals.items()))
        console.print(f"bills issued: {summary.bills}, total {totals or '0.00'}")
    vitals = {c.table: c.subject for c in subject_tables() if c.table.startswith("gold/vitals")}
    patients = {
        (r["tenant"], r[col]) for table, col in vitals.items() for r in observed.gold.get(table, [])
    }
    console.print(
        f"patients analysed: {len(patients)}"
        if any(t in observed.gold for t in vitals)
        else "patients analysed: no gold/vitals_* table yet"
    )
    oee = observed.gold.get("gold/oee_batches")
    if oee is None:
        console.print("OEE per batch: gold/oee_batches absent")
    else:
        table = Table(title="OEE per batch (gold/oee_batches)")
        cols = [c for c in (oee[0] if oee else {}) if c in _OEE_COLUMNS] or list(oee[0])[:6]
        for c in cols:
            table.add_column(c)
        for r in oee[:20]:
            table.add_row(*(_fmt(r[c]) for c in cols))
        console.print(table)
    withheld = ", ".join(
        f"{reason} {c.readings} readings in {c.windows} windows"
        for reason, c in sorted(observed.withheld.items())
    )
    console.print(f"withheld readings (kept in bronze): {withheld or 'none'}")
    tables = Table("gold table", "rows", title="gold tables")
    for name in gold_names:
        rows = observed.gold.get(name)
        tables.add_row(name, "absent" if rows is None else str(len(rows)))
    console.print(tables)


_OEE_COLUMNS = ("tenant", "line", "batch", "batch_id", "availability", "performance", "quality",
                "oee")  # fmt: skip


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def failed_runs(store: StateStore) -> list[str]:
    return [
        f"run {r.id} of {r.job} {r.state}" + (f": {r.error}" if r.error else "")
        for r in store.list_runs(limit=10_000)
        if r.state not in ("succeeded",)
    ]


def run_demo(config: str | None = None, argv: list[str] | None = None) -> int:
    from rich.console import Console

    from edgebatch.framework.registry import discover
    from edgebatch.framework.state import StateStore

    options = parse_options(argv or [])
    console = Console(highlight=False, width=max(120, Console().width))
    settings = load_settings(config)
    demo = Demo(settings, options, console, config)
    registry = discover(settings)  # declares every table and the gold jobs that exist
    demo.registry = registry
    _GOLD_JOBS.update(
        job.name for job in registry if any(o.startswith("gold/") for o in job.outputs)
    )
    console.print(
        f"[bold]edgebatch demo[/] in {demo.workdir}; gold jobs: "
        f"{', '.join(sorted(_GOLD_JOBS)) or 'none yet'}"
    )
    reference = compose_reference(settings, options, demo.workdir)

    def on_signal(signum: int, frame: Any) -> None:
        demo.stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    services = Services(demo.workdir, {})
    status = 1
    try:
        port = start_broker(services)
        services.env = demo.env(port)
        demo.start_platform(services, reference)
        agents = demo.start_agents(services, reference, port)
        with StateStore(demo.state_url) as store:
            if not demo.wait_for_chain(services, store, agents):
                return 1 if options.once else 130
            problems = failed_runs(store)
        observed, gold_names = observe(demo.warehouse)
        expected = recompute(demo.warehouse, reference)
        problems += mismatches(expected, observed)
        print_summary(console, observed, gold_names)
        console.print(
            f"readings landed {expected.total}, in bronze {observed.bronze_readings}, "
            f"in silver {observed.silver_readings}"
        )
        _timings(console, demo.timings)
        if problems:
            console.print("[red]MISMATCH[/]: the demo fails")
            for p in problems:
                console.print(f"  - {p}")
        else:
            console.print("every run succeeded; every figure matches the landing files")
        status = 1 if problems else 0
        console.print(
            f"\ndashboard  http://127.0.0.1:{demo.api_port}/  "
            f"(user {DEMO_USER}, password {demo.password})\n"
            f"warehouse  {demo.warehouse}\nstate      {demo.state_url}\n"
            f"logs       {demo.workdir}/*.log\n"
            f"runs       EDGEBATCH_STATE_URL={demo.state_url} edgebatch runs"
        )
        if options.once:
            return status
        console.print("running until Ctrl-C")
        while not demo.stop.wait(1.0):
            services.check_alive(["mosquitto", "collector", "scheduler", "worker", "api"])
        return status
    finally:
        stopped = services.stop_all()
        odd = {n: c for n, c in stopped.items() if c not in (0, -signal.SIGTERM, None)}
        console.print("stopped " + ", ".join(stopped) + (f" (exit status: {odd})" if odd else ""))


def _timings(console: Console, timings: dict[str, float]) -> None:
    first = next((t for what, t in timings.items() if what.startswith("first gold")), None)
    done = timings.get(next((w for w in timings if w.startswith("the chain is done")), ""))
    console.print(
        "timings: first gold table "
        + (f"{first:.1f} s" if first is not None else "never")
        + (f", whole chain {done:.1f} s" if done is not None else "")
        + " after the start"
    )
