"""One warehouse for the gold jobs' tests, landed and loaded to silver once per test session.

Each test module keeps its own data beside its checks and registers the function that
builds it with `@lands(...)` (at import, so during collection, before any fixture runs).
The session's warehouse (`load_session_warehouse`, the `gold_warehouse` fixture of
tests/jobs/conftest.py) then lands every registered message at once with the collector's
own code (`land_groups`), loads the example reference data (with the files the modules
replace and the rows they add) and runs `reference_load`, `bronze_load` and
`silver_readings` for every day landed, once; each module then runs only its own gold
job on it, with a runner of its own (`Warehouse`).

The modules share the warehouse safely because each owns its tenants (vitals
demo-health, fitness demo-fitness, fleet demo-fleet, traffic demo-traffic, OEE's line
sensors and device health's heartbeats demo-bottling and demo-water, each its own kind of
message; water bills `tw`, its registry, tariffs, customers, sites and consent rows its
own) and its gold tables; a test that withdraws consent does it with `withdrawn(...)`,
which loads the session's reference data again when the test ends.

The expected figures never come from Spark: `duckdb_views` and `landed_windows` read the
landing files with DuckDB, `payloads` as plain JSON.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import AlarmEvent, encode_alarm, encode_batch, topic
from edgebatch.edge.wire.summary import metric_summary
from edgebatch.warehouse.collector.direct import Message, land_groups
from edgebatch.warehouse.landing import LandingZone, LocalStore
from edgebatch.warehouse.uri import WarehouseRoot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reference"
AGENT = "test/1"
COLLECTOR = "test"


class Reading(NamedTuple):
    """One metric's readings in one window, spread evenly over it."""

    unit: str
    values: Sequence[float]


def epoch(when: dt.datetime) -> float:
    """Seconds since the epoch; a naive time is UTC."""
    return when.replace(tzinfo=dt.UTC).timestamp() if when.tzinfo is None else when.timestamp()


def window_message(
    tenant: str,
    device: str,
    start: dt.datetime,
    minutes: float,
    metrics: Mapping[str, tuple[str, Sequence[float]]],
    revision: int = 0,
) -> Message:
    """A batch message of one window as the agent sends it (`MetricStats`, `encode_batch`),
    received a minute after the window (a revision a minute later per revision)."""
    t0 = epoch(start)
    t1 = t0 + 60.0 * minutes
    summaries = []
    for name, (unit, values) in sorted(metrics.items()):
        stats = MetricStats(name, unit)
        step = (t1 - t0) / (len(values) + 1)
        stats.add_chunk(list(values), [t0 + step * (i + 1) for i in range(len(values))])
        summaries.append(metric_summary(stats))
    _, payload = encode_batch(
        tenant=tenant, device=device, window_start=t0, window_end=t1,
        revision=revision, metrics=summaries, agent=AGENT,
    )  # fmt: skip
    return topic(tenant, device, "batch"), payload, t1 + 60.0 * (1 + revision)


@dataclasses.dataclass
class Landing:
    """Messages to land, and the UTC days of their windows (silver's partitions)."""

    messages: list[Message] = dataclasses.field(default_factory=list)
    days: set[dt.date] = dataclasses.field(default_factory=set)

    def window(
        self,
        tenant: str,
        device: str,
        start: dt.datetime,
        minutes: float,
        metrics: Mapping[str, tuple[str, Sequence[float]]],
        revision: int = 0,
        resend: bool = False,
    ) -> Message:
        """One window summary of `metrics` (name: (unit, values)); `resend`: sent twice, as
        an agent does when an acknowledgement is lost (bronze must keep one)."""
        message = window_message(tenant, device, start, minutes, metrics, revision)
        self.messages.append(message)
        if resend:
            self.messages.append(message)
        self.days.add(dt.datetime.fromtimestamp(epoch(start), dt.UTC).date())
        return message

    def alarm(
        self,
        tenant: str,
        device: str,
        at: dt.datetime,
        metric: str,
        value: float,
        threshold: float,
        rule: str = "high",
        state: str = "raised",
    ) -> None:
        event = AlarmEvent(
            rule=rule, kind="threshold", state=state,  # type: ignore[arg-type]
            metric=metric, value=value, threshold=threshold, baseline=None,
            ts=epoch(at), severity="critical",
        )  # fmt: skip
        _, payload = encode_alarm(event, tenant=tenant, device=device, agent=AGENT)
        self.messages.append((topic(tenant, device, "alarm"), payload, epoch(at) + 5.0))

    def add(self, messages: Sequence[Message]) -> None:
        """Messages made elsewhere (heartbeats, a batch landed twice): no silver day."""
        self.messages.extend(messages)

    def extend(self, other: Landing) -> None:
        self.messages.extend(other.messages)
        self.days |= other.days


