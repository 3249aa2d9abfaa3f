"""One error base for the whole project, so callers can catch edgebatch's own failures.

Each part derives its own subclass; messages say what was wrong, where, and what to do.
"""


class EdgebatchError(Exception):
    """Base of every error edgebatch raises on purpose."""


class ConfigError(EdgebatchError):
    """A config file or environment override is wrong; the message names the key and the file."""
