"""The heartbeat's figures: the device from psutil, the agent from its own counters.

Kept apart from the agent loop so the figures can be checked against the wire
format on their own; psutil is imported here, when the first heartbeat is due,
not when the package is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from edgebatch.edge.wire import format_ts

T = TypeVar("T")


class HealthProbe:
    """Reads psutil figures; `cpu_percent` is measured between two calls, so it is primed."""

    def __init__(self, disk_path: str | Path) -> None:
        import psutil

        self.psutil = psutil
        self.disk_path = str(disk_path)
        self.process = psutil.Process()
        self.started = time.time()
        psutil.cpu_percent(None)
        self.process.cpu_percent(None)

    def figures(
        self,
        *,
        outbox: Mapping[str, Any],
        shed: Mapping[str, int],
        rejected: Mapping[str, int],
        last_send: float | None,
        extra: Mapping[str, float | int] | None = None,
    ) -> dict[str, Any]:
        """The health fields after `agent` (see `edgebatch.edge.wire.parse.HEALTH_FIGURES`)."""
        from edgebatch.edge.sources import device_temperature

        ps, me = self.psutil, self.process
        with me.oneshot():
            process = {
                "rss_bytes": _safe(lambda: me.memory_info().rss, 0),
                "cpu_percent": _safe(lambda: me.cpu_percent(None), 0.0),
                "uptime_s": round(time.time() - self.started, 3),
                "threads": _safe(me.num_threads, 0),
            }
        process.update(extra or {})
        return {
            "uptime_s": round(max(0.0, time.time() - _safe(ps.boot_time, time.time())), 3),
            "cpu_percent": float(_safe(lambda: ps.cpu_percent(None), 0.0)),
            "memory_percent": float(_safe(lambda: ps.virtual_memory().percent, 0.0)),
            "disk_percent": float(_safe(lambda: ps.disk_usage(self.disk_path).percent, 0.0)),
            "load": [round(x, 3) for x in _safe(os.getloadavg, (0.0, 0.0, 0.0))],
            "temperature_c": device_temperature(ps),
            "process": process,
            "outbox": dict(outbox),
            "shed": dict(shed),
            "rejected": dict(rejected),
            "last_send": None if last_send is None else format_ts(last_send),
        }


def _safe(read: Callable[[], T], default: T) -> T:
    """A figure the platform cannot give (a container without /proc/stat, a disk gone) must
    not cost the heartbeat: report the default instead."""
    try:
        return read()
    except Exception:  # psutil.Error, OSError, and platform quirks alike
        return default
