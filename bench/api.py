"""The API under load: run status, run list and a log page beside a trivial FastAPI
endpoint of the same app and process, and the HTTP ingest beside the MQTT collector on
the same messages.

The state store (SQLite, the embedded default) holds RUNS runs with two iterations each
and LOG_LINES log lines. The API is one uvicorn worker in a process of its own; `wrk`
(Debian's, installed by `make bench`) generates the load from another, CONNECTIONS
keep-alive connections for SECONDS per endpoint, endpoints alternating, median of
REPEATS. Latencies are wrk's (time from request sent to response read, so they include
queueing behind the other connections' requests). The trivial endpoint the targets are
set against is a plain `def` (run in a worker thread, as FastAPI runs those); the same
endpoint as `async def` is measured too, so a route that skips the thread can be seen
beside both.

HTTP ingest: the collector bench's batch messages POSTed one per request (as a device
would) and 100 per request (NDJSON), each device with its own token; the collector
drains the same messages from its persistent session (as bench/collector.py does).
Both land durably (fsync) on file://; the figure is messages landed per second.

`BENCH_API_BEFORE=PATH` (another checkout of the project with its own `make venv`, e.g.
the main branch's worktree) serves that checkout's code too, on the same store, in a
second process; each endpoint is measured on both in turn, so a change to the read path
is compared with the code before it in one run ("..., before" figures and their
after/before ratios).
"""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import Figure

RUNS = 10_000
LOG_LINES = 1_000_000
SECONDS = 6
REPEATS = 3
CONNECTIONS = 8
# Devices send at once: the ingest is measured with this many connections.
INGEST_CONNECTIONS = 64
INGEST_MESSAGES = 20_000
REPO = Path(__file__).resolve().parent.parent
# Endpoints measured on the code of `BENCH_API_BEFORE` as well, and the suffix of their keys.
COMPARED = ("trivial", "run status, every run", "run list", "log page")
BEFORE = ", before"
# The machine's 1-minute load average as each measurement began (the machine is shared).
LOADS: list[float] = []


def _describe(checkout: Path | None) -> str:
    """A checkout by its branch and commit (not its path, which is this machine's)."""
    git = ["git", "-C", str(checkout), "rev-parse"]
    branch = subprocess.run([*git, "--abbrev-ref", "HEAD"], capture_output=True, text=True)
    commit = subprocess.run([*git, "--short", "HEAD"], capture_output=True, text=True)
    return f"{branch.stdout.strip() or '?'} {commit.stdout.strip()}".strip()


def _before_checkout() -> Path | None:
    """The checkout named by `BENCH_API_BEFORE`, checked: its venv must exist."""
    value = os.environ.get("BENCH_API_BEFORE")
    if not value:
        return None
    path = Path(value).resolve()
    if not (path / ".venv/bin/python").exists():
        raise RuntimeError(
            f"BENCH_API_BEFORE={value}: no .venv/bin/python there (run make venv in it)"
        )
    return path


_SERVER = """
import sys, uvicorn
from edgebatch.settings import load_settings
from edgebatch.api.app import create_app
app = create_app(load_settings())
@app.get("/bench/trivial")
def trivial() -> dict:
    return {"ok": True}
@app.get("/bench/trivial-async")
async def trivial_async() -> dict:
    return {"ok": True}
uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
"""

# wrk request generator for the ingest: each line of the file is `path<TAB>token<TAB>body`.
_INGEST_LUA = """
local items = {}
local n = 0
init = function(args)
  for line in io.lines(args[1]) do
    local path, token, body = line:match("^([^\\t]+)\\t([^\\t]+)\\t(.*)$")
    n = n + 1
    items[n] = wrk.format("POST", path, {["Authorization"] = "Bearer " .. token,
      ["Content-Type"] = args[2]}, (body:gsub("\\\\n", "\\n")))
  end
  i = math.random(n)
end
request = function()
  i = i % n + 1
  return items[i]
end
"""


# wrk request generator cycling through every run's status (so none is answered from cache).
_RUNS_LUA = """
local n = tonumber(os.getenv("BENCH_RUNS"))
local token = os.getenv("BENCH_TOKEN")
i = math.random(n)
request = function()
  i = i % n + 1
  return wrk.format("GET", "/api/v1/runs/" .. i, {["Authorization"] = "Bearer " .. token})
end
"""


