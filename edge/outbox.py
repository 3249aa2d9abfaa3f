"""The durable outbox: every summary, alarm and heartbeat is here before it is sent.

SQLite in WAL mode with `synchronous=FULL`, so a committed row survives kill -9
and power loss. A summary or alarm leaves only when the collector's receipt
names its id (a broker's PUBACK is not durability); a heartbeat may leave on
PUBACK. Whatever has no receipt `resend_after` seconds after it was sent is sent
again, with the same bytes and so the same id.

The outbox is bounded by payload bytes. When full it sheds by priority, and the
choice of what to shed is a pure function (`next_shed_action`) over plain
entries, so it can be tested and logged with its reason:

1. coarsen the oldest pair of adjacent summaries that were never sent (their
   mergeable state keeps count, sum, min, max, variance and the sketch exact);
2. drop the oldest heartbeat;
3. drop the oldest summary.

Alarms are never shed. Every coarsening and drop is counted in `meta`, in the
same transaction, and reported in health.

The same database keeps, per window start, the last revision committed and the
journal offset at that commit (`windows`), which is what lets a restarted agent
replay its reading journal without counting a reading twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Literal, TypedDict

from edgebatch.edge.wire import BatchWindow, encode_batch, parse_ts
from edgebatch.edge.wire.summary import merge_summaries

log = logging.getLogger(__name__)

Kind = Literal["alarm", "batch", "health"]
PRIORITY = {"alarm": 0, "batch": 1, "health": 2}
COUNTERS = ("coarsened", "dropped_heartbeats", "dropped_summaries", "dropped_readings")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    priority INTEGER NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    size INTEGER NOT NULL,
    created REAL NOT NULL,
    window_start REAL,
    window_end REAL,
    revision INTEGER,
    readings INTEGER NOT NULL DEFAULT 0,
    sends INTEGER NOT NULL DEFAULT 0,
    last_sent REAL,
    due_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_due ON outbox (priority, due_at);
CREATE TABLE IF NOT EXISTS windows (
    start REAL PRIMARY KEY,
    revision INTEGER NOT NULL,
    commit_offset INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
"""


class Backlog(TypedDict):
    """What waits in the outbox: rows, payload bytes, and the oldest row's age (None if empty)."""

    backlog: int
    bytes: int
    oldest_age_s: float | None


@dataclasses.dataclass(frozen=True)
class OutboxRow:
    """One message to store: its id is the wire id (batch_id, alarm_id, heartbeat_id)."""

    id: str
    kind: Kind
    topic: str
    payload: bytes
    created: float
    window_start: float | None = None
    window_end: float | None = None
    revision: int | None = None
    readings: int = 0


@dataclasses.dataclass(frozen=True)
class Entry:
    """What the shedding decision looks at: no payloads, just sizes, ages and windows."""

    id: str
    kind: Kind
    size: int
    created: float
    window_start: float | None = None
    window_end: float | None = None
    revision: int | None = None
    sends: int = 0


@dataclasses.dataclass(frozen=True)
class ShedDecision:
    """What to shed and why; `ids` are coarsened together or dropped."""

    action: Literal["coarsen", "drop"]
    kind: Kind
    ids: tuple[str, ...]
    reason: str


def next_shed_action(entries: Sequence[Entry], max_span_s: float) -> ShedDecision | None:
    """The least harmful thing to shed next, or None when only alarms are left."""
    spans = sorted(
        (e.window_start, e.window_end, e.id)
        for e in entries
        if e.kind == "batch"
        and e.sends == 0
        and e.revision == 0
        and e.window_start is not None
        and e.window_end is not None
    )
    for (a_start, a_end, a_id), (b_start, b_end, b_id) in zip(spans, spans[1:], strict=False):
        if a_end == b_start and b_end - a_start <= max_span_s:
            return ShedDecision(
                "coarsen",
                "batch",
                (a_id, b_id),
                "outbox full: merging the oldest adjacent never-sent summaries",
            )
    shed_last: tuple[tuple[Kind, str], ...] = (
        ("health", "oldest heartbeat"),
        ("batch", "oldest summary"),
    )
    for kind, why in shed_last:
        olds = [e for e in entries if e.kind == kind]
        if olds:
            oldest = min(olds, key=lambda e: (e.created, e.id))
            return ShedDecision("drop", kind, (oldest.id,), f"outbox full: dropping the {why}")
    return None


