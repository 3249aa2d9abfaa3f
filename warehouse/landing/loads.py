"""Which landing files the bronze load has taken, kept so that a crash anywhere is harmless.

A load is planned before it touches data: its id and its files are appended to
`bronze/landing_loads` ('planned' rows) in one Delta commit. Then each bronze MERGE
runs with Delta's idempotent-write pair (txnAppId = `APP_ID`, txnVersion = load id),
so a table that already committed this load skips it. Last, one 'committed' row.
A crash before the plan leaves nothing; after it, the next run resumes the same
load id with exactly the same files (never new ones, which the txnVersion would
wrongly skip), the MERGEs already done are skipped by Delta, the rest run.
See docs/collector.md for the argument in full.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Iterable
from typing import TYPE_CHECKING

from edgebatch.warehouse import catalog
from edgebatch.warehouse.errors import StorageError
from edgebatch.warehouse.landing.zone import LANDING, Backlog, LandingFile, LandingZone
from edgebatch.warehouse.tables import append, ensure_table, read_table

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

APP_ID = "edgebatch.bronze_load"
PLANNED, COMMITTED = "planned", "committed"


class LoadConflict(StorageError):
    """Two loads planned the same id at once; nothing was loaded, run the load again."""


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    load_id: int
    files: tuple[LandingFile, ...]
    planner: str
    resumed: bool

    def uris(self, kind: str) -> list[str]:
        return [f.uri for f in self.files if f.kind == kind]


@dataclasses.dataclass
class _Load:
    files: dict[str, tuple[str, int]] = dataclasses.field(default_factory=dict)
    committed: bool = False
    planners: set[str] = dataclasses.field(default_factory=set)


def _log(spark: SparkSession, zone: LandingZone) -> dict[int, _Load]:
    ensure_table(spark, zone.root, catalog.LANDING_LOADS)
    rows = (
        read_table(spark, zone.root, catalog.LANDING_LOADS)
        .select("load_id", "file", "kind", "bytes", "state", "planner")
        .collect()
    )
    loads: dict[int, _Load] = {}
    for r in rows:
        entry = loads.setdefault(r.load_id, _Load())
        if r.state == COMMITTED:
            entry.committed = True
        else:
            entry.files[r.file] = (r.kind, r.bytes or 0)
            entry.planners.add(r.planner)
    return loads


def _planners(spark: SparkSession, zone: LandingZone, load_id: int) -> set[str]:
    """Who planned `load_id`: read back after our plan commits, since Delta lets two blind
    appends both commit. Only this load's rows: its files' stats let Delta skip the rest
    of the log, where a second full `_log` cost a load about as much again (measured)."""
    from pyspark.sql import functions as F

    rows = (
        read_table(spark, zone.root, catalog.LANDING_LOADS)
        .where((F.col("load_id") == load_id) & (F.col("state") == PLANNED))
        .select("planner")
        .distinct()
        .collect()
    )
    return {r.planner for r in rows}


def loaded_files(spark: SparkSession, zone: LandingZone) -> set[str]:
    """Names of the landing files whose load committed."""
    return {name for load in _log(spark, zone).values() if load.committed for name in load.files}


def backlog(spark: SparkSession, zone: LandingZone) -> Backlog:
    """Landed and not yet loaded: count, bytes and the age of the oldest file."""
    return zone.backlog(loaded_files(spark, zone))


def plan(
    spark: SparkSession, zone: LandingZone, only: Iterable[str] | None = None
) -> LoadPlan | None:
    """Resume the unfinished load if there is one, else plan the files not yet taken.

    `only` limits a new plan to those files (names or URIs); files already loaded are
    never taken again, so a replay of everything is a no-op by construction.
    """
    loads = _log(spark, zone)
    planner = uuid.uuid4().hex
    marked = zone.marked_loads()
    for load_id, load in loads.items():
        if load.committed and load_id not in marked:
            zone.mark_loaded(load_id, load.files)
    unfinished = sorted(i for i, load in loads.items() if not load.committed)
    if unfinished:
        load_id = unfinished[0]
        files = [
            _file(zone, name, kind, size) for name, (kind, size) in loads[load_id].files.items()
        ]
        return LoadPlan(load_id, tuple(sorted(files, key=lambda f: f.name)), planner, True)
    taken = {name for load in loads.values() for name in load.files}
    wanted = None if only is None else {_name(x) for x in only}
    files = [f for f in zone.list() if f.name not in taken and (wanted is None or f.name in wanted)]
    if not files:
        return None
    load_id = max(loads, default=0) + 1
    _record(spark, zone, load_id, planner, PLANNED, files)
    planners = _planners(spark, zone, load_id)
    if planners != {planner}:
        raise LoadConflict(
            f"bronze load {load_id} was planned by {len(planners)} runs at once; "
            "run one load at a time (the next run resumes the union of their files)"
        )
    return LoadPlan(load_id, tuple(files), planner, False)


def commit(spark: SparkSession, zone: LandingZone, load: LoadPlan) -> None:
    """Mark the load done: its files count as loaded from now on."""
    _record(spark, zone, load.load_id, load.planner, COMMITTED, [])
    zone.mark_loaded(load.load_id, (f.name for f in load.files))


def _record(
    spark: SparkSession,
    zone: LandingZone,
    load_id: int,
    planner: str,
    state: str,
    files: list[LandingFile],
) -> None:
    now = dt.datetime.now(dt.UTC)
    rows = [(load_id, f.name, f.kind, f.size, state, planner, now) for f in files]
    if state == COMMITTED:
        rows = [(load_id, "", "", 0, state, planner, now)]
    spec = catalog.LANDING_LOADS
    # One file per commit: a local frame would be split into spark.default.parallelism
    # files of a few rows each, and every later read of the log opens them all.
    append(spark, zone.root, spec, spark.createDataFrame(rows, spec.struct()).coalesce(1))


def _name(name_or_uri: str) -> str:
    marker = f"/{LANDING}/"
    return name_or_uri.split(marker, 1)[1] if marker in name_or_uri else name_or_uri


def _file(zone: LandingZone, name: str, kind: str, size: int) -> LandingFile:
    return LandingFile(kind, name, zone.root.uri(f"{LANDING}/{name}"), size, 0.0)
