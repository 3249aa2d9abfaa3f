"""The scheduler (the manager): triggers, dependencies, windows and checks, and a standby.

Job definitions declare a `Schedule` (see `spec`); `Scheduler` (see `loop`) turns
triggers into run requests with a `run_key` each, holds runs until their upstream
runs, window, limits and preconditions allow, and logs every decision in the run's
log. Only the holder of the leader lease schedules; a standby takes over when it lapses.
"""

from edgebatch.framework.scheduler.spec import (
    AfterUpstream,
    Cron,
    FreeExecutors,
    InputsComplete,
    LandingBacklog,
    MinRows,
    Schedule,
    TableFresh,
    TableVersion,
    Upload,
    Window,
)

__all__ = [
    "AfterUpstream",
    "Cron",
    "FreeExecutors",
    "InputsComplete",
    "LandingBacklog",
    "MinRows",
    "Schedule",
    "TableFresh",
    "TableVersion",
    "Upload",
    "Window",
]
