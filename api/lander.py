"""Group commit for the HTTP ingest: requests that arrive while a landing is under way
wait for the next one and land together, so under load many requests share one durable
file per kind (one fsync) while a lone request lands at once. Each still gets its own
receipt, and only after the file holding its messages is durable.
"""

from __future__ import annotations

import asyncio
import contextlib

from starlette.concurrency import run_in_threadpool

from edgebatch.warehouse.collector.direct import Landed, Message, land_groups
from edgebatch.warehouse.landing import LandingZone

MAX_GROUP_MESSAGES = 20_000


class GroupLander:
    def __init__(self, zone: LandingZone, identity: str) -> None:
        self.zone = zone
        self.identity = identity
        self._waiting: list[tuple[list[Message], asyncio.Future[Landed]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def land(self, messages: list[Message]) -> Landed:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Landed] = loop.create_future()
        self._waiting.append((messages, future))
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run())
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            taken, count = [], 0
            while self._waiting and count < MAX_GROUP_MESSAGES:
                item = self._waiting.pop(0)
                taken.append(item)
                count += len(item[0])
            if not taken:
                continue
            if self._waiting:
                self._wake.set()
            try:
                results = await run_in_threadpool(
                    land_groups, self.zone, [m for m, _ in taken], self.identity
                )
            except Exception as exc:  # every sender of this group hears it; none is acked
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(taken, results, strict=True):
                if not future.done():
                    future.set_result(result)

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
