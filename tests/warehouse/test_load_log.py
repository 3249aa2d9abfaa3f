"""The bronze load's log in the landing zone: plans before data, resumes with the same files,
refuses a second planner for the same slot, never reuses an id, stays small."""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import pytest

from edgebatch.warehouse.landing import LandingZone, loads


def planned(zone: LandingZone, only: Iterable[str] | None = None) -> loads.LoadPlan:
    """`loads.plan` where the test has left something to load."""
    plan = loads.plan(zone, only)
    assert plan is not None, "nothing to load"
    return plan


def names(zone: LandingZone) -> list[str]:
    return sorted(Path(f.path).name for f in zone.store.list_files(zone.folder(loads.LOG)))


def test_a_plan_takes_what_landed_and_a_commit_marks_it_loaded(zone: LandingZone):
    first, second = zone.write("batch", b"1\n"), zone.write("alarm", b"2\n")
    assert loads.backlog(zone).files == 2
    plan = loads.plan(zone)
    assert plan is not None and not plan.resumed
    assert [f.name for f in plan.files] == [first.name, second.name]
    assert plan.uris("alarm") == [second.uri]
    assert loads.backlog(zone).files == 2  # planned is not loaded
    loads.commit(zone, plan)
    loads.commit(zone, plan)  # a resumed load that got as far marks again: harmless
    assert loads.backlog(zone).files == 0
    assert loads.loaded_files(zone) == {first.name, second.name}
    assert loads.plan(zone) is None


def test_an_unfinished_load_resumes_with_exactly_its_files(zone: LandingZone):
    first = zone.write("batch", b"1\n")
    plan = planned(zone)
    zone.write("batch", b"2\n")  # lands after the plan: not part of this load
    resumed = loads.plan(zone)
    assert resumed is not None and resumed.resumed
    assert (resumed.load_id, [f.name for f in resumed.files]) == (plan.load_id, [first.name])
    assert resumed.files[0].uri == first.uri
    loads.commit(zone, resumed)
    following = loads.plan(zone)
    assert following is not None and following.load_id > plan.load_id
    assert len(following.files) == 1 and following.files[0].name != first.name


def test_only_limits_a_new_plan_to_the_named_files(zone: LandingZone):
    first, second = zone.write("batch", b"1\n"), zone.write("batch", b"2\n")
    plan = planned(zone, [second.uri])
    assert [f.name for f in plan.files] == [second.name]
    loads.commit(zone, plan)
    assert loads.backlog(zone).files == 1 and loads.plan(zone, [second.name]) is None
    assert [f.name for f in planned(zone).files] == [first.name]


def test_two_planners_racing_for_one_slot_cannot_both_win(zone: LandingZone, monkeypatch):
    zone.write("batch", b"1\n")
    stale = loads.read_log(zone)  # what the second planner read before the first wrote
    winner = planned(zone)
    monkeypatch.setattr(loads, "read_log", lambda _zone: stale)
    with pytest.raises(loads.LoadConflict, match="at the same time"):
        loads.plan(zone)
    monkeypatch.undo()
    assert planned(zone).load_id == winner.load_id  # the next run resumes the winner


def test_ids_only_grow_even_when_the_log_is_lost(zone: LandingZone):
    """Delta skips a write whose txnVersion a table already holds: an id used twice would
    silently drop the second load's new files."""
    zone.write("batch", b"1\n")
    plan = planned(zone)
    loads.commit(zone, plan)
    shutil.rmtree(zone.folder(loads.LOG))
    zone.write("batch", b"2\n")
    again = planned(zone)
    assert again.load_id > plan.load_id and len(again.files) == 2


def test_compaction_folds_committed_loads_into_one_file_and_reads_the_same(zone: LandingZone):
    landed = []
    for i in range(3):
        landed.append(zone.write("batch", f"{i}\n".encode()).name)
        loads.commit(zone, planned(zone))
    unfinished_file = zone.write("batch", b"x\n").name
    unfinished = planned(zone)
    before = loads.read_log(zone)
    assert loads.compact(zone, every=4) is False
    assert loads.compact(zone, every=3) is True
    after = loads.read_log(zone)
    assert after.loaded() == before.loaded() == set(landed)
    assert after.taken() == before.taken() == {*landed, unfinished_file}
    last_committed = sorted(before.done)[-1]
    assert names(zone) == [
        f"plan-after-{last_committed:016d}.json",
        f"upto-{last_committed:016d}.json",
    ]
    resumed = planned(zone)
    assert resumed.resumed and resumed.load_id == unfinished.load_id
    loads.commit(zone, resumed)
    zone.write("batch", b"y\n")
    newer = planned(zone)
    assert newer.load_id > unfinished.load_id and len(newer.files) == 1


def test_a_compaction_cut_short_reads_the_same_and_is_finished_by_the_next(zone: LandingZone):
    for i in range(2):
        zone.write("batch", f"{i}\n".encode())
        loads.commit(zone, planned(zone))
    kept = {
        Path(f.path).name: Path(f.path).read_bytes()
        for f in zone.store.list_files(zone.folder(loads.LOG))
    }
    before = loads.read_log(zone).loaded()
    assert loads.compact(zone, every=2)
    for name, body in kept.items():  # as if the removals never ran
        (Path(zone.folder(loads.LOG)) / name).write_bytes(body)
    assert loads.read_log(zone).loaded() == before
    zone.write("batch", b"2\n")
    loads.commit(zone, planned(zone))
    assert loads.compact(zone, every=1)
    assert [n.split("-")[0] for n in names(zone)] == ["upto"]
    assert loads.backlog(zone).files == 0
