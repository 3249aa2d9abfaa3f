"""Every table the project knows: declared in the table registry by the warehouse's
contract and by the job modules, plus outputs a job names without declaring them, each
with the jobs that write it. `edgebatch tables` and the API list the same."""

from __future__ import annotations

from edgebatch.framework.registry import JobRegistry


def declared_table_names(registry: JobRegistry) -> dict[str, list[str]]:
    """Table name -> the jobs that write it, sorted by name (discovering `registry` has
    imported the job modules, so the tables they declare are in the table registry)."""
    from edgebatch.warehouse import catalog  # noqa: F401  (declares the contract's tables)
    from edgebatch.warehouse.tables import REGISTRY

    writers: dict[str, list[str]] = {spec.name: [] for spec in REGISTRY}
    for job in registry:
        for name in job.outputs:
            writers.setdefault(name, []).append(job.name)
    return dict(sorted(writers.items()))
