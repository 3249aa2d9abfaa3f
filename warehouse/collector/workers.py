"""Validation in worker processes, results handed back in the order the messages came.

One Python thread cannot both run the MQTT network loop and check every message at
the broker's pace: checking costs about as much as receiving. So the collector's
thread only receives, lands and acknowledges, and sends the received messages in
chunks to worker processes that run `validation.check_chunk`. Results come back
tagged with their chunk's sequence number and are released strictly in sequence,
so acknowledgements still go out in arrival order. A worker that dies takes no
message with it: every chunk stays here until its result is taken, and is sent
again to a fresh worker. Workers leave when the collector does, even after kill -9.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import os
import queue
import signal
import time
from typing import Any

from edgebatch.warehouse.collector.validation import CheckedChunk, check_chunk

log = logging.getLogger(__name__)

Chunk = list[tuple[str, bytes, float]]
_READY = -1  # the sequence number a worker answers with once it has started


def default_workers() -> int:
    """One core stays with the network loop; the others check, up to four."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _serve(inbox: Any, outbox: Any, collector: str, parent: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the collector decides when to stop
    gc.freeze()  # imports are long-lived: keep them out of every collection
    outbox.put((_READY, None))
    while True:
        try:
            item = inbox.get(timeout=1.0)
        except queue.Empty:
            if os.getppid() != parent:  # the collector is gone (kill -9): so are we
                return
            continue
        if item is None:
            return
        seq, chunk = item
        outbox.put((seq, check_chunk(chunk, collector)))


class ValidationPool:
    """`submit(chunk)` returns its sequence number; `ready()` returns finished chunks in order."""

    def __init__(self, workers: int, collector: str) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._collector = collector
        self._inbox = self._ctx.Queue()
        self._outbox = self._ctx.Queue()
        self._sent: dict[int, Chunk] = {}
        self._done: dict[int, CheckedChunk] = {}
        self._next = 0
        self._released = 0
        self.restarts = 0
        self._started = 0
        self._procs = [self._start() for _ in range(workers)]

    def wait_started(self, timeout_s: float = 60.0) -> bool:
        """Block until every worker has started (spawned, imported), or `timeout_s` passes."""
        deadline = time.monotonic() + timeout_s
        while self._started < len(self._procs):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._take(timeout=left)
        return True

    def _take(self, timeout: float = 0.0) -> bool:
        """Take one answer from the workers; False when there is none (within `timeout`)."""
        try:
            seq, results = (
                self._outbox.get(timeout=timeout) if timeout else self._outbox.get_nowait()
            )
        except queue.Empty:
            return False
        if seq == _READY:
            self._started += 1
        elif seq in self._sent:  # a chunk sent twice (after a restart) counts once
            self._done[seq] = results
        return True

    def _start(self) -> multiprocessing.process.BaseProcess:
        proc = self._ctx.Process(
            target=_serve,
            args=(self._inbox, self._outbox, self._collector, os.getpid()),
            name="edgebatch-collector-check",
            daemon=True,
        )
        proc.start()
        return proc

    @property
    def pending(self) -> int:
        """Chunks submitted and not yet released."""
        return len(self._sent)

    def submit(self, chunk: Chunk) -> int:
        seq = self._next
        self._next += 1
        self._sent[seq] = chunk
        self._inbox.put((seq, chunk))
        return seq

    def ready(self, wait_s: float = 0.0) -> list[tuple[int, CheckedChunk]]:
        """Finished chunks, oldest first, none skipped; waits up to `wait_s` for the first."""
        if self._take(wait_s):
            while self._take():
                pass
        elif self._sent:  # nothing came back while work is out: is everyone alive?
            self._revive()
        out = []
        while self._released in self._done:
            seq = self._released
            out.append((seq, self._done.pop(seq)))
            del self._sent[seq]
            self._released += 1
        return out

    def _revive(self) -> None:
        """Replace the whole pool when a worker has died: it may have died holding a
        queue's lock (killed inside `get` or while its feeder wrote), which would block
        every other process on that queue for good. So: new queues, new workers, and
        every unanswered chunk sent again (a second answer is ignored)."""
        dead = [p for p in self._procs if not p.is_alive()]
        if not dead:
            return
        log.error(
            "validation worker exited (%s); restarting the pool",
            ", ".join(str(p.exitcode) for p in dead),
        )
        for p in self._procs:
            if p.is_alive():
                p.terminate()
            p.join(timeout=5)
        for q in (self._inbox, self._outbox):
            q.close()
            q.cancel_join_thread()
        self._inbox, self._outbox = self._ctx.Queue(), self._ctx.Queue()
        self._procs = [self._start() for _ in self._procs]
        self._started = 0
        self.restarts += 1
        for seq, chunk in self._sent.items():
            if seq not in self._done:
                self._inbox.put((seq, chunk))

    def close(self) -> None:
        for _ in self._procs:
            self._inbox.put(None)
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._inbox.cancel_join_thread()
        self._inbox.close()
        self._outbox.close()
