"""Readings for the gold jobs' tests, landed as the collector lands them, and read back
from the landing files by DuckDB for the independent computation.

`Landing` builds wire-format window summaries (the agent's own `MetricStats` and
`encode_batch`) and alarms (`encode_alarm`), lands them with the collector's code
(`land_groups`), and `pipeline` runs reference_load, bronze_load and silver_readings
for the days landed. `landed(con, zone)` gives DuckDB views over the same files:
`windows` (one row per batch and metric, duplicates dropped) and `alarms`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import shutil
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import AlarmEvent, encode_alarm, encode_batch, topic
from edgebatch.edge.wire.summary import metric_summary
from edgebatch.warehouse.collector.direct import land_groups
from edgebatch.warehouse.landing import LandingZone, LocalStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reference"
AGENT = "test-agent/1"


def epoch(when: dt.datetime) -> float:
    return when.replace(tzinfo=dt.UTC).timestamp() if when.tzinfo is None else when.timestamp()


@dataclasses.dataclass
class Landing:
    """Messages to land, built one window or alarm at a time."""

    messages: list[tuple[str, bytes, float]] = dataclasses.field(default_factory=list)
    days: set[dt.date] = dataclasses.field(default_factory=set)

    def window(
        self,
        tenant: str,
        device: str,
        start: dt.datetime,
        minutes: int,
        metrics: Mapping[str, tuple[str, Sequence[float]]],
        revision: int = 0,
        resend: bool = False,
    ) -> None:
        """One window summary of `metrics` (name: (unit, values)), readings evenly spread."""
        t0, t1 = epoch(start), epoch(start + dt.timedelta(minutes=minutes))
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
        message = (topic(tenant, device, "batch"), payload, t1 + 60.0 * (1 + revision))
        self.messages.append(message)
        if resend:  # the agent sent it again: bronze must keep one
            self.messages.append(message)
        self.days.add(start.date())

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

    def land(self, zone: LandingZone) -> None:
        (landed,) = land_groups(zone, [self.messages], "test-collector")
        assert landed.quarantined == 0, landed.reasons


def reference_folder(folder: Path, extra_consent: str = "") -> Path:
    """The example reference data (devices, consent, tariffs), consent events appended."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("devices.csv", "tariffs.csv"):
        shutil.copy(EXAMPLES / name, folder / name)
    (folder / "consent.csv").write_text((EXAMPLES / "consent.csv").read_text() + extra_consent)
    return folder


def zone_of(runner: Any) -> LandingZone:
    return LandingZone(runner.root, LocalStore(), "test-collector")


def pipeline(runner: Any, reference: Path, days: Iterable[dt.date]) -> None:
    """reference_load, bronze_load, and silver_readings for `days`, through the runner."""
    from edgebatch.framework.requests import RunRequest
    from edgebatch.framework.state import RunState

    for request in (
        RunRequest("reference_load", params={"source": str(reference)}),
        RunRequest("bronze_load"),
        RunRequest("silver_readings", partitions=tuple(d.isoformat() for d in sorted(days))),
    ):
        run = runner.run(request)
        assert run.state == RunState.SUCCEEDED, (request.job, run.error)


def landed(con: Any, zone: LandingZone, reference: Path) -> None:
    """DuckDB views over the landing files and the reference CSVs: `windows` (each batch
    and metric once, with the window's UTC date and minutes), `alarms`, `devices`,
    `consented` (subjects whose latest consent event is `granted`)."""
    root = Path(zone.folder())
    con.execute("SET TimeZone = 'UTC'")
    batches = sorted(str(p) for p in (root / "batch").rglob("*.jsonl"))
    alarms = sorted(str(p) for p in (root / "alarm").rglob("*.jsonl"))
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
        _alarms_view(con, alarms)
    con.execute(
        f"CREATE OR REPLACE VIEW devices AS SELECT * FROM read_csv("
        f"'{reference / 'devices.csv'}', header = true, all_varchar = true)"
    )
    con.execute(
        f"""
        CREATE OR REPLACE VIEW consented AS
        SELECT tenant, subject FROM read_csv('{reference / "consent.csv"}', header = true,
                                             all_varchar = true)
        QUALIFY row_number() OVER (PARTITION BY tenant, subject
                                   ORDER BY CAST("at" AS TIMESTAMPTZ) DESC, status DESC) = 1
            AND status = 'granted'
        """
    )


@contextlib.contextmanager
def warm_runner(spark: Any, home: Path) -> Iterator[Any]:
    """A runner on the suite's SparkSession with its own warehouse and state store."""
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import Settings, StateSettings, WarehouseSettings

    settings = Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        home=home,
    )
    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    try:
        yield runner
    finally:
        runner.close()
        store.close()


def table_rows(runner: Any, name: str, columns: Sequence[str] = ()) -> list[tuple]:
    """A table's rows (or these columns of them), sorted, for before-and-after comparisons."""
    from edgebatch.warehouse.tables import REGISTRY, read_table

    df = read_table(runner.spark, runner.root, REGISTRY.get(name))
    if columns:
        df = df.select(*columns)
    return sorted((tuple(r) for r in df.collect()), key=repr)


def _alarms_view(con: Any, files: list[str]) -> None:
    con.execute(
        f"""
        CREATE OR REPLACE VIEW alarms AS
        SELECT DISTINCT ON (payload->>'alarm_id')
               payload->>'alarm_id' AS alarm_id, payload->>'tenant' AS tenant,
               payload->>'device' AS device, payload->>'metric' AS metric,
               payload->>'state' AS state, CAST(payload->>'value' AS DOUBLE) AS value,
               CAST(payload->>'ts' AS TIMESTAMPTZ) AS ts
        FROM read_json({files!r}, format = 'newline_delimited', columns = {{'payload': 'JSON'}})
        """
    )
