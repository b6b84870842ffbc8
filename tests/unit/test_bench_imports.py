"""The benchmarks are scripts nobody runs in CI: every FGD name they import must still exist
(a module move would otherwise break them silently)."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


def fgd_imports(path: Path) -> list[tuple[str, str]]:
    pairs = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("fgd_"):
            pairs += [(str(node.module), alias.name) for alias in node.names]
    return pairs


@pytest.mark.parametrize("script", sorted(BENCH.glob("bench_*.py")), ids=lambda p: p.name)
def test_every_fgd_name_a_benchmark_imports_exists(script: Path) -> None:
    missing = []
    for module, name in fgd_imports(script):
        found = importlib.import_module(module)
        if not hasattr(found, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    assert missing == [], f"{script.name} imports names that are gone: {missing}"
