"""Sources (file tail with rotation, CSV, FIFO, simulator) and the reading journal."""

from __future__ import annotations

import json
import os
from pathlib import Path

from edgebatch.edge.journal import Journal
from edgebatch.edge.sources import (
    FileSource,
    FileSourceConfig,
    SimulatorConfig,
    SimulatorSource,
    Source,
)
from edgebatch.edge.window import Reading, Rejects
from tests.support.wait import wait_until

T0 = 1_767_225_600.0


def line(i: int) -> str:
    return json.dumps({"ts": T0 + i, "metric": "flow", "value": float(i), "unit": "l"}) + "\n"


def drain(src: Source, now: float = 0.0) -> list[Reading]:
    out: list[Reading] = []
    while batch := src.poll(now, 1000):
        out += batch
    return out


def test_a_tailed_file_survives_rotation_truncation_and_a_restart(tmp_path: Path):
    path = tmp_path / "readings.jsonl"
    path.write_text("".join(line(i) for i in range(5)))
    src = FileSource(FileSourceConfig(str(path)), None, Rejects())
    assert [r[2] for r in drain(src)] == [0, 1, 2, 3, 4]
    with path.open("a") as fh:
        fh.write(line(5) + line(6)[:10])  # a half-written line waits for its end
    assert [r[2] for r in drain(src)] == [5]
    with path.open("a") as fh:
        fh.write(line(6)[10:])
    path.rename(tmp_path / "readings.jsonl.1")
    with (tmp_path / "readings.jsonl.1").open("a") as fh:
        fh.write(line(7))  # written after the rename, before the new file exists
    path.write_text(line(8))
    assert [r[2] for r in drain(src)] == [6, 7, 8]

    state = src.state()
    src.close()
    with path.open("a") as fh:
        fh.write(line(9))
    resumed = FileSource(FileSourceConfig(str(path)), json.loads(json.dumps(state)), Rejects())
    assert [r[2] for r in drain(resumed)] == [9]
    path.write_text(line(10))  # truncated and rewritten (copytruncate rotation)
    assert [r[2] for r in drain(resumed)] == [10]


def test_a_restart_finds_a_file_rotated_while_the_agent_was_down(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_text(line(0) + line(1))
    src = FileSource(FileSourceConfig(str(path)), None, Rejects())
    src.poll(0, 1)
    state = src.state()
    src.close()
    with path.open("a") as fh:
        fh.write(line(2))
    path.rename(tmp_path / "r.jsonl.1")
    path.write_text(line(3))
    resumed = FileSource(FileSourceConfig(str(path)), state, Rejects())
    assert [r[2] for r in drain(resumed)] == [2, 3]


def test_bad_lines_are_counted_with_a_reason_and_good_ones_still_read(tmp_path: Path):
    path = tmp_path / "r.csv"
    path.write_bytes(
        b"ts,metric,value,unit\n"
        b"1767225600,flow,1.5,l\n"
        b"2026-01-01T00:00:01Z,flow,2.5\n"
        b"1767225602,flow,abc\n"
        b"yesterday,flow,1\n"
        b"only,two\n" + b"1767225603,flow," + b"9" * 5000 + b"\n" + b"\xff\xfe,flow,1\n"
        b"1767225604,flow,nan\n"
    )
    rejects = Rejects()
    src = FileSource(FileSourceConfig(str(path), format="csv", max_line_bytes=200), None, rejects)
    got = drain(src)
    assert [(r[1], r[2], r[3]) for r in got[:2]] == [("flow", 1.5, "l"), ("flow", 2.5, None)]
    assert got[1][0] == T0 + 1
    assert len(got) == 3 and got[2][2] != got[2][2]  # NaN is read; the windower refuses it
    assert dict(rejects.counts) == {
        "not_numeric": 1,
        "bad_timestamp": 1,
        "bad_line": 2,
        "oversized_line": 1,
    }


def test_a_json_integer_too_large_for_a_float_is_read_as_infinity_not_a_crash(tmp_path: Path):
    path = tmp_path / "r.jsonl"
    path.write_text('{"ts": 1767225600, "metric": "flow", "value": 1%s}\n' % ("0" * 400))
    (reading,) = drain(FileSource(FileSourceConfig(str(path)), None, Rejects()))
    assert reading[2] == float("inf")  # the windower counts it as not_finite


def test_a_fifo_is_read_as_lines_arrive(tmp_path: Path):
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    src = FileSource(FileSourceConfig(str(fifo)), None, Rejects())
    assert src.poll(0, 10) == []
    fd = os.open(fifo, os.O_WRONLY)
    try:
        os.write(fd, (line(1) + line(2)).encode())
        got: list[Reading] = []

        def two_lines() -> bool:
            got.extend(src.poll(0, 10))
            return len(got) >= 2

        wait_until(two_lines, 5, "two lines", 0.01)
        assert [r[2] for r in got] == [1, 2]
    finally:
        os.close(fd)
        src.close()


def test_the_simulator_produces_exactly_its_total_across_a_restart():
    cfg = SimulatorConfig(metric_count=3, rate_hz=10.0, total=95, realtime=False, start_ts=T0)
    a = SimulatorSource(cfg, None, Rejects())
    first = a.poll(0, 40)
    again = SimulatorSource(cfg, json.loads(json.dumps(a.state())), Rejects())
    rest = drain(again)
    assert len(first) + len(rest) == 95 and again.exhausted
    assert [r[0] for r in first + rest] == [T0 + i / 10 for i in range(95)]
    assert {r[1] for r in rest} == {"sim_00", "sim_01", "sim_02"}
    same = SimulatorSource(cfg, a.state(), Rejects())
    assert drain(same) == rest  # a restart from the same state replays the same readings


def test_the_journal_replays_from_an_offset_cuts_a_torn_tail_and_drops_old_segments(
    tmp_path: Path,
):
    j = Journal(tmp_path / "j", segment_bytes=300)
    offsets = [j.append(0, {"i": i}, [[T0 + i, "flow", float(i), None]]) for i in range(10)]
    j.close()
    segments = sorted((tmp_path / "j").glob("*.log"))
    assert len(segments) > 2
    with segments[-1].open("ab") as fh:
        fh.write(b"\x50\x00\x00\x00garbage")  # a record cut short by a crash
    j = Journal(tmp_path / "j", segment_bytes=300)
    got = list(j.replay(offsets[4]))
    assert [rec[0] for rec in got] == offsets[4:]
    assert [rec[2] for rec in got] == [{"i": i} for i in range(4, 10)]
    j.append(0, {"i": 10}, [])
    removed = j.truncate_before(offsets[6])
    assert removed > 0
    assert [rec[2]["i"] for rec in j.replay(offsets[6])] == [6, 7, 8, 9, 10]