def _populate(url: str) -> tuple[str, int, dict[str, str]]:
    """Runs, iterations, attempts and log lines in bulk; an admin token and device tokens."""
    from datetime import UTC, datetime, timedelta

    from sqlalchemy import insert

    from edgebatch.api import security
    from edgebatch.framework.state import StateStore
    from edgebatch.framework.state import models as m

    store = StateStore(url)
    t0 = datetime(2026, 11, 1, tzinfo=UTC)
    states = ["succeeded"] * 8 + ["failed", "cancelled"]
    with store.connection() as conn:
        conn.execute(
            insert(m.Run),
            [
                {
                    "id": i,
                    "job": ("device_daily", "bronze_load", "maintenance")[i % 3],
                    "state": states[i % len(states)],
                    "trigger": "schedule",
                    "triggered_by": "bench",
                    "partitions": ["2026-11-01", "2026-11-02"],
                    "params": {"tenant": ("acme", "other")[i % 2]},
                    "priority": 0,
                    "queue": "default",
                    "created_at": t0 + timedelta(seconds=i),
                    "started_at": t0 + timedelta(seconds=i + 1),
                    "ended_at": t0 + timedelta(seconds=i + 30),
                }
                for i in range(1, RUNS + 1)
            ],
        )
        its, attempts = [], []
        for i in range(1, RUNS + 1):
            for k, key in enumerate(("2026-11-01", "2026-11-02")):
                it_id = 2 * i - 1 + k
                at = t0 + timedelta(seconds=i + 1)
                its.append(
                    {
                        "id": it_id,
                        "run_id": i,
                        "partition_key": key,
                        "state": "succeeded",
                        "attempts": 1,
                        "rows_out": 1000,
                        "started_at": at,
                        "updated_at": at,
                        "ended_at": at + timedelta(seconds=20),
                        "stages_done": 3,
                        "stages_total": 3,
                        "tasks_done": 8,
                        "tasks_total": 8,
                    }
                )
                attempts.append(
                    {
                        "iteration_id": it_id,
                        "number": 1,
                        "state": "succeeded",
                        "started_at": at,
                        "ended_at": at + timedelta(seconds=20),
                    }
                )
        conn.execute(insert(m.Iteration), its)
        conn.execute(insert(m.Attempt), attempts)
        per_run = LOG_LINES // RUNS
        batch: list[dict[str, Any]] = []
        for i in range(1, RUNS + 1):
            for n in range(per_run):
                batch.append(
                    {
                        "run_id": i,
                        "iteration_id": 2 * i - 1 if n % 2 else None,
                        "ts": t0 + timedelta(seconds=i, milliseconds=n),
                        "level": "INFO",
                        "logger": "bench",
                        "message": f"run {i} line {n}: rows written 1000",
                    }
                )
            if len(batch) >= 50_000:
                conn.execute(insert(m.LogLine), batch)
                batch = []
        if batch:
            conn.execute(insert(m.LogLine), batch)
        conn.commit()
    token = security.new_token()
    store.add_token(
        "bench",
        token_hash=security.token_hash(token),
        prefix=security.token_prefix(token),
        role="admin",
        tenants=["*"],
    )
    devices = {}
    for d in range(50):
        device_token = security.new_token()
        store.add_token(
            f"d{d}",
            token_hash=security.token_hash(device_token),
            prefix=security.token_prefix(device_token),
            role="device",
            tenants=["bench"],
            device=f"bench/d{d}",
        )
        devices[f"d{d}"] = device_token
    store.close()
    return token, RUNS // 2, devices


def _wrk(
    url: str,
    headers: dict[str, str],
    seconds: int = SECONDS,
    script: str | None = None,
    args: tuple[str, ...] = (),
    connections: int = CONNECTIONS,
) -> dict[str, float]:
    cmd = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency"]
    for key, value in headers.items():
        cmd += ["-H", f"{key}: {value}"]
    if script:
        cmd += ["-s", script]
    cmd.append(url)
    if args:
        cmd += ["--", *args]
    LOADS.append(os.getloadavg()[0])
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, timeout=seconds + 60)
    text = out.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))  # type: ignore[union-attr]
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    total = int(re.search(r"(\d+) requests in", text).group(1))  # type: ignore[union-attr]
    if bad and int(bad.group(1)) > total * 0.01:
        raise RuntimeError(f"{url}: {bad.group(1)} of {total} answers were errors:\n{text}")
    return {"rps": rps, "p50_ms": _latency(text, "50%"), "p99_ms": _latency(text, "99%")}


