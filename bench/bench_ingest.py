"""Ingestion benchmark: FGD's full sync pipeline against bare libyaml, in the same run.

  full sync     10,000 resources in 200 raw files: fetch, plan_sync (safe load, validate,
                normalize, dump, fabric-wide checks), one commit (managed writes +
                archives), push to a real bare repository.  Rate against bare libyaml
                parse+dump of the same text (CSafeLoader / CSafeDumper)   target >= 0.65 x
  incremental   one new raw file with 50 resources on top of that repository: the same
                pipeline; time against the full sync's                    target <= 5 %
  memory        one 10 MB raw file through fetch/plan/commit in a subprocess: peak RSS
                (ru_maxrss) above the process baseline                    target <= 100 MB

Usage: python bench/bench_ingest.py [--resources 10000] [--files 200] [--incremental 50]
                                    [--memory-mb 10]
Needs the git CLI (the repository is made with tests/gitserver.py's helpers).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fabric_gen import FabricGen  # noqa: E402
from fgd_core.adapters import fabric_tree  # noqa: E402
from fgd_core.adapters.git_repo import GitRemote, Snapshot  # noqa: E402
from fgd_core.application.pipeline_common import fabric_of  # noqa: E402
from fgd_core.ingestion import (  # noqa: E402
    IngestionRules,
    RawFile,
    plan_sync,
)
from fgd_core.ingestion.hedgehog import fabric_check  # noqa: E402
from fgd_core.ingestion.plan import ARCHIVE_SUFFIX, SyncPlan  # noqa: E402
from tests.gitserver import init_bare, seed_repo  # noqa: E402

AUTHOR = "FGD Sync <fgd@example.com>"
RAW = "gitops/raw/"

# ------------------------------------------------------------------- realistic documents
# A fabric that is valid as a whole (bench/fabric_gen.py): the fabric-wide checks run on
# every document and find nothing, as in a healthy repository.

GEN = FabricGen(capacity_units=20_000)  # wiring for the 10 MB memory run too


def document(n: int) -> str:
    return GEN.document(n)


def raw_file(first: int, count: int) -> bytes:
    return GEN.raw_file(first, count)


# ---------------------------------------------------------------------------- pipeline


class SyncResult:
    def __init__(
        self,
        plan: SyncPlan,
        seconds: float,
        blob_reads: int,
        stages: dict[str, float],
        cpu_seconds: float = 0.0,
    ) -> None:
        self.plan, self.seconds, self.blob_reads, self.stages = plan, seconds, blob_reads, stages
        self.cpu_seconds = cpu_seconds  # process CPU time: detail, less sensitive to load

    def breakdown(self) -> str:
        return "  ".join(f"{k} {v:.3f}" for k, v in self.stages.items())


def count_blob_reads(snap: Snapshot) -> Callable[[], int]:
    """Count blobs the pipeline inflates (trees do not count)."""
    store = snap._store
    original = store.get_raw
    count = [0]

    def get_raw(sha: Any) -> tuple[int, bytes]:
        type_num, data = original(sha)
        count[0] += type_num == 3
        return type_num, data

    store.get_raw = get_raw  # type: ignore[method-assign]
    return lambda: count[0]


def sync(remote: GitRemote, sync_id: str, rules: IngestionRules,
         keep_in: Path | None = None) -> SyncResult:
    """One sync as the workers run it: discovery, planning, one commit, push."""
    stages: dict[str, float] = {}
    cpu_start = time.process_time()
    start = last = time.perf_counter()

    def stage(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        stages[name], last = now - last, now

    snap = remote.fetch("main")
    reads = count_blob_reads(snap)
    stage("fetch")
    # Discovery lists raw/ only: archive names (the only paths a plan adds outside
    # managed/) live there, and managed/ is looked up lazily below.
    listing = snap.files(rules.raw_prefix)  # paths and blob ids; sizes are not read
    raw = {
        e.path: RawFile(snap.read(e), is_symlink=e.is_symlink)
        for e in listing
        if not e.path.endswith(ARCHIVE_SUFFIX)
    }
    stage("discover")
    plan = plan_sync(
        raw,
        snap.blobs(rules.managed_prefix),  # lazy: a managed blob is read only if written
        [e.path for e in listing],
        {},
        sync_id,
        rules,
        managed_fabric=fabric_of(snap, rules, keep_in),  # fabric-wide checks, as the runner
    )
    blob_reads = reads()  # by discovery and planning (push re-reads what it sends)
    stage("plan")
    changes: dict[str, bytes | None] = {w.path: w.content for w in plan.changed_writes}
    for a in plan.archives:
        changes[a.raw_path] = None
        changes[a.archived_path] = raw[a.raw_path].content
    sha = remote.commit(snap, changes, f"fgd sync {sync_id}", AUTHOR, timestamp=1_700_000_000)
    stage("commit")
    remote.push(sha, "main", snap.head)
    stage("push")
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    return SyncResult(plan, seconds, blob_reads, stages, cpu)


class CheckTimer:
    """CPU time spent in the fabric-wide verdict (the index, every rule) while active."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self._original = fabric_check._verdict

    def __enter__(self) -> CheckTimer:
        original = self._original

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.process_time()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.process_time() - start

        fabric_check._verdict = timed  # type: ignore[assignment]
        return self

    def __exit__(self, *exc: object) -> None:
        fabric_check._verdict = self._original  # type: ignore[assignment]


