"""schemathesis against the API's own OpenAPI document: generated requests (valid and not)
to every operation, as a superuser, on a real SQLite store with a real fabric — no 5xx and
no response that breaks the document.

A request naming an existing fabric runs against a fabric registered for it alone: one
request may suspend, delete or re-point a fabric, or leave it syncing, and a later valid
request must not be refused (409, 404) for what an earlier one did."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance

from fgd_api.app import create_app
from fgd_api.container import Container
from fgd_core.application.auth import create_token
from fgd_core.config import load_settings
from tests.gitserver import init_bare, seed_repo


class Fabrics:
    """Fresh fabrics on one repository, and the ids handed out so far."""

    def __init__(self, app: Any, repo: Path) -> None:
        self.app, self.repo, self.ids = app, repo, set[int]()

    def fresh(self) -> int:
        n = len(self.ids)  # one place (repository, branch, directory) per fabric
        fabric_id: int = self.app.register_fabric(
            f"lab-{n}", str(self.repo), gitops_directory="gitops" if n == 0 else f"g{n}"
        ).fabric_id
        self.ids.add(fabric_id)
        return fabric_id


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory
        ) -> Iterator[tuple[Any, dict[str, str], Fabrics]]:
    tmp: Path = tmp_path_factory.mktemp("schemathesis")
    repo = init_bare(tmp / "r.git")
    seed_repo(repo, {"gitops/raw/README.md": b"x\n"})
    container = Container.build(load_settings(environ={
        "HEDGEHOG_FGD_SQLITE_PATH": str(tmp / "fgd.sqlite3"),
        "HEDGEHOG_FGD_ALLOWED_REPOSITORIES": str(tmp),
        "HEDGEHOG_FGD_GITHUB_WEBHOOK_SECRET": "s3cret"}))
    key, _ = create_token(container.app, "fuzzer", superuser=True)
    fabrics = Fabrics(container.app, repo)
    fabrics.fresh()  # fabric 1 exists: generated requests for it go deep
    schema = schemathesis.openapi.from_asgi("/openapi.json", create_app(container))
    yield schema, {"Authorization": f"Token {key}"}, fabrics
    container.close()


def test_every_operation_conforms_to_the_document(
        api: tuple[Any, dict[str, str], Fabrics]) -> None:
    schema, headers, fabrics = api
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 12
    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(max_examples=12, deadline=None, database=None,
                  suppress_health_check=list(HealthCheck))
        def check(case: Any) -> None:
            # not_a_server_error, status code / content type / response schema conformance
            # A fabric's repository must also lie under fgd.repositories.allowed and follow
            # git's rules, and a file to process must lie under the fabric's raw/, which
            # JSON Schema cannot say: a schema-valid body may get 422.
            excluded = [positive_data_acceptance] if _checked_beyond_schema(case) else []
            params = case.path_parameters or {}
            wanted = params.get("fabric_id")
            # Half the generated ids (and every existing one) name a real fabric, so the
            # requests go deep; the other half test the unknown-fabric answers.
            if isinstance(wanted, int) and (wanted in fabrics.ids or wanted % 2 == 0):
                params["fabric_id"] = fabrics.fresh()
            case.call_and_validate(headers=headers, excluded_checks=excluded)

        check()


def _checked_beyond_schema(case: Any) -> bool:
    return case.method.upper() in ("POST", "PATCH") and case.path.rstrip("/").endswith(
        ("/fabrics", "/fabrics/{fabric_id}", "/gitops-files/process"))
