"""Integer keys for the names a large table is grouped by, and their dictionary.

Spark decodes a Parquet string into a fresh object for every row it groups by, hashes
it and compares its bytes: grouping a year of water-meter windows by tenant, device and
subject spent half its CPU on that (a flight-recorder profile of the executors). A table
that also carries a 64-bit key per name (`key_column`: xxhash64 of the tenant and the
name, computed where the rows are written) and a dictionary table (every name beside its
key, gaining new ones before the rows that carry them) can be grouped by the keys
instead; the groups get their names back from the dictionary, which is small: a year of
2,000 meters is about 2,000 names, not 70 million rows.

Exact, never probabilistic. The reader checks that no key of the dictionary stands for
two names (a 64-bit hash collision) and, after grouping, that every group found its names
(a dictionary behind its rows); if either fails it groups by the names, as a table
without keys is, and logs why.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypeVar

from edgebatch.framework.errors import FrameworkError

if TYPE_CHECKING:
    import pyarrow as pa
    from pyspark.sql import Column, DataFrame, SparkSession

    from edgebatch.warehouse.uri import WarehouseRoot

log = logging.getLogger(__name__)
T = TypeVar("T")


class NameKeysError(FrameworkError):
    """A table's name keys declared in a way the reader cannot use."""


@dataclasses.dataclass(frozen=True)
class NameKeys:
    """`table`'s key columns, the name columns each stands for, and the dictionary table
    (every name beside its key) that names them."""

    table: str
    dictionary: str
    keys: Mapping[str, tuple[str, ...]]

    @property
    def names(self) -> tuple[str, ...]:
        """Every name column some key stands for, in declaration order, once."""
        return tuple(dict.fromkeys(n for names in self.keys.values() for n in names))


_DECLARED: dict[str, NameKeys] = {}


def declare_name_keys(table: str, dictionary: str, keys: Mapping[str, Sequence[str]]) -> NameKeys:
    """Register that `table`'s rows carry `keys` (key column -> the names it hashes,
    `key_column(*names)`) and that `dictionary` holds every name beside its key."""
    spec = NameKeys(table, dictionary, {k: tuple(v) for k, v in keys.items()})
    if _DECLARED.get(table, spec) != spec:
        raise NameKeysError(f"table {table!r} declares its name keys twice, differently")
    _DECLARED[table] = spec
    return spec


def name_keys(table: str) -> NameKeys | None:
    return _DECLARED.get(table)


def key_column(*names: str) -> Column:
    """The key of a name: xxhash64 of its columns in order (Spark's, seed 42), a BIGINT."""
    from pyspark.sql import functions as F

    return F.xxhash64(*names)


def dictionary_rows(spec: NameKeys, rows: DataFrame) -> DataFrame:
    """The dictionary's rows for `rows` of the table: their distinct names and keys."""
    return rows.select(*spec.names, *spec.keys).distinct()


def group_by_keys(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: NameKeys,
    rows: DataFrame,
    by: Sequence[str],
    aggregates: Sequence[Column],
) -> DataFrame | None:
    """`rows.groupBy(by).agg(aggregates)`, grouped by the keys and named from the
    dictionary, checkpointed; or None where the keys cannot stand in for the names
    (then the caller groups by the names).

    `by` must hold every name some key stands for. The dictionary is read and checked
    on a helper thread while the rows are grouped: its few small Spark jobs wait more
    than they compute, and ahead of the grouping they were two seconds of a year's
    bills. A collision, which should never be seen, then costs the grouping twice.
    """
    from pyspark.sql import functions as F

    found = _keyed_groups(
        spark, root, spec, rows, by, aggregates, lambda g: g.localCheckpoint(eager=True)
    )
    if found is None:
        return None
    groups, pairs = found
    named = groups.join(pairs, list(spec.keys), "left")
    if named.where(F.col(spec.names[0]).isNull()).first() is not None:
        _declined(spec, "some groups' keys are missing from the dictionary")
        return None
    return named.select(*by, *_aggregated(groups.columns, by, spec))


def group_by_keys_to_arrow(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: NameKeys,
    rows: DataFrame,
    by: Sequence[str],
    aggregates: Sequence[Column],
) -> pa.Table | None:
    """`group_by_keys`, the groups collected into the driver as Arrow and named there:
    for a caller that takes the groups into Python anyway, the naming join and its check
    cost no Spark job (a year's meter-days: about a second of small jobs)."""
    found = _keyed_groups(spark, root, spec, rows, by, aggregates, lambda g: g.toArrow())
    if found is None:
        return None
    groups, pairs = found
    named = groups.join(pairs.toArrow(), list(spec.keys), join_type="left outer")
    if named.column(spec.names[0]).null_count:
        _declined(spec, "some groups' keys are missing from the dictionary")
        return None
    return named.select([*by, *_aggregated(groups.column_names, by, spec)])


def _keyed_groups(
    spark: SparkSession,
    root: WarehouseRoot,
    spec: NameKeys,
    rows: DataFrame,
    by: Sequence[str],
    aggregates: Sequence[Column],
    finish: Callable[[DataFrame], T],
) -> tuple[T, DataFrame] | None:
    """The groups by the keys (`finish`ed: checkpointed, collected) and the checked
    dictionary's (names, keys) pairs; None where the keys cannot stand in for the names."""
    from pyspark.util import inheritable_thread_target

    if not set(spec.names) <= set(by) or not set(spec.keys) <= set(rows.columns):
        return None
    rest = [c for c in by if c not in spec.names]
    # The helper inherits this thread's job group and scheduler pool (cancelled with it).
    check = inheritable_thread_target(spark)(_checked_dictionary)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="name-keys") as pool:
        checked = pool.submit(check, spark, root, spec)
        groups = finish(rows.groupBy(*rest, *spec.keys).agg(*aggregates))
        pairs, why = checked.result()
    if pairs is None:
        _declined(spec, why)  # logged here: the iteration's log follows this thread
        return None
    return groups, pairs


def _aggregated(columns: Sequence[str], by: Sequence[str], spec: NameKeys) -> list[str]:
    """The aggregates' columns of the groups: neither a grouping column nor a key."""
    return [c for c in columns if c not in (*by, *spec.keys)]


def _checked_dictionary(
    spark: SparkSession, root: WarehouseRoot, spec: NameKeys
) -> tuple[DataFrame | None, str]:
    """The dictionary's distinct (names, keys), checkpointed, if no key in it stands for
    two names; else None and why."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    from edgebatch.warehouse.tables import REGISTRY, read_table

    table = REGISTRY.get(spec.dictionary)
    if not DeltaTable.isDeltaTable(spark, table.location(root)):
        return None, "its dictionary table does not exist"
    dictionary = read_table(spark, root, table).select(*spec.names, *spec.keys)
    pairs = dictionary.distinct().localCheckpoint(eager=True)
    # every key at once, one Spark job: (key column, a key standing for several names)
    clashes = [
        pairs.groupBy(F.col(key).alias("key"))
        .agg(F.count_distinct(*its_names).alias("names"))
        .where(F.col("names") > 1)
        .select(F.lit(key).alias("column"), "key", "names")
        for key, its_names in spec.keys.items()
    ]
    clash = functools.reduce(lambda a, b: a.unionAll(b), clashes).first()
    if clash is not None:
        return None, f"{clash['column']} {clash['key']} stands for {clash['names']} names"
    return pairs, ""


def _declined(spec: NameKeys, why: str) -> None:
    log.warning("%s: grouping by names, not by keys: %s", spec.table, why)