def bare_libyaml(texts: list[bytes]) -> tuple[int, float, float]:
    start = time.perf_counter()
    cpu_start = time.process_time()
    docs = 0
    for data in texts:
        for doc in yaml.load_all(data.decode(), Loader=yaml.CSafeLoader):
            if doc is None:
                continue
            yaml.dump(doc, Dumper=yaml.CSafeDumper)
            docs += 1
    return docs, time.perf_counter() - start, time.process_time() - cpu_start


# ------------------------------------------------------------------------------- memory


def memory_child(repo: str, cache: str, max_docs: int) -> None:
    """Runs in a fresh interpreter: peak RSS of one sync above the post-import baseline."""
    rules = IngestionRules(max_documents_per_file=max_docs)
    remote = GitRemote(repo, cache_dir=cache)
    remote.fetch("main")  # the object store holds the raw file before the baseline
    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    result = sync(remote, "mem", rules)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        json.dumps(
            {
                "baseline_kb": baseline,
                "peak_kb": peak,
                "seconds": result.seconds,
                "documents": result.plan.files[0].documents_found,
                "status": result.plan.files[0].status,
                "errors": [e.message for e in result.plan.files[0].errors[:3]],
            }
        )
    )


def memory_bench(tmp: Path, megabytes: float) -> dict[str, Any]:
    target = int(megabytes * 1024 * 1024) - 4096  # stay under max_file_size_mb
    docs: list[str] = []
    size, n = 0, 0
    while True:
        d = document(n)  # a fresh repository: the same valid fabric, from its start
        if size + len(d) + 4 > target:
            break
        docs.append(d)
        size += len(d) + 4
        n += 1
    data = "---\n".join(docs).encode()
    bare = init_bare(tmp / "mem.git")
    seed_repo(bare, {"README.md": b"# fabric\n", f"{RAW}big.yaml": data})
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", str(bare), str(tmp / "mem-cache"), str(n)],
        capture_output=True,
        text=True,
        check=True,
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["file_bytes"] = len(data)
    return result


