"""Where the tests' reference data lives: copies, kept in this repository so that a fresh
clone anywhere runs every test, of the interface spec (``fixtures/spec/``, from
``shared/seed/``) and of the real Hedgehog samples (``fixtures/hedgehog/``, from
``shared/fixtures/hedgehog/``, byte for byte; SOURCES.txt says where each came from)."""

from __future__ import annotations

from pathlib import Path

FIXTURES_DIR = Path(__file__).resolve().parent / "fixtures"
HEDGEHOG_FIXTURES = FIXTURES_DIR / "hedgehog"
SPEC = FIXTURES_DIR / "spec" / "FGD_INTERFACE_SPECIFICATIONS.md"
