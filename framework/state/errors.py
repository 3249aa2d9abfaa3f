"""Errors of the state store: each names the run or iteration and the states involved."""

from edgebatch.errors import EdgebatchError


class StateError(EdgebatchError):
    """A run or iteration cannot be found, or cannot move from its state to the one asked for."""


class LeaseError(StateError):
    """A lease is held by another live process, or was lost (expired and reaped, or released)."""
