"""Where landing files physically go: a local disk or HDFS through WebHDFS.

A store does three things, each the only way the rest of the code touches storage:
`write_atomic` (readers see the whole file or nothing), `list_files` (complete files
only) and `remove`. Atomicity comes from the same trick on both: write a hidden
temporary name in the target folder, make it durable, then rename it into place,
which is atomic within one folder on POSIX file systems and on HDFS alike.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import posixpath
import uuid
from typing import Protocol

from edgebatch.warehouse.errors import StorageError

TMP_PREFIX = "."


class LandingError(StorageError):
    """A landing file could not be written, listed or removed; says which path and why."""


@dataclasses.dataclass(frozen=True)
class StoredFile:
    """A complete file: absolute path (no scheme), size in bytes, modification time (epoch s)."""

    path: str
    size: int
    mtime: float


class Store(Protocol):
    def write_atomic(self, path: str, data: bytes) -> None: ...

    def list_files(self, folder: str) -> list[StoredFile]: ...

    def read(self, path: str) -> bytes: ...

    def remove(self, path: str) -> None: ...


def is_hidden(name: str) -> bool:
    """Temporary files and Spark's own markers start with `.` or `_`: never data."""
    return name.startswith((".", "_"))


def tmp_name(path: str) -> str:
    folder, name = posixpath.split(path)
    return posixpath.join(folder, f"{TMP_PREFIX}{name}.{uuid.uuid4().hex[:8]}.tmp")


class LocalStore:
    """A POSIX disk: write, fsync the file, rename, fsync the folder (so the name survives too)."""

    def write_atomic(self, path: str, data: bytes) -> None:
        folder = os.path.dirname(path)
        tmp = tmp_name(path)
        try:
            self._makedirs(folder)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
            # link+unlink, not rename: an existing name is refused rather than replaced.
            os.link(tmp, path)
            _fsync_dir(folder)
        except OSError as exc:
            raise LandingError(f"could not land {path}: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)

    def _makedirs(self, folder: str) -> None:
        missing = []
        while folder and not os.path.isdir(folder):
            missing.append(folder)
            folder = os.path.dirname(folder)
        for made in reversed(missing):
            try:
                os.mkdir(made)
            except FileExistsError:
                continue
            _fsync_dir(os.path.dirname(made))

    def list_files(self, folder: str) -> list[StoredFile]:
        found: list[StoredFile] = []
        if not os.path.isdir(folder):
            return found
        for current, dirs, names in os.walk(folder):
            dirs[:] = sorted(d for d in dirs if not is_hidden(d))
            for name in names:
                if is_hidden(name):
                    continue
                full = os.path.join(current, name)
                try:
                    st = os.stat(full)
                except FileNotFoundError:
                    continue
                found.append(StoredFile(full, st.st_size, st.st_mtime))
        return found

    def read(self, path: str) -> bytes:
        try:
            with open(path, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise LandingError(f"could not read {path}: {exc}") from exc

    def remove(self, path: str) -> None:
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as exc:
            raise LandingError(f"could not remove {path}: {exc}") from exc


def _fsync_dir(folder: str) -> None:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class WebHdfsStore:
    """HDFS over WebHDFS (the `hdfs` package): a file is durable once its CREATE returns,
    because WebHDFS closes it and a closed HDFS block is on the DataNodes (with
    `dfs.datanode.synconclose` on their disks); the rename is a NameNode operation,
    atomic in one folder."""

    def __init__(self, url: str, user: str | None = None, timeout: float = 30.0) -> None:
        from hdfs import InsecureClient

        self.url = url
        self.client = InsecureClient(url, user=user or None, timeout=timeout)

    def write_atomic(self, path: str, data: bytes) -> None:
        from hdfs.util import HdfsError

        tmp = tmp_name(path)
        try:
            self.client.write(tmp, data=data, overwrite=False)
            # HDFS refuses to rename onto an existing name: never a replaced file.
            self.client.rename(tmp, path)
        except (HdfsError, OSError) as exc:
            with contextlib.suppress(HdfsError, OSError):
                self.client.delete(tmp)
            raise LandingError(f"could not land {path} through WebHDFS {self.url}: {exc}") from exc

    def list_files(self, folder: str) -> list[StoredFile]:
        from hdfs.util import HdfsError

        found: list[StoredFile] = []
        try:
            if self.client.status(folder, strict=False) is None:
                return found
            stack = [folder]
            while stack:
                current = stack.pop()
                for name, st in self.client.list(current, status=True):
                    if is_hidden(name):
                        continue
                    full = posixpath.join(current, name)
                    if st["type"] == "DIRECTORY":
                        stack.append(full)
                    else:
                        found.append(StoredFile(full, st["length"], st["modificationTime"] / 1e3))
        except (HdfsError, OSError) as exc:
            raise LandingError(f"could not list {folder} via WebHDFS {self.url}: {exc}") from exc
        return found

    def read(self, path: str) -> bytes:
        from hdfs.util import HdfsError

        try:
            with self.client.read(path) as reader:
                return reader.read()
        except (HdfsError, OSError) as exc:
            raise LandingError(f"could not read {path} via WebHDFS {self.url}: {exc}") from exc

    def remove(self, path: str) -> None:
        from hdfs.util import HdfsError

        try:
            self.client.delete(path)
        except (HdfsError, OSError) as exc:
            raise LandingError(f"could not remove {path} via WebHDFS {self.url}: {exc}") from exc
