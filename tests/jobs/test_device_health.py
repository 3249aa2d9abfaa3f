"""Device health over landed heartbeats: every figure of `gold/device_health_daily` and
`gold/silent_devices` equals a plain-Python computation over the same landing files and
the example registry (a silence within a day, one to the day's end, devices silent all
month, last seen in an earlier month, a device installed and one removed mid-month, an
unregistered device rolled up but never called silent); rerunning the month changes
nothing."""

from __future__ import annotations

import datetime as dt
import math
import random
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from edgebatch.edge.wire import encode_health, format_ts, topic
from tests.support.landed import Landing, Warehouse, csv_rows, lands, ts, utc

pytestmark = [pytest.mark.integration]

MONTH = "2026-11"
FIRST, END = dt.datetime(2026, 11, 1, tzinfo=dt.UTC), dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
SILENT_AFTER_S = 15 * 60
STEP = dt.timedelta(minutes=5)
# device -> (first heartbeat, end (excluded), silences (from, to) without heartbeats)
SENDERS = {
    ("demo-bottling", "line-1"): ("2026-11-01T00:00:00Z", "2026-11-04T00:00:00Z",
                                  [("2026-11-02T10:00:00Z", "2026-11-02T11:00:00Z")]),
    ("demo-bottling", "line-2"): ("2026-11-01T00:02:00Z", "2026-11-03T18:00:00Z", []),
    ("demo-water", "meter-001"): ("2026-11-01T06:00:00Z", "2026-11-01T12:00:00Z", []),
    ("demo-water", "meter-005"): ("2026-11-18T00:00:00Z", "2026-11-19T00:00:00Z", []),
    # not in the registry; and a device last heard of in October
    ("demo-water", "meter-999"): ("2026-11-02T08:00:00Z", "2026-11-02T08:50:00Z", []),
    ("demo-bottling", "line-3"): ("2026-10-31T23:50:00Z", "2026-10-31T23:55:00Z", []),
}  # fmt: skip


def _health(tenant: str, device: str, at: dt.datetime, rng: random.Random, n: int) -> tuple:
    figures = {
        "uptime_s": 1000.0 + n * 300,
        "cpu_percent": round(rng.uniform(1, 95), 2),
        "memory_percent": round(rng.uniform(20, 80), 2),
        "disk_percent": round(rng.uniform(40, 60), 2),
        "load": [round(rng.uniform(0, 4), 3), 0.5, 0.4],
        "temperature_c": None if rng.random() < 0.2 else round(rng.gauss(45, 5), 1),
        "process": {"rss_bytes": 1000, "cpu_percent": 1.0, "uptime_s": 5.0, "threads": 4},
        "outbox": {"backlog": rng.randint(0, 50), "bytes": 100},
        "shed": {
            "coarsened": n // 40,
            "dropped_heartbeats": n // 100,
            "dropped_summaries": n // 150,
            "dropped_readings": 0,
        },
        "rejected": {},
        "last_send": format_ts(at.timestamp() - 7),
    }
    _, payload = encode_health(
        tenant=tenant, device=device, ts=at.timestamp(), agent="test/1", figures=figures
    )
    return topic(tenant, device, "health"), payload, at.timestamp() + 2


@lands("device_health")
def _landing() -> Landing:
    """Every sender's heartbeats, five minutes apart but for its silences."""
    rng = random.Random(18)
    out = []
    for (tenant, device), (first, end, silences) in SENDERS.items():
        at, n = ts(first), 0
        while at < ts(end):
            if not any(ts(a) <= at < ts(b) for a, b in silences):
                out.append(_health(tenant, device, at, rng, n))
                n += 1
            at += STEP
    out.append(out[10])  # landed twice: one heartbeat
    landing = Landing()
    landing.add(out)
    return landing


def _beats(w: Warehouse) -> dict[tuple[str, str], list[dict[str, Any]]]:
    """Heartbeats per device from the landing files, in time order, each once."""
    beats: dict[tuple[str, str], dict[dt.datetime, dict]] = defaultdict(dict)
    for msg in w.payloads("health"):
        shed = msg["shed"]
        beats[(msg["tenant"], msg["device"])][ts(msg["ts"])] = {
            "ts": ts(msg["ts"]),
            "cpu_percent": msg["cpu_percent"],
            "memory_percent": msg["memory_percent"],
            "disk_percent": msg["disk_percent"],
            "load1": msg["load"][0],
            "temperature_c": msg["temperature_c"],
            "outbox_backlog": msg["outbox"]["backlog"],
            "shed_count": shed["dropped_heartbeats"]
            + shed["dropped_summaries"]
            + shed["dropped_readings"],
            "coarsened_count": shed["coarsened"],
        }
    return {k: [v[t] for t in sorted(v)] for k, v in beats.items()}


def _longest(points: list[dt.datetime]) -> tuple[float, dt.datetime, dt.datetime]:
    gaps = [((b - a).total_seconds(), a, b) for a, b in zip(points, points[1:], strict=False)]
    return max(gaps)  # the longest; of equal ones, the latest


