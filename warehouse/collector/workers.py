"""Validation in worker processes, results handed back in the order the messages came.

One Python thread cannot both run the MQTT network loop and check every message at
the broker's pace: checking costs about as much as receiving. So the collector's
thread only receives, lands and acknowledges, and sends the received messages in
chunks to worker processes that run `validation.check_chunk`. Results come back
tagged with their chunk's sequence number and are released strictly in sequence,
so acknowledgements still go out in arrival order. A worker that dies takes no
message with it: every chunk stays here until its result is taken, and is sent
again to a fresh worker. Workers leave when the collector does, even after kill -9.

Each worker answers on a pipe of its own, written in its main thread: an answer is whole
before the next chunk is checked, and a worker that dies mid-answer (killed from outside)
closes its pipe, which the pool reads as a death instead of waiting for the rest of the
answer for ever. (A shared queue's feeder thread could be cut off mid-answer by a crash
in the checker, and the pool then blocked on the half-written answer.)

A message that crashes the checker itself (a hard crash, not a refusal: those are
quarantined by `check`) must not restart the pool forever. Workers say which chunk
they take before checking it, so a death has one suspect: a chunk suspected twice
is checked again one message at a time, and a single message suspected twice is
quarantined, untouched, with the reason, so the stream moves on.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.connection
import os
import queue
import signal
import time
from collections.abc import Callable
from typing import Any

from edgebatch.warehouse.collector.records import quarantine_line
from edgebatch.warehouse.collector.validation import CheckedChunk, check_chunk

log = logging.getLogger(__name__)

Chunk = list[tuple[str, bytes, float]]
Checker = Callable[[Chunk, str], CheckedChunk]
_READY = -1  # the sequence number a worker answers with once it has started
SUSPICIONS = 2  # deaths with the same chunk in hand before it is split, or quarantined


def default_workers() -> int:
    """One core stays with the network loop; the others check, up to four."""
    return max(0, min(4, (os.cpu_count() or 1) - 1))


def _serve(
    inbox: Any,
    answers: multiprocessing.connection.Connection,
    collector: str,
    parent: int,
    checker: Checker,
    hand: Any,
) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the collector decides when to stop
    gc.freeze()  # imports are long-lived: keep them out of every collection
    answers.send((_READY, None))
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
        # What is in hand goes to shared memory, not the queue: a queue's feeder thread
        # would not get it out before a crash. The pool reads it if this process dies.
        hand[0], hand[1] = (seq[0], seq[1]) if isinstance(seq, tuple) else (seq, -1)
        results = checker(chunk, collector)
        hand[0] = hand[1] = -1
        try:
            answers.send((seq, results))
        except (BrokenPipeError, OSError):  # the collector is gone
            return


class ValidationPool:
    """`submit(chunk)` returns its sequence number; `ready()` returns finished chunks in order."""

    def __init__(self, workers: int, collector: str, checker: Checker = check_chunk) -> None:
        self._ctx = multiprocessing.get_context("spawn")
        self._collector = collector
        self._checker = checker  # a module-level function: spawned workers import it
        self._suspicions: dict[Any, int] = {}
        self._hands: dict[int | None, Any] = {}  # worker pid -> (seq, part or -1) in hand
        # A chunk split after crashes: its parts (one message each), answered part by part.
        self._parts: dict[int, dict[int, CheckedChunk | None]] = {}
        self._inbox = self._ctx.Queue()
        # worker answers: the read end of each worker's pipe, and the worker
        self._answers: dict[multiprocessing.connection.Connection, Any] = {}
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
        ready = multiprocessing.connection.wait(list(self._answers), timeout)
        if not ready:
            return False
        reader = ready[0]
        assert isinstance(reader, multiprocessing.connection.Connection)
        try:
            seq, results = reader.recv()
        except (EOFError, OSError):  # its worker died (mid-answer, maybe): revive sees it
            del self._answers[reader]
            reader.close()
            return False
        if seq == _READY:
            self._started += 1
        elif isinstance(seq, tuple):  # one part of a split chunk
            parent, index = seq
            self._answer_part(parent, index, results)
        elif seq in self._sent and seq not in self._parts:  # sent twice: counts once
            self._done[seq] = results
        return True

    def _answer_part(self, parent: int, index: int, results: CheckedChunk) -> None:
        parts = self._parts.get(parent)
        if parts is None or parts.get(index) is not None:
            return
        parts[index] = results
        if all(r is not None for r in parts.values()):
            ordered = [parts[i] for i in sorted(parts)]
            self._done[parent] = _merged([r for r in ordered if r is not None])
            del self._parts[parent]

    def _start(self) -> multiprocessing.process.BaseProcess:
        hand = self._ctx.Array("q", [-1, -1], lock=False)
        reader, writer = self._ctx.Pipe(duplex=False)
        proc = self._ctx.Process(
            target=_serve,
            args=(self._inbox, writer, self._collector, os.getpid(), self._checker, hand),
            name="edgebatch-collector-check",
            daemon=True,
        )
        proc.start()
        writer.close()  # the worker holds the only write end: its death is an EOF here
        self._answers[reader] = proc
        self._hands[proc.pid] = hand
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
            if self._suspicions:  # only after crashes: forget what is released
                self._suspicions = {
                    k: v
                    for k, v in self._suspicions.items()
                    if (k[0] if isinstance(k, tuple) else k) != seq
                }
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
        self._inbox.close()
        self._inbox.cancel_join_thread()
        self._close_answers()
        self._inbox = self._ctx.Queue()
        self._procs = [self._start() for _ in self._procs]
        self._started = 0
        self.restarts += 1
        for p in dead:
            hand = self._hands.get(p.pid)
            if hand is not None and hand[0] >= 0:
                suspect = hand[0] if hand[1] < 0 else (hand[0], hand[1])
                self._suspicions[suspect] = self._suspicions.get(suspect, 0) + 1
        self._hands = {p.pid: self._hands[p.pid] for p in self._procs if p.pid in self._hands}
        codes = [p.exitcode for p in dead]
        for seq, chunk in self._sent.items():
            if seq in self._done:
                continue
            if seq in self._parts:
                for index, answered in self._parts[seq].items():
                    if answered is None:
                        self._resend_part(seq, index, chunk[index], codes)
            elif self._suspicions.get(seq, 0) >= SUSPICIONS and len(chunk) > 1:
                log.error(
                    "chunk %d was in hand at %d worker deaths; checking it message by message",
                    seq,
                    self._suspicions[seq],
                )
                self._parts[seq] = dict.fromkeys(range(len(chunk)))
                for index, message in enumerate(chunk):
                    self._inbox.put(((seq, index), [message]))
            elif self._suspicions.get(seq, 0) >= SUSPICIONS:
                self._resend_part(seq, 0, chunk[0], codes, whole=True)
            else:
                self._inbox.put((seq, chunk))

    def _resend_part(
        self, seq: int, index: int, message: tuple[str, bytes, float], codes: list, whole=False
    ) -> None:
        """Send one message again, or quarantine it once it was in hand at two deaths."""
        key = seq if whole else (seq, index)
        if self._suspicions.get(key, 0) < SUSPICIONS:
            self._inbox.put((key, [message]))
            return
        topic, payload, at = message
        reason = (
            f"checking this message crashed the collector's validation worker "
            f"{self._suspicions[key]} times (exit codes {codes}); kept unparsed"
        )
        log.error("quarantining a message on %s: %s", topic, reason)
        line = quarantine_line(topic, payload, reason, at, self._collector)
        quarantined = CheckedChunk({"quarantine": line}, {"quarantine": 1}, [], 1)
        if whole:
            self._done[seq] = quarantined
        else:
            self._answer_part(seq, index, quarantined)

    def close(self) -> None:
        for _ in self._procs:
            self._inbox.put(None)
        for p in self._procs:
            p.join(timeout=5)
            if p.is_alive():
                p.terminate()
        self._inbox.cancel_join_thread()
        self._inbox.close()
        self._close_answers()

    def _close_answers(self) -> None:
        for reader in self._answers:
            reader.close()
        self._answers = {}


def _merged(parts: list[CheckedChunk]) -> CheckedChunk:
    """One chunk's results from its parts, in message order."""
    lines: dict[str, list[bytes]] = {}
    counts: dict[str, int] = {}
    receipts: list[tuple[str, str, str]] = []
    for part in parts:
        for kind, joined in part.lines.items():
            lines.setdefault(kind, []).append(joined)
            counts[kind] = counts.get(kind, 0) + part.counts[kind]
        receipts.extend(part.receipts)
    return CheckedChunk(
        {kind: b"".join(chunks) for kind, chunks in lines.items()},
        counts,
        receipts,
        sum(part.quarantined for part in parts),
    )
