"""What a load's landing files hold, read by the driver before Spark reads them: which
partitions of the bronze table their rows go to, and whether a key repeats.

An insert-only MERGE on keys alone must read every file of the table (any partition may
hold one of the load's keys) and shuffle the load's rows to drop its own repeats first:
both grow with the table and the load, and both are wasted on the usual load, whose
rows go to a few recent dates and repeat no key. Where a table's key fixes its partition
(`TableSpec.key_fixes_partition`), knowing the load's partitions lets the MERGE read
only those, and knowing that no key repeats lets it skip the shuffle.

Spark could answer both, at the price of a Spark job parsing every landing line once
more (1.6-2 s for 100,000 batches here). The driver answers them from a narrow decode of
the same lines with msgspec, the collector's own parser (about 0.25 s). This reads every
landing byte once more in the driver (through WebHDFS on HDFS): fine for loads of
hundreds of MB; a load of more than `MAX_SCAN_BYTES` runs without it.
The partition values are computed the way the load
computes them (times rounded half up to microseconds, dates in UTC); the MERGE carries
a guard (`pruning.guarded`) that fails it before its commit should a row fall outside,
and the load then runs the plain MERGE.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Callable, Iterable, Sequence
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from edgebatch.warehouse.landing import lines
from edgebatch.warehouse.landing.zone import LANDING, LandingFile, LandingZone

_DAY_US = 86_400_000_000
# Beyond this many landing bytes in one load, the driver's pass (about 0.4 s per 100 MB
# here) is left out and the MERGE reads the whole table, as Spark scales and the driver not.
MAX_SCAN_BYTES = 2 << 30
_EPOCH = dt.date(1970, 1, 1)


try:  # in the server extra; without it the load does without a scan
    import msgspec
except ImportError:  # pragma: no cover
    msgspec = None  # type: ignore[assignment]

if msgspec is not None:
    # The fields as `landing.lines` names them in a line.
    _ENVELOPE = {"topic": lines.TOPIC, "norm": lines.NORM, "payload": lines.PAYLOAD}

    class _Payload(msgspec.Struct):
        batch_id: str

    class _Window(msgspec.Struct, rename={"ws": lines.NORM_WS}):
        ws: float

    class _BatchLine(msgspec.Struct, rename=_ENVELOPE):
        topic: str
        norm: _Window
        payload: _Payload

    class _Instant(msgspec.Struct, rename={"ts": lines.NORM_TS}):
        ts: float

    class _HealthLine(msgspec.Struct, rename=_ENVELOPE):
        topic: str
        norm: _Instant


@dataclasses.dataclass(frozen=True)
class KeyScan:
    """The (tenant, date) partitions a load's rows go to, and whether a key may repeat
    (judged conservatively: a batch id seen twice, whatever its metrics)."""

    partitions: tuple[tuple[str, dt.date], ...]
    repeats: bool
    lines: int


def scan(
    zone: LandingZone, files: Sequence[LandingFile], kind: str, max_bytes: int = MAX_SCAN_BYTES
) -> KeyScan | None:
    """The key scan of `files` (all of `kind`), or None when this kind has no scan, msgspec
    is missing, the files hold more than `max_bytes`, or a line is not what the load
    expects (the load then does without)."""
    found = _SCANNERS.get(kind)
    if found is None or not files or sum(f.size for f in files) > max_bytes:
        return None
    line_type, keys_and_partitions = found
    decoder: msgspec.json.Decoder[Any] = msgspec.json.Decoder(line_type)
    seen: set[Any] = set()
    days: set[tuple[str, int]] = set()
    lines, repeats = 0, False
    try:
        for landing in files:
            data = zone.store.read(zone.root.resolve(f"{LANDING}/{landing.name}"))
            decoded = decoder.decode_lines(data)
            for key, partition in keys_and_partitions(decoded):
                repeats = repeats or key in seen
                seen.add(key)
                days.add(partition)
            lines += len(decoded)
    except (msgspec.DecodeError, ValueError, TypeError, IndexError, OverflowError):
        return None
    partitions = sorted((tenant, _EPOCH + dt.timedelta(days=day)) for tenant, day in days)
    return KeyScan(tuple(partitions), repeats, lines)


def micros(seconds: float) -> int:
    """Epoch seconds to microseconds as the load rounds them: Spark's `round`, half up
    (away from zero) on the double's decimal text."""
    scaled = seconds * 1_000_000
    if 0 <= scaled < 2**52:
        # Here every x.5 is a double, so the value and its shortest text round alike.
        return math.floor(scaled + 0.5)
    return int(Decimal(repr(scaled)).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def utc_date(us: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=us // _DAY_US)


def _batches(lines: list[_BatchLine]) -> Iterable[tuple[Any, Any]]:
    # The parsers refuse a metric named twice in one batch, so a (batch_id, metric) key
    # repeats only if its batch id does.
    for line in lines:
        tenant = line.topic.split("/", 2)[1]
        yield line.payload.batch_id, (tenant, micros(line.norm.ws) // _DAY_US)


def _healths(lines: list[_HealthLine]) -> Iterable[tuple[Any, Any]]:
    for line in lines:
        _, tenant, device = line.topic.split("/", 3)[:3]
        us = micros(line.norm.ts)
        yield (tenant, device, us), (tenant, us // _DAY_US)


# Per kind: the fields its key and partition come from (msgspec skips the rest of each
# line unbuilt), and the (key, (tenant, day number)) pairs of the decoded lines.
_SCANNERS: dict[str, tuple[type, Callable[[Any], Iterable[tuple[Any, Any]]]]] = (
    {"batch": (_BatchLine, _batches), "health": (_HealthLine, _healths)} if msgspec else {}
)
