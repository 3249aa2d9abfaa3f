"""The collector's parser: the msgspec fast path where msgspec is installed (the `server`
extra), else the reference parser alone. Both accept and refuse alike; the fast one
only sooner."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable

from edgebatch.edge.wire import Message
from edgebatch.edge.wire import parse_message as reference


def choose_parser() -> Callable[[str, bytes], Message]:
    if importlib.util.find_spec("msgspec") is None:
        return reference
    from edgebatch.warehouse.collector import fastparse

    return fastparse.parse_message


parse_message = choose_parser()
"""What the collector parses every message with."""
