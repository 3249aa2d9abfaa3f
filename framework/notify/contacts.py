"""What a job declares about notifications: contacts, the events they hear of, an SLA.

Pure values, checked when the job loads, so a typo in an address or a duration is an
error naming the job and the field, not a delivery that fails at 3 a.m.

A contact is an email address (`ops@example.com` or `mailto:ops@example.com`) or a
webhook URL (`https://...`, or `http://...` for a receiver on a private network).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable
from datetime import timedelta
from enum import StrEnum
from urllib.parse import urlsplit

from edgebatch.framework.errors import JobDefinitionError


class NotifyEvent(StrEnum):
    """What a contact may hear of: a run's outcome, or a run not finished by its deadline."""

    FAILURE = "failure"
    SKIPPED = "skipped"
    SLA_MISS = "sla_miss"
    SUCCESS = "success"
    CANCELLED = "cancelled"


# Contacts hear of what needs a person; success and cancellations only where a job asks.
DEFAULT_NOTIFY_ON: tuple[NotifyEvent, ...] = (
    NotifyEvent.FAILURE,
    NotifyEvent.SKIPPED,
    NotifyEvent.SLA_MISS,
)


class Channel(StrEnum):
    EMAIL = "email"
    WEBHOOK = "webhook"


@dataclasses.dataclass(frozen=True)
class Contact:
    """One recipient: `address` is the bare email address, or the webhook's whole URL."""

    channel: Channel
    address: str

    @property
    def shown(self) -> str:
        """How logs show it: a webhook URL without credentials, path and query, which often
        hold a secret token (chat-service hooks do), an email address as it is."""
        if self.channel is Channel.EMAIL:
            return self.address
        parts = urlsplit(self.address)
        host = parts.hostname or ""
        host = f"[{host}]" if ":" in host else host
        where = f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")
        return f"{where}/..." if parts.path.strip("/") or parts.query else where


# Deliberately loose: the SMTP server is the judge of an address; this catches typos
# (no @, spaces, a missing domain) at load time.
_EMAIL = re.compile(r"^[^@\s<>,;:\"]+@[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$")


def parse_contact(value: str, *, job: str = "") -> Contact:
    """A `Contact` from `ops@x.org`, `mailto:ops@x.org`, `https://...` or `http://...`."""
    where = f"job {job!r}: contacts: " if job else "contact: "
    if not isinstance(value, str) or not value.strip():
        raise JobDefinitionError(f"{where}{value!r} is not an email address or webhook URL")
    text = value.strip()
    lowered = text.lower()
    if lowered.startswith(("http://", "https://")):
        parts = urlsplit(text)
        if not parts.hostname:
            raise JobDefinitionError(f"{where}webhook URL {text!r} has no host")
        return Contact(Channel.WEBHOOK, text)
    if lowered.startswith("mailto:"):
        text = text[len("mailto:") :]
    elif "://" in text or lowered.startswith(("http:", "https:")):
        raise JobDefinitionError(f"{where}{value!r}: a webhook must be an http:// or https:// URL")
    if not _EMAIL.match(text):
        raise JobDefinitionError(
            f"{where}{value!r} is not an email address (name@domain) or a webhook URL (https://...)"
        )
    return Contact(Channel.EMAIL, text)


def parse_contacts(values: Iterable[str], *, job: str = "") -> tuple[Contact, ...]:
    """Every contact checked; the same contact given twice is kept once."""
    if isinstance(values, str):
        values = [values]
    return tuple(dict.fromkeys(parse_contact(v, job=job) for v in values))


def parse_notify_on(values: Iterable[str] | None, *, job: str = "") -> tuple[NotifyEvent, ...]:
    """The events a job's contacts hear of (None: failure, skipped, sla_miss)."""
    if values is None:
        return DEFAULT_NOTIFY_ON
    if isinstance(values, str):
        values = [values]
    events: list[NotifyEvent] = []
    for value in values:
        try:
            events.append(NotifyEvent(value))
        except ValueError:
            known = ", ".join(NotifyEvent)
            raise JobDefinitionError(
                f"job {job!r}: notify_on: unknown event {value!r} (known: {known})"
            ) from None
    return tuple(dict.fromkeys(events))


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(d|h|m|s)", re.IGNORECASE)
_UNIT_S = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0}


def parse_duration(
    value: str | float | timedelta | None, *, job: str = "", field: str = "sla"
) -> timedelta | None:
    """A positive `timedelta` from `"45m"`, `"1h30m"`, `"2d"`, `"90s"`, seconds or a timedelta."""
    if value is None:
        return None
    where = f"job {job!r}: {field}"
    result: timedelta
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float) and not isinstance(value, bool):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        pieces = _DURATION.findall(text)
        if not text or "".join(n + u for n, u in pieces).lower() != text.lower():
            raise JobDefinitionError(
                f"{where}: {value!r} is not a duration; write e.g. '45m', '1h30m', '2d' or "
                "'90s' (d, h, m, s), or a number of seconds"
            )
        result = timedelta(seconds=sum(float(n) * _UNIT_S[u.lower()] for n, u in pieces))
    else:
        raise JobDefinitionError(f"{where}: {value!r} is not a duration")
    if result <= timedelta(0):
        raise JobDefinitionError(f"{where}: {value!r} must be longer than zero")
    return result
