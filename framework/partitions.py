"""How a job's work splits into partitions, each one an iteration with its own commit.

A partitioning is a value that knows three things about its keys: which strings are
valid keys (`validate`), which keys a range or "everything so far" covers (`between`,
`up_to`), and which rows of an output table a key owns (`predicate`, a SQL condition for
Delta's `replaceWhere`). Keeping data that belongs together in one partition (a month of
one meter, one tenant) is what makes an iteration's commit idempotent and lets a failed
run retry only what failed.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

from edgebatch.framework.errors import PartitionError

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")
_NAME = re.compile(r"^[A-Za-z0-9_.:-]{1,128}$")


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@dataclasses.dataclass(frozen=True)
class Partitioning:
    """Base of all partitionings; `column` is the output column a key's rows are found by."""

    column: str | None = None

    kind = "partitioning"

    def validate(self, key: str) -> str:
        """The canonical form of `key`, or `PartitionError` saying what a key looks like."""
        raise NotImplementedError

    def between(self, start: str, end: str) -> list[str]:
        """Every key from `start` to `end`, both included (a backfill)."""
        raise PartitionError(f"{self.kind} partitions have no order, so they take no range")

    def up_to(self, today: dt.date) -> list[str]:
        """Every key an incremental run should consider, up to and including `today`'s."""
        raise NotImplementedError

    def current(self, today: dt.date) -> str | None:
        """The key still filling up (re-run by incremental runs even if it succeeded)."""
        return None

    def predicate(self, key: str) -> str:
        """SQL condition selecting the output rows that `key` owns."""
        raise NotImplementedError

    def bounds(self, key: str) -> dict[str, str]:
        """Named values a SQL step or command can use: always `partition`, maybe start/end."""
        return {"partition": key}

    def key_expression(self) -> str | None:
        """SQL giving the key a row of an input table belongs to (None: no such column).

        The planner groups an input's newest files by it to find partitions whose
        input changed since they were last loaded.
        """
        return None if self.column is None else f"CAST(`{self.column}` AS STRING)"

    def not_yet_due(self, key: str, today: dt.date) -> bool:
        """True for a key of a time that has not begun (a day after today)."""
        return False

    def key_of(self, value: str) -> str | None:
        """This partitioning's key for a partition value an upstream table was written
        under (its own key, or a finer one such as the day of a month); None if none.

        The scheduler uses it to run a job after its upstream for the partitions the
        upstream wrote, when the input's partition column is not the job's own (a monthly
        job after a daily one fires for the months of the days written).
        """
        try:
            return self.validate(value)
        except PartitionError:
            return None

    def describe(self) -> str:
        return self.kind


@dataclasses.dataclass(frozen=True)
class Unpartitioned(Partitioning):
    """One iteration over everything; its commit replaces the whole output."""

    kind = "unpartitioned"
    KEY = "all"

    def validate(self, key: str) -> str:
        if key != self.KEY:
            raise PartitionError(f"an unpartitioned job has the one partition {self.KEY!r}")
        return key

    def up_to(self, today: dt.date) -> list[str]:
        return [self.KEY]

    def current(self, today: dt.date) -> str | None:
        return self.KEY

    def key_expression(self) -> str | None:
        return _quote(self.KEY)

    def predicate(self, key: str) -> str:
        return "true"


@dataclasses.dataclass(frozen=True)
class Daily(Partitioning):
    """One partition per calendar day (`2026-03-14`) of a DATE column."""

    column: str | None = "date"
    start: str | None = None

    kind = "daily"

    def validate(self, key: str) -> str:
        try:
            return dt.date.fromisoformat(key).isoformat()
        except (TypeError, ValueError):
            raise PartitionError(f"daily partition {key!r} is not a date like 2026-03-14") from None

    def between(self, start: str, end: str) -> list[str]:
        first, last = (
            dt.date.fromisoformat(self.validate(start)),
            dt.date.fromisoformat(self.validate(end)),
        )
        if last < first:
            raise PartitionError(f"range {start}..{end} ends before it starts")
        return [(first + dt.timedelta(days=i)).isoformat() for i in range((last - first).days + 1)]

    def up_to(self, today: dt.date) -> list[str]:
        if self.start is None:
            return [today.isoformat()]
        return self.between(self.start, today.isoformat())

    def current(self, today: dt.date) -> str | None:
        return today.isoformat()

    def not_yet_due(self, key: str, today: dt.date) -> bool:
        return self.validate(key) > today.isoformat()

    def key_of(self, value: str) -> str | None:
        """The day of a date or of a timestamp (`2026-03-14 10:00:00` is `2026-03-14`)."""
        text = str(value)
        if len(text) > 10 and text[10] not in " T":
            return None
        return super().key_of(text[:10])

    def predicate(self, key: str) -> str:
        return f"`{self.column}` = DATE {_quote(self.validate(key))}"

    def bounds(self, key: str) -> dict[str, str]:
        day = dt.date.fromisoformat(self.validate(key))
        return {
            "partition": key,
            "start": day.isoformat(),
            "end": (day + dt.timedelta(1)).isoformat(),
        }


