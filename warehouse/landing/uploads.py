"""Raw files a user uploads as a job's input, landed under `landing/uploads/{job}/{tenant}/`.

Streamed to a hidden name beside its final place (never whole in memory on a local
root), checksummed on the way, size-limited, made durable, then renamed into place,
so a reader sees the whole file or nothing. The name is checked to be one plain file
name: it cannot climb out of its folder, let alone the warehouse root.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator

from edgebatch.warehouse.errors import StorageError
from edgebatch.warehouse.landing.stores import LocalStore, tmp_name
from edgebatch.warehouse.landing.zone import LANDING, LandingZone

UPLOADS = "uploads"
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class UploadRejected(StorageError):
    """An upload with a bad name, over its size limit, or whose checksum differs."""


class UploadTooLarge(UploadRejected):
    pass


@dataclasses.dataclass(frozen=True)
class Uploaded:
    name: str  # relative to the warehouse root
    uri: str
    size: int
    sha256: str
    landed_at: float


def upload_path(job: str, tenant: str, file_name: str) -> str:
    if not FILE_NAME.match(file_name) or ".." in file_name:
        raise UploadRejected(
            f"file name {file_name!r} must be one plain name of letters, digits, '.', '_' "
            "and '-' (at most 128), starting with a letter or digit"
        )
    return f"{LANDING}/{UPLOADS}/{job}/{tenant}/{file_name}"


async def land_upload(
    zone: LandingZone,
    relative: str,
    chunks: AsyncIterator[bytes],
    *,
    max_bytes: int,
    expected_sha256: str | None = None,
) -> Uploaded:
    """Stream `chunks` into `relative` (under the root) durably; refuse it whole on error."""
    from starlette.concurrency import run_in_threadpool

    target = zone.root.resolve(relative)
    digest = hashlib.sha256()
    size = 0
    local = isinstance(zone.store, LocalStore)
    if local:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if os.path.exists(target):
            raise UploadRejected(f"{relative} exists already; upload under another name")
        spool_path = tmp_name(target)
    else:
        fd, spool_path = tempfile.mkstemp(prefix="edgebatch-upload-")
        os.close(fd)
    fh = open(spool_path, "wb")  # noqa: SIM115  (closed below, on every path)
    try:
        async for chunk in chunks:
            size += len(chunk)
            if size > max_bytes:
                raise UploadTooLarge(f"upload is over the limit of {max_bytes} bytes")
            digest.update(chunk)
            await run_in_threadpool(fh.write, chunk)
        fh.flush()
        await run_in_threadpool(os.fsync, fh.fileno())
        fh.close()
        checksum = digest.hexdigest()
        if expected_sha256 is not None and expected_sha256.lower() != checksum:
            raise UploadRejected(
                f"checksum differs: sent sha256 {expected_sha256}, received {checksum}"
            )
        if local:
            await run_in_threadpool(_publish_local, spool_path, target)
        else:
            data = await run_in_threadpool(_read, spool_path)
            await run_in_threadpool(zone.store.write_atomic, target, data)
    finally:
        if not fh.closed:
            fh.close()
        if os.path.exists(spool_path):
            os.unlink(spool_path)
    return Uploaded(relative, zone.root.uri(relative), size, checksum, time.time())


def _publish_local(tmp: str, target: str) -> None:
    try:
        os.link(tmp, target)  # refuses an existing name instead of replacing it
    except FileExistsError:
        raise UploadRejected(f"{target} exists already; upload under another name") from None
    fd = os.open(os.path.dirname(target), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _read(path: str) -> bytes:
    with open(path, "rb") as fh:
        return fh.read()


def list_uploads(zone: LandingZone, job: str, tenants: set[str] | None) -> list[dict]:
    folder = zone.root.resolve(f"{LANDING}/{UPLOADS}/{job}")
    base = zone.root.resolve()
    out = []
    for f in zone.store.list_files(folder):
        relative = f.path[len(base) + 1 :]
        tenant = relative.split("/")[3] if relative.count("/") >= 4 else ""
        if tenants is not None and tenant not in tenants:
            continue
        out.append({"name": relative, "tenant": tenant, "size": f.size, "mtime": f.mtime})
    return sorted(out, key=lambda x: x["name"])
