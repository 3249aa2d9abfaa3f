"""The billing benchmark's year: 2,000 water meters at 15-minute windows, and its reference data.

Built once and cached under `.cache/bench/billing/v<GENERATOR_VERSION>/` (a new version
builds a new folder; delete old ones by hand):

    parquet/readings/date=YYYY-MM-DD/*.parquet   the windows, silver/readings' columns
    reference/{devices,tariffs,consent,customers,sites}.csv
    warehouse/                                   a warehouse root holding the same windows
                                                 as `silver/readings` (Delta); the benchmark
                                                 adds the reference tables (`reference_load`)
    manifest.json                                rows, sizes and how long each step took

DuckDB writes the windows from `range()` (no Python loop touches a row), a month at a
time; `deltalake` then copies them into the declared `silver/readings` table (its
columns, types, nullability, partitioning and statistics columns), one file per day, the
layout the silver job itself leaves. Both engines of the benchmark read these same rows.
Each step leaves a mark when done, so an interrupted build resumes at the step it was in.

The values are chosen so any engine sums them exactly: a window's mean flow is a whole
number of 1/64 l/min and it holds 15 one-minute readings, so a window's litres (`sum`)
and any month's total are dyadic fractions far below 2**53, the same in every order of
addition. Bills can then be compared to the cent without a tolerance.

What the year holds besides plain meters (so every billing rule has work to do):
- tariff classes `residential`, `commercial`, `industrial`, each with three tiers and a
  price change on 16 July (mid-month), `commercial` also on 1 March;
- 30 meters moved to a new customer mid-month (two registry rows, windows all year),
  15 installed mid-year (no windows before), 15 removed mid-year (none after);
- gaps: two-hour blocks missing here and there (about 0.2 %), and for 20 meters a whole
  day (14 May) missing;
- consent granted for every customer, before the year starts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import shutil
import time
from pathlib import Path
from typing import Any

GENERATOR_VERSION = 1
# The warehouse copy's layout (silver/readings' partitioning and file order): a new one
# rebuilds `warehouse/` from the cached Parquet, not the Parquet.
SILVER_LAYOUT = 4
TENANT = "bench-water"
YEAR = 2025
METERS = 2000
WINDOW_MINUTES = 15
WINDOWS_PER_DAY = 24 * 60 // WINDOW_MINUTES
DAYS = (dt.date(YEAR + 1, 1, 1) - dt.date(YEAR, 1, 1)).days
WINDOWS = DAYS * WINDOWS_PER_DAY  # 35,040 per meter in a common year
METRIC = "flow"
UNIT = "l/min"
SITES = 20
LANGUAGES = ("en", "de", "es")
BEFORE_YEAR = dt.date(YEAR - 1, 6, 1)

# Meter numbers by what happens to them in the year.
MOVED = range(1940, 1970)
INSTALLED = range(1970, 1985)
REMOVED = range(1985, 2000)

REPO = Path(__file__).resolve().parents[1]
CACHE = REPO / ".cache" / "bench" / "billing"


def folder() -> Path:
    return CACHE / f"v{GENERATOR_VERSION}"


def device(m: int) -> str:
    return f"meter-{m:05d}"


def customer(m: int, moved_in: bool = False) -> str:
    return f"cust-{9 if moved_in else 1}{m:05d}"


def tariff_class(m: int) -> str:
    if m % 20 == 0:
        return "industrial"
    if m % 20 in (1, 2, 3):
        return "commercial"
    return "residential"


def registry() -> list[dict[str, Any]]:
    """The device registry rows: who each meter bills, from when to when."""
    rows: list[dict[str, Any]] = []
    for m in range(METERS):
        base = {
            "tenant": TENANT,
            "device": device(m),
            "site": f"site-{m % SITES:02d}",
            "kind": "water_meter",
            "subject_type": "customer",
            "subject": customer(m),
            "tariff_class": tariff_class(m),
            "installed_on": BEFORE_YEAR,
            "removed_on": None,
        }
        if m in MOVED:
            day = dt.date(YEAR, 2, 10) + dt.timedelta(days=10 * (m - MOVED.start))
            rows.append({**base, "removed_on": day})
            rows.append({**base, "subject": customer(m, moved_in=True), "installed_on": day})
        elif m in INSTALLED:
            day = dt.date(YEAR, 1, 20) + dt.timedelta(days=23 * (m - INSTALLED.start))
            rows.append({**base, "installed_on": day})
        elif m in REMOVED:
            day = dt.date(YEAR, 3, 7) + dt.timedelta(days=19 * (m - REMOVED.start))
            rows.append({**base, "removed_on": day})
        else:
            rows.append(base)
    return rows


# (class, valid_from, valid_to, [(tier_from m3, unit price)], fixed fee)
TARIFFS: tuple[tuple[str, dt.date, dt.date | None, tuple[tuple[str, str], ...], str], ...] = (
    ("residential", dt.date(2024, 1, 1), dt.date(YEAR, 7, 16),
     (("0", "1.850000"), ("10", "2.400000"), ("30", "3.100000")), "8.50"),
    ("residential", dt.date(YEAR, 7, 16), None,
     (("0", "1.950000"), ("10", "2.550000"), ("30", "3.300000")), "8.90"),
    ("commercial", dt.date(2024, 1, 1), dt.date(YEAR, 3, 1),
     (("0", "1.700000"), ("50", "2.100000"), ("200", "2.600000")), "25.00"),
    ("commercial", dt.date(YEAR, 3, 1), dt.date(YEAR, 7, 16),
     (("0", "1.750000"), ("50", "2.150000"), ("200", "2.700000")), "25.00"),
    ("commercial", dt.date(YEAR, 7, 16), None,
     (("0", "1.820000"), ("50", "2.230000"), ("200", "2.790000")), "27.50"),
    ("industrial", dt.date(2024, 1, 1), dt.date(YEAR, 7, 16),
     (("0", "1.400000"), ("500", "1.250000"), ("2000", "1.100000")), "120.00"),
    ("industrial", dt.date(YEAR, 7, 16), None,
     (("0", "1.480000"), ("500", "1.320000"), ("2000", "1.150000")), "125.00"),
)  # fmt: skip


def write_reference(out: Path) -> dict[str, int]:
    """The reference CSVs (the columns `reference_load` reads); rows per file."""
    out.mkdir(parents=True, exist_ok=True)
    devices = registry()
    subjects = sorted({str(r["subject"]) for r in devices})
    counts: dict[str, int] = {}

    def write(name: str, header: list[str], rows: list[list[Any]]) -> None:
        with (out / name).open("w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(header)
            w.writerows(["" if v is None else v for v in row] for row in rows)
        counts[name] = len(rows)

    dev_cols = list(devices[0])
    write("devices.csv", dev_cols, [[r[c] for c in dev_cols] for r in devices])
    tariffs = []
    for cls, start, end, tiers, fee in TARIFFS:
        for i, (tier_from, price) in enumerate(tiers, start=1):
            tariffs.append([TENANT, cls, start, end, i, tier_from, "m3", price, fee, "EUR"])
    header = "tenant tariff_class valid_from valid_to tier tier_from unit unit_price fixed_fee"
    write("tariffs.csv", [*header.split(" "), "currency"], tariffs)
    write(
        "consent.csv",
        ["tenant", "subject", "status", "at", "source"],
        [[TENANT, s, "granted", f"{BEFORE_YEAR}T00:00:00Z", "contract"] for s in subjects],
    )
    write(
        "customers.csv",
        ["tenant", "customer", "name", "language"],
        [[TENANT, s, f"Customer {s[5:]}", LANGUAGES[int(s[5:]) % 3]] for s in subjects],
    )
    write(
        "sites.csv",
        ["tenant", "site", "name", "capacity_m3_per_day"],
        [[TENANT, f"site-{i:02d}", f"Site {i}", "150.000"] for i in range(SITES)],
    )
    return counts


def readings_sql(devices_csv: Path, out: Path, month: int) -> str:
    """DuckDB SQL writing one month's windows as Parquet, one folder per day (hive style).

    A window's mean flow in 1/64 l/min follows the day (a morning peak) around a base that
    depends on the tariff class, with a deterministic jitter; a meter has a window only
    while a registry row holds its day, and not in its gaps.
    """
    start = dt.date(YEAR, month, 1)
    stop = dt.date(YEAR + month // 12, month % 12 + 1, 1)
    first = (start - dt.date(YEAR, 1, 1)).days * WINDOWS_PER_DAY
    end = (stop - dt.date(YEAR, 1, 1)).days * WINDOWS_PER_DAY
    return f"""
    COPY (
      WITH reg AS (
        SELECT device, subject, tariff_class, site,
               CAST(installed_on AS DATE) AS installed_on, CAST(removed_on AS DATE) AS removed_on,
               CAST(substr(device, 7) AS INTEGER) AS m
        FROM read_csv('{devices_csv}', header = true, all_varchar = true)
      ),
      meters AS (
        SELECT DISTINCT m, tariff_class,
          CASE tariff_class WHEN 'industrial' THEN 500 + (m * 37) % 400
                            WHEN 'commercial' THEN 80 + (m * 37) % 70
                            ELSE 12 + (m * 37) % 9 END AS base
        FROM reg
      ),
      w AS (
        SELECT m, base, i,
               TIMESTAMP '{YEAR}-01-01 00:00:00' + to_minutes(i * {WINDOW_MINUTES}) AS ws,
               ((i % {WINDOWS_PER_DAY}) * {WINDOW_MINUTES}) / 60.0 AS hour,
               (m * 7919 + i * 104729 + (i * i) % 7561) % 997 AS jitter
        FROM meters, range({first}, {end}) r(i)
        WHERE (m * 977 + (i // 8) * 131) % 500 <> 0
          AND NOT (m % 100 = 7 AND i // {WINDOWS_PER_DAY} = 133)
      ),
      k AS (
        SELECT w.*, greatest(0, CAST(round(
                 base * (1 + 0.6 * cos(2 * pi() * (hour - 7) / 24)) * (0.75 + jitter / 1994.0)
               ) AS BIGINT)) AS units
        FROM w
      )
      SELECT '{TENANT}' AS tenant, CAST(k.ws AS DATE) AS date,
             reg.device, '{METRIC}' AS metric,
             k.ws AS window_start, k.ws + to_minutes({WINDOW_MINUTES}) AS window_end,
             '{UNIT}' AS unit, 1 AS revisions, 0 AS last_revision,
             CAST({WINDOW_MINUTES} AS BIGINT) AS count,
             units * {WINDOW_MINUTES} / 64.0 AS sum,
             greatest(0, units - 3) / 64.0 AS min, (units + 3) / 64.0 AS max,
             units / 64.0 AS mean, CAST(NULL AS DOUBLE) AS m2, CAST(NULL AS DOUBLE) AS stddev,
             k.ws AS first_ts, k.ws + to_minutes({WINDOW_MINUTES - 1}) AS last_ts,
             CAST(NULL AS VARCHAR[]) AS sketches,
             reg.site, 'water_meter' AS kind, 'customer' AS subject_type, reg.subject,
             reg.tariff_class, k.ws + to_minutes({WINDOW_MINUTES}) + to_seconds(30) AS received_at
      FROM k JOIN reg ON reg.m = k.m
        AND CAST(k.ws AS DATE) >= reg.installed_on
        AND (reg.removed_on IS NULL OR CAST(k.ws AS DATE) < reg.removed_on)
    ) TO '{out}' (FORMAT parquet, PARTITION_BY (date), COMPRESSION zstd,
                  OVERWRITE_OR_IGNORE true, FILENAME_PATTERN 'm{month:02d}_{{i}}')
    """


def write_parquet(reference: Path, out: Path, threads: int = 2) -> dict[str, Any]:
    import duckdb

    if out.exists():
        shutil.rmtree(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    con.execute("SET preserve_insertion_order = false")
    # A month at a time: the whole year in one COPY buffered 7 GB and more before writing.
    con.execute("SET memory_limit = '2GB'")
    con.execute("SET enable_progress_bar = false")
    for month in range(1, 13):
        con.execute(readings_sql(reference / "devices.csv", out, month))
    rows = con.execute(
        f"SELECT count(*) FROM read_parquet('{out}/*/*.parquet', hive_partitioning = true)"
    ).fetchone()
    con.close()
    return {"rows": int(rows[0]) if rows else 0, "bytes": _size(out)}


def arrow_schema(spec):
    """The Arrow schema of a declared table: same columns, types and nullability
    (parsing the declared DDL needs a SparkSession, any)."""
    import pyarrow as pa
    from pyspark.sql import types as T

    def arrow(t):
        simple = {
            T.StringType: pa.string(),
            T.DateType: pa.date32(),
            T.TimestampType: pa.timestamp("us", tz="UTC"),
            T.IntegerType: pa.int32(),
            T.LongType: pa.int64(),
            T.DoubleType: pa.float64(),
        }
        if isinstance(t, T.ArrayType):
            return pa.list_(arrow(t.elementType))
        return simple[type(t)]

    return pa.schema([pa.field(f.name, arrow(f.dataType), f.nullable) for f in spec.struct()])


def name_key_maps(spark, reference: Path) -> dict[str, dict[str, int]]:
    """Each registry device's and subject's key, as the silver job computes them (Spark's
    xxhash64 of tenant and name: `framework.name_keys.key_column`)."""
    import csv

    from edgebatch.framework.name_keys import key_column
    from edgebatch.jobs.silver_readings import NAME_KEYS

    with (reference / "devices.csv").open(newline="") as f:
        rows = list(csv.DictReader(f))
    maps: dict[str, dict[str, int]] = {}
    for key, (_, name) in NAME_KEYS.items():
        names = sorted({r[name] for r in rows})
        df = spark.createDataFrame([(TENANT, n) for n in names], f"tenant STRING, {name} STRING")
        maps[key] = {r[0]: r[1] for r in df.select(name, key_column("tenant", name)).collect()}
    return maps


def copy_to_silver(
    parquet: Path, root, keys: dict[str, dict[str, int]], days: int | None = None
) -> dict[str, Any]:
    """The windows into the declared `silver/readings` table (same columns, types,
    nullability, partitioning and stats columns), one file per day, and the
    distinct names and keys into its dictionary, `silver/reading_keys` (once, at the end).

    Written with `deltalake` (delta-rs) from an Arrow stream of the Parquet files: Spark
    needed some 50 minutes on two busy cores for what this does in a few. The derived
    columns (window length, name keys) are computed here as the silver job does.
    """
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds
    from deltalake import write_deltalake

    from edgebatch.jobs.silver_readings import FILE_ORDER, NAME_KEYS, READING_KEYS, READINGS

    schema = arrow_schema(READINGS)
    dictionary_schema = arrow_schema(READING_KEYS)
    days_part = ds.partitioning(pa.schema([("date", pa.date32())]), flavor="hive")
    files = sorted(str(p) for p in parquet.glob("date=*/*.parquet"))[:days]
    lookups = {
        key: (pa.array(list(keys[key])), pa.array(list(keys[key].values()), pa.int64()))
        for key in NAME_KEYS
    }

    def derived(day: pa.Table) -> pa.Table:
        micros = pc.subtract(
            day["window_end"].cast(pa.timestamp("us")).cast(pa.int64()),
            day["window_start"].cast(pa.timestamp("us")).cast(pa.int64()),
        )
        day = day.append_column("window_seconds", pc.divide(micros, 1_000_000).cast(pa.int32()))
        for key, (_, name) in NAME_KEYS.items():
            names, values = lookups[key]
            day = day.append_column(key, pc.take(values, pc.index_in(day[name], names)))
        return day.select(schema.names).cast(schema)

    def days_of(part: list[str]):
        source = ds.dataset(
            part, format="parquet", partitioning=days_part, partition_base_dir=str(parquet)
        )
        # a day at a time, in the order the silver job writes a day's rows
        order = [(c, "ascending") for c in (*READINGS.partition_by, *FILE_ORDER)]
        for day in source.get_fragments():
            yield derived(day.to_table(schema=source.schema)).sort_by(order)

    def write(spec, data, first: bool) -> None:
        write_deltalake(
            spec.location(root),
            data,
            partition_by=list(spec.partition_by),
            mode="error" if first else "append",
            configuration=dict(spec.properties) if first else None,
            description=spec.comment if first else None,
        )

    def distinct(table: pa.Table) -> pa.Table:
        columns = dictionary_schema.names
        return table.select(columns).group_by(columns, use_threads=False).aggregate([])

    seen: list[pa.Table] = []
    # A month per commit: delta-rs holds a partition's file open until the write ends, so
    # the whole year in one write kept every day's rows in memory.
    for n, month in enumerate(sorted({f.split("date=")[1][:7] for f in files})):
        part = [f for f in files if f.split("date=")[1].startswith(month)]
        names: list[pa.Table] = []

        def batches(part=part, names=names):
            for day in days_of(part):
                names.append(distinct(day))
                yield from day.to_batches(max_chunksize=256 * 1024)

        rows = pa.RecordBatchReader.from_batches(schema, batches())
        write(READINGS, rows, first=n == 0)
        # after the rows: `batches` collected each day's names as it streamed them
        seen.append(distinct(pa.concat_tables(names)))
    write(READING_KEYS, distinct(pa.concat_tables(seen)).cast(dictionary_schema), first=True)
    return {"bytes": _size(Path(root.resolve(READINGS.name)))}


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def manifest() -> dict[str, Any] | None:
    path = folder() / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None


def ensure_year(spark) -> dict[str, Any]:
    """Build the year if this version's folder lacks it; return its manifest.

    The reference CSVs are loaded into the warehouse by the benchmark itself, with the
    `reference_load` job, on every run (a reload of the same files commits nothing).
    `spark` (any session) parses the table's declared schema and computes the name keys.
    """
    from edgebatch.warehouse.uri import WarehouseRoot

    done = manifest()
    if done is not None and done.get("silver_layout", 1) == SILVER_LAYOUT:
        return done
    base = folder()
    steps: dict[str, float] = {}
    t = time.perf_counter()
    counts = write_reference(base / "reference")
    steps["reference_csv_s"] = time.perf_counter() - t
    t = time.perf_counter()
    mark = base / "parquet" / "readings.done.json"
    if not mark.is_file():
        done = write_parquet(base / "reference", base / "parquet" / "readings")
        mark.write_text(json.dumps({**done, "seconds": time.perf_counter() - t}))
    parquet = json.loads(mark.read_text())
    steps["duckdb_parquet_s"] = parquet["seconds"]
    warehouse = base / "warehouse"
    if warehouse.exists():
        shutil.rmtree(warehouse)
    root = WarehouseRoot.parse(warehouse.as_uri())
    t = time.perf_counter()
    keys = name_key_maps(spark, base / "reference")
    silver = copy_to_silver(base / "parquet" / "readings", root, keys)
    steps["delta_copy_s"] = time.perf_counter() - t
    info = {
        "generator_version": GENERATOR_VERSION,
        "silver_layout": SILVER_LAYOUT,
        "tenant": TENANT,
        "year": YEAR,
        "meters": METERS,
        "windows_per_meter": WINDOWS,
        "rows": parquet["rows"],
        "parquet_bytes": parquet["bytes"],
        "delta_bytes": silver["bytes"],
        "reference_rows": counts,
        "seconds": {k: round(v, 1) for k, v in steps.items()},
        "built": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    (base / "manifest.json").write_text(json.dumps(info, indent=2) + "\n")
    return info
