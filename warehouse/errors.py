"""Errors of the storage part: each says which path, table or URI and what to do."""

from edgebatch.errors import EdgebatchError


class StorageError(EdgebatchError):
    """A storage operation or path is wrong (escaping the root, unknown scheme, I/O failure)."""


class TableError(StorageError):
    """A Delta table is missing, or data disagrees with its declared schema."""


class PartitionGuard(TableError):
    """A MERGE told which partitions its rows go to met a row going elsewhere; it failed
    before its commit, so the table is unchanged (run it without the partitions)."""
