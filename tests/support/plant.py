"""A project of its own for the plant gold jobs' tests (OEE, device health): settings, a
runner on the suite's SparkSession, messages landed with the collector's own code, and
the landing files read back as plain JSON for the independent computations."""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import datetime as dt
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "reference"


@dataclasses.dataclass
class Project:
    home: Path
    settings: Any
    runner: Any
    zone: Any

    @property
    def root(self) -> Any:
        return self.runner.root

    @property
    def landing(self) -> Path:
        return self.home / "warehouse" / "landing"


@contextlib.contextmanager
def project(spark: Any, home: Path) -> Iterator[Project]:
    """A home with its own warehouse, SQLite state store and a runner of the project's jobs."""
    from edgebatch.framework.registry import discover
    from edgebatch.framework.runner import Runner
    from edgebatch.framework.state import StateStore
    from edgebatch.settings import Settings, StateSettings, WarehouseSettings
    from edgebatch.warehouse.landing import open_zone
    from edgebatch.warehouse.uri import WarehouseRoot

    home.mkdir(parents=True, exist_ok=True)
    settings = Settings(
        warehouse=WarehouseSettings(root=(home / "warehouse").as_uri()),
        state=StateSettings(url=f"sqlite:///{home / 'state.db'}"),
        home=home,
    )
    store = StateStore(settings.state_url)
    runner = Runner(spark, store, settings, discover(settings))
    try:
        yield Project(
            home, settings, runner, open_zone(WarehouseRoot.parse(settings.warehouse_root))
        )
    finally:
        runner.close()
        store.close()


def land(p: Project, messages: Iterable[tuple[str, bytes, float]]) -> None:
    """Land (topic, payload, received_at) messages as the collector does; none refused."""
    from edgebatch.warehouse.collector.direct import land_groups

    (landed,) = land_groups(p.zone, [list(messages)], "test")
    assert landed.quarantined == 0, landed.reasons


def landed_payloads(p: Project, kind: str) -> list[dict[str, Any]]:
    """Every payload of `kind` in the landing files, as JSON, in no particular order."""
    out = []
    for path in sorted((p.landing / kind).rglob("*.jsonl")):
        for line in path.read_text().splitlines():
            out.append(json.loads(line)["payload"])
    return out


def reference_folder(folder: Path, **files: str) -> Path:
    """The example registry and consent, plus `files` (name without .csv -> content)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("devices.csv", "consent.csv"):
        (folder / name).write_text((EXAMPLES / name).read_text())
    for name, text in files.items():
        (folder / f"{name}.csv").write_text(text)
    return folder


def csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def consented_subjects(folder: Path) -> set[tuple[str, str]]:
    """(tenant, subject) whose latest consent event is `granted` (a tie: withdrawn)."""
    latest: dict[tuple[str, str], tuple[dt.datetime, bool]] = {}
    for r in csv_rows(folder / "consent.csv"):
        key = (r["tenant"], r["subject"])
        event = (ts(r["at"]), r["status"] == "withdrawn")  # on a tie, the withdrawal wins
        if key not in latest or event > latest[key]:
            latest[key] = event
    return {k for k, (_, withdrawn) in latest.items() if not withdrawn}


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def utc(value: Any) -> Any:
    """Spark hands timestamps back as naive local times: make them aware UTC."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC)
    return value
