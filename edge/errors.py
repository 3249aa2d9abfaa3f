"""The edge agent's own error, so callers can tell agent failures from the rest of edgebatch."""

from edgebatch.errors import EdgebatchError


class EdgeError(EdgebatchError):
    """Something in the edge agent failed on purpose; the message says what and where."""