def expected_daily(beats) -> dict[tuple, dict[str, Any]]:
    out = {}
    for (tenant, device), rows in beats.items():
        days: dict[dt.date, list[dict]] = defaultdict(list)
        for r in rows:
            if FIRST <= r["ts"] < END:
                days[r["ts"].date()].append(r)
        for day, rs in days.items():
            row: dict[str, Any] = {
                "tenant": tenant, "month": FIRST.date(), "date": day, "device": device,
                "heartbeats": len(rs), "first_seen": rs[0]["ts"], "last_seen": rs[-1]["ts"],
                "longest_gap_s": _longest([r["ts"] for r in rs])[0] if len(rs) > 1 else None,
            }  # fmt: skip
            for c in ("cpu_percent", "memory_percent", "disk_percent", "load1", "temperature_c"):
                values = [r[c] for r in rs if r[c] is not None]
                row[f"{c}_min"] = min(values, default=None)
                row[f"{c}_avg"] = sum(values) / len(values) if values else None
                row[f"{c}_max"] = max(values, default=None)
            backlog = [r["outbox_backlog"] for r in rs]
            row.update(
                outbox_backlog_avg=sum(backlog) / len(backlog),
                outbox_backlog_max=max(backlog),
                outbox_backlog_last=backlog[-1],
                shed_count_last=rs[-1]["shed_count"],
                shed_during_day=rs[-1]["shed_count"] - rs[0]["shed_count"],
                coarsened_count_last=rs[-1]["coarsened_count"],
                coarsened_during_day=rs[-1]["coarsened_count"] - rs[0]["coarsened_count"],
            )
            out[(tenant, device, day)] = row
    return out


def expected_silent(beats, registry: Path) -> dict[tuple, dict[str, Any]]:
    days: dict[tuple, dict[str, Any]] = {}
    for r in csv_rows(registry):
        installed = dt.date.fromisoformat(r["installed_on"])
        removed = dt.date.fromisoformat(r["removed_on"]) if r["removed_on"] else None
        day = FIRST.date()
        while day < END.date():
            if installed <= day and (removed is None or day < removed):
                days[(r["tenant"], r["device"], day)] = {
                    "kind": r["kind"],
                    "site": r["site"] or None,
                }
            day += dt.timedelta(days=1)
    out = {}
    for (tenant, device, day), reg in days.items():
        start = dt.datetime.combine(day, dt.time(), dt.UTC)
        end = start + dt.timedelta(days=1)
        times = [b["ts"] for b in beats.get((tenant, device), [])]
        inside = [t for t in times if start <= t < end]
        s, a, b = _longest([start, *inside, end])
        if s <= SILENT_AFTER_S:
            continue
        before = [t for t in times if t <= a]
        out[(tenant, device, day)] = {
            "tenant": tenant, "month": FIRST.date(), "date": day, "device": device, **reg,
            "heartbeats": len(inside), "silent_from": a, "silent_to": b, "silent_s": s,
            "silent_at_end": b == end, "last_seen": max(before, default=None),
        }  # fmt: skip
    return out


@pytest.fixture(scope="module")
def health(gold_warehouse: Warehouse) -> Warehouse:
    """The session's warehouse (heartbeats landed, the example registry, bronze loaded),
    and one device_health run for November."""
    gold_warehouse.run("device_health", partitions=(MONTH,))
    return gold_warehouse


def _table(w: Warehouse, name: str) -> list[dict[str, Any]]:
    return [{k: utc(v) for k, v in r.items()} for r in w.rows(name)]


def _same(got: dict[str, Any], want: dict[str, Any], where: Any) -> None:
    assert set(got) == set(want), where
    for column, value in got.items():
        wanted = want[column]
        if isinstance(wanted, float) and value is not None:
            assert math.isclose(value, wanted, rel_tol=1e-9, abs_tol=1e-9), (where, column)
        else:
            assert value == wanted, (where, column, value, wanted)


def test_the_daily_rollup_equals_the_plain_python_one_over_the_landing_files(health):
    p = health
    want = expected_daily(_beats(p))
    got = {(r["tenant"], r["device"], r["date"]): r for r in _table(p, "gold/device_health_daily")}

    assert sorted(got) == sorted(want)
    assert ("demo-water", "meter-999", dt.date(2026, 11, 2)) in got  # unregistered: rolled up
    assert got[("demo-bottling", "line-1", dt.date(2026, 11, 2))]["longest_gap_s"] == 65 * 60
    for key, row in got.items():
        _same(row, want[key], key)


def test_silent_devices_equal_the_plain_python_ones(health):
    p = health
    want = expected_silent(_beats(p), p.reference / "devices.csv")
    got = {(r["tenant"], r["device"], r["date"]): r for r in _table(p, "gold/silent_devices")}

    assert sorted(got) == sorted(want)
    nov = lambda d: dt.date(2026, 11, d)  # noqa: E731
    assert ("demo-bottling", "line-1", nov(1)) not in got
    assert got[("demo-bottling", "line-1", nov(2))]["silent_s"] == 65 * 60
    assert got[("demo-bottling", "line-2", nov(3))]["silent_at_end"] is True
    assert got[("demo-bottling", "line-3", nov(1))]["last_seen"] == ts("2026-10-31T23:50:00Z")
    assert ("demo-water", "meter-005", nov(20)) not in got  # removed on the 20th
    assert ("demo-water", "meter-004", nov(11)) not in got  # installed on the 12th
    assert ("demo-water", "meter-004", nov(12)) in got
    assert not any(k[1] == "meter-999" for k in got)  # not in the registry
    for key, row in got.items():
        _same(row, want[key], key)


def test_rerunning_the_month_changes_no_row(health):
    p = health
    before = {
        n: sorted(map(repr, _table(p, n)))
        for n in ("gold/device_health_daily", "gold/silent_devices")
    }

    p.run("device_health", partitions=(MONTH,), rerun=True)

    after = {n: sorted(map(repr, _table(p, n))) for n in before}
    assert after == before
