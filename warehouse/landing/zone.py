"""The landing zone's layout: one folder per message kind and received date, files named so
that their order is their landing order and two collectors never pick the same name.

    landing/batch/date=2026-11-23/1763892000123-collector-a-3f9c1e-00000042.jsonl

A file's identity for the bronze load's bookkeeping is its `name` relative to the
landing folder, so the same files count as loaded whatever URI form the root takes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
import re
import time
import uuid
from collections.abc import Iterable

from edgebatch.warehouse.landing.stores import (
    LocalStore,
    Store,
    StoredFile,
    WebHdfsStore,
)
from edgebatch.warehouse.uri import WarehouseRoot

LANDING = "landing"
KINDS = ("batch", "alarm", "health", "quarantine")
SUFFIX = ".jsonl"
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


@dataclasses.dataclass(frozen=True)
class LandingFile:
    """A complete landing file: `name` is relative to the landing folder, `uri` is for Spark."""

    kind: str
    name: str
    uri: str
    size: int
    mtime: float


@dataclasses.dataclass(frozen=True)
class Backlog:
    """Landed but not yet loaded: what the API shows when loads fall behind a spike."""

    files: int
    bytes: int
    oldest_age_s: float | None
    by_kind: dict[str, int]


class LandingZone:
    """Writes and lists landing files under `root/landing` through one store."""

    def __init__(self, root: WarehouseRoot, store: Store, writer: str = "collector") -> None:
        self.root = root
        self.store = store
        self.writer = _UNSAFE.sub("-", writer).strip("-")[:64] or "collector"
        # Two processes given the same writer name still never pick the same file name.
        self._token = uuid.uuid4().hex[:6]
        self._seq = itertools.count()

    def folder(self, kind: str = "") -> str:
        return self.root.resolve(f"{LANDING}/{kind}" if kind else LANDING)

    def write(self, kind: str, data: bytes, now: float | None = None) -> LandingFile:
        """Land one file durably and atomically; return it once readers can see it whole."""
        if kind not in KINDS:
            raise ValueError(f"unknown landing kind {kind!r}; one of {', '.join(KINDS)}")
        now = time.time() if now is None else now
        day = dt.datetime.fromtimestamp(now, dt.UTC).date().isoformat()
        stem = f"{int(now * 1000):013d}-{self.writer}-{self._token}-{next(self._seq):08d}"
        name = f"{kind}/date={day}/{stem}{SUFFIX}"
        path = self.root.resolve(f"{LANDING}/{name}")
        self.store.write_atomic(path, data)
        return LandingFile(kind, name, self.root.uri(f"{LANDING}/{name}"), len(data), now)

    def list(self, kinds: Iterable[str] = KINDS) -> list[LandingFile]:
        """Every complete landing file of `kinds`, in landing order (temporary files never)."""
        base = self.folder()
        found = []
        for kind in kinds:
            for stored in self.store.list_files(self.folder(kind)):
                if stored.path.endswith(SUFFIX):
                    found.append(self._landing_file(kind, base, stored))
        return sorted(found, key=lambda f: (f.name.rsplit("/", 1)[-1], f.kind))

    def _landing_file(self, kind: str, base: str, stored: StoredFile) -> LandingFile:
        name = stored.path[len(base) + 1 :]
        return LandingFile(
            kind, name, self.root.uri(f"{LANDING}/{name}"), stored.size, stored.mtime
        )

    def backlog(self, loaded: Iterable[str], now: float | None = None) -> Backlog:
        """Files not in `loaded` (names; the bronze load's log knows them:
        `landing.loads.backlog`): their count, bytes and the age of the oldest."""
        now = time.time() if now is None else now
        done = set(loaded)
        waiting = [f for f in self.list() if f.name not in done]
        by_kind: dict[str, int] = {}
        for f in waiting:
            by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
        oldest = min((f.mtime for f in waiting), default=None)
        return Backlog(
            files=len(waiting),
            bytes=sum(f.size for f in waiting),
            oldest_age_s=None if oldest is None else max(0.0, now - oldest),
            by_kind=by_kind,
        )


def webhdfs_url_for(root: WarehouseRoot, port: int = 9870) -> str:
    """Hadoop 3's default NameNode HTTP port on the root's host, when none is configured."""
    host = root.authority.rsplit(":", 1)[0]
    return f"http://{host}:{port}"


def open_zone(
    root: WarehouseRoot, *, webhdfs_url: str = "", hdfs_user: str = "", writer: str = "collector"
) -> LandingZone:
    """The landing zone for a warehouse root: the local disk for file://, WebHDFS for hdfs://."""
    if root.is_local:
        return LandingZone(root, LocalStore(), writer)
    store = WebHdfsStore(webhdfs_url or webhdfs_url_for(root), user=hdfs_user or None)
    return LandingZone(root, store, writer)
