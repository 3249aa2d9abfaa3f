"""Which landing files the bronze load has taken, kept beside them so that a crash anywhere
is harmless and planning costs no Spark job.

The log is a folder of small files, `landing/_loads/` (hidden from landing listings),
each written whole or not at all by the store's atomic write, which never replaces a name:

- `plan-after-{prev}.json`: load `load_id` takes these files. Written before any data,
  and named after the load it follows, so two planners racing for the same slot cannot
  both win: one write is refused and that planner stops (`LoadConflict`).
- `done-{load_id}.json`: the load committed; its files count as loaded.
- `upto-{load_id}.json`: every file committed by the loads up to `load_id`. Written every
  `COMPACT_EVERY` loads, after which the plan and done files it covers are removed, so a
  plan reads a bounded number of files however long the warehouse runs.

Each bronze write runs with Delta's idempotent-write pair (txnAppId = `APP_ID`,
txnVersion = load id), so a table that already committed a load skips it. A crash
before the plan leaves nothing; after it, the next run resumes the same load id with
exactly the same files (never new ones, which the txnVersion would wrongly skip), the
writes already done are skipped by Delta, the rest run. Load ids only grow and are
floored by the clock (milliseconds), so even with this folder lost a new load never
takes an id a table has already seen. See docs/collector.md for the argument in full.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
import uuid
from collections.abc import Iterable

from edgebatch.warehouse.landing.stores import LandingError
from edgebatch.warehouse.landing.zone import LANDING, Backlog, LandingFile, LandingZone

APP_ID = "edgebatch.bronze_load"
LOG = "_loads"
COMPACT_EVERY = 50
_NAME = re.compile(r"^(plan-after|done|upto)-(\d+)\.json$")


class LoadConflict(LandingError):
    """Another load planned the same slot at once; nothing was loaded, run the load again."""


@dataclasses.dataclass(frozen=True)
class LoadPlan:
    load_id: int
    files: tuple[LandingFile, ...]
    planner: str
    resumed: bool

    def uris(self, kind: str) -> list[str]:
        return [f.uri for f in self.files if f.kind == kind]


@dataclasses.dataclass
class LoadLog:
    """The log as read: plans by load id (with the path of their file), committed ids, and
    the summary of compacted loads."""

    plans: dict[int, dict] = dataclasses.field(default_factory=dict)
    plan_paths: dict[int, str] = dataclasses.field(default_factory=dict)
    done: dict[int, str] = dataclasses.field(default_factory=dict)
    upto: int = 0
    upto_paths: list[str] = dataclasses.field(default_factory=list)
    compacted: set[str] = dataclasses.field(default_factory=set)

    def last_id(self) -> int:
        return max([self.upto, *self.plans, *self.done])

    def loaded(self) -> set[str]:
        """Names of the landing files whose load committed."""
        names = set(self.compacted)
        for load_id in self.done:
            names.update(self.plans.get(load_id, {}).get("files", {}))
        return names

    def taken(self) -> set[str]:
        """Names of the files any load has planned, committed or not."""
        names = set(self.compacted)
        for plan in self.plans.values():
            names.update(plan["files"])
        return names

    def unfinished(self) -> list[int]:
        return sorted(i for i in self.plans if i not in self.done and i > self.upto)


def _folder(zone: LandingZone) -> str:
    return zone.root.resolve(f"{LANDING}/{LOG}")


def _listing(zone: LandingZone) -> list[tuple[str, int, str]]:
    """(kind, number, path) of each log file, from the folder's listing alone."""
    named = []
    for stored in zone.store.list_files(_folder(zone)):
        match = _NAME.match(stored.path.rsplit("/", 1)[-1])
        if match:
            named.append((match.group(1), int(match.group(2)), stored.path))
    return named


def read_log(zone: LandingZone) -> LoadLog:
    log = LoadLog()
    named = _listing(zone)
    for kind, number, path in named:
        if kind == "upto":
            log.upto_paths.append(path)
            log.upto = max(log.upto, number)
        elif kind == "done":
            log.done[number] = path
    if log.upto:
        summary = json.loads(zone.store.read(_path(zone, _upto(log.upto))))
        log.compacted = set(summary["files"])
    for kind, _, path in named:
        if kind == "plan-after":
            plan = json.loads(zone.store.read(path))
            if plan["load_id"] > log.upto:
                log.plans[plan["load_id"]] = plan
            log.plan_paths[plan["load_id"]] = path
    return log