def _latency(text: str, which: str) -> float:
    match = re.search(rf"^\s+{re.escape(which)}\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
    if match is None:
        raise RuntimeError(f"no {which} latency in wrk's output:\n{text}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def _serve(
    tmp: Path, python: str = sys.executable, cwd: Path = REPO
) -> tuple[subprocess.Popen[bytes], int]:
    from tests.support.net import free_port

    port = free_port()
    env = {**os.environ, "EDGEBATCH_CONFIG": str(tmp / "edgebatch.toml")}
    proc = subprocess.Popen([python, "-c", _SERVER, str(port)], cwd=cwd, env=env)
    import urllib.request

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1).read()
            return proc, port
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError("the API did not start")


def _ingest_file(tmp: Path, devices: dict[str, str], per_request: int) -> Path:
    from bench.collector import _PAYLOADS

    namespace: dict[str, Any] = {}
    exec(_PAYLOADS, namespace)
    payloads = namespace["payloads"](INGEST_MESSAGES, "")
    by_device: dict[str, list[bytes]] = {}
    for _, payload in payloads:
        by_device.setdefault(json.loads(payload)["device"], []).append(payload)
    lines = []
    for device, items in by_device.items():
        for i in range(0, len(items), per_request):
            body = b"\\n".join(items[i : i + per_request]).decode()
            lines.append(f"/api/v1/ingest/bench/{device}\t{devices[device]}\t{body}")
    path = tmp / f"ingest-{per_request}.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def _collector_rate(tmp: Path) -> float:
    from bench.collector import _PAYLOADS, MESSAGES, _queue_for, _subscriber
    from tests.support.mosquitto import Mosquitto

    namespace: dict[str, Any] = {}
    exec(_PAYLOADS, namespace)
    payloads = namespace["payloads"](MESSAGES, "")
    rates = []
    broker = Mosquitto(tmp / "broker").start()
    try:
        for r in range(2):
            client_id, group = f"collector-{r}-{uuid.uuid4().hex[:6]}", f"g{uuid.uuid4().hex[:6]}"
            _queue_for(broker.port, client_id, group, payloads)
            rates.append(
                _subscriber(
                    "collector", broker.port, client_id, group, (tmp / f"wh-{client_id}").as_uri()
                )
            )
    finally:
        broker.stop()
    return statistics.median(rates)


