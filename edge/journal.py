"""An append-only journal of accepted-for-processing readings, so kill -9 loses none.

Open windows live in memory; the journal is what makes them durable. Each poll
of a source is appended as one record (length, CRC32, JSON of the source index,
the source's resume state and the readings) before the readings reach the
windower. Offsets are global byte positions across segment files named by
their first offset, so a whole segment can be deleted once every reading in it
is part of a committed window (`truncate_before(low_water)`).

After a crash the agent replays from the low-water mark, skipping readings
whose window was committed after the record was written (see `Agent`); a torn
last record (a write cut short) fails its CRC and is cut off.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_HEADER = struct.Struct("<II")


class Journal:
    """Segmented append-only record log; see the module docstring."""

    def __init__(self, directory: str | Path, *, segment_bytes: int = 4 << 20) -> None:
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.segment_bytes = segment_bytes
        self._dirty = False
        bases = self._bases()
        if not bases:
            bases = [0]
            (self.dir / _name(0)).touch()
            _fsync_dir(self.dir)
        self._base = bases[-1]
        path = self.dir / _name(self._base)
        valid = self._valid_length(path)
        if valid < path.stat().st_size:
            log.warning("journal %s: cutting a torn record at byte %d", path, valid)
            with path.open("r+b") as fh:
                fh.truncate(valid)
        self._fh = path.open("ab")
        self.end = self._base + valid

    def _bases(self) -> list[int]:
        return sorted(int(p.stem) for p in self.dir.glob("*.log") if p.stem.isdigit())

    @staticmethod
    def _valid_length(path: Path) -> int:
        pos = 0
        with path.open("rb") as fh:
            data = fh.read()
        while pos + _HEADER.size <= len(data):
            length, crc = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size : pos + _HEADER.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                break
            pos += _HEADER.size + length
        return pos

    def append(self, source: int, state: Any, readings: list[Any]) -> int:
        """Write one record; returns its offset. Not fsynced: call `sync` before committing."""
        record = {"s": source, "st": state, "r": readings}
        body = json.dumps(record, separators=(",", ":"), default=repr).encode()
        if self.end - self._base + len(body) > self.segment_bytes and self.end > self._base:
            self._roll()
        offset = self.end
        self._fh.write(_HEADER.pack(len(body), zlib.crc32(body)) + body)
        self._fh.flush()
        self.end += _HEADER.size + len(body)
        self._dirty = True
        return offset

    def _roll(self) -> None:
        self.sync()
        self._fh.close()
        self._base = self.end
        self._fh = (self.dir / _name(self._base)).open("ab")
        _fsync_dir(self.dir)

    def sync(self) -> None:
        """fsync the current segment, so a commit that depends on it survives power loss."""
        if self._dirty:
            os.fsync(self._fh.fileno())
            self._dirty = False

    def replay(self, start: int = 0) -> Iterator[tuple[int, int, Any, list[Any]]]:
        """`(offset, source, state, readings)` of every record at or after `start`."""
        bases = self._bases()
        for i, base in enumerate(bases):
            nxt = bases[i + 1] if i + 1 < len(bases) else None
            if nxt is not None and nxt <= start:
                continue
            with (self.dir / _name(base)).open("rb") as fh:
                data = fh.read()
            pos = 0
            while pos + _HEADER.size <= len(data):
                length, crc = _HEADER.unpack_from(data, pos)
                body = data[pos + _HEADER.size : pos + _HEADER.size + length]
                if len(body) < length or zlib.crc32(body) != crc:
                    break
                if base + pos >= start:
                    rec = json.loads(body)
                    yield base + pos, rec["s"], rec["st"], rec["r"]
                pos += _HEADER.size + length

    def truncate_before(self, offset: int) -> int:
        """Delete whole segments that end at or before `offset`; returns how many."""
        bases = self._bases()
        removed = 0
        for base, nxt in zip(bases, bases[1:], strict=False):
            if nxt <= offset and base != self._base:
                (self.dir / _name(base)).unlink(missing_ok=True)
                removed += 1
        return removed

    def close(self) -> None:
        self.sync()
        self._fh.close()


def _name(base: int) -> str:
    return f"{base:020d}.log"


def _fsync_dir(directory: Path) -> None:
    """Make a new segment's directory entry durable, or power loss could lose the file."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
