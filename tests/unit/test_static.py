"""The tree stays lint- and type-clean: ruff on everything, mypy on the three packages, and
the layers keep their direction (import-linter's contracts in pyproject.toml)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_ruff_is_clean() -> None:
    done = run("ruff", "check", ".")
    assert done.returncode == 0, done.stdout + done.stderr


def test_mypy_is_clean() -> None:
    done = run("mypy", "fgd_core", "fgd_workers", "fgd_api")
    assert done.returncode == 0, done.stdout + done.stderr


def test_layers_import_only_downwards() -> None:
    """docs/architecture.md: entry points → composition root → application → adapters →
    domain → ingestion; a module never imports from a layer above its own."""
    done = subprocess.run([str(Path(sys.executable).parent / "lint-imports")], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