def run() -> list[Figure]:
    with tempfile.TemporaryDirectory(prefix="edgebatch-bench-api-") as name:
        tmp = Path(name)
        url = f"sqlite:///{tmp / 'state.db'}"
        (tmp / "edgebatch.toml").write_text(
            f'[state]\nurl = "{url}"\n[warehouse]\nroot = "{(tmp / "wh").as_uri()}"\n'
            '[api]\nsecret = "bench-secret-0123456789"\nmqtt_status = false\n'
            "ingest_per_s = 1e9\ningest_burst = 1000000000\n"
        )
        start = time.perf_counter()
        token, run_id, devices = _populate(url)
        print(
            f"   populated {RUNS} runs, {LOG_LINES} log lines in "
            f"{time.perf_counter() - start:.0f} s",
            flush=True,
        )
        proc, port = _serve(tmp)
        before = _before_checkout()
        other = None if before is None else _serve(tmp, str(before / ".venv/bin/python"), before)
        try:
            base = f"http://127.0.0.1:{port}"
            auth = {"Authorization": f"Bearer {token}"}
            targets = {
                "trivial": (f"{base}/bench/trivial", {}),
                # The same without FastAPI's hop to a worker thread (a plain `def` takes it).
                "trivial, async": (f"{base}/bench/trivial-async", {}),
                "run status": (f"{base}/api/v1/runs/{run_id}", auth),
                "run status, every run": (f"{base}/api/v1/runs/1", {}),
                "run list": (f"{base}/api/v1/runs?limit=50&job=device_daily", auth),
                "log page": (f"{base}/api/v1/runs/{run_id}/logs?limit=100", auth),
            }
            lua_runs = tmp / "runs.lua"
            lua_runs.write_text(_RUNS_LUA)
            os.environ["BENCH_RUNS"], os.environ["BENCH_TOKEN"] = str(RUNS), token
            _wrk(targets["trivial"][0], {}, seconds=2)  # warm up
            results: dict[str, list[dict[str, float]]] = {k: [] for k in targets}
            servers = {"": base}
            if other is not None:
                servers[BEFORE] = f"http://127.0.0.1:{other[1]}"
                _wrk(f"{servers[BEFORE]}/bench/trivial", {}, seconds=2)  # warm up
                results.update({k + BEFORE: [] for k in COMPARED})
            for r in range(REPEATS):
                for key, (target, headers) in targets.items():
                    script = str(lua_runs) if key == "run status, every run" else None
                    order = list(servers.items()) if r % 2 == 0 else list(servers.items())[::-1]
                    for suffix, url in order:
                        if suffix and key not in COMPARED:
                            continue
                        results[key + suffix].append(
                            _wrk(target.replace(base, url), headers, script=script)
                        )
            lua = tmp / "ingest.lua"
            lua.write_text(_INGEST_LUA)
            ingest = {}
            for per_request in (1, 100):
                file = _ingest_file(tmp, devices, per_request)
                kind = "application/json" if per_request == 1 else "application/x-ndjson"
                rates = [
                    _wrk(
                        f"{base}/api/v1/ingest/bench/d0",
                        {},
                        script=str(lua),
                        args=(str(file), kind),
                        connections=INGEST_CONNECTIONS,
                    )["rps"]
                    * per_request
                    for _ in range(2)
                ]
                ingest[per_request] = statistics.median(rates)
        finally:
            for p in (proc, *(() if other is None else (other[0],))):
                p.terminate()
                p.wait(30)
        collector = _collector_rate(tmp)
    med = {k: {m: statistics.median(r[m] for r in v) for m in v[0]} for k, v in results.items()}
    trivial = med["trivial"]["rps"]
    figures = [
        Figure("trivial endpoint", trivial, "req/s"),
        Figure("trivial endpoint p50", med["trivial"]["p50_ms"], "ms", target_on="value"),
        Figure(
            "trivial endpoint p99",
            med["trivial"]["p99_ms"],
            "ms",
            target_on="value",
            note=f"load average {min(LOADS):.1f}-{max(LOADS):.1f} "
            f"(median {statistics.median(LOADS):.1f}) on {os.cpu_count()} cores during the run",
        ),
    ]
    trivial_async = med["trivial, async"]
    figures.append(
        Figure(
            "trivial endpoint, async",
            trivial_async["rps"],
            "req/s",
            note=f"p50 {trivial_async['p50_ms']:.2f} ms, p99 {trivial_async['p99_ms']:.1f} ms; "
            "an `async def` route runs on the event loop, the `def` one in a worker thread",
        )
    )
    every = med["run status, every run"]["rps"]
    figures.append(
        Figure(
            "run status, every run, beside the async trivial endpoint",
            every,
            "req/s",
            baseline=trivial_async["rps"],
            baseline_name="trivial endpoint, async",
            better="higher",
        )
    )
    notes = {
        "run status": "one run polled: answered from the 1 s / 10 s status cache",
        "run status, every run": "10,000 runs in turn: every answer read from the store",
    }
    for key in ("run status", "run status, every run", "run list", "log page"):
        figures.append(
            Figure(
                f"{key} throughput",
                med[key]["rps"],
                "req/s",
                baseline=trivial,
                baseline_name="trivial endpoint",
                better="higher",
                target=0.5 if key.startswith("run status") else None,
                note=notes.get(key, ""),
            )
        )
        figures.append(
            Figure(f"{key} p50", med[key]["p50_ms"], "ms", better="lower", target_on="value")
        )
        figures.append(
            Figure(
                f"{key} p99",
                med[key]["p99_ms"],
                "ms",
                better="lower",
                target_on="value",
                target=50.0 if key.startswith("run status") else None,
            )
        )
    if "trivial" + BEFORE in med:
        trivial_before = med["trivial" + BEFORE]["rps"]
        for key in COMPARED[1:]:
            now, then = med[key]["rps"], med[key + BEFORE]["rps"]
            figures.append(
                Figure(
                    f"{key} throughput, after / before",
                    now,
                    "req/s",
                    baseline=then,
                    baseline_name=f"the code of {_describe(_before_checkout())}",
                    better="higher",
                    note=f"before: {then / trivial_before:.2f} of its trivial endpoint "
                    f"({trivial_before:.0f} req/s), p99 {med[key + BEFORE]['p99_ms']:.0f} ms; "
                    f"after: {now / trivial:.2f}, p99 {med[key]['p99_ms']:.0f} ms",
                )
            )
    figures.append(
        Figure(
            "HTTP ingest, 1 message per request",
            ingest[1],
            "msg/s",
            baseline=collector,
            baseline_name="MQTT collector",
            better="higher",
        )
    )
    figures.append(
        Figure(
            "HTTP ingest, 100 messages per request",
            ingest[100],
            "msg/s",
            baseline=collector,
            baseline_name="MQTT collector",
            better="higher",
        )
    )
    return figures
