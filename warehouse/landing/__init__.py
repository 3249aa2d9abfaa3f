"""The landing zone: complete-or-absent files between the collector and the bronze load."""

from edgebatch.warehouse.landing.stores import LandingError, LocalStore, WebHdfsStore
from edgebatch.warehouse.landing.zone import (
    KINDS,
    Backlog,
    LandingFile,
    LandingZone,
    open_zone,
)

__all__ = [
    "KINDS",
    "Backlog",
    "LandingError",
    "LandingFile",
    "LandingZone",
    "LocalStore",
    "WebHdfsStore",
    "open_zone",
]