@dataclasses.dataclass(frozen=True)
class Source:
    """A module's data: its messages, reference files it replaces (name -> text), and rows
    it adds to example files (name -> lines without the header)."""

    build: Callable[[], Landing]
    reference: Mapping[str, str]
    append: Mapping[str, str] = dataclasses.field(default_factory=dict)


_SOURCES: dict[str, Source] = {}


def lands(name: str, **reference: str) -> Callable[[Callable[[], Landing]], Callable[[], Landing]]:
    """Register a module's `Landing` builder for the session's warehouse, with the reference
    files it replaces (`lands("oee", **{"batches.csv": TEXT})`)."""
    return _register(name, reference, {})


def lands_adding(
    name: str, rows: Mapping[str, str]
) -> Callable[[Callable[[], Landing]], Callable[[], Landing]]:
    """Register a module's `Landing` builder with the rows it adds to example files
    (`lands_adding("water_bills", {"devices.csv": LINES})`, lines without the header, of
    its own tenant): for a module whose tenant is not in the examples."""
    return _register(name, {}, rows)


def _register(
    name: str, reference: Mapping[str, str], append: Mapping[str, str]
) -> Callable[[Callable[[], Landing]], Callable[[], Landing]]:
    def register(build: Callable[[], Landing]) -> Callable[[], Landing]:
        for file, text in reference.items():
            for other, source in _SOURCES.items():
                if other != name and source.reference.get(file, text) != text:
                    raise ValueError(f"{name!r} and {other!r} both replace {file}")
        _SOURCES[name] = Source(build, dict(reference), dict(append))
        return build

    return register


def land(zone: LandingZone, messages: Sequence[Message], per_file: int = 500) -> int:
    """Land `messages` with the collector's code, `per_file` to a file (so a resent message
    may land in another file than the first copy); none refused. Returns the files."""
    files = 0
    for i in range(0, len(messages), per_file):
        (landed,) = land_groups(zone, [messages[i : i + per_file]], COLLECTOR)
        assert landed.quarantined == 0, landed.reasons
        files += len(landed.files)
    return files


def reference_folder(
    folder: Path,
    extra_consent: str = "",
    append: Sequence[tuple[str, str]] = (),
    **replace: str,
) -> Path:
    """Every example reference CSV in `folder`, files of `replace` (name -> text) instead of
    theirs, `extra_consent` lines appended to consent.csv and each (name, lines) of
    `append` to that file."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in EXAMPLES.glob("*.csv"):
        (folder / path.name).write_text(replace.get(path.name, path.read_text()))
    for name, text in replace.items():
        (folder / name).write_text(text)
    for name, lines in [("consent.csv", extra_consent), *append]:
        path = folder / name
        if not path.is_file():
            raise ValueError(f"rows appended to {name}, which the reference folder lacks")
        text = path.read_text()
        path.write_text(text + ("" if not text or text.endswith("\n") else "\n") + lines)
    return folder


@dataclasses.dataclass(frozen=True)
class Loaded:
    """The session's loaded warehouse: its settings, reference folder and silver days."""

    settings: Any
    reference: Path
    days: tuple[dt.date, ...]
    sources: tuple[str, ...]


def settings_for(home: Path) -> Any:
    from edgebatch.settings import FrameworkSettings, Settings, StateSettings, WarehouseSettings

    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        framework=FrameworkSettings(jobs=(), lease_ttl_s=5.0, heartbeat_s=0.5),
        home=home,
    )


@contextlib.contextmanager
def warehouse(spark: Any, loaded: Loaded) -> Iterator[Warehouse]:
    """A runner of its own (state store and all) on the loaded warehouse, closed at the end."""
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore

    store = StateStore(loaded.settings.state_url)
    runner = Runner(spark, store, loaded.settings, discover(loaded.settings))
    try:
        yield Warehouse(runner, loaded)
    finally:
        runner.close()
        store.close()


