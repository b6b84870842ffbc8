"""The API's one path format (``fgd_core.application.api_paths``) and process-file's path
parsing."""

from __future__ import annotations

import pytest

from fgd_core.application.api_paths import problem_paths, spec_path, with_spec_paths
from fgd_core.application.raw_path import repository_path
from fgd_core.errors import ValidationError


def test_spec_path_adds_one_leading_slash() -> None:
    assert spec_path("gitops/raw/x.yaml") == "/gitops/raw/x.yaml"
    assert spec_path("/gitops/raw/x.yaml") == "/gitops/raw/x.yaml"
    assert spec_path(None) is None and spec_path("") == ""


def test_records_payloads_and_problems_are_converted_and_not_changed_in_place() -> None:
    record = {"file_path": "gitops/raw/a.yaml", "target_files": ["gitops/managed/vpcs/v.yaml"],
              "archived_to": None, "size": 3,
              "errors": [{"code": "FGD_1003", "file": "gitops/raw/a.yaml"}, "text"]}
    shown = with_spec_paths(record)
    assert shown == {"file_path": "/gitops/raw/a.yaml",
                     "target_files": ["/gitops/managed/vpcs/v.yaml"], "archived_to": None,
                     "size": 3, "errors": [{"code": "FGD_1003", "file": "/gitops/raw/a.yaml"},
                                           "text"]}
    assert record["file_path"] == "gitops/raw/a.yaml"  # the original is untouched
    assert problem_paths({"code": "FGD_3004", "message": "m"}) == {"code": "FGD_3004",
                                                                 "message": "m"}


@pytest.mark.parametrize("given", ["/gitops/raw/a.yaml", "gitops/raw/a.yaml"])
def test_repository_path_takes_either_form(given: str) -> None:
    assert repository_path(given) == "gitops/raw/a.yaml"


@pytest.mark.parametrize("bad", ["", "/", "//gitops/raw/a.yaml", "gitops/raw/../x.yaml",
                                 "gitops/./raw/a.yaml", "gitops/raw/", "gitops\\raw\\a.yaml"])
def test_repository_path_refuses_what_is_not_a_clean_path(bad: str) -> None:
    with pytest.raises(ValidationError) as refused:
        repository_path(bad)
    assert refused.value.details["field"] == "file_path"