@dataclasses.dataclass(frozen=True)
class Monthly(Partitioning):
    """One partition per calendar month (`2026-03`) of a DATE column: a bill, a report."""

    column: str | None = "date"
    start: str | None = None

    kind = "monthly"

    def validate(self, key: str) -> str:
        if not isinstance(key, str) or not _MONTH.match(key):
            raise PartitionError(f"monthly partition {key!r} is not a month like 2026-03")
        return key

    @staticmethod
    def _month(key: str) -> tuple[int, int]:
        year, month = key.split("-")
        return int(year), int(month)

    def between(self, start: str, end: str) -> list[str]:
        (y, m), last = self._month(self.validate(start)), self._month(self.validate(end))
        if last < (y, m):
            raise PartitionError(f"range {start}..{end} ends before it starts")
        keys = []
        while (y, m) <= last:
            keys.append(f"{y:04d}-{m:02d}")
            y, m = (y + 1, 1) if m == 12 else (y, m + 1)
        return keys

    def up_to(self, today: dt.date) -> list[str]:
        this = f"{today.year:04d}-{today.month:02d}"
        return self.between(self.start, this) if self.start else [this]

    def current(self, today: dt.date) -> str | None:
        return f"{today.year:04d}-{today.month:02d}"

    def not_yet_due(self, key: str, today: dt.date) -> bool:
        return self.validate(key) > f"{today.year:04d}-{today.month:02d}"

    def key_expression(self) -> str | None:
        return None if self.column is None else f"date_format(`{self.column}`, 'yyyy-MM')"

    def key_of(self, value: str) -> str | None:
        """The month of a month, a date or a timestamp (`2026-03-14` is `2026-03`)."""
        text = str(value)
        if len(text) > 7:
            try:
                dt.date.fromisoformat(text[:10])
            except ValueError:
                return None
        return super().key_of(text[:7])

    def bounds(self, key: str) -> dict[str, str]:
        y, m = self._month(self.validate(key))
        nxt = (y + 1, 1) if m == 12 else (y, m + 1)
        return {
            "partition": key,
            "start": f"{y:04d}-{m:02d}-01",
            "end": f"{nxt[0]:04d}-{nxt[1]:02d}-01",
        }

    def predicate(self, key: str) -> str:
        b = self.bounds(key)
        col = f"`{self.column}`"
        return f"{col} >= DATE {_quote(b['start'])} AND {col} < DATE {_quote(b['end'])}"


@dataclasses.dataclass(frozen=True)
class ByValue(Partitioning):
    """One partition per value of a column (a tenant, a site), from a list or any safe name."""

    column: str | None = "tenant"
    values: tuple[str, ...] = ()

    kind = "by value"

    def validate(self, key: str) -> str:
        if self.values:
            if key not in self.values:
                raise PartitionError(
                    f"partition {key!r} is not one of {', '.join(self.values)} ({self.column})"
                )
            return key
        if not isinstance(key, str) or not _NAME.match(key):
            raise PartitionError(f"partition {key!r} is not a name of [A-Za-z0-9_.:-]{{1,128}}")
        return key

    def up_to(self, today: dt.date) -> list[str]:
        if not self.values:
            raise PartitionError(
                f"partitions by {self.column} have no list of values: name them with --partition"
            )
        return list(self.values)

    def predicate(self, key: str) -> str:
        return f"`{self.column}` = {_quote(self.validate(key))}"


@dataclasses.dataclass(frozen=True)
class DeviceHash(Partitioning):
    """`buckets` partitions by a stable hash of the device: a fleet split into even shares."""

    column: str | None = "device"
    buckets: int = 16

    kind = "device hash"

    def validate(self, key: str) -> str:
        if not str(key).isdigit() or not 0 <= int(key) < self.buckets:
            raise PartitionError(
                f"device-hash partition {key!r} is not a bucket 0..{self.buckets - 1}"
            )
        return str(int(key))

    def up_to(self, today: dt.date) -> list[str]:
        return [str(b) for b in range(self.buckets)]

    def between(self, start: str, end: str) -> list[str]:
        first, last = int(self.validate(start)), int(self.validate(end))
        return [str(b) for b in range(first, last + 1)]

    def predicate(self, key: str) -> str:
        return f"pmod(xxhash64(`{self.column}`), {self.buckets}) = {int(self.validate(key))}"

    def key_expression(self) -> str | None:
        return f"CAST(pmod(xxhash64(`{self.column}`), {self.buckets}) AS STRING)"
