"""Reference data from CSV into Delta: registry, tariffs, consent, customers, sites,
events and batches.

A folder holds `devices.csv`, `tariffs.csv`, `consent.csv`, `customers.csv`, `sites.csv`,
`events.csv` (special-event days) and `batches.csv` (production batches); any may be
missing (see `examples/reference/` and docs/silver.md for their columns). Each file is
read and checked in the driver (reference data is small), and every tenant it names has its
rows in the table replaced by the file's: a tenant's reload never touches another
tenant, and a reload of the same files commits nothing at all (the table version stays).

    edgebatch run reference_load --param source=examples/reference
    spark-submit --properties-file spark-defaults.conf jobs/reference_load.py \
        --param source=examples/reference
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgebatch.framework.definitions import Retry, job
from edgebatch.framework.entry import main
from edgebatch.framework.errors import FrameworkError
from edgebatch.framework.partitions import Unpartitioned
from edgebatch.warehouse.reference import (
    BATCHES,
    BILL_LANGUAGES,
    CONSENT,
    CONSENT_STATUSES,
    CUSTOMERS,
    DEVICE_KINDS,
    DEVICES,
    EVENT_ALL_ROUTES,
    EVENTS,
    SITES,
    SUBJECT_TYPES,
    TARIFFS,
)
from edgebatch.warehouse.tables import TableSpec


class ReferenceDataError(FrameworkError):
    """A reference CSV that cannot be loaded: names file, line and column."""


Parser = Callable[[str], Any]


def _text(value: str) -> str:
    if not value:
        raise ValueError("is empty")
    return value


def _optional(parse: Parser) -> Parser:
    return lambda v: parse(v) if v else None


def _one_of(choices: tuple[str, ...]) -> Parser:
    def parse(value: str) -> str:
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}, got {value!r}")
        return value

    return parse


def _date(value: str) -> dt.date:
    return dt.date.fromisoformat(value)


def _timestamp(value: str) -> dt.datetime:
    ts = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    if ts.tzinfo is None:
        raise ValueError(f"{value!r} has no time zone (write 2026-11-01T08:00:00Z)")
    return ts.astimezone(dt.UTC)


def _decimal(value: str) -> decimal.Decimal:
    try:
        return decimal.Decimal(value)
    except decimal.InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None


# file -> (table, column -> parser); every column of the table, in the table's order.
FILES: dict[str, tuple[TableSpec, dict[str, Parser]]] = {
    "devices.csv": (
        DEVICES,
        {
            "tenant": _text,
            "device": _text,
            "site": _optional(str),
            "kind": _one_of(DEVICE_KINDS),
            "subject_type": _one_of(SUBJECT_TYPES),
            "subject": _text,
            "tariff_class": _optional(str),
            "installed_on": _date,
            "removed_on": _optional(_date),
        },
    ),
    "tariffs.csv": (
        TARIFFS,
        {
            "tenant": _text,
            "tariff_class": _text,
            "valid_from": _date,
            "valid_to": _optional(_date),
            "tier": int,
            "tier_from": _decimal,
            "unit": _text,
            "unit_price": _decimal,
            "fixed_fee": _decimal,
            "currency": _text,
        },
    ),
    "consent.csv": (
        CONSENT,
        {
            "tenant": _text,
            "subject": _text,
            "status": _one_of(CONSENT_STATUSES),
            "at": _timestamp,
            "source": _optional(str),
        },
    ),
}


# -- water billing: customers (name, bill language) and site capacities.
def _capacity(value: str) -> decimal.Decimal:
    parsed = _decimal(value)
    if parsed <= 0:
        raise ValueError("must be a positive number of m3 per day")
    return parsed


FILES["customers.csv"] = (
    CUSTOMERS,
    {
        "tenant": _text,
        "customer": _text,
        "name": _text,
        "language": _one_of(BILL_LANGUAGES),
    },
)
FILES["sites.csv"] = (
    SITES,
    {
        "tenant": _text,
        "site": _text,
        "name": _optional(str),
        "capacity_m3_per_day": _capacity,
    },
)


# -- end water billing
# --- Special-event days (traffic), `reference/events`: `routes` is `all` or route names
# separated by `;`.
def _routes(value: str) -> str:
    if value == EVENT_ALL_ROUTES:
        return value
    names = [name.strip() for name in value.split(";")]
    if not value or not all(names):
        raise ValueError(f"must be {EVENT_ALL_ROUTES!r} or route names separated by ';'")
    if EVENT_ALL_ROUTES in names:
        raise ValueError(f"names {EVENT_ALL_ROUTES!r} beside routes; write it alone")
    return ";".join(names)


FILES["events.csv"] = (
    EVENTS,
    {"tenant": _text, "date": _date, "name": _text, "routes": _routes},
)
# -- production batches (bottling OEE) ------------------------------------------------------


def _positive(value: str) -> float:
    number = float(value)
    if not (number > 0 and math.isfinite(number)):
        raise ValueError("must be a number above 0")
    return number


FILES["batches.csv"] = (
    BATCHES,
    {
        "tenant": _text,
        "line": _text,
        "batch": _text,
        "product": _optional(str),
        "planned_start": _timestamp,
        "planned_end": _timestamp,
        "ideal_rate": _positive,
    },
)


def read_csv(path: Path, parsers: dict[str, Parser], keys: tuple[str, ...]) -> list[tuple]:
    """Rows of `path` as tuples in `parsers`' column order, checked, keys unique."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in parsers if c not in header]
        extra = [c for c in header if c not in parsers]
        if missing or extra:
            raise ReferenceDataError(
                f"{path}: columns must be {', '.join(parsers)}"
                + (f"; missing {', '.join(missing)}" if missing else "")
                + (f"; unknown {', '.join(extra)}" if extra else "")
            )
        rows: list[tuple] = []
        seen: dict[tuple, int] = {}
        for record in reader:
            line = reader.line_num
            values = []
            for column, parse in parsers.items():
                raw = (record[column] or "").strip()
                try:
                    values.append(parse(raw))
                except ValueError as exc:
                    raise ReferenceDataError(
                        f"{path}, line {line}, column {column!r}: {raw!r} {exc}"
                    ) from None
            row = tuple(values)
            key = tuple(row[list(parsers).index(k)] for k in keys)
            if key in seen:
                raise ReferenceDataError(
                    f"{path}, line {line}: {dict(zip(keys, key, strict=True))} repeats line "
                    f"{seen[key]}"
                )
            seen[key] = line
            rows.append(row)
    return rows