# --------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--incremental", type=int, default=50)
    parser.add_argument("--memory-mb", type=float, default=10.0)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--memory-child", nargs=3, metavar=("REPO", "CACHE", "MAX_DOCS"))
    args = parser.parse_args()
    if args.memory_child:
        repo, cache, max_docs = args.memory_child
        memory_child(repo, cache, int(max_docs))
        return

    total_start = time.perf_counter()
    per_file = args.resources // args.files
    rules = IngestionRules(max_documents_per_file=max(100, per_file, args.incremental))
    with tempfile.TemporaryDirectory(prefix="fgd-bench-") as name:
        tmp = Path(name)
        texts = [raw_file(f * per_file, per_file) for f in range(args.files)]
        bare = init_bare(tmp / "fabric.git")
        seed_repo(
            bare,
            {"README.md": b"# fabric\n"}
            | {f"{RAW}batch-{f:04d}.yaml": t for f, t in enumerate(texts)},
        )
        remote = GitRemote(bare, cache_dir=tmp / "cache")
        keep = tmp / "cache"  # where the runner keeps the managed index between processes

        checks = CheckTimer()
        with checks:
            full = sync(remote, "full", rules, keep)
        summary = full.plan.summary()
        assert summary["files_processed"] == args.files, summary
        assert summary["files_created"] == per_file * args.files, summary

        n_docs, lib_seconds, lib_cpu = bare_libyaml(texts)
        assert n_docs == per_file * args.files
        fgd_rate = n_docs / full.seconds
        lib_rate = n_docs / lib_seconds
        print(f"full sync      {n_docs} resources in {args.files} files")
        print(f"  FGD pipeline   {full.seconds:8.2f} s  {fgd_rate:9.0f} resources/s")
        print(f"    stages (s)   {full.breakdown()}")
        print(f"  bare libyaml   {lib_seconds:8.2f} s  {lib_rate:9.0f} resources/s")
        print(f"  ratio FGD / libyaml          {fgd_rate / lib_rate:6.2f} x   (target >= 0.65)")
        print(
            f"  (detail) CPU time: FGD {full.cpu_seconds:.2f} s, libyaml {lib_cpu:.2f} s, "
            f"ratio {lib_cpu / full.cpu_seconds:.2f} x; fabric-wide verdict "
            f"{checks.seconds:.2f} s CPU ({checks.seconds / full.cpu_seconds * 100:.0f} %)"
        )

        first = per_file * args.files
        seed_repo(bare, {f"{RAW}new.yaml": raw_file(first, args.incremental)}, message="new")
        inc = sync(remote, "incremental", rules, keep)
        inc_summary = inc.plan.summary()
        assert inc_summary["files_processed"] == 1, inc_summary
        assert inc_summary["files_created"] == args.incremental, inc_summary
        ratio = inc.seconds / full.seconds
        print(f"incremental    1 new file, {args.incremental} resources, {first} managed files")
        print(f"  FGD pipeline   {inc.seconds:8.3f} s  blobs read: {inc.blob_reads}")
        print(f"    stages (s)   {inc.breakdown()}")
        print(f"  ratio incremental / full     {ratio * 100:6.2f} %   (target <= 5 %)")
        print(
            f"  (detail) CPU time: incremental {inc.cpu_seconds:.3f} s, "
            f"{inc.cpu_seconds / full.cpu_seconds * 100:.2f} % of the full sync's"
        )
        # A fresh process (one `fgd sync` from a shell): nothing in memory, the managed
        # index comes from the fabric's cache directory (what the previous sync left).
        seed_repo(bare, {f"{RAW}new-2.yaml": raw_file(first + args.incremental,
                                                      args.incremental)}, message="new 2")
        fabric_tree._TREES.clear()
        fabric_check._FACTS_BY_BLOB.clear()
        cold = sync(remote, "fresh-process", rules, keep)
        assert cold.plan.summary()["files_created"] == args.incremental, cold.plan.summary()
        print(f"  fresh process  {cold.seconds:8.3f} s  blobs read: {cold.blob_reads}  "
              f"{cold.seconds / full.seconds * 100:.2f} % of the full sync (CPU "
              f"{cold.cpu_seconds / full.cpu_seconds * 100:.2f} %)")

        if not args.skip_memory:
            mem = memory_bench(tmp, args.memory_mb)
            used = (mem["peak_kb"] - mem["baseline_kb"]) / 1024
            print(
                f"memory         one {mem['file_bytes'] / 1024 / 1024:.1f} MB raw file, "
                f"{mem['documents']} documents ({mem['status']}) in {mem['seconds']:.1f} s"
            )
            if mem["errors"]:
                print(f"  errors: {mem['errors']}")
            print(f"  peak RSS above baseline      {used:6.1f} MB  (target <= 100 MB)")
    print(f"total bench time {time.perf_counter() - total_start:.0f} s")


if __name__ == "__main__":
    main()
