"""The shapes and bounds a message must keep: name patterns, sizes, and the closed lists
of alarm kinds, states and severities. Both parsers and the agent's config check these."""

from __future__ import annotations

import re

VERSION = 1
NAME_RE = re.compile(r"[A-Za-z0-9_-]{1,64}")
"""A tenant or device name: it is a topic level and a path segment downstream."""
METRIC_RE = re.compile(r"[A-Za-z0-9_.:/-]{1,128}")
ID_RE = re.compile(r"[0-9a-f]{32}")
MAX_PAYLOAD_BYTES = 1 << 20
MAX_METRICS = 1024
MAX_SKETCH_BUCKETS = 8192
MAX_MEMBERS = 4096
"""Windows one coarsened batch may merge (an hour of one-second windows fits)."""
MAX_RECEIPT_IDS = 10_000
MAX_UNIT_LEN = 32
MAX_AGENT_LEN = 64
ALARM_KINDS = ("threshold", "rate", "zscore")
ALARM_STATES = ("raised", "cleared")
SEVERITIES = ("info", "warning", "critical")