def load_session_warehouse(spark: Any, home: Path) -> Loaded:
    """Land every registered module's messages, then reference_load, bronze_load and
    silver_readings for every day landed: once per session."""
    landing, replace, append = Landing(), dict[str, str](), list[tuple[str, str]]()
    for source in _SOURCES.values():
        landing.extend(source.build())
        replace.update(source.reference)
        append.extend(source.append.items())
    settings = settings_for(home)
    loaded = Loaded(
        settings,
        reference_folder(home / "reference", append=append, **replace),
        tuple(sorted(landing.days)),
        tuple(_SOURCES),
    )
    with warehouse(spark, loaded) as w:
        land(w.zone, landing.messages)
        w.run("reference_load", params={"source": str(loaded.reference)})
        w.run("bronze_load")
        if loaded.days:
            w.run("silver_readings", partitions=tuple(d.isoformat() for d in loaded.days))
    return loaded


@dataclasses.dataclass
class Warehouse:
    runner: Any
    loaded: Loaded

    @property
    def root(self) -> WarehouseRoot:
        return self.runner.root

    @property
    def reference(self) -> Path:
        return self.loaded.reference

    @property
    def zone(self) -> LandingZone:
        return LandingZone(self.root, LocalStore(), COLLECTOR)

    @property
    def landing(self) -> Path:
        return Path(self.root.resolve("landing"))

    def run(self, job: str, **request: Any) -> Any:
        """Run `job` (RunRequest's fields as keywords); it must succeed."""
        from edgebatch.framework.requests import RunRequest
        from edgebatch.framework.state import RunState

        run = self.runner.run(RunRequest(job, **request))
        assert run.state == RunState.SUCCEEDED, (job, run.error, self.log(run))
        return run

    def log(self, run: Any) -> str:
        return "\n".join(line.message for line in self.runner.store.read_logs(run.id))

    def rows(self, table: str) -> list[dict[str, Any]]:
        from edgebatch.warehouse.tables import REGISTRY, read_table

        df = read_table(self.runner.spark, self.root, REGISTRY.get(table))
        return [r.asDict() for r in df.collect()]

    def table_rows(self, table: str, columns: Sequence[str] = ()) -> list[tuple]:
        """A table's rows (or these columns of them), sorted, for before-and-after checks."""
        from edgebatch.warehouse.tables import REGISTRY, read_table

        df = read_table(self.runner.spark, self.root, REGISTRY.get(table))
        if columns:
            df = df.select(*columns)
        return sorted((tuple(r) for r in df.collect()), key=repr)

    def payloads(self, kind: str) -> list[dict[str, Any]]:
        """Every payload of `kind` in the landing files, as JSON, in no particular order."""
        out = []
        for path in sorted((self.landing / kind).rglob("*.jsonl")):
            for line in path.read_text().splitlines():
                out.append(json.loads(line)["payload"])
        return out

    @contextlib.contextmanager
    def withdrawn(self, folder: Path, *consent_lines: str) -> Iterator[Any]:
        """Load these consent events (`tenant,subject,withdrawn,at,reason`, of one tenant)
        after the tenant's own, and erase: yields the consent_erase run. When the test ends
        the tenant's consent as the session loaded it is loaded again, so the reference
        data is as other modules found it (the erased rows are the withdrawing module's own:
        a module owns its tenant). reference_load replaces only the rows of the tenants a
        file names, so the folder holds that tenant's consent.csv alone."""
        (tenant,) = {line.split(",", 1)[0] for line in consent_lines}
        header, *lines = (self.reference / "consent.csv").read_text().splitlines()
        own = [header, *(line for line in lines if line.split(",", 1)[0] == tenant)]
        changed, restored = folder / "consent-withdrawn", folder / "consent-restored"
        for path, text in ((changed, [*own, *consent_lines]), (restored, own)):
            path.mkdir(parents=True, exist_ok=True)
            (path / "consent.csv").write_text("\n".join(text) + "\n")
        self.run("reference_load", params={"source": str(changed)})
        try:
            yield self.run("consent_erase")
        finally:
            self.run("reference_load", params={"source": str(restored)})