def _check_validity(path: Path, rows: list[tuple], start: int, end: int) -> None:
    for i, row in enumerate(rows):
        if row[end] is not None and row[end] <= row[start]:
            raise ReferenceDataError(
                f"{path}, data row {i + 1}: ends ({row[end]}) on or before it starts ({row[start]})"
            )


def source_folder(ctx) -> Path:
    given = ctx.params.get("source")
    folder = Path(given) if given else ctx.settings.home / "reference"
    if not folder.is_dir():
        raise ReferenceDataError(
            f"job reference_load: CSV folder {folder} does not exist; "
            "pass --param source=DIR (a folder with devices.csv, tariffs.csv, consent.csv)"
        )
    return folder


@job(
    inputs=[],
    outputs=[spec.name for spec, _ in FILES.values()],
    partitions=Unpartitioned(),
    pool="default",
    priority=60,
    retry=Retry(attempts=2, backoff_s=5),
    timeout_s=900,
    tags=("reference",),
)
def reference_load(ctx):
    """Load the device registry, tariffs and consent from CSV, replacing per tenant."""
    from edgebatch.warehouse.reference import read_reference
    from edgebatch.warehouse.tables import ensure_table, replace_partition

    folder = source_folder(ctx)
    loaded = 0
    for file_name, (spec, parsers) in FILES.items():
        path = folder / file_name
        if not path.is_file():
            ctx.log.info(
                "reference: %s not found in %s; %s left as it is", file_name, folder, spec.name
            )
            continue
        rows = read_csv(path, parsers, spec.keys)
        if spec is DEVICES:
            _check_validity(path, rows, 7, 8)
        elif spec is TARIFFS:
            _check_validity(path, rows, 2, 3)
        elif spec is BATCHES:
            _check_validity(path, rows, 4, 5)
        ctx.count_in(len(rows))
        tenants = sorted({row[0] for row in rows})
        if not tenants:
            ctx.log.info("reference: %s has no rows; %s left as it is", path, spec.name)
            continue
        new = ctx.spark.createDataFrame(rows, schema=spec.struct())
        ensure_table(ctx.spark, ctx.root, spec)
        where = "tenant IN (" + ", ".join(_quote(t) for t in tenants) + ")"
        old = read_reference(ctx.spark, ctx.root, spec).where(where)
        # Same number of rows first (one small scan): a first load or a changed file is
        # then known at once, and only a same-sized file pays for the two comparisons.
        if (
            old.count() == len(rows)
            and old.exceptAll(new).isEmpty()
            and new.exceptAll(old).isEmpty()
        ):
            ctx.log.info("reference: %s unchanged for %s; nothing committed", spec.name, tenants)
            continue
        replace_partition(ctx.spark, ctx.root, spec, new, where, user_metadata=_tag(ctx))
        loaded += len(rows)
        ctx.log.info("reference: %s replaced for %s with %d rows", spec.name, tenants, len(rows))
    ctx.rows_out += loaded
    return None


def _tag(ctx) -> str:
    return f"edgebatch:{ctx.job.name}:run={ctx.run_id}:it={ctx.iteration_id}:a={ctx.attempt}"


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


if __name__ == "__main__":
    raise SystemExit(main(reference_load))
