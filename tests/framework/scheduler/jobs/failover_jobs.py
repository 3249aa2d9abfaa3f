"""Jobs the standby tests schedule: a cron ticking every 2 s and a job started by uploads.

Their runs never execute (no worker in those tests): what is counted is the runs made.
"""

from __future__ import annotations

from edgebatch.framework.definitions import job
from edgebatch.framework.scheduler import Cron, Schedule, Upload


@job(schedule=Schedule(triggers=[Cron("* * * * * */2", catch_up="all")]))
def ticker(ctx) -> None:
    """Every two seconds."""


@job(schedule=Schedule(triggers=[Upload()]))
def importer(ctx) -> None:
    """One run per uploaded file."""
