"""Bus command handling, without AMQP: what a delivered command means and what it does.

Each command is turned into the same fgd_core call the REST API makes (``prepare_sync`` + one
save; ``webhook_intake``), so the outcome is identical. ``CommandIntake.handle`` returns a
``Result``: the reply to publish, or why to dead-letter (a refusal, audited as a denied
action). It raises only for failures worth a retry (the database).

Exactly once: a ``sync.trigger``'s audit entry is its receipt (``fgd_core.domain.command``):
its id derives from the ``message_id``, its details keep the outcome, and it is saved in the
same transaction as the sync; a duplicate conflicts and is answered with the original
outcome. A ``webhook.github`` delivery id counts once across HTTP and the bus (the
WebhookDelivery aggregate). ``handle_batch`` records a run of triggers in one commit
(``fgd_workers.command_batch``).

The AMQP side (topology, consumer, replies, dead letters) is ``fgd_workers.commands``.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Callable, Sequence
from typing import Any
from uuid import uuid4

import fastjsonschema
import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError

from fgd_core.adapters.bus_client import (
    AUTHORIZATION_HEADER,
    COMMANDS,
    SYNC_TRIGGER,
    WEBHOOK_GITHUB,
)
from fgd_core.application import webhook_intake as intake
from fgd_core.application.app import FGDApplication
from fgd_core.application.audit_log import record_audit
from fgd_core.application.auth import (
    FGDPermissions,
    Principal,
    authenticate_cached,
    authorize,
)
from fgd_core.domain.actor import acting_as
from fgd_core.domain.command import receipt_uuid, recorded_outcome
from fgd_core.errors import DatabaseError, FGDError, error_body
from fgd_core.events.schemas import envelope_validator, load_schema
from fgd_workers import command_guard
from fgd_workers.command_batch import RETRIES, BatchStarts
from fgd_workers.command_messages import (
    REFUSAL_REASONS,
    Accepted,
    Command,
    Refused,
    Result,
    refuse_unstorable,
)
from fgd_workers.command_outcomes import (
    AUDIT_SYNC,
    USER_AGENT,
    error_outcome,
    receipt,
    replayed_outcome,
    started_outcome,
)

log = logging.getLogger("fgd_workers.commands")

AUDIT_WEBHOOK = "github_webhook"  # the HTTP endpoint's action: one audit trail per delivery
AUDIT_UNKNOWN = "bus_command"
DEFAULT_OPTIONS = {"force_refresh": False, "validate_only": False, "include_github_sync": True}
# What a trigger records: its receipt, and for a start the sync, its fabric's lock, its slot.
STARTED_EVENTS = ("audit.recorded", "sync.started", "fabric.syncing", "capacity.acquired",
                  "capacity.granted")

Submit = Callable[[str], Any]


def _compile(name: str) -> Callable[[Any], Any]:
    return fastjsonschema.compile(load_schema(f"commands/{name}.json"))


class CommandIntake(BatchStarts):
    """Validates, authorizes, deduplicates and executes commands against ``app``.

    ``submit(sync_id)`` is called for each sync a command started (embedded mode runs it
    here; in distributed mode the discovery worker picks ``sync.started`` up from the bus and
    ``submit`` is None). ``fabrics`` lists fabric settings for webhook matching."""

    def __init__(
        self,
        app: FGDApplication,
        webhook_secret: Any = None,
        *,
        submit: Submit | None = None,
        fabrics: Callable[[], list[Any]] | None = None,
    ) -> None:
        self.app = app
        self.webhook_secret = webhook_secret
        self.submit = submit
        self.fabrics = fabrics or (lambda: intake.fabric_settings_from_app(app))
        self.validators = {name: _compile(name) for name in COMMANDS}
        for event_type in STARTED_EVENTS:  # compiled now, not inside the first commands
            envelope_validator(event_type)
        self._held_capacity = None
        self._avoid = set()

    # -- entry point ------------------------------------------------------------------------

    def handle(self, cmd: Command) -> Result:
        """The outcome of one command; raises only for failures worth a retry (database)."""
        principal = self._principal(cmd)
        action = {SYNC_TRIGGER: AUDIT_SYNC, WEBHOOK_GITHUB: AUDIT_WEBHOOK}.get(
            cmd.routing_key, AUDIT_UNKNOWN
        )
        try:
            refuse_unstorable(command_guard.property_problem(cmd))
            if cmd.routing_key == SYNC_TRIGGER:
                return self._sync_trigger(cmd, principal)
            if cmd.routing_key == WEBHOOK_GITHUB:
                return self._webhook(cmd)
            raise Refused("unknown_command", f"unknown command {cmd.routing_key[:100]!r} "
                          f"(known: {', '.join(COMMANDS)})")
        except Refused as exc:
            return self._refuse(cmd, action, principal, exc)

    def handle_batch(self, cmds: Sequence[Command]) -> list[Result]:
        """The outcomes of several delivered commands, in delivery order, as if ``handle``
        had been called on each in turn — with one commit for a run of ``sync.trigger``s.

        Each trigger is authenticated, validated and authorized as in ``handle`` (a refused
        one is audited and answered with ``dead`` at once). The accepted ones are prepared in
        delivery order against one in-memory object per fabric (the first starts the sync,
        the next for the same fabric gets FGD_3001 naming it, as sequential handling would
        answer), and all their receipts (audit entries), syncs and fabric locks are saved in
        ONE ``app.save``. If that save conflicts (a ``message_id`` already recorded, a sync
        started meanwhile by another writer) nothing of it is recorded and the run is handled
        one command at a time, exactly as ``handle`` does. A ``message_id`` or correlation id
        repeated within the batch ends the run before it, so the repeat meets the recorded
        receipt or sync (a repeated correlation id names the same request). Any other
        command (``webhook.github``, unknown) ends the run and is handled by ``handle``.

        Raises (like ``handle``) on failures worth a retry; runs committed before the failure
        stay committed, so a redelivery of their commands is answered as a duplicate."""
        results: list[Result | None] = [None] * len(cmds)
        principals: dict[Any, Principal | None] = {}  # one token lookup per key and batch
        run: list[tuple[int, Accepted]] = []
        message_ids: set[str] = set()
        cids: set[str] = set()
        for i, cmd in enumerate(cmds):
            if cmd.routing_key != SYNC_TRIGGER:
                self._flush(run, results)
                run, message_ids, cids = [], set(), set()
                results[i] = self.handle(cmd)
                continue
            header = cmd.headers.get(AUTHORIZATION_HEADER)
            if isinstance(header, str | bytes):
                if header not in principals:
                    principals[header] = self._principal(cmd)
                principal = principals[header]
            else:
                principal = self._principal(cmd)
            try:
                refuse_unstorable(command_guard.property_problem(cmd))
                accepted = self._accept(cmd, principal)
            except Refused as exc:
                results[i] = self._refuse(cmd, AUDIT_SYNC, principal, exc)
                continue
            if cmd.message_id in message_ids or accepted.cid in cids:
                self._flush(run, results)
                run, message_ids, cids = [], set(), set()
            message_ids.add(cmd.message_id or "")
            cids.add(accepted.cid)
            run.append((i, accepted))
        self._flush(run, results)
        assert all(r is not None for r in results)
        return results  # type: ignore[return-value]

    # -- helpers ----------------------------------------------------------------------------

    def _refuse(
        self, cmd: Command, action: str, principal: Principal | None, exc: Refused
    ) -> Result:
        self._audit(cmd, action, principal, exc.fabric_id, success=False,
                    error=exc.reason, details={"reason": exc.kind})
        return Result(dead=exc.reason, kind=exc.kind)

    def _principal(self, cmd: Command) -> Principal | None:
        header = cmd.headers.get(AUTHORIZATION_HEADER)
        # The API's principal cache: a token is loaded at most once per 2 s (a revocation
        # made in another process takes effect within that, as over HTTP).
        return authenticate_cached(self.app, header) if header else None

    def _audit(
        self,
        cmd: Command,
        action: str,
        principal: Principal | None,
        fabric_id: int | None,
        *,
        success: bool,
        error: str = "",
        sync_id: str | None = None,
        details: dict[str, Any] | None = None,
        correlation_id: str | None = None,
    ) -> None:
        record_audit(
            self.app,
            user=principal,
            action=action,
            fabric_id=fabric_id,
            ip_address=None,
            user_agent=f"{USER_AGENT} {cmd.app_id}"[:500] if cmd.app_id else USER_AGENT,
            sync_id=sync_id,
            details={
                "via": "amqp",
                "command": cmd.routing_key[:100],
                "message_id": (cmd.message_id or "")[:200],
                **(details or {}),
            },
            success=success,
            error_message=error[:1000],
            correlation_id=correlation_id or cmd.correlation_id,
        )

    def _parse(self, cmd: Command) -> dict[str, Any]:
        try:
            data = orjson.loads(cmd.body)
        except orjson.JSONDecodeError as exc:
            raise Refused("not_json", f"body is not JSON: {exc}"[:300]) from None
        try:
            self.validators[cmd.routing_key](data)
        except fastjsonschema.JsonSchemaValueException as exc:
            fabric_id = data.get("fabric_id") if isinstance(data, dict) else None
            if not isinstance(fabric_id, int) or isinstance(fabric_id, bool) or fabric_id < 0:
                fabric_id = None
            raise Refused(
                "schema",
                f"body does not match schemas/commands/{cmd.routing_key}.json: {exc.message}",
                fabric_id=fabric_id,
            ) from None
        refuse_unstorable(command_guard.body_problem(data))
        return data  # type: ignore[no-any-return]

    # -- sync.trigger -----------------------------------------------------------------------

    def _sync_trigger(self, cmd: Command, principal: Principal | None) -> Result:
        accepted = self._accept(cmd, principal)
        with acting_as(accepted.principal.user_id):  # metadata.user_id of its events
            return self._answer(accepted, *self._start(accepted))

    def _accept(self, cmd: Command, principal: Principal | None) -> Accepted:
        """The checks before anything is recorded; raises Refused."""
        if principal is None:
            what = "missing" if not cmd.headers.get(AUTHORIZATION_HEADER) else "invalid"
            raise Refused("unauthenticated", f"{what} API token (header authorization: "
                          "Token <key>)")
        data = self._parse(cmd)
        fabric_id: int = data["fabric_id"]
        trigger: str = data.get("trigger", "manual")
        options = {**DEFAULT_OPTIONS, **data.get("options", {})}
        try:
            authorize(principal, FGDPermissions.TRIGGER_SYNC, fabric_id)
            if options["force_refresh"]:
                authorize(principal, FGDPermissions.FORCE_SYNC, fabric_id)
        except FGDError as exc:
            permission = exc.details.get("permission", FGDPermissions.TRIGGER_SYNC)
            raise Refused("forbidden", f"permission denied: {permission} on fabric "
                          f"{fabric_id}", fabric_id=fabric_id) from None
        if not cmd.message_id:
            raise Refused("missing_message_id", "message_id property required (a duplicate "
                          "command is recognised by it)", fabric_id=fabric_id)
        cid = data.get("correlation_id") or cmd.correlation_id or str(uuid4())
        return Accepted(cmd, principal, fabric_id, trigger, options, cid,
                        {"trigger": trigger, "options": options})

    def _answer(self, accepted: Accepted, outcome: dict[str, Any], duplicate: bool) -> Result:
        """The reply to a recorded (or, if ``duplicate``, previously recorded) outcome."""
        cmd, cid = accepted.cmd, accepted.cid
        if outcome["status"] == "started":
            sync_id = outcome["sync_id"]
            if self.submit is not None and not duplicate and not outcome.get("duplicate"):
                self.submit(sync_id)
            reply: dict[str, Any] = {"sync_id": sync_id, "status": "started"}
            kind = "started"
            if outcome.get("duplicate"):  # a repeated correlation id: the same request
                reply["duplicate"] = True
                kind = "duplicate"
        else:
            error = outcome["error"]
            reply = error_body(error["code"], error["message"], error["details"], cid)
            kind = error["code"]
        if duplicate:
            self._audit(cmd, AUDIT_SYNC, accepted.principal, accepted.fabric_id, success=True,
                        sync_id=outcome.get("sync_id"),
                        details={**accepted.details, "status": "duplicate"}, correlation_id=cid)
            reply["duplicate"] = True
            kind = "duplicate"
        return Result(reply=reply, kind=kind)

    def _start(self, accepted: Accepted) -> tuple[dict[str, Any], bool]:
        """(outcome, duplicate): start the sync and record the receipt in ONE save; an outcome
        that is an error (FGD_3001 …) is recorded too, so a duplicate gets the same answer."""
        app = self.app
        replayed: dict[str, Any] | None = None  # what a repeated correlation id names
        for _ in range(RETRIES):
            objs: list[Any] = []
            if replayed is not None:
                outcome = replayed
            else:
                try:
                    prepared = app.prepare_sync(accepted.fabric_id, accepted.trigger,
                                                accepted.options, accepted.cid)
                    outcome = started_outcome(prepared)
                    objs = prepared.objects
                except DatabaseError:
                    raise
                except FGDError as exc:
                    outcome = error_outcome(exc)
            try:
                app.save(receipt(accepted, outcome), *objs)
                return outcome, False
            except IntegrityError:
                try:
                    original: Any = app.repository.get(receipt_uuid(accepted.cmd.message_id
                                                                    or ""))
                except AggregateNotFoundError:
                    if objs:  # the sync's id may be taken: the correlation id names one
                        replayed = replayed_outcome(app, accepted.cid, accepted.fabric_id,
                                                    accepted.trigger, accepted.options)
                    continue  # else lost a race on the fabric's lock: look again
                return recorded_outcome(original), True
        raise DatabaseError("too much contention: command not recorded", details={})

    # -- webhook.github ---------------------------------------------------------------------

    def _webhook(self, cmd: Command) -> Result:
        data = self._parse(cmd)
        delivery_id: str = data["delivery_id"]
        github_event: str = data["event"][:100]
        if "body" in data:
            raw = data["body"].encode("utf-8")  # (command_guard refused surrogates)
        else:
            try:
                raw = base64.b64decode(data["body_base64"], validate=True)
            except (binascii.Error, ValueError):
                raise Refused("schema", "body_base64 is not valid base64") from None
        audit_details = {"event": github_event, "delivery": delivery_id}
        try:
            payload = intake.verify_delivery(self.webhook_secret, raw, data["signature"],
                                             delivery_id)
        except intake.WebhookRejected as exc:
            kind = "signature" if exc.status == 401 else "invalid_delivery"
            self._audit(cmd, AUDIT_WEBHOOK, None, None, success=False, error=exc.message,
                        details={**audit_details, "reason": kind})
            return Result(dead=exc.message, kind=kind)
        cid = cmd.correlation_id or f"github-{delivery_id}"
        result = intake.handle_delivery(self.app, github_event, delivery_id, payload, cid,
                                        self.fabrics)
        if result.outcome is not None and self.submit is not None:
            for item in result.outcome.triggered:
                self.submit(item["sync_id"])
        self._audit(cmd, AUDIT_WEBHOOK, None, None, success=True,
                    details={**audit_details, **result.audit_details()}, correlation_id=cid)
        return Result(reply=result.body(), kind=result.status)


# The intake's public face: the message types live in command_messages.
__all__ = [
    "AUDIT_SYNC",
    "REFUSAL_REASONS",
    "AUDIT_WEBHOOK",
    "Accepted",
    "Command",
    "CommandIntake",
    "Refused",
    "Result",
]
