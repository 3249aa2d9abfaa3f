"""The agent loop: poll sources, journal, alarm, window, commit, send; recover after a crash.

One thread does everything, in this order per step, which is what makes the
accounting exact:

1. each source's new readings are appended to the journal (with the source's
   resume state) before anything else sees them;
2. alarm rules run over them and any alarm is committed to the outbox at once;
3. the windower takes them; windows that are due are encoded and committed to
   the outbox together with their revision and the journal offset (one SQLite
   transaction, after an fsync of the journal);
4. a heartbeat is queued when due, and the publisher hands over what the
   outbox says is due, at the configured pace;
5. the MQTT network loop runs for the poll interval (it is the agent's sleep).

After kill -9 the agent replays the journal from the low-water mark of the
last commit, skipping each reading whose window was committed after it was
journaled: every reading ends up in exactly one committed summary.

The alarm rules' memory is saved with each commit and each stored alarm, with the
journal offset it has seen up to (`alarm_state`); a restart resumes from it and
runs the rules only over the records after that offset, so an alarm raised before
the restart stays raised and is cleared once, rather than raised again.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from edgebatch import __version__
from edgebatch.edge import AGENT_NAME
from edgebatch.edge.alarms import AlarmEngine
from edgebatch.edge.config import AgentConfig
from edgebatch.edge.journal import Journal
from edgebatch.edge.outbox import Outbox, OutboxRow
from edgebatch.edge.sources import REGISTRY, Source
from edgebatch.edge.window import ClosedWindow, Rejects, Windower
from edgebatch.edge.wire import (
    AlarmEvent,
    Receipt,
    encode_alarm,
    encode_batch,
    encode_health,
    topic,
)
from edgebatch.edge.wire.summary import metric_summary

if TYPE_CHECKING:  # psutil loads only when the first heartbeat is due
    from edgebatch.edge.health import HealthProbe

log = logging.getLogger(__name__)

AGENT = f"{AGENT_NAME}/{__version__}"
PRUNE_EVERY_S = 60.0


class Agent:
    """One device's agent; `run()` until stopped, or `step()` from a test or benchmark."""

    def __init__(self, config: AgentConfig, *, connect: bool = True) -> None:
        self.config = config
        a = config.agent
        self.tenant, self.device = a.tenant, a.device
        self.topics = {k: topic(a.tenant, a.device, k) for k in ("batch", "alarm", "health")}
        a.data_dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(a.data_dir / "journal")
        self.outbox = Outbox(
            a.data_dir / "outbox.sqlite3",
            max_bytes=config.outbox.max_bytes,
            max_coarse_span_s=config.outbox.max_coarse_span_s,
            tenant=a.tenant,
            device=a.device,
            agent=AGENT,
        )
        self.rejects = Rejects(log)
        self.alarms = AlarmEngine(config.alarms)
        alarms_seen = self._restore_alarms()
        self.sources = self._make_sources()
        self.windower = Windower(
            config.window,
            known_metrics=self._known_metrics(),
            closed_revisions={s: rev for s, (rev, _) in self.outbox.revisions().items()},
            rejects=self.rejects,
        )
        self.stop_requested = threading.Event()
        self.health: HealthProbe | None = None
        self._next_heartbeat = 0.0
        self._next_prune = 0.0
        self.readings_polled = 0
        self.last_send: float | None = _float_or_none(self.outbox.meta("last_retired"))
        self.publisher = None
        if connect:
            from edgebatch.edge.publisher import Publisher

            self.publisher = Publisher(
                config.mqtt,
                a.tenant,
                a.device,
                on_receipt=self._receipt,
                on_puback=self._puback,
                backlog=lambda: int(self.outbox.backlog()["backlog"] or 0),
            )
        self._replay(self.outbox.meta_int("low_water"), alarms_seen)

    # ------------------------------------------------------------ start-up

    def _make_sources(self) -> list[Source]:
        """Build the sources at their resume states: those of the last commit, overridden by
        any journal record written after it."""
        commit_end, states = self.outbox.source_states()
        resume: dict[int, Any] = {int(k): v for k, v in states.items()}
        for _, index, state, _ in self.journal.replay(commit_end):
            resume[index] = state
        out = []
        for i, spec in enumerate(self.config.sources):
            cls = REGISTRY[spec.kind][1]
            out.append(cls(spec.config, resume.get(i), self.rejects))
        return out

    def _known_metrics(self) -> dict[str, str | None] | None:
        if self.config.agent.unknown_metrics == "accept":
            return None
        known: dict[str, str | None] = {}
        for src in self.sources:
            known.update(src.metrics())
        known.update({m.name: m.unit for m in self.config.metrics})
        return known

    def _restore_alarms(self) -> int:
        """Give the rules their memory as of the last checkpoint; returns the journal offset
        that memory has seen up to (0 when there is none)."""
        raw = self.outbox.meta("alarm_state")
        if not isinstance(raw, str):
            return 0
        offset, saved = json.loads(raw)
        self.alarms.restore(saved)
        raised = [name for name, rule in saved.items() if rule.get("raised")]
        if raised:
            log.info("alarms still raised since before the restart: %s", ", ".join(raised))
        return int(offset)

    def _alarm_checkpoint(self) -> dict[str, object]:
        """The rules' memory, with the journal offset it has seen up to, for the outbox."""
        return {"alarm_state": json.dumps([self.journal.end, self.alarms.snapshot()])}

    def _replay(self, low_water: int, alarms_seen: int = 0) -> None:
        """Feed journaled readings that no committed window holds back into the windower,
        and those the restored rules have not seen to the rules; streamed, so a long
        window's journal is never all in memory."""
        revisions = self.outbox.revisions()
        alarms_through = self.outbox.meta_int("alarms_through")
        window_start = self.windower.window_start
        fed = skipped = records = 0
        w, now = self.config.window, time.time()
        ts_min, ts_max = now - w.max_past_s, now + w.max_future_s
        for offset, _, _, readings in self.journal.replay(low_water):
            records += 1
            keep = []
            for r in readings:
                ts = r[0]
                if type(ts) in (int, float) and ts == ts and abs(ts) < 1e15:
                    committed = revisions.get(window_start(ts))
                    if committed is not None and offset < committed[1]:
                        skipped += 1
                        continue
                keep.append(r)
            if offset >= alarms_seen:
                events = self.alarms.check(readings, ts_min, ts_max)
                if offset >= alarms_through:
                    self._store_alarms(events, checkpoint=False)
            self.windower.ingest(keep, offset)
            fed += len(keep)
        if not records:
            return
        if not self.commit_due_windows():
            self.outbox.put([], self._alarm_checkpoint())
        log.info(
            "replayed %d journal records: %d readings back in open windows, %d already sent",
            records,
            fed,
            skipped,
        )

    # ------------------------------------------------------------ the loop

    def step(self) -> bool:
        """One pass of the loop; True when a source had more ready than one batch."""
        now = time.time()
        busy = False
        batch_max = self.config.agent.batch_max
        for i, src in enumerate(self.sources):
            try:
                readings = src.poll(now, batch_max)
            except OSError as exc:  # a file gone unreadable must not stop the other sources
                self.rejects("source_error", f"source {i} ({src.kind}): {exc}")
                continue
            if not readings:
                continue
            offset = self.journal.append(i, src.state(), readings)
            self.readings_polled += len(readings)
            w = self.config.window
            events = self.alarms.check(readings, now - w.max_past_s, now + w.max_future_s)
            if events:
                self._store_alarms(events)
            self.windower.ingest(readings, offset)
            busy = busy or len(readings) >= batch_max
        self.commit_due_windows()
        if now >= self._next_heartbeat:
            self._next_heartbeat = now + self.config.health.interval_s
            self.queue_heartbeat(now)
        if now >= self._next_prune:
            self._next_prune = now + PRUNE_EVERY_S
            self._prune(now)
        self.send_due(now)
        return busy

    def commit_due_windows(self) -> list[ClosedWindow]:
        closed = self.windower.due()
        if not closed:
            return closed
        rows = [self._batch_row(w) for w in closed]
        self.journal.sync()
        low = self.windower.low_water_offset()
        end = self.journal.end
        low = end if low is None else low
        states = {str(i): s.state() for i, s in enumerate(self.sources)}
        self._log_shed(
            self.outbox.commit_windows(rows, end, low, states, meta=self._alarm_checkpoint())
        )
        self.journal.truncate_before(low)
        return closed

    def _batch_row(self, w: ClosedWindow) -> OutboxRow:
        batch_id, payload = encode_batch(
            tenant=self.tenant,
            device=self.device,
            window_start=w.start,
            window_end=w.end,
            revision=w.revision,
            metrics=[metric_summary(m) for m in w.metrics],
            agent=AGENT,
        )
        return OutboxRow(
            batch_id,
            "batch",
            self.topics["batch"],
            payload,
            time.time(),
            w.start,
            w.end,
            w.revision,
            w.count,
        )

    def _store_alarms(self, events: Sequence[AlarmEvent], *, checkpoint: bool = True) -> None:
        """Commit alarms at once, with the rules' memory unless replaying (mid-replay the
        journal's end is not where the rules have read up to)."""
        if not events:
            return
        self.journal.sync()  # `alarms_through` must not point past what a power cut keeps
        now = time.time()
        rows = []
        for e in events:
            alarm_id, payload = encode_alarm(e, tenant=self.tenant, device=self.device, agent=AGENT)
            rows.append(OutboxRow(alarm_id, "alarm", self.topics["alarm"], payload, now))
            log.info("alarm %s %s on %s: value %s", e.rule, e.state, e.metric, e.value)
        meta: dict[str, object] = {"alarms_through": self.journal.end}
        if checkpoint:
            meta.update(self._alarm_checkpoint())
        self._log_shed(self.outbox.put(rows, meta))

    def queue_heartbeat(self, now: float) -> None:
        if self.health is None:
            from edgebatch.edge.health import HealthProbe

            self.health = HealthProbe(self.config.agent.data_dir)
        figures = self.health.figures(
            outbox=self.outbox.backlog(),
            shed=self.outbox.counters(),
            rejected=dict(self.rejects.counts),
            last_send=self.last_send,
            extra={
                "open_windows": self.windower.open_windows,
                "readings_polled": self.readings_polled,
                "inflight": self.publisher.inflight if self.publisher else 0,
            },
        )
        hb_id, payload = encode_health(
            tenant=self.tenant, device=self.device, ts=now, agent=AGENT, figures=figures
        )
        row = OutboxRow(hb_id, "health", self.topics["health"], payload, now)
        self._log_shed(self.outbox.put([row]))

    def send_due(self, now: float) -> int:
        pub = self.publisher
        if pub is None:
            return 0
        room = pub.capacity(time.monotonic())
        if room <= 0:
            return 0
        due = self.outbox.take_due(now, self.config.mqtt.receipt_timeout_s, room)
        return pub.send(due, time.monotonic()) if due else 0

    def _prune(self, now: float) -> None:
        p = self.config.window
        horizon = now - p.max_past_s - p.size_s - p.allowed_lateness_s
        self.windower.prune(horizon)
        self.outbox.prune_windows(horizon)

    def _log_shed(self, decisions: Sequence[Any]) -> None:
        for d in decisions:
            log.warning("outbox full: %s %s (%s)", d.action, d.kind, d.reason)

    # ------------------------------------------------------------ acknowledgements

    def _receipt(self, receipt: Receipt) -> None:
        if self.outbox.retire(receipt.ids):
            self.last_send = time.time()

    def _puback(self, msg_id: str, kind: str) -> None:
        if kind == "health" and self.outbox.retire([msg_id]):
            self.last_send = time.time()

    # ------------------------------------------------------------ running

    def drained(self) -> bool:
        """Nothing more will ever be sent: sources exhausted, windows closed, outbox empty."""
        return (
            all(s.exhausted for s in self.sources)
            and self.windower.open_windows == 0
            and self.outbox.backlog()["backlog"] == 0
        )

    def run(self, *, until_drained: bool = False) -> int:
        """Loop until SIGTERM/SIGINT (or, with `until_drained`, until `drained()`)."""
        self._install_signal_handlers()
        idle = self.config.agent.poll_interval_s
        log.info("agent %s/%s running (%s)", self.tenant, self.device, AGENT)
        try:
            while not self.stop_requested.is_set():
                busy = self.step()
                if until_drained and self.drained():
                    break
                if self.publisher is not None:
                    self.publisher.loop(0.0 if busy else idle)
                elif not busy:
                    time.sleep(idle)
        finally:
            self.close()
        return 0

    def _install_signal_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: self.stop_requested.set())

    def close(self) -> None:
        """Stop cleanly; open windows stay in the journal and resume on the next start."""
        if self.publisher is not None:
            self.publisher.close()
        for src in self.sources:
            src.close()
        self.journal.close()
        self.outbox.close()


def _float_or_none(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) else None
