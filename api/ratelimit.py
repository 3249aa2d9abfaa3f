"""Token buckets per key (a client address, a user name, a device): pure bookkeeping, so
the decision and its wait can be tested without a clock that moves by itself."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    """`rate` per second sustained, `burst` at once; `take(key)` -> seconds to wait (0: go)."""

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_keys = max_keys
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    def take(self, key: str, cost: float = 1.0) -> float:
        """Spend `cost` from `key`'s bucket; 0.0 if allowed, else how long until it would be."""
        now = self._clock()
        with self._lock:
            level, at = self._buckets.get(key, (self.burst, now))
            level = min(self.burst, level + (now - at) * self.rate)
            if level >= cost:
                self._buckets[key] = (level - cost, now)
                return 0.0
            self._buckets[key] = (level, now)
            if len(self._buckets) > self._max_keys:
                self._buckets.clear()  # a flood of keys: forget them all rather than grow
            return (cost - level) / self.rate
