"""One scheduler leads at a time: the lease is a compare-and-set on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator

import pytest

from edgebatch.framework.scheduler import Cron, Schedule
from edgebatch.framework.state import StateStore
from tests.framework.scheduler.conftest import ManualClock, make_job


@pytest.fixture(params=["sqlite", "postgresql"])
def shared(request, tmp_path, clock: ManualClock) -> Iterator[StateStore]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'lease.db'}"
    else:
        url = request.getfixturevalue("pg").create_database(f"l_{uuid.uuid4().hex[:10]}")
    with StateStore(url, clock=clock) as store:
        yield store


def test_the_standby_takes_over_only_once_the_leaders_lease_has_expired(shared, clock):
    a = shared.take_leadership("scheduler", "a", ttl=10)
    assert a is not None and a.term == 1
    assert shared.take_leadership("scheduler", "b", ttl=10) is None
    clock.advance(8)
    assert shared.take_leadership("scheduler", "a", ttl=10) is not None  # renewed
    clock.advance(8)
    assert shared.take_leadership("scheduler", "b", ttl=10) is None  # 16 s on, renewed at 8
    clock.advance(3)
    b = shared.take_leadership("scheduler", "b", ttl=10)
    assert b is not None and b.holder == "b" and b.term == 2
    assert shared.take_leadership("scheduler", "a", ttl=10) is None  # a, back, stands by


def test_racing_schedulers_never_both_lead(shared):
    winners: list[str] = []
    barrier = threading.Barrier(8)

    def contend(name: str) -> None:
        barrier.wait()
        if shared.take_leadership("race", name, ttl=30) is not None:
            winners.append(name)

    threads = [threading.Thread(target=contend, args=(f"s{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(winners) == 1


def test_only_the_leader_schedules_and_a_clean_stop_hands_over_at_once(scheduler_for, store, clock):
    job = make_job("ticker", schedule=Schedule(triggers=[Cron("* * * * *", catch_up="all")]))
    first, second = scheduler_for(job, holder="first"), scheduler_for(job, holder="second")
    assert first.step().leader and not second.step().leader
    for _ in range(24):  # two minutes, a pass of each every 5 s
        clock.advance(5)
        assert first.step().leader and not second.step().leader
    assert len(store.list_runs(job="ticker")) == 2
    first.resign()
    report = second.step()
    assert report.leader and report.term == 2 and report.enqueued == []
    assert len(store.list_runs(job="ticker")) == 2
