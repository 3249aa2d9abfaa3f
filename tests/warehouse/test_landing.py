"""The landing zone on a local disk: files are whole or absent, listed in order, counted as
backlog until loaded."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from edgebatch.warehouse.landing import (
    LandingError,
    LandingZone,
    LocalStore,
    WebHdfsStore,
    open_zone,
)
from edgebatch.warehouse.uri import WarehouseRoot


def local(uri: str) -> Path:
    return Path(uri[len("file://") :])


def test_a_landed_file_holds_exactly_the_bytes_and_leaves_no_temporary(zone: LandingZone):
    f = zone.write("batch", b'{"a":1}\n{"a":2}\n', now=1_795_000_000.5)
    assert f.name.startswith("batch/date=2026-11-18/")
    assert local(f.uri).read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert f.size == 16
    assert os.listdir(local(f.uri).parent) == [local(f.uri).name]


def test_listing_skips_temporary_files_a_crash_left_and_keeps_landing_order(zone: LandingZone):
    first = zone.write("batch", b"1\n", now=1_795_000_000)
    second = zone.write("alarm", b"2\n", now=1_795_000_001)
    third = zone.write("batch", b"3\n", now=1_795_000_002)
    folder = local(first.uri).parent
    (folder / f".{local(first.uri).name}.1234abcd.tmp").write_bytes(b"half a fi")
    (folder / "_SUCCESS").write_bytes(b"")
    assert [f.name for f in zone.list()] == [first.name, second.name, third.name]
    assert [f.name for f in zone.list(["alarm"])] == [second.name]


def test_two_writers_with_the_same_name_never_overwrite_each_other(root: WarehouseRoot):
    a = LandingZone(root, LocalStore(), writer="same")
    b = LandingZone(root, LocalStore(), writer="same")
    fa, fb = a.write("batch", b"a\n", now=1.0), b.write("batch", b"b\n", now=1.0)
    assert fa.name != fb.name
    assert {local(fa.uri).read_bytes(), local(fb.uri).read_bytes()} == {b"a\n", b"b\n"}


def test_the_store_refuses_to_replace_an_existing_file(tmp_path: Path):
    target = tmp_path / "x.jsonl"
    LocalStore().write_atomic(str(target), b"first\n")
    with pytest.raises(LandingError, match="could not land"):
        LocalStore().write_atomic(str(target), b"second\n")
    assert target.read_bytes() == b"first\n"
    assert [p.name for p in tmp_path.iterdir()] == ["x.jsonl"]


def test_backlog_counts_what_is_not_loaded_and_the_age_of_the_oldest(zone: LandingZone):
    assert zone.backlog([]).files == 0
    assert zone.backlog([]).oldest_age_s is None
    files = [zone.write("batch", b"x\n"), zone.write("health", b"yy\n")]
    os.utime(local(files[0].uri), (1000.0, 1000.0))
    backlog = zone.backlog([], now=1100.0 + 0)
    assert (backlog.files, backlog.bytes, backlog.by_kind) == (2, 5, {"batch": 1, "health": 1})
    assert backlog.oldest_age_s == pytest.approx(100.0)
    assert zone.backlog([files[0].name]).files == 1


def test_unknown_kinds_and_escaping_roots_are_refused(zone: LandingZone):
    with pytest.raises(ValueError, match="unknown landing kind"):
        zone.write("status", b"x\n")


def test_open_zone_picks_the_store_from_the_root_scheme(tmp_path: Path):
    assert isinstance(open_zone(WarehouseRoot.parse(tmp_path.as_uri())).store, LocalStore)
    hdfs = open_zone(WarehouseRoot.parse("hdfs://nn.example:8020/wh"))
    assert isinstance(hdfs.store, WebHdfsStore)
    assert hdfs.store.url == "http://nn.example:9870"
