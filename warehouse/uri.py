"""The warehouse root as a URI, and the only way to turn a relative name into a location.

Everything the project stores (Delta tables, landing files, quarantine) lives under
one root, `file:///...` on one machine or `hdfs://host:port/...` on a cluster. Every
path is made here, so a name with `..`, an absolute path or a stray scheme can never
reach outside the root.
"""

from __future__ import annotations

import dataclasses
import posixpath
from urllib.parse import urlsplit

from edgebatch.warehouse.errors import StorageError

SCHEMES = ("file", "hdfs")


@dataclasses.dataclass(frozen=True)
class WarehouseRoot:
    """A parsed root URI. `WarehouseRoot.parse("hdfs://nn:9000/edgebatch").uri("bronze/x")`."""

    scheme: str
    authority: str
    path: str

    @classmethod
    def parse(cls, uri: str) -> WarehouseRoot:
        if uri.startswith("/"):
            uri = "file://" + uri
        parts = urlsplit(uri)
        if parts.scheme not in SCHEMES:
            raise StorageError(
                f"warehouse root {uri!r} has scheme {parts.scheme!r}; "
                f"use one of {', '.join(s + '://' for s in SCHEMES)}"
            )
        if parts.query or parts.fragment:
            raise StorageError(f"warehouse root {uri!r} must not carry a query or fragment")
        if parts.scheme == "hdfs" and not parts.netloc:
            raise StorageError(f"warehouse root {uri!r} needs a host: hdfs://host:port/path")
        if parts.scheme == "file" and parts.netloc not in ("", "localhost"):
            raise StorageError(f"warehouse root {uri!r}: file:// URIs take no host")
        path = posixpath.normpath(parts.path or "/")
        if not path.startswith("/"):
            raise StorageError(f"warehouse root {uri!r} needs an absolute path")
        authority = parts.netloc if parts.scheme == "hdfs" else ""
        return cls(parts.scheme, authority, path)

    @property
    def is_local(self) -> bool:
        return self.scheme == "file"

    def __str__(self) -> str:
        return self.uri()

    def resolve(self, relative: str = "") -> str:
        """Absolute path (no scheme) of `relative` under the root; refuses anything escaping it."""
        if not relative:
            return self.path
        if "://" in relative or relative.startswith("/") or "\\" in relative:
            raise StorageError(
                f"path {relative!r} must be relative to the warehouse root {self.uri()!r}"
            )
        if "\x00" in relative:
            raise StorageError(f"path {relative!r} contains a NUL byte")
        joined = posixpath.normpath(posixpath.join(self.path, relative))
        inside = joined == self.path or joined.startswith(self.path.rstrip("/") + "/")
        if not inside or ".." in relative.split("/"):
            raise StorageError(
                f"path {relative!r} escapes the warehouse root {self.uri()!r}; "
                "use a name below the root without '..'"
            )
        return joined

    def uri(self, relative: str = "") -> str:
        """Full URI of `relative` under the root, as Spark and Delta take it."""
        path = self.resolve(relative)
        if self.scheme == "file":
            return f"file://{path}"
        return f"hdfs://{self.authority}{path}"

    def qualified(self, relative: str = "") -> str:
        """The URI as Hadoop prints a qualified path (`file:/x`, `hdfs://nn:p/x`).

        Delta compares table locations as strings; handing it the same form it stores
        avoids its "two different locations" refusal for `file:///x` against `file:/x`.
        """
        uri = self.uri(relative)
        return "file:" + uri[len("file://") :] if self.scheme == "file" else uri
