"""Topics: `edgebatch/{tenant}/{device}/{kind}`, built by the agent and split by the parser."""

from __future__ import annotations

from edgebatch.edge.errors import EdgeError
from edgebatch.edge.wire.errors import MessageRejected
from edgebatch.edge.wire.limits import NAME_RE

TOPIC_ROOT = "edgebatch"
KINDS = ("batch", "alarm", "health", "status", "receipt")


def topic(tenant: str, device: str, kind: str) -> str:
    """`edgebatch/{tenant}/{device}/{kind}`, checking the names so a bad config fails early."""
    if not NAME_RE.fullmatch(tenant):
        raise EdgeError(f"tenant {tenant!r} must match {NAME_RE.pattern}")
    if not NAME_RE.fullmatch(device):
        raise EdgeError(f"device {device!r} must match {NAME_RE.pattern}")
    if kind not in KINDS:
        raise EdgeError(f"unknown message kind {kind!r}; one of {', '.join(KINDS)}")
    return f"{TOPIC_ROOT}/{tenant}/{device}/{kind}"


def parse_topic(topic_: str) -> tuple[str, str, str]:
    """`(tenant, device, kind)` of a wire topic, or `MessageRejected`."""
    if not isinstance(topic_, str):
        raise MessageRejected("topic is not a string")
    parts = topic_.split("/")
    if len(parts) != 4 or parts[0] != TOPIC_ROOT:
        raise MessageRejected(
            f"topic {topic_[:200]!r} is not {TOPIC_ROOT}/{{tenant}}/{{device}}/{{kind}}"
        )
    _, tenant, device, kind = parts
    if not NAME_RE.fullmatch(tenant):
        raise MessageRejected(f"topic tenant {tenant[:80]!r} does not match {NAME_RE.pattern}")
    if not NAME_RE.fullmatch(device):
        raise MessageRejected(f"topic device {device[:80]!r} does not match {NAME_RE.pattern}")
    if kind not in KINDS:
        raise MessageRejected(f"topic kind {kind[:80]!r} is not one of {', '.join(KINDS)}")
    return tenant, device, kind
