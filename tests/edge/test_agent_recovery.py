"""Exactly-once accounting through crashes: the agent runs as a subprocess against a real
Mosquitto; it is killed with SIGKILL mid-window and restarted, the broker is stopped and
started, and the broker is killed with SIGKILL once. A stand-in collector sends receipts.
The sum of `count` over the distinct summaries must equal the readings the simulator
produced, and a resend must be byte-for-byte its original."""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.edge.helpers import (
    ReceiptCollector,
    agent_config,
    parse_batch,
    start_agent,
    write_toml,
)
from tests.support.mosquitto import Mosquitto
from tests.support.wait import wait_until

if TYPE_CHECKING:
    from edgebatch.edge.agent import Agent
    from edgebatch.edge.window import Reading

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_every_reading_is_counted_once_through_agent_and_broker_crashes(
    make_broker: Callable[..., Mosquitto], tmp_path: Path
):
    own_broker = make_broker(autosave_interval=1)
    total = 2400
    config = agent_config(
        tmp_path / "agent",
        own_broker,
        source=[{"kind": "simulator", "metric_count": 4, "rate_hz": 300.0, "total": total}],
        alarm=[{"name": "spike", "metric": "sim_01", "kind": "threshold", "above": 13.5}],
    )
    path = write_toml(tmp_path / "agent.toml", config)
    log = tmp_path / "agent.log"
    collector = ReceiptCollector(own_broker)
    agent = start_agent(path, log)
    try:
        wait_until(lambda: collector.readings() > 0, 20, "the first summary")
        time.sleep(0.4)
        agent.send_signal(signal.SIGKILL)  # mid-window: 1 s windows, readings every 3 ms
        agent.wait(10)
        agent = start_agent(path, log)

        time.sleep(1.5)
        own_broker.stop()
        time.sleep(1.5)
        own_broker.start()

        time.sleep(1.5)
        own_broker.kill()
        time.sleep(0.5)
        own_broker.start()

        wait_until(lambda: collector.readings() >= total, 60, f"{total} readings summarised")
        time.sleep(2.0)  # resends after the receipt timeout must not add anything
        assert agent.poll() is None, log.read_text()[-3000:]
    finally:
        agent.send_signal(signal.SIGTERM)
        code = agent.wait(15)
        collector.close()
    assert code == 0, log.read_text()[-3000:]
    assert collector.rejected == []
    assert collector.readings() == total
    revisions = [b.revision for b in collector.batches.values()]
    assert revisions.count(0) >= total / 300 - 1  # about one summary per second of readings
    resent_differently = {i: p for i, p in collector.payloads.items() if len(p) > 1}
    assert resent_differently == {}
    assert collector.heartbeats, "heartbeats flowed"


def _crash(agent: Agent) -> None:
    """What kill -9 leaves: the files as written so far, nothing flushed or committed later."""
    agent.journal._fh.close()
    agent.outbox.db.close()


@settings(max_examples=8, deadline=None)
@given(
    crash_after=st.lists(st.integers(min_value=0, max_value=25), min_size=1, max_size=4),
    late_every=st.sampled_from([0, 7]),
)
def test_replay_counts_each_reading_once_whatever_the_crash_points(
    tmp_path_factory: pytest.TempPathFactory, crash_after: list[int], late_every: int
):
    """In-process and fast: crash the agent after any number of steps, several times; the
    committed summaries hold every reading exactly once, late ones in corrections."""
    from edgebatch.edge.agent import Agent
    from edgebatch.edge.config import from_dict

    total = 3000
    data = tmp_path_factory.mktemp("crashes")
    config = from_dict(
        agent_config(
            data,
            None,
            agent={"batch_max": 100},
            window={"size_s": 0.5, "allowed_lateness_s": 0.0, "idle_timeout_s": 0.02},
            health={"interval_s": 3600.0},
            source=[
                {
                    "kind": "simulator",
                    "metric_count": 3,
                    "rate_hz": 1000.0,
                    "total": total,
                    "realtime": False,
                    "start_ts": time.time() - 10,
                }
            ],
        ),  # fmt: skip
        environ={},
    )
    from edgebatch.edge.sources import SimulatorSource

    original = SimulatorSource.poll

    # With late_every, every 7th poll re-delivers its first reading a window late, as a
    # straggler would.
    def poll(self: SimulatorSource, now: float, max_n: int) -> list[Reading]:
        out = original(self, now, max_n)
        if out and self.i // 100 % late_every == 0:
            ts, name, value, unit = out[0]
            out[0] = (ts - 1.0, name, value, unit)
        return out

    with pytest.MonkeyPatch.context() as patch:
        if late_every:
            patch.setattr(SimulatorSource, "poll", poll)
        for steps in crash_after:
            agent = Agent(config, connect=False)
            for _ in range(steps):
                agent.step()
            _crash(agent)
        agent = Agent(config, connect=False)
        while not agent.sources[0].exhausted or agent.windower.open_windows:
            agent.step()
            time.sleep(0.005)
        rows = agent.outbox.db.execute(
            "SELECT topic, payload FROM outbox WHERE kind = 'batch'"
        ).fetchall()
        agent.close()
    batches = [parse_batch(t, bytes(p)) for t, p in rows]
    assert len({b.batch_id for b in batches}) == len(batches)
    assert sum(m.count for b in batches for m in b.metrics) == total
    if late_every:
        assert any(b.revision > 0 for b in batches)