def loaded_files(zone: LandingZone) -> set[str]:
    """Names of the landing files whose load committed."""
    return read_log(zone).loaded()


def backlog(zone: LandingZone) -> Backlog:
    """Landed and not yet loaded: count, bytes and the age of the oldest file (no Spark)."""
    return zone.backlog(loaded_files(zone))


def plan(zone: LandingZone, only: Iterable[str] | None = None) -> LoadPlan | None:
    """Resume the unfinished load if there is one, else plan the files not yet taken.

    `only` limits a new plan to those files (names or URIs); files already loaded are
    never taken again, so a replay of everything is a no-op by construction.
    """
    log = read_log(zone)
    planner = uuid.uuid4().hex
    unfinished = log.unfinished()
    if unfinished:
        load_id = unfinished[0]
        files = [
            _file(zone, name, kind, size)
            for name, (kind, size) in log.plans[load_id]["files"].items()
        ]
        return LoadPlan(load_id, tuple(sorted(files, key=lambda f: f.name)), planner, True)
    taken = log.taken()
    wanted = None if only is None else {_name(x) for x in only}
    files = [f for f in zone.list() if f.name not in taken and (wanted is None or f.name in wanted)]
    if not files:
        return None
    previous = log.last_id()
    load_id = max(previous + 1, int(time.time() * 1000))
    body = {
        "load_id": load_id,
        "after": previous,
        "planner": planner,
        "planned_at": time.time(),
        "files": {f.name: (f.kind, f.size) for f in files},
    }
    if not _write_once(zone, f"plan-after-{previous:016d}.json", body):
        raise LoadConflict(
            f"another bronze load planned the load after {previous} at the same time; "
            "run one load at a time (the next run resumes the one that won)"
        )
    return LoadPlan(load_id, tuple(files), planner, False)


def commit(zone: LandingZone, load: LoadPlan) -> None:
    """Mark the load done: its files count as loaded from now on. A resumed load whose
    first run got this far already finds the mark, which is the same fact."""
    _write_once(zone, f"done-{load.load_id:016d}.json", {"load_id": load.load_id})
    compact(zone)


def compact(zone: LandingZone, every: int = COMPACT_EVERY) -> bool:
    """Fold the committed loads into one `upto` file once `every` of them have piled up.

    The summary is written first and holds everything the files it covers said, so a
    crash before their removal leaves the same facts twice, which reads the same.
    """
    named = _listing(zone)
    upto = max((n for kind, n, _ in named if kind == "upto"), default=0)
    if sum(1 for kind, n, _ in named if kind == "done" and n > upto) < every:
        return False  # decided from the listing: most commits read no file
    log = read_log(zone)
    covered = sorted(i for i in log.done if i in log.plans)
    if len(covered) < every:
        return False
    upto = covered[-1]
    names = log.compacted | {name for i in covered for name in log.plans[i]["files"]}
    _write_once(zone, _upto(upto), {"upto": upto, "files": sorted(names)})
    # Everything the new summary covers, including leftovers of a compaction cut short.
    stale = [p for p in log.upto_paths if not p.endswith(_upto(upto))]
    stale += [p for i, p in log.plan_paths.items() if i <= upto]
    stale += [p for i, p in log.done.items() if i <= upto]
    for path in stale:
        zone.store.remove(path)
    return True


def _upto(load_id: int) -> str:
    return f"upto-{load_id:016d}.json"


def _path(zone: LandingZone, name: str) -> str:
    return zone.root.resolve(f"{LANDING}/{LOG}/{name}")


def _write_once(zone: LandingZone, name: str, body: dict) -> bool:
    """Write a log file whole under a name never used; False if the name was already there
    (the store refuses to replace it), any other failure raised."""
    path = _path(zone, name)
    try:
        zone.store.write_atomic(path, json.dumps(body, sort_keys=True).encode())
    except LandingError:
        if not any(f.path == path for f in zone.store.list_files(_folder(zone))):
            raise
        return False
    return True


def _name(name_or_uri: str) -> str:
    marker = f"/{LANDING}/"
    return name_or_uri.split(marker, 1)[1] if marker in name_or_uri else name_or_uri


def _file(zone: LandingZone, name: str, kind: str, size: int) -> LandingFile:
    return LandingFile(kind, name, zone.root.uri(f"{LANDING}/{name}"), size, 0.0)
