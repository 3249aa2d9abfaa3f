"""The edge agent: readings in, window summaries and alarms out over MQTT, nothing lost.

Kept light on purpose: a device installs only the base dependencies (paho-mqtt,
psutil, ddsketch), and importing this package loads none of them.
"""

AGENT_NAME = "edgebatch-edge"
