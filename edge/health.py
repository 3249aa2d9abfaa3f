"""The heartbeat's figures: the device from psutil, the agent from its own counters.

Kept apart from the agent loop so the figures can be checked against the wire
format on their own; psutil is imported here, when the first heartbeat is due,
not when the package is.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edgebatch.edge.messages import format_ts


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
        """The health fields after `agent` (see `edgebatch.edge.messages`)."""
        from edgebatch.edge.sources import device_temperature

        ps = self.psutil
        try:
            disk = ps.disk_usage(self.disk_path).percent
        except OSError:
            disk = 0.0
        with self.process.oneshot():
            process = {
                "rss_bytes": self.process.memory_info().rss,
                "cpu_percent": self.process.cpu_percent(None),
                "uptime_s": round(time.time() - self.started, 3),
                "threads": self.process.num_threads(),
            }
        process.update(extra or {})
        return {
            "uptime_s": round(max(0.0, time.time() - ps.boot_time()), 3),
            "cpu_percent": float(ps.cpu_percent(None)),
            "memory_percent": float(ps.virtual_memory().percent),
            "disk_percent": float(disk),
            "load": [round(x, 3) for x in os.getloadavg()],
            "temperature_c": device_temperature(ps),
            "process": process,
            "outbox": dict(outbox),
            "shed": dict(shed),
            "rejected": dict(rejected),
            "last_send": None if last_send is None else format_ts(last_send),
        }
