"""The one error of the wire format, raised by every parser path with a reason that names
the field, so the quarantine table can say it too."""

from __future__ import annotations

from edgebatch.edge.errors import EdgeError


class MessageRejected(EdgeError):
    """A message that breaks the wire format; `reason` is short, precise, and names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
