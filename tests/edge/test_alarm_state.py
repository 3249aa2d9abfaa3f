"""The rules' memory survives a restart: an alarm raised before it stays raised (no second
"raised" under a new id) and is cleared once after it, against the limit it was raised on."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from edgebatch.edge.agent import Agent
from edgebatch.edge.config import AgentConfig, from_dict
from edgebatch.edge.wire import Alarm, parse_message
from tests.edge.helpers import agent_config


def _config(tmp_path: Path, readings: Path) -> AgentConfig:
    return from_dict(
        agent_config(
            tmp_path / "agent",
            None,
            window={"size_s": 1.0, "allowed_lateness_s": 0.0, "idle_timeout_s": 3600.0},
            health={"interval_s": 3600.0},
            alarm=[
                {"name": "hot", "metric": "temp", "above": 80.0, "below": -10.0, "hysteresis": 5.0}
            ],
            metric=[{"name": "temp", "unit": "C"}],
            source=[{"kind": "file", "path": str(readings)}],
        ),
        environ={},
    )


def _feed(agent: Agent, readings: Path, values: list[tuple[float, float]]) -> None:
    """One journal record per reading: a step after each line."""
    for ts, value in values:
        with readings.open("a") as fh:
            fh.write(json.dumps({"ts": ts, "metric": "temp", "value": value}) + "\n")
        agent.step()


def _alarms(agent: Agent) -> list[Alarm]:
    rows = agent.outbox.db.execute("SELECT topic, payload FROM outbox WHERE kind = 'alarm'")
    alarms = [parse_message(t, p) for t, p in rows]
    wired = [a for a in alarms if isinstance(a, Alarm)]
    assert len(wired) == len(alarms)
    return sorted(wired, key=lambda a: a.event.ts)


@pytest.mark.parametrize("crash", [False, True], ids=["clean-stop", "kill-9"])
def test_a_raised_alarm_stays_raised_across_a_restart_and_clears_once(tmp_path: Path, crash):
    readings = tmp_path / "readings.jsonl"
    readings.touch()
    config = _config(tmp_path, readings)
    t0 = float(int(time.time()) - 600)

    agent = Agent(config, connect=False)
    # Raised at t0; windows close as the watermark moves on, so the low-water mark passes
    # the record that raised it and a restart no longer replays that record.
    _feed(agent, readings, [(t0 + i, 90.0) for i in range(6)])
    assert agent.outbox.meta_int("low_water") > 0
    (raised,) = _alarms(agent)
    assert (raised.event.state, raised.event.threshold) == ("raised", 80.0)
    if crash:
        agent.journal._fh.close()
        agent.outbox.db.close()
    else:
        agent.close()

    agent = Agent(config, connect=False)
    _feed(agent, readings, [(t0 + 6 + i, 91.0) for i in range(3)])  # still above
    assert [a.alarm_id for a in _alarms(agent)] == [raised.alarm_id]
    _feed(agent, readings, [(t0 + 9, 60.0), (t0 + 10, 90.0)])  # back inside, then out again
    states = [(a.event.state, a.event.value, a.event.threshold) for a in _alarms(agent)]
    assert states == [("raised", 90.0, 80.0), ("cleared", 60.0, 80.0), ("raised", 90.0, 80.0)]
    agent.close()


def test_the_rules_memory_is_dropped_when_a_rule_watches_another_metric(tmp_path: Path):
    from edgebatch.edge.alarms import AlarmEngine, AlarmRule

    before = AlarmEngine([AlarmRule("hot", "temp", above=80.0)])
    assert before.check([(1.0, "temp", 90.0, None)])[0].state == "raised"
    same = AlarmEngine([AlarmRule("hot", "temp", above=80.0)])
    same.restore(before.snapshot())
    assert same.check([(2.0, "temp", 91.0, None)]) == []  # still raised: no second raise
    moved = AlarmEngine([AlarmRule("hot", "pressure", above=80.0)])
    moved.restore(before.snapshot())
    assert moved.check([(2.0, "pressure", 91.0, None)])[0].state == "raised"
