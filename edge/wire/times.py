"""Times on the wire: RFC 3339 UTC text, read into epoch seconds and written back."""

from __future__ import annotations

import datetime as dt
import math
import re

from edgebatch.edge.wire.errors import MessageRejected

TS_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
# What `format_ts` writes: whole seconds, or milliseconds that are not all zero.
_CANONICAL_RE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.(?!000)\d{3})?Z")
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_ZERO = dt.timedelta(0)


def format_ts(epoch: float) -> str:
    """RFC 3339 UTC; whole seconds when integral, else milliseconds (truncated, never rounded up,
    so a reading's time never crosses its window's end)."""
    # One microsecond of slack absorbs binary rounding: 1234.3 is stored as 1234.29999...,
    # and must print as .300 so that parse_ts and format_ts round-trip.
    whole, ms = divmod(math.floor(epoch * 1000.0 + 0.001), 1000)
    stamp = _EPOCH + dt.timedelta(seconds=whole)
    text = stamp.strftime("%Y-%m-%dT%H:%M:%S")
    if ms == 0:
        return text + "Z"
    return f"{text}.{ms:03d}Z"


def parse_ts(text: str) -> float:
    """Epoch seconds of an RFC 3339 UTC time; raises ValueError otherwise.

    Only the extended form (`2026-01-01T00:00:00.5Z`, or `+00:00`): Python would also read
    ISO 8601's basic form, which Spark and most consumers downstream do not."""
    if type(text) is not str or not TS_RE.fullmatch(text):
        raise ValueError("not an RFC 3339 time (YYYY-MM-DDTHH:MM:SS[.ffffff]Z)")
    stamp = dt.datetime.fromisoformat(text)
    if stamp.utcoffset() != _ZERO:  # None, for a time without an offset, is not zero either
        raise ValueError("not UTC")
    return (stamp - _EPOCH).total_seconds()


# Times already read, by text: a stream repeats them (every device closes the same windows),
# and reading one costs a regex and a datetime. Bounded; emptied when full. Beside it, the
# text `format_ts` would write for each time read in that form, so that recomputing a
# batch's id from its window (`ids.batch_id_for`) costs a lookup, not a formatting.
_SEEN_TIMES: dict[str, float] = {}
_SEEN_TIMES_MAX = 4096
_TEXTS: dict[float, str] = {}


def canonical_ts(epoch: float) -> str:
    """`format_ts(epoch)`, from the texts already read or written where it can be."""
    text = _TEXTS.get(epoch)
    if text is None:
        text = format_ts(epoch)
        if len(_TEXTS) >= _SEEN_TIMES_MAX:
            _TEXTS.clear()
        _TEXTS[epoch] = text
    return text


def epoch_of(value: object, key: str, where: str = "") -> float:
    """Epoch seconds of field `key`'s RFC 3339 text, or `MessageRejected` naming it."""
    if isinstance(value, str):
        seen = _SEEN_TIMES.get(value)
        if seen is not None:
            return seen
        try:
            epoch = parse_ts(value)
        except ValueError:
            pass
        else:
            if len(_SEEN_TIMES) >= _SEEN_TIMES_MAX:
                _SEEN_TIMES.clear()
                _TEXTS.clear()
            _SEEN_TIMES[value] = epoch
            if _CANONICAL_RE.fullmatch(value):
                # format_ts(parse_ts(text)) == text for such a text (tests/edge/test_messages.py)
                _TEXTS[epoch] = value
            return epoch
    raise MessageRejected(
        f"{where}field '{key}' must be an RFC 3339 UTC time, got {str(value)[:60]!r}"
    )