class Outbox:
    """SQLite-backed queue of messages awaiting receipt; see the module docstring."""

    def __init__(
        self,
        path: str | Path,
        *,
        max_bytes: int = 64 << 20,
        max_coarse_span_s: float = 3600.0,
        tenant: str = "",
        device: str = "",
        agent: str = "",
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_coarse_span_s = max_coarse_span_s
        self.tenant, self.device, self.agent = tenant, device, agent
        self.db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.executescript(_SCHEMA)
        self.bytes = self.db.execute("SELECT COALESCE(SUM(size), 0) FROM outbox").fetchone()[0]
        self._warned_full = False

    def close(self) -> None:
        self.db.close()

    # ------------------------------------------------------------ writing

    def _insert(self, row: OutboxRow) -> None:
        cur = self.db.execute(
            "INSERT OR IGNORE INTO outbox (id, kind, priority, topic, payload, size, created,"
            " window_start, window_end, revision, readings, due_at)"
            " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (
                row.id,
                row.kind,
                PRIORITY[row.kind],
                row.topic,
                row.payload,
                len(row.payload),
                row.created,
                row.window_start,
                row.window_end,
                row.revision,
                row.readings,
                row.created,
            ),
        )
        if cur.rowcount:
            self.bytes += len(row.payload)

    def put(
        self, rows: Iterable[OutboxRow], meta: Mapping[str, object] | None = None
    ) -> list[ShedDecision]:
        """Store messages (and `meta` values) durably in one transaction, then shed if over
        the bound."""
        with self._txn():
            for row in rows:
                self._insert(row)
            for key, value in (meta or {}).items():
                self._set_meta(key, value)
        return self.shed()

    def commit_windows(
        self,
        rows: Sequence[OutboxRow],
        commit_offset: int,
        low_water: int,
        source_states: object = None,
        meta: Mapping[str, object] | None = None,
    ) -> list[ShedDecision]:
        """Store closed windows with their revisions, the journal offsets, the sources'
        resume states (and `meta` values), atomically: after a crash, replaying the journal
        from `low_water` and skipping what each window's commit already holds counts every
        reading once."""
        with self._txn():
            for row in rows:
                self._insert(row)
                self.db.execute(
                    "INSERT INTO windows (start, revision, commit_offset) VALUES (?,?,?)"
                    " ON CONFLICT(start) DO UPDATE SET revision = MAX(revision, excluded.revision),"
                    " commit_offset = excluded.commit_offset",
                    (row.window_start, row.revision, commit_offset),
                )
            self._set_meta("low_water", low_water)
            if source_states is not None:
                self._set_meta("source_states", json.dumps([commit_offset, source_states]))
            for key, value in (meta or {}).items():
                self._set_meta(key, value)
        return self.shed()

    def _txn(self) -> _Txn:
        return _Txn(self.db)

    # ------------------------------------------------------------ sending and receipts

    def take_due(
        self, now: float, resend_after: float, limit: int
    ) -> list[tuple[str, str, str, bytes]]:
        """Up to `limit` `(id, kind, topic, payload)` never sent or unacknowledged for
        `resend_after` seconds, alarms first; marked as sent before they are returned, so a
        summary that may have reached the broker is never coarsened afterwards."""
        if limit <= 0:
            return []
        rows: list[tuple[str, str, str, bytes]] = []
        for priority in sorted(set(PRIORITY.values())):  # one index range scan per priority
            if len(rows) < limit:
                rows += self.db.execute(
                    "SELECT id, kind, topic, payload FROM outbox WHERE priority = ? AND due_at <= ?"
                    " ORDER BY due_at LIMIT ?",
                    (priority, now, limit - len(rows)),
                ).fetchall()
        if not rows:
            return []
        with self._txn():
            self.db.executemany(
                "UPDATE outbox SET sends = sends + 1, last_sent = ?, due_at = ? WHERE id = ?",
                [(now, now + resend_after, r[0]) for r in rows],
            )
        return [(r[0], r[1], r[2], bytes(r[3])) for r in rows]

    def retire(self, ids: Iterable[str]) -> int:
        """Remove messages the collector (or, for heartbeats, the broker) has acknowledged."""
        ids = list(ids)
        if not ids:
            return 0
        removed = 0
        with self._txn():
            for i in range(0, len(ids), 500):
                chunk = ids[i : i + 500]
                marks = ",".join("?" * len(chunk))
                size, n = self.db.execute(
                    f"SELECT COALESCE(SUM(size), 0), COUNT(*) FROM outbox WHERE id IN ({marks})",
                    chunk,
                ).fetchone()
                self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", chunk)
                self.bytes -= size
                removed += n
            if removed:
                self._set_meta("last_retired", time.time())
        return removed

    # ------------------------------------------------------------ shedding

    def entries(self) -> list[Entry]:
        rows = self.db.execute(
            "SELECT id, kind, size, created, window_start, window_end, revision, sends FROM outbox"
        ).fetchall()
        return [Entry(*r) for r in rows]

    def shed(self) -> list[ShedDecision]:
        """Shed until within `max_bytes` (or only alarms are left); return what was done."""
        done: list[ShedDecision] = []
        while self.bytes > self.max_bytes:
            decision = next_shed_action(self.entries(), self.max_coarse_span_s)
            if decision is None:
                if not self._warned_full:
                    log.warning("outbox over %d bytes with only alarms left", self.max_bytes)
                    self._warned_full = True
                break
            self.apply(decision)
            log.info("%s %s: %s", decision.action, ",".join(decision.ids), decision.reason)
            done.append(decision)
        return done

    def apply(self, decision: ShedDecision) -> None:
        """Carry out one shedding decision in one transaction, counting it."""
        with self._txn():
            if decision.action == "coarsen":
                self._coarsen(decision.ids)
                self._bump("coarsened", 1)
                return
            (row_id,) = decision.ids
            row = self.db.execute(
                "SELECT size, readings FROM outbox WHERE id = ?", (row_id,)
            ).fetchone()
            if row is None:
                return
            self.db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
            self.bytes -= row[0]
            if decision.kind == "health":
                self._bump("dropped_heartbeats", 1)
            else:
                self._bump("dropped_summaries", 1)
                self._bump("dropped_readings", row[1])

    def _coarsen(self, ids: Sequence[str]) -> None:
        marks = ",".join("?" * len(ids))
        rows = self.db.execute(
            f"SELECT id, topic, payload, size, created, window_start, window_end, readings"
            f" FROM outbox WHERE id IN ({marks}) ORDER BY window_start",
            list(ids),
        ).fetchall()
        docs = [json.loads(r[2]) for r in rows]
        start, end = rows[0][5], rows[-1][6]
        new_id, payload = encode_batch(
            tenant=docs[0]["tenant"],
            device=docs[0]["device"],
            window_start=start,
            window_end=end,
            revision=0,
            metrics=merge_summaries(d["metrics"] for d in docs),
            agent=docs[0]["agent"],
            members=[w for r, d in zip(rows, docs, strict=True) for w in _windows(r[5], r[6], d)],
        )
        self.db.execute(f"DELETE FROM outbox WHERE id IN ({marks})", list(ids))
        self.bytes -= sum(r[3] for r in rows)
        self._insert(
            OutboxRow(
                new_id,
                "batch",
                rows[0][1],
                payload,
                min(r[4] for r in rows),
                start,
                end,
                0,
                sum(r[7] for r in rows),
            )
        )

    # ------------------------------------------------------------ state

    def _set_meta(self, key: str, value: object) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def _bump(self, key: str, by: int) -> None:
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (key, by),
        )

    def meta(self, key: str, default: object = None) -> object:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else row[0]

    def meta_int(self, key: str) -> int:
        """A counter or offset kept in `meta`: 0 until first set."""
        value = self.meta(key)
        return int(value) if isinstance(value, int | float | str) and value != "" else 0

    def set_meta(self, key: str, value: object) -> None:
        with self._txn():
            self._set_meta(key, value)

    def source_states(self) -> tuple[int, dict[str, object]]:
        """`(journal offset, {source index: resume state})` as of the last window commit."""
        raw = self.meta("source_states")
        if not isinstance(raw, str):
            return 0, {}
        offset, states = json.loads(raw)
        return int(offset), states

    def counters(self) -> dict[str, int]:
        return {k: self.meta_int(k) for k in COUNTERS}

    def backlog(self) -> Backlog:
        n, size, oldest = self.db.execute(
            "SELECT COUNT(*), COALESCE(SUM(size), 0), MIN(created) FROM outbox"
        ).fetchone()
        age = None if oldest is None else max(0.0, time.time() - oldest)
        return {"backlog": n, "bytes": size, "oldest_age_s": age}

    def revisions(self) -> dict[float, tuple[int, int]]:
        """`{window_start: (last revision, journal offset at its commit)}`."""
        rows = self.db.execute("SELECT start, revision, commit_offset FROM windows").fetchall()
        return {r[0]: (r[1], r[2]) for r in rows}

    def prune_windows(self, before: float) -> None:
        with self._txn():
            self.db.execute("DELETE FROM windows WHERE start < ?", (before,))


def _windows(start: float, end: float, doc: Mapping[str, object]) -> list[BatchWindow]:
    """The plain windows a stored summary stands for: itself, or the members it merged.
    A coarsening of coarsenings lists them all, so its id can be checked from its payload.
    (A summary coarsened by an agent that did not list members counts as one window.)"""
    members = doc.get("members")
    if not isinstance(members, list):
        revision = doc.get("revision", 0)
        return [BatchWindow(start, end, revision if isinstance(revision, int) else 0)]
    return [
        BatchWindow(parse_ts(m["window_start"]), parse_ts(m["window_end"]), m["revision"])
        for m in members
    ]


class _Txn:
    """`BEGIN IMMEDIATE` ... `COMMIT`, or `ROLLBACK` on error (autocommit connection)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> None:
        self.db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self.db.execute("COMMIT" if exc_type is None else "ROLLBACK")
