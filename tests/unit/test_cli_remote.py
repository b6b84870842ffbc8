"""Remote mode without a server: how API answers become terminal errors, and which commands
refuse ``--api`` (the refusal happens before anything is opened or sent)."""

from __future__ import annotations

import httpx
import pytest
from click.testing import CliRunner

from fgd_core.cli.common import error_line
from fgd_core.cli.follow import is_first_sync_alike
from fgd_core.cli.main import main
from fgd_core.cli.remote import OFFLINE_COMMANDS, REMOTE_COMMANDS, api_error
from fgd_core.errors import NotFoundError

# Commands that work on this machine's database or services only.
LOCAL_ONLY = {"config", "events", "token", "bus", "serve", "worker", "projections"}


def answer(status: int, body: object) -> httpx.Response:
    return httpx.Response(status, json=body,
                          request=httpx.Request("GET", "http://127.0.0.1/x"))


def test_an_api_error_keeps_its_code_message_status_and_field() -> None:
    denied = api_error(answer(401, {"error": {"code": "FGD_1003", "message": "invalid token",
                                              "details": {}}}))
    assert error_line(denied) == "error FGD_1003: invalid token (HTTP 401)"
    refused = api_error(answer(422, {"error": {
        "code": "FGD_1003", "message": "bad input",
        "details": {"problems": [{"field": "body.options.force_refresh"}]}}}))
    assert error_line(refused).endswith("[field body.options.force_refresh]")
    missing = api_error(answer(404, {"error": {"code": "FGD_1003", "message": "sync x"}}))
    assert isinstance(missing, NotFoundError) and "(not found)" in error_line(missing)


def test_an_answer_that_is_not_the_error_body_is_still_an_error() -> None:
    broken = api_error(httpx.Response(502, text="<html>bad gateway</html>",
                                      request=httpx.Request("GET", "http://127.0.0.1/")))
    assert broken.code == "FGD_5001" and "HTTP 502" in broken.message


def test_every_command_either_has_a_remote_form_or_refuses_api() -> None:
    assert set(main.commands) <= REMOTE_COMMANDS | OFFLINE_COMMANDS | LOCAL_ONLY
    assert not REMOTE_COMMANDS & LOCAL_ONLY


@pytest.mark.parametrize("command", sorted(LOCAL_ONLY - {"serve", "worker", "projections"}))
def test_a_command_without_a_remote_form_refuses_api(command: str) -> None:
    done = CliRunner().invoke(main, ["--api", "http://127.0.0.1:9", command, "--help"])
    assert done.exit_code == 2 and "has no remote form" in done.output


def test_remote_mode_needs_a_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HEDGEHOG_FGD_TOKEN", raising=False)
    done = CliRunner().invoke(main, ["--api", "http://127.0.0.1:9", "fabric", "list"])
    assert done.exit_code == 2 and "HEDGEHOG_FGD_TOKEN" in done.output


def test_only_the_fabrics_first_sync_with_the_same_options_is_followed() -> None:
    wanted = {"validate_only": False, "force_refresh": False, "include_github_sync": True}
    assert is_first_sync_alike("fabric_created", dict(wanted), wanted)
    assert not is_first_sync_alike("scheduled", dict(wanted), wanted)
    assert not is_first_sync_alike("fabric_created", {**wanted, "validate_only": True}, wanted)
