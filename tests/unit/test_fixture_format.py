"""The spec's Test Fixture Format, run through fgd_core.adapters.testing on the real planner."""

from __future__ import annotations

from pathlib import Path

import pytest

from fgd_core.adapters.testing import assert_fixture, load_fixtures, run_fixture

FIXTURES = load_fixtures(Path(__file__).resolve().parents[1] / "fixtures" / "ingestion")


def test_fixture_set_is_not_empty() -> None:
    assert len(FIXTURES) >= 9


@pytest.mark.parametrize("fixture", FIXTURES, ids=[f["test_name"] for f in FIXTURES])
def test_fixture(fixture: dict) -> None:
    assert_fixture(fixture)


def test_a_wrong_expectation_is_reported() -> None:
    fixture = dict(FIXTURES[0])
    fixture["expected"] = {**fixture["expected"], "documents_extracted": 2,
                           "errors": ["FGD_1001"]}
    outcome = run_fixture(fixture)
    assert not outcome.passed and len(outcome.mismatches) == 2
    with pytest.raises(AssertionError, match="documents_extracted"):
        assert_fixture(fixture)
