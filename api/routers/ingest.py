"""`POST /api/v1/ingest/{tenant}/{device}`: the wire format over HTTP, for devices that
cannot keep an MQTT session, landed by the collector's own code.

The body is one message (JSON) or several (`Content-Type: application/x-ndjson`, one
per line). Each message's kind is `?kind=` if given, else what its fields say
(`batch_id`: a batch, `alarm_id`: an alarm, otherwise a health heartbeat); the
message is then checked exactly as if it had come on `edgebatch/{tenant}/{device}/{kind}`,
so a payload naming another device or tenant is refused into quarantine. The answer
is the receipt (`{"v": 1, "ids": [...], "landed_at": ...}`) once the landing file is
durable, with how many messages were refused and why; all refused: 422.
"""

from __future__ import annotations

import time
from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse
from starlette.requests import ClientDisconnect

from edgebatch.api.deps import DeviceSender, Runtime
from edgebatch.api.lander import GroupLander
from edgebatch.api.runtime import ApiRuntime
from edgebatch.edge.wire import format_ts, topic

router = APIRouter(prefix="/api/v1/ingest", tags=["ingest"])

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/x-jsonlines")
NAME = r"^[A-Za-z0-9_-]{1,64}$"


def kind_of(payload: bytes) -> str:
    if b'"batch_id"' in payload:
        return "batch"
    if b'"alarm_id"' in payload:
        return "alarm"
    return "health"


def lander(rt: ApiRuntime) -> GroupLander:
    if rt.lander is None:
        rt.lander = GroupLander(rt.zone(), rt.zone().writer)
    return rt.lander


async def read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"body of {declared} bytes is over the limit of {limit}")
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise HTTPException(413, f"body is over the limit of {limit} bytes")
            chunks.append(chunk)
    except ClientDisconnect:  # nobody to answer, but no stack trace in the log either
        raise HTTPException(400, "the client closed the connection before the body ended") from None
    return b"".join(chunks)


@router.post(
    "/{tenant}/{device}",
    summary="Send wire-format messages over HTTP; answered with the receipt once durable",
    responses={
        200: {"description": "landed; the receipt"},
        422: {"description": "every message was refused (and quarantined)"},
        413: {"description": "body too large"},
        429: {"description": "over the device's rate"},
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {"schema": {"type": "object"}},
                "application/x-ndjson": {"schema": {"type": "string"}},
            },
        }
    },
)
async def ingest(
    request: Request,
    principal: DeviceSender,
    rt: Runtime,
    tenant: Annotated[str, Path(pattern=NAME)],
    device: Annotated[str, Path(pattern=NAME)],
    kind: Annotated[Literal["batch", "alarm", "health"] | None, Query()] = None,
) -> JSONResponse:
    body = await read_body(request, rt.settings.api.ingest_max_bytes)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type in NDJSON_TYPES:
        payloads = [line for line in body.split(b"\n") if line.strip()]
    else:
        payloads = [body] if body.strip() else []
    if not payloads:
        raise HTTPException(400, "empty body: send one wire-format message, or several as NDJSON")
    wait = rt.ingest_limiter.take(f"{tenant}/{device}", len(payloads))
    if wait:
        raise HTTPException(
            429,
            f"device {tenant}/{device} is over its rate ({rt.settings.api.ingest_per_s:g} "
            f"messages/s); try again in {wait:.1f} s",
            headers={"Retry-After": str(int(wait) + 1)},
        )
    now = time.time()
    messages = [(topic(tenant, device, kind or kind_of(p)), p, now) for p in payloads]
    landed = await lander(rt).land(messages)
    rt.ingested += landed.accepted
    rt.ingest_quarantined += landed.quarantined
    ids = [i for device_ids in landed.receipts.values() for i in device_ids]
    answer: dict[str, Any] = {
        "v": 1,
        "ids": ids,
        "landed_at": format_ts(landed.landed_at),
        "accepted": landed.accepted,
        "quarantined": landed.quarantined,
        "reasons": list(landed.reasons[:20]),
    }
    if landed.accepted == 0:
        answer["detail"] = "every message was refused (kept in quarantine): " + "; ".join(
            landed.reasons[:5]
        )
        return JSONResponse(answer, status_code=422)
    return JSONResponse(answer)
