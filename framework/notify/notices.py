"""What a notification says: one payload per event, as a webhook's JSON and as an email.

The payload is taken when the event is found and stored with it, so every contact,
and every retry, gets the same account of the run, whatever it did since.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any

from edgebatch.framework.notify.contacts import NotifyEvent
from edgebatch.framework.state import Run

PAYLOAD_VERSION = 1
# An error summary, not a traceback: the run's log has the whole story, a link away.
ERROR_CHARS = 2000

_HEADLINES = {
    NotifyEvent.FAILURE: "failed",
    NotifyEvent.SKIPPED: "was skipped",
    NotifyEvent.SLA_MISS: "missed its SLA",
    NotifyEvent.SUCCESS: "succeeded",
    NotifyEvent.CANCELLED: "was cancelled",
}


def _iso(at: datetime | None) -> str | None:
    return at.isoformat().replace("+00:00", "Z") if at else None


def build_payload(
    run: Run,
    event: NotifyEvent,
    *,
    base_url: str,
    failed_partitions: list[str] | None = None,
    sla: timedelta | None = None,
    detected_at: datetime | None = None,
) -> dict[str, Any]:
    """The event as JSON-ready values: job, run, state, event, partitions, error, links."""
    base = base_url.rstrip("/")
    error = run.error or ""
    payload: dict[str, Any] = {
        "v": PAYLOAD_VERSION,
        "event": str(event),
        "job": run.job,
        "run_id": run.id,
        "state": str(run.state),
        "trigger": run.trigger,
        "triggered_by": run.triggered_by,
        "partitions": list(run.partitions),
        "failed_partitions": list(failed_partitions or []),
        "error": error[:ERROR_CHARS] + ("..." if len(error) > ERROR_CHARS else ""),
        "created_at": _iso(run.created_at),
        "started_at": _iso(run.started_at),
        "ended_at": _iso(run.ended_at),
        "detected_at": _iso(detected_at),
        "links": {
            "run": f"{base}/api/v1/runs/{run.id}",
            "logs": f"{base}/api/v1/runs/{run.id}/logs",
        },
    }
    if sla is not None:
        payload["sla_s"] = sla.total_seconds()
        payload["deadline"] = _iso(run.created_at + sla)
    return payload


def headline(payload: dict[str, Any]) -> str:
    """`job device_daily run 42 failed`: the subject line and the log's wording."""
    event = NotifyEvent(payload["event"])
    return f"job {payload['job']} run {payload['run_id']} {_HEADLINES[event]}"


def webhook_body(payload: dict[str, Any], *, notification_id: int) -> dict[str, Any]:
    """The JSON posted to a webhook: the payload, with the delivery's id to deduplicate on
    (a delivery whose answer was lost is sent again with the same id)."""
    return {"id": notification_id, **payload, "summary": headline(payload)}


def email_message(
    payload: dict[str, Any], *, sender: str, recipient: str, notification_id: int
) -> EmailMessage:
    """A plain-text email of the payload; `Message-ID` is stable per delivery, for the
    same reason as the webhook's id."""
    msg = EmailMessage()
    msg["Subject"] = f"[edgebatch] {headline(payload)}"
    msg["From"] = sender
    msg["To"] = recipient
    msg["Date"] = formatdate(localtime=False)
    domain = sender.rpartition("@")[2] or "edgebatch"
    msg["Message-ID"] = f"<edgebatch.notification.{notification_id}@{domain}>"
    lines = [
        headline(payload) + ".",
        "",
        f"job:        {payload['job']}",
        f"run:        {payload['run_id']} ({payload['state']}, trigger {payload['trigger']})",
        f"event:      {payload['event']}",
        f"partitions: {', '.join(payload['partitions']) or '(none named)'}",
    ]
    if payload.get("failed_partitions"):
        lines.append(f"failed:     {', '.join(payload['failed_partitions'])}")
    if payload.get("deadline"):
        lines.append(f"deadline:   {payload['deadline']}")
    lines += [
        f"queued:     {payload['created_at']}",
        f"started:    {payload['started_at'] or '-'}",
        f"ended:      {payload['ended_at'] or '-'}",
    ]
    if payload.get("error"):
        lines += ["", "error:", payload["error"]]
    lines += ["", f"run:  {payload['links']['run']}", f"logs: {payload['links']['logs']}"]
    msg.set_content("\n".join(lines) + "\n")
    return msg
