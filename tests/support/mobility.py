"""The road from landing files to gold for the fleet and traffic tests, and the
independent reading of the same landing files.

Messages are made by the edge's own code (`MetricStats`, `metric_summary`,
`encode_batch`) and landed by the collector's (`land_groups`); the pipeline runs
`reference_load`, `bronze_load`, `silver_readings` and a gold job with the runner. The
tests' expected figures come from `landed_windows`, which reads the landing files
with DuckDB, not Spark: duplicates dropped by batch id, a window's revisions added up.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pytest

from edgebatch.edge.stats import MetricStats
from edgebatch.edge.wire import encode_batch, topic
from edgebatch.edge.wire.summary import metric_summary
from edgebatch.settings import FrameworkSettings, Settings, StateSettings, WarehouseSettings
from edgebatch.warehouse.collector.direct import Message, land_groups
from edgebatch.warehouse.landing import LandingZone
from edgebatch.warehouse.landing.stores import LocalStore
from edgebatch.warehouse.uri import WarehouseRoot

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reference"
TENANTS = ("demo-fleet", "demo-traffic")
# Friday to Monday across a month's end: two months of one quarter, four weekdays;
# examples/reference/events.csv names two of the days for the traffic routes
DAYS = [dt.date(2026, 10, 30), dt.date(2026, 10, 31), dt.date(2026, 11, 1), dt.date(2026, 11, 2)]
MONTHS = ("2026-10", "2026-11")


def settings_for(home: Path) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    return Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        framework=FrameworkSettings(jobs=(), lease_ttl_s=5.0, heartbeat_s=0.5),
        home=home,
    )


def reference_folder(folder: Path, tenants: Sequence[str], **replace: str) -> Path:
    """The example reference CSVs' rows of `tenants` in `folder` (few tenants: few Delta
    partitions to write), with files of `replace` (name -> text) as they are."""
    folder.mkdir(parents=True, exist_ok=True)
    for csv in EXAMPLES.glob("*.csv"):
        header, *lines = csv.read_text().splitlines()
        mine = [line for line in lines if line.split(",", 1)[0] in tenants]
        (folder / csv.name).write_text("\n".join([header, *mine]) + "\n")
    for name, text in replace.items():
        (folder / name).write_text(text)
    return folder


@dataclasses.dataclass(frozen=True)
class Reading:
    """One metric's readings in one window: `(unit, values)`, spread evenly over it."""

    unit: str
    values: Sequence[float]


def window_message(
    tenant: str,
    device: str,
    start: dt.datetime,
    minutes: int,
    metrics: dict[str, Reading],
    revision: int = 0,
) -> Message:
    """A batch message of one window as the agent would send it, received a minute later."""
    t0 = start.timestamp()
    t1 = t0 + 60 * minutes
    summaries = []
    for name, reading in sorted(metrics.items()):
        stats = MetricStats(name, reading.unit)
        step = (t1 - t0) / (len(reading.values) + 1)
        stats.add_chunk(
            list(reading.values), [t0 + step * (i + 1) for i in range(len(reading.values))]
        )
        summaries.append(metric_summary(stats))
    _, payload = encode_batch(
        tenant=tenant,
        device=device,
        window_start=t0,
        window_end=t1,
        revision=revision,
        metrics=summaries,
        agent="test/1",
    )
    return topic(tenant, device, "batch"), payload, t1 + 60


def land(root: WarehouseRoot, messages: Iterable[Message], per_file: int = 500) -> int:
    """Land `messages` with the collector's code, `per_file` to a file; returns files."""
    zone = LandingZone(root, LocalStore(), "test")
    batch = list(messages)
    files = 0
    for i in range(0, len(batch), per_file):
        (landed,) = land_groups(zone, [batch[i : i + per_file]], "test")
        assert landed.quarantined == 0, landed.reasons
        files += len(landed.files)
    return files


@dataclasses.dataclass
class Pipeline:
    runner: Any
    root: WarehouseRoot
    reference: Path

    def run(self, job: str, **request: Any) -> Any:
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

    def version(self, table: str) -> int:
        from delta.tables import DeltaTable

        from edgebatch.warehouse.tables import REGISTRY

        path = REGISTRY.get(table).location(self.root)
        history = DeltaTable.forPath(self.runner.spark, path).history(1).first()
        assert history is not None
        return int(history.version)

    def load(self, days: Sequence[dt.date]) -> None:
        """Reference data, bronze and silver for `days`, as the scheduler would chain them."""
        self.run("reference_load", params={"source": str(self.reference)})
        self.run("bronze_load")
        self.run("silver_readings", start=min(days).isoformat(), end=max(days).isoformat())


_LOADED = pytest.StashKey[tuple[Settings, Path]]()


def mobility_pipeline(
    request: pytest.FixtureRequest, spark: Any, tmp_path_factory: pytest.TempPathFactory
) -> Pipeline:
    """The one warehouse of the fleet and traffic tests, loaded once per test session:
    their messages landed (`mobility_data`), reference data, bronze and silver of `DAYS`
    for both tenants together; each job's test module runs its gold job on it.

    Each caller (a module-scoped fixture) gets a runner of its own on that warehouse,
    closed when its module ends, so no runner outlives the session's Spark."""
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore

    loaded = request.config.stash.get(_LOADED, None)
    if loaded is None:
        home = tmp_path_factory.mktemp("mobility")
        settings, reference = settings_for(home), reference_folder(home / "reference", TENANTS)
    else:
        settings, reference = loaded
    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    request.addfinalizer(store.close)
    request.addfinalizer(runner.close)
    shared = Pipeline(runner, WarehouseRoot.parse(settings.warehouse.root), reference)
    if loaded is None:
        from tests.support.mobility_data import all_messages

        batch = all_messages()
        land(shared.root, batch[: len(batch) // 2])
        land(shared.root, batch[len(batch) // 2 :])
        shared.load(DAYS)
        request.config.stash[_LOADED] = (settings, reference)
    return shared


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


def landed_windows(root: WarehouseRoot) -> list[dict[str, Any]]:
    """Every landed window and metric, read with DuckDB from the landing files: `tenant,
    device, metric, ws, we` (epoch seconds), `count, sum, min, max, mean` over its revisions."""
    import duckdb

    files = sorted(str(p) for p in Path(root.resolve("landing/batch")).rglob("*.jsonl"))
    with duckdb.connect() as con:
        cur = con.execute(WINDOWS_SQL, [files])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def devices_of(kind: str) -> dict[tuple[str, str], str]:
    """(tenant, device) -> subject of every example device of `kind` (all installed now)."""
    import csv

    with (EXAMPLES / "devices.csv").open() as f:
        return {
            (r["tenant"], r["device"]): r["subject"] for r in csv.DictReader(f) if r["kind"] == kind
        }
