from __future__ import annotations

import pytest

from edgebatch.warehouse.errors import StorageError
from edgebatch.warehouse.uri import WarehouseRoot


def test_file_and_hdfs_roots_resolve_names_below_them():
    root = WarehouseRoot.parse("file:///data/wh")
    assert root.uri("bronze/edge_batches") == "file:///data/wh/bronze/edge_batches"
    hdfs = WarehouseRoot.parse("hdfs://127.0.0.1:9000/edgebatch/")
    assert (
        hdfs.uri("landing/batch/x.jsonl") == "hdfs://127.0.0.1:9000/edgebatch/landing/batch/x.jsonl"
    )
    assert hdfs.resolve("a/./b") == "/edgebatch/a/b"


@pytest.mark.parametrize(
    "name",
    [
        "../etc/passwd",
        "bronze/../../x",
        "/etc/passwd",
        "file:///etc",
        "a/../../b",
        "a\\..\\b",
        "..",
    ],
)
def test_a_path_escaping_the_root_is_refused(name):
    root = WarehouseRoot.parse("file:///data/wh")
    with pytest.raises(StorageError):
        root.uri(name)


@pytest.mark.parametrize("uri", ["s3://b/x", "hdfs:///no-host", "file://host/x", "ftp://x/y"])
def test_unsupported_roots_are_refused_with_the_reason(uri):
    with pytest.raises(StorageError, match="warehouse root"):
        WarehouseRoot.parse(uri)