def duckdb_views(con: Any, w: Warehouse) -> None:
    """DuckDB views over the landing files and the reference CSVs: `windows` (each batch
    and metric once, with the window's UTC date and minutes), `alarms`, `devices`,
    `consented` (subjects whose latest consent event is `granted`)."""
    con.execute("SET TimeZone = 'UTC'")
    batches = sorted(str(p) for p in (w.landing / "batch").rglob("*.jsonl"))
    alarms = sorted(str(p) for p in (w.landing / "alarm").rglob("*.jsonl"))
    con.execute(
        f"""
        CREATE OR REPLACE VIEW windows AS
        WITH lines AS (
            SELECT payload FROM read_json({batches!r}, format = 'newline_delimited',
                                          columns = {{'payload': 'JSON'}})
        ), parts AS (
            SELECT payload->>'batch_id' AS batch_id, payload->>'tenant' AS tenant,
                   payload->>'device' AS device,
                   CAST(payload->>'window_start' AS TIMESTAMPTZ) AS window_start,
                   CAST(payload->>'window_end' AS TIMESTAMPTZ) AS window_end,
                   CAST(payload->>'revision' AS INTEGER) AS revision,
                   unnest(CAST(payload->'metrics' AS JSON[])) AS m
            FROM lines
        )
        SELECT DISTINCT ON (batch_id, m->>'name')
               batch_id, tenant, device, window_start, window_end, revision,
               CAST(window_start AS DATE) AS date,
               epoch(window_end - window_start) / 60.0 AS minutes,
               m->>'name' AS metric, m->>'unit' AS unit,
               CAST(m->>'count' AS BIGINT) AS n, CAST(m->>'sum' AS DOUBLE) AS s,
               CAST(m->>'m2' AS DOUBLE) AS m2,
               CAST(m->>'min' AS DOUBLE) AS lo, CAST(m->>'max' AS DOUBLE) AS hi
        FROM parts
        """
    )
    if alarms:
        con.execute(
            f"""
            CREATE OR REPLACE VIEW alarms AS
            SELECT DISTINCT ON (payload->>'alarm_id')
                   payload->>'alarm_id' AS alarm_id, payload->>'tenant' AS tenant,
                   payload->>'device' AS device, payload->>'metric' AS metric,
                   payload->>'state' AS state, CAST(payload->>'value' AS DOUBLE) AS value,
                   CAST(payload->>'ts' AS TIMESTAMPTZ) AS ts
            FROM read_json({alarms!r}, format = 'newline_delimited',
                           columns = {{'payload': 'JSON'}})
            """
        )
    con.execute(
        f"CREATE OR REPLACE VIEW devices AS SELECT * FROM read_csv("
        f"'{w.reference / 'devices.csv'}', header = true, all_varchar = true)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE VIEW consented AS
        SELECT tenant, subject FROM read_csv('{w.reference / "consent.csv"}', header = true,
                                             all_varchar = true)
        QUALIFY row_number() OVER (PARTITION BY tenant, subject
                                   ORDER BY CAST("at" AS TIMESTAMPTZ) DESC, status DESC) = 1
            AND status = 'granted'
        """
    )


WINDOWS_SQL = """
WITH lines AS (
    SELECT split_part(topic, '/', 2) AS tenant, split_part(topic, '/', 3) AS device,
           norm.ws AS ws, norm.we AS we, payload.batch_id AS batch_id,
           unnest(payload.metrics) AS m
    FROM read_json(?, format = 'newline_delimited', union_by_name = true)
), parts AS (
    SELECT DISTINCT tenant, device, ws, we, batch_id, m.name AS metric, m.count AS n,
           m.sum AS s, m.min AS lo, m.max AS hi
    FROM lines
)
SELECT tenant, device, metric, ws, we, sum(n) AS count, sum(s) AS sum, min(lo) AS min,
       max(hi) AS max, sum(s) / sum(n) AS mean
FROM parts GROUP BY ALL
"""


def landed_windows(w: Warehouse) -> list[dict[str, Any]]:
    """Every landed window and metric, read with DuckDB from the landing files: `tenant,
    device, metric, ws, we` (epoch seconds), `count, sum, min, max, mean` over its revisions."""
    import duckdb

    files = sorted(str(p) for p in (w.landing / "batch").rglob("*.jsonl"))
    with duckdb.connect() as con:
        cur = con.execute(WINDOWS_SQL, [files])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def devices_of(kind: str) -> dict[tuple[str, str], str]:
    """(tenant, device) -> subject of every example device of `kind`."""
    return {
        (r["tenant"], r["device"]): r["subject"]
        for r in csv_rows(EXAMPLES / "devices.csv")
        if r["kind"] == kind
    }


def consented_subjects(folder: Path) -> set[tuple[str, str]]:
    """(tenant, subject) whose latest consent event is `granted` (a tie: withdrawn)."""
    latest: dict[tuple[str, str], tuple[dt.datetime, bool]] = {}
    for r in csv_rows(folder / "consent.csv"):
        key = (r["tenant"], r["subject"])
        event = (ts(r["at"]), r["status"] == "withdrawn")  # on a tie, the withdrawal wins
        if key not in latest or event > latest[key]:
            latest[key] = event
    return {k for k, (_, withdrawn) in latest.items() if not withdrawn}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def utc(value: Any) -> Any:
    """Spark hands timestamps back as naive local times: make them aware UTC."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value
