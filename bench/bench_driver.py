"""In-process driver benchmark (issue 11): the real ``LocalSyncDriver`` end to end — a
registered fabric, ``driver.run`` (discover, ingest in batches, publish: commit and push to
a real bare repository), events recorded in a SQLite event store (the embedded default) —
against bare libyaml parse+dump of the same text, in the same run.

  full sync     10,000 resources in 200 raw files                     target >= 0.65 x
                (bare libyaml's rate / the driver's, wall clock and process CPU)
  cache         the same sync with eventsourcing's aggregate cache off (as before) and on
                (``pipeline_local.DRIVER_ENV``, what ``bootstrap.build_runner`` uses): the
                events written must be the same (checked), the CPU less

Usage: python bench/bench_driver.py [--resources 10000] [--files 200] [--rounds 1]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import yaml  # noqa: E402

from bench.fabric_gen import FabricGen  # noqa: E402
from fgd_core.adapters.persistence import sqlite_env  # noqa: E402
from fgd_core.application.app import FGDApplication  # noqa: E402
from fgd_core.application.pipeline_local import DRIVER_ENV, LocalSyncDriver  # noqa: E402
from fgd_core.config import load_settings  # noqa: E402
from tests.gitserver import init_bare, seed_repo  # noqa: E402

VOLATILE = {"timestamp", "originator_id", "sync_id", "correlation_id", "commit", "event_id",
            "head", "duration_seconds", "duration", "elapsed", "time"}


RAW = "gitops/raw/"
GEN = FabricGen(capacity_units=20_000)  # a fabric valid as a whole, as bench_ingest's


def bare_libyaml(texts: list[bytes]) -> tuple[int, float, float]:
    """Parse and dump every document with libyaml (CSafeLoader / CSafeDumper), nothing else:
    (documents, wall seconds, CPU seconds)."""
    start, cpu_start = time.perf_counter(), time.process_time()
    docs = 0
    for data in texts:
        for doc in yaml.load_all(data.decode(), Loader=yaml.CSafeLoader):
            if doc is not None:
                yaml.dump(doc, Dumper=yaml.CSafeDumper)
                docs += 1
    return docs, time.perf_counter() - start, time.process_time() - cpu_start


def stable(value: Any) -> Any:
    """An event payload without ids and times (they differ from run to run)."""
    if isinstance(value, dict):
        return {k: stable(v) for k, v in value.items()
                if k not in VOLATILE and not k.endswith(("_at", "_seconds", "_time"))}
    if isinstance(value, list):
        return [stable(v) for v in value]
    return value


def timed_loads(app: FGDApplication) -> list[float]:
    """Count the CPU spent loading aggregates (``repository.get``): [seconds, calls]."""
    spent = [0.0, 0.0]
    get = app.repository.get

    def timed(*args: Any, **kwargs: Any) -> Any:
        cpu = time.process_time()
        try:
            return get(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - cpu
            spent[1] += 1

    app.repository.get = timed  # type: ignore[method-assign]
    return spent


def one_sync(tmp: Path, texts: list[bytes], env: dict[str, str], name: str
             ) -> tuple[float, float, list[Any], list[float]]:
    bare = init_bare(tmp / f"{name}.git")
    seed_repo(bare, {"README.md": b"# fabric\n"}
              | {f"{RAW}batch-{f:04d}.yaml": t for f, t in enumerate(texts)})
    app = FGDApplication(env={**sqlite_env(tmp / f"{name}.sqlite3"), **env})
    try:
        config = load_settings(environ={}).fgd
        driver = LocalSyncDriver(app, config, cache_root=tmp / f"{name}-cache")
        fabric = app.register_fabric(name, str(bare))
        loads = timed_loads(app)
        start, cpu = time.perf_counter(), time.process_time()
        result = driver.run(fabric.fabric_id)
        seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - cpu
        assert result.ok, result.sync.errors
        summary = result.sync.stage_summaries
        events = [
            (type(e).__name__, stable(getattr(e, "__dict__", {})))
            for e in app.repository.event_store.get(result.sync.id)
        ]
        assert summary, summary
        return seconds, cpu_seconds, events, loads
    finally:
        app.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=1, help="syncs per variant (best kept)")
    args = parser.parse_args()
    per_file = args.resources // args.files
    texts = [GEN.raw_file(f * per_file, per_file) for f in range(args.files)]
    n_docs, lib_seconds, lib_cpu = bare_libyaml(texts)
    print(f"in-process driver, {n_docs} resources in {args.files} files (machine shared)")
    print(f"  bare libyaml         {lib_seconds:7.2f} s wall  {lib_cpu:7.2f} s CPU")
    figures: dict[str, tuple[float, float, list[float]]] = {}
    streams: dict[str, list[Any]] = {}
    with tempfile.TemporaryDirectory(prefix="fgd-bench-driver-") as name:
        tmp = Path(name)
        for variant, env in (("cache off", {}), ("cache on", DRIVER_ENV)):
            best: tuple[float, float, list[float]] | None = None
            for r in range(args.rounds):
                label = f"{variant.replace(' ', '-')}-{r}"
                seconds, cpu, events, loads = one_sync(tmp, texts, env, label)
                streams[variant] = events
                best = (seconds, cpu, loads) if best is None or cpu < best[1] else best
            assert best is not None
            figures[variant] = best
            seconds, cpu, loads = best
            print(f"  driver, {variant:9}   {seconds:7.2f} s wall  {cpu:7.2f} s CPU   "
                  f"ratio libyaml/driver: wall {lib_seconds / seconds:5.2f} x, "
                  f"CPU {lib_cpu / cpu:5.2f} x   (target >= 0.65)")
            print(f"    aggregate loads    {loads[0]:7.2f} s CPU in {loads[1]:.0f} loads")
    same = streams["cache off"] == streams["cache on"]
    for a, b in zip(streams["cache off"], streams["cache on"], strict=False):
        if a != b:
            keys = {k for k in a[1] if a[1][k] != b[1].get(k)}
            print("  first difference:", a[0], {k: (str(a[1][k])[:300], str(b[1].get(k))[:300])
                                               for k in keys})
            break
    print(f"  events written: {len(streams['cache on'])}, the same with and without the "
          f"cache: {same}")
    off, on = figures["cache off"][1], figures["cache on"][1]
    print(f"  cache on / off CPU   {on / off:5.2f}  ({(1 - on / off) * 100:.0f} % less)")
    if not same:
        raise SystemExit("the events differ with the aggregate cache on")


if __name__ == "__main__":
    main()
