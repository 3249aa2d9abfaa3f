"""Workers: how soon a queued run starts, and how many runs two workers start per second.

Two `edgebatch worker` processes (warm local Spark drivers, 4 slots each) serve one
queue of a SQLite state store. A no-op job (one partition, no Spark action) is queued:

(a) paced: 1,000 runs arriving at a steady rate below the workers' capacity; the delay
    from eligible (created queued) to started (claimed), p50 and p99, both stamped by
    the store. Target: p99 under 1 s.
(b) burst: 1,000 runs queued at once; run starts per second from the first start to
    the last, beside (c).
(c) the store alone: two processes claiming and finishing the same 1,000 runs with
    bare store calls and no runner, the ceiling the workers' bookkeeping is compared to.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import Figure

RUNS = int(os.environ.get("EDGEBATCH_BENCH_WORKER_RUNS", "1000"))
JOBS = str(Path(__file__).with_name("_workers_jobs.py"))
QUEUE = "bench"
SLOTS = 4


def _config(home: Path) -> Path:
    config = home / "edgebatch.toml"
    config.write_text(
        f"""
[warehouse]
root = "{(home / "warehouse").as_uri()}"

[state]
url = "sqlite:///{home / "state.db"}"

[spark]
master = "local[1]"
conf = {{ "spark.ui.enabled" = "false", "spark.driver.memory" = "512m" }}

[framework]
jobs = ["{JOBS}"]

[worker]
queues = ["{QUEUE}"]
slots = {SLOTS}

[worker.queue.{QUEUE}]
pool = "default"
"""
    )
    return config


def _start_workers(config: Path, home: Path, n: int) -> list[subprocess.Popen[bytes]]:
    cli = str(Path(sys.executable).parent / "edgebatch")
    procs = []
    for i in range(n):
        with (home / f"worker-{i}.log").open("ab") as out:
            procs.append(
                subprocess.Popen(
                    [cli, "--config", str(config), "worker"], stdout=out, stderr=subprocess.STDOUT
                )
            )
    return procs


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.2)


def _all_done(store, ids: list[int]) -> bool:
    done = store.list_runs(job="bench_noop", state="succeeded", limit=len(ids) + 10**6)
    failed = store.list_runs(job="bench_noop", state="failed", limit=10)
    if failed:
        raise RuntimeError(f"run {failed[0].id} failed: {failed[0].error}")
    return len({r.id for r in done} & set(ids)) == len(ids)


def _delays(store, ids: list[int], job: str = "bench_noop") -> tuple[list[float], float]:
    """Per run, started - created (s); and starts per second from first start to last."""
    wanted = set(ids)
    runs = [
        r for r in store.list_runs(job=job, limit=len(ids) * 3) if r.id in wanted and r.started_at
    ]
    delays = sorted((r.started_at - r.created_at).total_seconds() for r in runs)
    starts = sorted(r.started_at for r in runs)
    span = (starts[-1] - starts[0]).total_seconds()
    return delays, (len(starts) - 1) / span if span > 0 else float("inf")


def _pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, max(0, round(q * (len(values) - 1))))]


def _bare_claimer(url: str, barrier, results) -> None:
    from edgebatch.framework.state import StateStore

    with StateStore(url) as store:
        barrier.wait()
        n = 0
        while (run := store.claim_next_run(f"bare-{os.getpid()}", queues=[QUEUE])) is not None:
            store.transition_run(run.id, "succeeded")
            n += 1
    results.put(n)


def _bare(url: str) -> float:
    from edgebatch.framework.state import StateStore

    with StateStore(url) as store:
        ids = [store.create_run("bare", queue=QUEUE).id for _ in range(RUNS)]
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_bare_claimer, args=(url, barrier, results)) for _ in range(2)]
    for p in procs:
        p.start()
    total = sum(results.get(timeout=600) for _ in procs)
    for p in procs:
        p.join(30)
    assert total == RUNS, total
    with StateStore(url) as store:
        return _delays(store, ids, job="bare")[1]


def run() -> list[Figure]:
    from edgebatch.framework.state import StateStore

    tmp = Path(tempfile.mkdtemp(prefix="edgebatch-bench-workers-"))
    home = tmp / "home"
    home.mkdir()
    config = _config(home)
    url = f"sqlite:///{home / 'state.db'}"
    store = StateStore(url)
    procs = _start_workers(config, home, 2)
    try:
        _wait(lambda: len(store.list_workers(state="running")) == 2, 180, "two workers")

        # (b) burst: everything queued at once.
        burst = [store.create_run("bench_noop", queue=QUEUE).id for _ in range(RUNS)]
        _wait(lambda: _all_done(store, burst), 900, "the burst to finish")
        burst_delays, burst_rate = _delays(store, burst)

        # (a) paced: arrivals at half the burst rate (at most 100/s), spread evenly.
        rate = min(100.0, burst_rate / 2)
        paced: list[int] = []
        began = time.monotonic()
        for i in range(RUNS):
            pause = began + i / rate - time.monotonic()
            if pause > 0:
                time.sleep(pause)
            paced.append(store.create_run("bench_noop", queue=QUEUE).id)
        _wait(lambda: _all_done(store, paced), 900, "the paced runs to finish")
        delays, _ = _delays(store, paced)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(60)
            except subprocess.TimeoutExpired:
                p.kill()
        store.close()

    # (c) the store alone, on a fresh database.
    bare_rate = _bare(f"sqlite:///{tmp / 'bare.db'}")

    note = "2 workers x 4 slots, local Spark drivers, SQLite store; shared 2-core machine"
    return [
        Figure(
            "paced queued-to-started delay p50",
            statistics.median(delays),
            "s",
            note=f"{RUNS} runs at {rate:.0f}/s; {note}",
        ),
        Figure(
            "paced queued-to-started delay p99",
            _pct(delays, 0.99),
            "s",
            target=1.0,
            target_on="value",
            note=f"{RUNS} runs at {rate:.0f}/s; target p99 < 1 s",
        ),
        Figure(
            "burst run starts per second",
            burst_rate,
            "runs/s",
            baseline=bare_rate,
            baseline_name="bare store claim+finish, 2 processes",
            better="higher",
            note=f"{RUNS} runs queued at once; {note}",
        ),
        Figure(
            "burst queued-to-started delay p99",
            _pct(burst_delays, 0.99),
            "s",
            note="the backlog's wait: the last of 1,000 queued at once waits for the rest",
        ),
    ]
