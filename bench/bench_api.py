"""API benchmark (issue 5): the REST read path, projection lag and webhook intake, on
PostgreSQL, in a fresh schema that is dropped at the end.

  load        100,000 sync operations over 100 fabrics (cancelled / completed / failed, each
              with the fabric's lock events), written in large ``app.save`` batches, then
              ``Projections.catch_up()``                              (time printed)
  read path   a real uvicorn server (subprocess, 127.0.0.1), superuser token, 16 concurrent
              keep-alive clients:
                sync-status of random existing syncs                  target p99 <= 20 ms
                sync-history ?status=cancelled&limit=10&offset=… of a
                fabric with ~1,000 syncs                              target p99 <= 20 ms
              and a bare FastAPI endpoint returning a constant, served and loaded the same
              way, in the same run: our/bare ratios
  lag         500 events/s appended for ~10 s with the live runner (the server's) started:
              time from a save's commit to its position being applied
              (sampled every 2 ms), plus ``Projections.lag()``        target p99 <= 200 ms
  webhooks    signed GitHub ``push`` deliveries (unique X-GitHub-Delivery, a repository no
              fabric tracks) under 16 concurrent clients              target >= 200 /s

Clients: threads with ``httpx.Client`` (keep-alive) always; if ``wrk`` is installed, the
GET endpoints are measured with it as well (a C client: it leaves the CPU to the server,
which matters on 2 cores). Every phase is bounded in time and in requests.

Usage: python bench/bench_api.py [--syncs 100000] [--fabrics 100] [--clients 16]
                                 [--seconds 6] [--lag-seconds 10] [--lag-rate 500]
                                 [--webhooks 3000] [--database-url postgresql://…]
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

API = "/api/plugins/hedgehog"
PG_URL = os.environ.get("FGD_BENCH_DATABASE_URL", "postgresql://root@127.0.0.1:5432/test")
SECRET = "bench-webhook-secret"
HOST = "127.0.0.1"


# ------------------------------------------------------------------------------ helpers


def environ_for(database_url: str, tmp: str) -> dict[str, str]:
    return {
        "HEDGEHOG_FGD_DATABASE_URL": database_url,
        "HEDGEHOG_FGD_SQLITE_PATH": str(Path(tmp) / "unused.sqlite3"),
        "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": SECRET,
        "HOME": tmp,  # no user config file is picked up
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def line(text: str = "") -> None:
    print(text, flush=True)


# ------------------------------------------------------------------------------ servers


def serve(kind: str, port: int, database_url: str, tmp: str) -> None:
    """Subprocess entry: our API (container on the bench schema) or the bare app."""
    import uvicorn
    from fastapi import FastAPI

    container = None
    if kind == "api":
        from fgd_api.app import create_app
        from fgd_api.container import Container
        from fgd_core.config import load_settings

        container = Container.build(load_settings(environ=environ_for(database_url, tmp)))
        app = create_app(container)  # its lifespan starts the live projection runner
    else:
        app = FastAPI()

        @app.get("/bare")
        def bare() -> dict[str, str]:  # a sync endpoint, like ours (threadpool)
            return {"status": "ok"}

        @app.get("/bare-async")
        async def bare_async() -> dict[str, str]:
            return {"status": "ok"}

    # The same settings for both servers: one process, uvloop/httptools when installed
    # (uvicorn's "auto"), no access log.
    uvicorn.run(app, host=HOST, port=port, log_level="warning", access_log=False)
    if container is not None:
        container.close()


class Server:
    def __init__(self, kind: str, database_url: str, tmp: str) -> None:
        self.port = free_port()
        self.url = f"http://{HOST}:{self.port}"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", kind, "--port", str(self.port),
             "--database-url", database_url, "--tmp", tmp],
            env={**os.environ, **environ_for(database_url, tmp)},
        )

    def wait_ready(self, path: str, headers: dict[str, str], timeout: float = 60) -> None:
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}")
            try:
                if httpx.get(self.url + path, headers=headers, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server on {self.url} not ready in {timeout}s")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


# ------------------------------------------------------------------------------ 1. load


def load(app: Any, projections: Any, n_syncs: int, n_fabrics: int) -> dict[str, Any]:
    from fgd_core.domain.sync_operation import SyncOperation

    started = time.perf_counter()
    fabric_ids = [
        app.register_fabric(
            name=f"bench-{i}", repository=f"https://github.com/bench-org/fabric-{i}.git"
        ).fabric_id
        for i in range(n_fabrics)
    ]
    rng = random.Random(5)
    sync_ids: list[str] = []
    cancelled: dict[int, int] = dict.fromkeys(fabric_ids, 0)
    per_fabric = [n_syncs // n_fabrics + (1 if i < n_syncs % n_fabrics else 0)
                  for i in range(n_fabrics)]
    events = 0
    batch: list[Any] = []
    write_s = 0.0
    for fabric_id, count in zip(fabric_ids, per_fabric, strict=True):
        fabric = app.get_fabric(fabric_id)
        for j in range(count):
            sync = SyncOperation.start(fabric_id, rng.choice(("manual", "webhook", "scheduled")),
                                       None, f"bench-{fabric_id}-{j}")
            fabric.start_sync(sync.sync_id, sync.correlation_id)
            roll = rng.random()
            if roll < 0.3:  # start / cancel
                sync.cancel("cancelled by bench")
                cancelled[fabric_id] += 1
            elif roll < 0.9:  # start / stage / complete
                sync.begin_stage("validation")
                sync.complete_stage("validation", {"files": 3})
                sync.complete()
            else:  # start / stage / fail
                sync.begin_stage("validation")
                sync.fail("FGD_2001", "bench failure", {"file": "raw/x.yaml"})
            fabric.finish_sync(sync.sync_id, sync.state, sync.correlation_id)
            sync_ids.append(sync.sync_id)
            batch.append(sync)
            if len(batch) >= 1000:
                t = time.perf_counter()
                events += len(app.save(*batch, fabric))
                write_s += time.perf_counter() - t
                batch = []
        if batch:
            t = time.perf_counter()
            events += len(app.save(*batch, fabric))
            write_s += time.perf_counter() - t
            batch = []
    generated = time.perf_counter()
    t = time.perf_counter()
    position = projections.catch_up()
    project_s = time.perf_counter() - t
    total = time.perf_counter() - started
    return {
        "fabric_ids": fabric_ids,
        "sync_ids": sync_ids,
        "cancelled": cancelled,
        "events": events,
        "position": position,
        "write_s": write_s,
        "build_s": generated - started - write_s,
        "project_s": project_s,
        "total_s": total,
    }


# ------------------------------------------------------------------------------ 2. HTTP


def httpx_load(
    base_url: str,
    headers: dict[str, str],
    make: Callable[[int], tuple[str, str, bytes | None, dict[str, str]]],
    clients: int,
    seconds: float,
    max_requests: int,
    expect: int = 200,
    warmup: float = 1.0,
    timeout: float = 10.0,
) -> dict[str, Any]:
    """``clients`` threads with a keep-alive httpx.Client each, closed loop, until
    ``seconds`` or ``max_requests``; after ``warmup`` seconds of unrecorded requests."""
    import httpx

    counter = itertools.count()
    latencies: list[list[float]] = [[] for _ in range(clients)]
    bad: list[str] = []
    barrier = threading.Barrier(clients + 1)
    window: dict[str, float] = {}
    go = threading.Event()

    def worker(k: int) -> None:
        with httpx.Client(base_url=base_url, headers=headers, timeout=timeout) as client:
            def one(i: int) -> float:
                method, path, body, extra = make(i)
                t0 = time.perf_counter()
                r = client.request(method, path, content=body, headers=extra)
                dt = time.perf_counter() - t0
                if r.status_code != expect and len(bad) < 5:
                    bad.append(f"{r.status_code} {r.text[:200]}")
                return dt

            end_warm = time.monotonic() + warmup
            while time.monotonic() < end_warm:
                one(-1)
            barrier.wait()
            go.wait()
            stop = window["stop"]
            mine = latencies[k]
            while time.monotonic() < stop:
                i = next(counter)
                if i >= max_requests:
                    break
                mine.append(one(i))

    threads = [threading.Thread(target=worker, args=(k,), daemon=True) for k in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    t0 = time.perf_counter()
    window["stop"] = time.monotonic() + seconds
    go.set()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - t0
    flat = [x * 1000 for lst in latencies for x in lst]
    return {
        "n": len(flat),
        "rps": len(flat) / elapsed if elapsed else 0.0,
        "p50": pct(flat, 50),
        "p99": pct(flat, 99),
        "mean": statistics.fmean(flat) if flat else float("nan"),
        "bad": bad,
    }


WRK_LUA = """
local paths = {}
for l in io.lines("%(paths)s") do paths[#paths + 1] = l end
wrk.headers["Authorization"] = "%(auth)s"
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n * 7919 + math.random(#paths)) %% #paths + 1])
end
done = function(summary, latency, requests)
  io.write(string.format(
    "WRKJSON {\\"p50\\": %%d, \\"p99\\": %%d, \\"mean\\": %%f, \\"requests\\": %%d, "
    .. "\\"duration\\": %%d, \\"errors\\": %%d, \\"non2xx\\": %%d}\\n",
    latency:percentile(50), latency:percentile(99), latency.mean, summary.requests,
    summary.duration, summary.errors.connect + summary.errors.read + summary.errors.write
    + summary.errors.timeout, summary.errors.status))
end
"""


def wrk_load(base_url: str, auth: str, paths: list[str], clients: int, seconds: float,
             tmp: str) -> dict[str, Any] | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    paths_file = Path(tmp) / f"paths-{uuid.uuid4().hex[:8]}.txt"
    paths_file.write_text("\n".join(paths) + "\n")
    script = Path(tmp) / f"wrk-{uuid.uuid4().hex[:8]}.lua"
    script.write_text(WRK_LUA % {"paths": paths_file, "auth": auth})
    # warm-up, then the measured run
    subprocess.run([wrk, "-t2", f"-c{clients}", "-d1s", "-s", str(script), base_url],
                   capture_output=True, timeout=30, check=False)
    out = subprocess.run(
        [wrk, "-t2", f"-c{clients}", f"-d{max(1, round(seconds))}s", "--timeout", "5s",
         "-s", str(script), base_url],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    ).stdout
    found = re.search(r"WRKJSON (\{.*\})", out)
    if not found:
        return {"n": 0, "rps": 0.0, "p50": float("nan"), "p99": float("nan"),
                "mean": float("nan"), "bad": [out[-300:]]}
    d = json.loads(found.group(1))
    return {
        "n": d["requests"],
        "rps": d["requests"] / (d["duration"] / 1e6),
        "p50": d["p50"] / 1000,
        "p99": d["p99"] / 1000,
        "mean": d["mean"] / 1000,
        "bad": [f"{d['errors']} socket errors, {d['non2xx']} non-2xx"]
        if d["errors"] or d["non2xx"] else [],
    }


def fmt(name: str, r: dict[str, Any], target: float | None = None) -> str:
    verdict = ""
    if target is not None:
        verdict = "  OK" if r["p99"] <= target else f"  MISSED (target p99 <= {target:g} ms)"
    extra = f"  errors: {r['bad']}" if r["bad"] else ""
    return (f"  {name:<34} n={r['n']:>6}  {r['rps']:>7.0f} req/s  p50 {r['p50']:6.2f} ms"
            f"  p99 {r['p99']:6.2f} ms{verdict}{extra}")


# ------------------------------------------------------------------------------ 3. lag


def measure_lag(app: Any, projections: Any, fabric_id: int, rate: int, seconds: float,
                per_save: int = 2) -> dict[str, Any]:
    """A writer appends ``rate`` events/s (saves of ``per_save`` events on a fixed schedule)
    while a sampler polls the read model's position every 2 ms."""
    from fgd_core.domain.sync_operation import SyncOperation

    pending: deque[tuple[int, float]] = deque()
    visible_ms: list[float] = []
    lag_events: list[int] = []
    done = threading.Event()
    lock = threading.Lock()
    written = {"events": 0, "saves": 0, "behind": 0.0}

    def writer() -> None:
        interval = per_save / rate
        start = time.perf_counter()
        open_sync = None
        k = 0
        while True:
            due = start + k * interval
            if due - start >= seconds:
                break
            now = time.perf_counter()
            if due > now:
                time.sleep(due - now)
            else:
                written["behind"] = max(written["behind"], now - due)
            if open_sync is None:  # sync.started + stage.started
                open_sync = SyncOperation.start(fabric_id, "manual", None, f"lag-{k}")
                open_sync.begin_stage("validation")
                recordings = app.save(open_sync)
            else:  # stage.completed + sync.completed
                open_sync.complete_stage("validation", {})
                open_sync.complete()
                recordings = app.save(open_sync)
                open_sync = None
            t_saved = time.perf_counter()
            with lock:
                pending.append((recordings[-1].notification.id, t_saved))
            written["events"] += len(recordings)
            written["saves"] += 1
            k += 1
        done.set()

    def sampler() -> None:
        last_lag = 0.0
        while not (done.is_set() and not pending):
            position = projections.position()
            now = time.perf_counter()
            with lock:
                while pending and pending[0][0] <= position:
                    visible_ms.append((now - pending.popleft()[1]) * 1000)
            if now - last_lag >= 0.05:
                lag_events.append(projections.lag())
                last_lag = now
            if done.is_set() and time.perf_counter() > deadline:
                break
            time.sleep(0.002)

    deadline = time.perf_counter() + seconds + 15
    t0 = time.perf_counter()
    threads = [threading.Thread(target=writer), threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 30)
    elapsed = time.perf_counter() - t0
    return {
        "events": written["events"],
        "saves": written["saves"],
        "rate": written["events"] / seconds,
        "behind_ms": written["behind"] * 1000,
        "p50": pct(visible_ms, 50),
        "p99": pct(visible_ms, 99),
        "max": max(visible_ms) if visible_ms else float("nan"),
        "unseen": len(pending),
        "lag_p50": pct([float(x) for x in lag_events], 50),
        "lag_p99": pct([float(x) for x in lag_events], 99),
        "lag_max": max(lag_events) if lag_events else 0,
        "elapsed": elapsed,
    }


# ------------------------------------------------------------------------------ 4. webhooks


def push_body(i: int, repository: str) -> bytes:
    after = hashlib.sha1(f"after-{i}".encode()).hexdigest()
    payload = {
        "ref": "refs/heads/main",
        "before": "0" * 40,
        "after": after,
        "deleted": False,
        "repository": {
            "id": 424242,
            "name": repository.rsplit("/", 1)[-1],
            "full_name": repository,
            "html_url": f"https://github.com/{repository}",
            "clone_url": f"https://github.com/{repository}.git",
            "ssh_url": f"git@github.com:{repository}.git",
            "default_branch": "main",
        },
        "pusher": {"name": "bench", "email": "bench@example.com"},
        "head_commit": {"id": after, "message": "bench", "added": ["README.md"],
                        "removed": [], "modified": []},
        "commits": [{"id": after, "message": "bench", "added": ["README.md"], "removed": [],
                     "modified": [], "distinct": True}],
    }
    return json.dumps(payload).encode()


def signed(body: bytes, delivery: str) -> dict[str, str]:
    sig = "sha256=" + hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {
        "X-GitHub-Event": "push",
        "X-GitHub-Delivery": delivery,
        "X-Hub-Signature-256": sig,
        "Content-Type": "application/json",
        "User-Agent": "GitHub-Hookshot/bench",
    }


# ------------------------------------------------------------------------------ main


def run(args: argparse.Namespace) -> int:
    import httpx
    import psycopg

    from fgd_api.container import Container
    from fgd_core.application.auth import create_token
    from fgd_core.config import load_settings

    schema = f"bench_api_{uuid.uuid4().hex[:10]}"
    database_url = f"{args.database_url}?schema={schema}"
    tmp = tempfile.mkdtemp(prefix="fgd-bench-api-")
    servers: list[Server] = []
    container = None
    with psycopg.connect(args.database_url, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    bench_started = time.perf_counter()
    try:
        line(f"FGD API benchmark — PostgreSQL schema {schema}, {os.cpu_count()} CPUs, "
             f"Python {sys.version.split()[0]}, {args.clients} concurrent clients")
        container = Container.build(load_settings(environ=environ_for(database_url, tmp)))
        app, projections = container.app, container.read_model

        # 1 -------------------------------------------------------------------------------
        line(f"\n[1] load {args.syncs:,} sync operations over {args.fabrics} fabrics")
        data = load(app, projections, args.syncs, args.fabrics)
        rows = projections.view.fetchall("SELECT COUNT(*) AS n FROM {sync}")[0]["n"]
        line(f"  {data['events']:,} events written in {data['write_s']:.1f} s "
             f"({data['events'] / data['write_s']:,.0f} events/s; aggregates built in "
             f"{data['build_s']:.1f} s)")
        line(f"  catch_up applied them in {data['project_s']:.1f} s "
             f"({data['events'] / data['project_s']:,.0f} events/s); "
             f"{rows:,} sync rows; position {data['position']:,}")
        line(f"  loading took {data['total_s']:.1f} s in all")
        assert rows == args.syncs, rows

        key, _ = create_token(app, "bench", superuser=True)
        auth = f"Token {key}"
        headers = {"Authorization": auth}
        projections.catch_up()

        # 2 -------------------------------------------------------------------------------
        ours = Server("api", database_url, tmp)
        bare = Server("bare", database_url, tmp)
        servers += [ours, bare]
        rng = random.Random(7)
        sample_sync = data["sync_ids"][0]
        ours.wait_ready(f"{API}/sync-status/{sample_sync}/", headers)
        bare.wait_ready("/bare", {})

        status_paths = [f"{API}/sync-status/{s}/" for s in rng.sample(data["sync_ids"], 5000)]
        history_paths = []
        for _ in range(5000):
            fid = rng.choice(data["fabric_ids"])
            top = max(0, data["cancelled"][fid] - 10)
            history_paths.append(f"{API}/fabrics/{fid}/sync-history/"
                                 f"?status=cancelled&limit=10&offset={rng.randint(0, top)}")
        # correctness of what is measured
        r = httpx.get(ours.url + status_paths[0], headers=headers).json()
        assert r["sync_id"] and r["state"] in ("cancelled", "completed", "failed"), r
        fid = data["fabric_ids"][0]
        r = httpx.get(f"{ours.url}{API}/fabrics/{fid}/sync-history/?status=cancelled&limit=10",
                      headers=headers).json()
        assert r["count"] == data["cancelled"][fid] and len(r["results"]) == 10, r
        assert all(x["state"] == "cancelled" for x in r["results"])
        line(f"\n[2] read path: uvicorn on {HOST} (1 process each), {args.clients} clients, "
             f"{args.seconds:g} s per endpoint (max {args.max_requests:,} requests), "
             f"after 1 s warm-up")
        line(f"  fabric {fid}: {data['cancelled'][fid]} cancelled of "
             f"{args.syncs // args.fabrics} syncs (history pages at random offsets)")

        def gets(paths: list[str]) -> Callable[[int], tuple[str, str, None, dict[str, str]]]:
            return lambda i: ("GET", paths[i % len(paths)], None, {})

        results: dict[str, dict[str, dict[str, Any]]] = {}
        plan = [
            ("sync-status", ours.url, headers, status_paths, 20.0),
            ("sync-history (cancelled, page)", ours.url, headers, history_paths, 20.0),
            ("bare FastAPI (def)", bare.url, {}, ["/bare"], None),
            ("bare FastAPI (async def)", bare.url, {}, ["/bare-async"], None),
        ]
        clients_used = ["httpx"] + (["wrk"] if shutil.which("wrk") else [])
        for client_name in clients_used:
            line(f"  client: {client_name}"
                 + (" (threads, httpx.Client keep-alive)" if client_name == "httpx"
                    else " (-t2, keep-alive, random path per request)"))
            for name, url, hdrs, paths, target in plan:
                if client_name == "httpx":
                    shuffled = list(paths)
                    rng.shuffle(shuffled)
                    res = httpx_load(url, hdrs, gets(shuffled), args.clients, args.seconds,
                                     args.max_requests)
                else:
                    res = wrk_load(url, auth, paths, args.clients, args.seconds, tmp)
                    assert res is not None
                results.setdefault(client_name, {})[name] = res
                line(fmt(name, res, target))
            base = results[client_name]["bare FastAPI (def)"]
            for name in ("sync-status", "sync-history (cancelled, page)"):
                ours_r = results[client_name][name]
                line(f"    ratio {name} / bare(def): p50 x{ours_r['p50'] / base['p50']:.1f}, "
                     f"p99 x{ours_r['p99'] / base['p99']:.1f}, "
                     f"throughput x{ours_r['rps'] / base['rps']:.2f}")

        # 3 -------------------------------------------------------------------------------
        line(f"\n[3] projection lag: {args.lag_rate} events/s for {args.lag_seconds:g} s "
             f"(saves of 2 events), the server's live runner applying them")
        lag = measure_lag(app, projections, data["fabric_ids"][0], args.lag_rate,
                          args.lag_seconds)
        verdict = "OK" if lag["p99"] <= 200 else "MISSED (target p99 <= 200 ms)"
        line(f"  appended {lag['events']:,} events in {lag['saves']:,} saves "
             f"({lag['rate']:.0f} events/s; writer at most {lag['behind_ms']:.0f} ms behind "
             f"schedule)")
        line(f"  save -> visible in read model: p50 {lag['p50']:.1f} ms  p99 {lag['p99']:.1f} ms"
             f"  max {lag['max']:.1f} ms  ({lag['unseen']} never seen)  {verdict}")
        line(f"  Projections.lag() every 50 ms: p50 {lag['lag_p50']:.0f}  p99 "
             f"{lag['lag_p99']:.0f}  max {lag['lag_max']} events behind")

        # 4 -------------------------------------------------------------------------------
        line(f"\n[4] webhook intake: signed push deliveries to {API}/webhooks/github/, "
             f"{args.clients} clients, max {args.webhooks:,} deliveries / {args.seconds:g} s")
        repo = "bench-org/no-such-fabric"
        probe = push_body(-1, repo)
        bad = httpx.post(f"{ours.url}{API}/webhooks/github/", content=probe,
                         headers={**signed(probe, "bench-probe-bad"),
                                  "X-Hub-Signature-256": "sha256=" + "0" * 64}, timeout=60)
        t_probe = time.perf_counter()
        ok = httpx.post(f"{ours.url}{API}/webhooks/github/", content=probe,
                        headers=signed(probe, "bench-probe-ok"), timeout=60)
        probe_s = time.perf_counter() - t_probe
        if bad.status_code == 404 or ok.status_code == 404:
            line("  webhook router not available (404): not measured")
        else:
            assert bad.status_code == 401, (bad.status_code, bad.text)
            assert ok.status_code == 202 and not ok.json()["triggered"], ok.text
            line(f"  probe: bad signature -> {bad.status_code}; good -> {ok.status_code} "
                 f"({ok.json()['ignored']}) in {probe_s * 1000:.0f} ms")
            bodies = [push_body(i, repo) for i in range(256)]
            run_id = uuid.uuid4().hex[:8]

            def delivery(i: int) -> tuple[str, str, bytes, dict[str, str]]:
                body = bodies[i % len(bodies)]
                tag = f"w{i}" if i >= 0 else f"warm{uuid.uuid4().hex}"
                return ("POST", f"{API}/webhooks/github/", body,
                        signed(body, f"bench-{run_id}-{tag}"))

            # One delivery slower than 0.5 s: a full 16-client run would not fit the time
            # bound; measure a few with 2 clients instead (still bounded) and say so.
            slow = probe_s > 0.5
            n_clients, limit = (2, 8) if slow else (args.clients, args.webhooks)
            if slow:
                line(f"  one delivery took {probe_s:.1f} s: measuring {limit} deliveries with "
                     f"{n_clients} clients only")
            res = httpx_load(ours.url, {}, delivery, n_clients, args.seconds, limit,
                             expect=202, warmup=0.0, timeout=120.0)
            verdict = "OK" if res["rps"] >= 200 else "MISSED (target >= 200 deliveries/s)"
            line(fmt("push deliveries (signed)", res) + f"  {verdict}")
            line(f"  -> {res['rps']:.0f} deliveries/s")

        line(f"\nbenchmark took {time.perf_counter() - bench_started:.0f} s")
        return 0
    finally:
        for server in servers:
            server.stop()
        if container is not None:
            container.close()
        with psycopg.connect(args.database_url, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        shutil.rmtree(tmp, ignore_errors=True)
        line(f"schema {schema} dropped")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--syncs", type=int, default=100_000)
    parser.add_argument("--fabrics", type=int, default=100)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--max-requests", type=int, default=50_000)
    parser.add_argument("--lag-seconds", type=float, default=10.0)
    parser.add_argument("--lag-rate", type=int, default=500)
    parser.add_argument("--webhooks", type=int, default=3000)
    parser.add_argument("--database-url", default=PG_URL)
    parser.add_argument("--serve", choices=("api", "bare"), help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--tmp", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, args.port, args.database_url, args.tmp)
        return 0
    if not args.database_url.startswith(("postgresql://", "postgres://")) or "@127.0.0.1" not in (
        args.database_url
    ):
        parser.error("--database-url must be a postgresql:// URL on 127.0.0.1")
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    return run(args)


if __name__ == "__main__":
    sys.exit(main())
