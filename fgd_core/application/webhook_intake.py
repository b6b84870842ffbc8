"""GitHub deliveries, whichever way they arrive (HTTP webhook or the ``webhook.github`` bus
command): signature check, payload parsing, which fabrics a push concerns, and recording the
delivery with the syncs it starts — once per delivery id, whichever path saw it first.

Nothing here does git I/O or talks HTTP/AMQP: the caller authenticates nothing else, audits,
answers, and hands the started syncs to whatever runs them.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import orjson
from eventsourcing.application import AggregateNotFoundError
from eventsourcing.persistence import IntegrityError
from pydantic import SecretStr

from fgd_core.application.app import FGDApplication
from fgd_core.domain.webhook import (
    WebhookDelivery,
    branch_of,
    delivery_uuid,
    fabric_matches,
    push_repository_keys,
    touched_paths,
    touches_directory,
)
from fgd_core.errors import (
    DatabaseError,
    FGDErrorCodes,
    SyncAlreadyInProgressError,
    WorkerPoolExhaustedError,
)
from fgd_core.ingestion.input_guard import GIT_REF, IDENTIFIER, Face, problem

__all__ = [
    "DELIVERY_RE",
    "MAX_BODY_BYTES",
    "Outcome",
    "WebhookRejected",
    "WebhookResult",
    "candidates",
    "check_delivery_id",
    "check_kept_fields",
    "check_signature",
    "fabric_settings",
    "fabric_settings_from_app",
    "handle_delivery",
    "parse_payload",
    "record_delivery",
    "sign",
    "verify_delivery",
]

MAX_BODY_BYTES = 25 * 1024 * 1024  # GitHub caps a delivery at 25 MB
RETRIES = 20
DELIVERY_RE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
SETTINGS_USED = ("repository", "branch", "gitops_directory", "sync_enabled", "auto_sync_on_change")


class WebhookRejected(Exception):
    """A delivery refused before anything was recorded (``status`` is the HTTP status)."""

    def __init__(self, status: int, message: str, code: str = FGDErrorCodes.VALIDATION_FAILED):
        super().__init__(message)
        self.status, self.message, self.code = status, message, code


@dataclass
class Outcome:
    triggered: list[dict[str, Any]] = field(default_factory=list)
    coalesced: list[int] = field(default_factory=list)
    skipped: list[dict[str, Any]] = field(default_factory=list)
    ignored: str | None = None
    duplicate: bool = False
    audited: bool = False  # its audit entry was saved with the delivery


# -- checks (no I/O) ------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    """The ``X-Hub-Signature-256`` value GitHub sends for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def check_signature(secret: str | SecretStr | None, body: bytes, header: str | None) -> None:
    """``sha256=<hex HMAC-SHA256(secret, body)>`` (constant time). ``secret`` is a str,
    a pydantic SecretStr or None (no secret configured: every delivery is refused)."""
    if isinstance(secret, SecretStr):
        secret = secret.get_secret_value()
    if not secret:
        raise WebhookRejected(401, "webhook secret not configured: deliveries cannot be verified")
    if not header:
        raise WebhookRejected(401, "missing X-Hub-Signature-256")
    expected = sign(secret, body)
    try:
        given = header.strip().encode("latin-1")
    except UnicodeEncodeError:
        raise WebhookRejected(401, "invalid X-Hub-Signature-256") from None
    if not hmac.compare_digest(expected.encode("ascii"), given):
        raise WebhookRejected(401, "invalid X-Hub-Signature-256")


def check_delivery_id(delivery_id: str) -> None:
    if not isinstance(delivery_id, str) or not DELIVERY_RE.match(delivery_id):
        raise WebhookRejected(400, "missing or malformed X-GitHub-Delivery")


def parse_payload(body: bytes) -> dict[str, Any]:
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise WebhookRejected(400, "payload is not JSON") from None
    if not isinstance(payload, dict):
        raise WebhookRejected(400, "payload is not a JSON object")
    check_kept_fields(payload)
    return payload


# What a delivery's records keep of its payload (webhook.received, the audit entry), and the
# face each must pass (fgd_core.ingestion.input_guard). The rest of the payload is only matched
# against.
KEPT_FIELDS: tuple[tuple[tuple[str, ...], Face], ...] = (
    (("ref",), GIT_REF),
    (("after",), IDENTIFIER),
    (("repository", "full_name"), IDENTIFIER),
)


def check_kept_fields(payload: dict[str, Any]) -> None:
    """400 (``invalid_delivery`` on the bus) when a field the delivery's records keep holds
    text the store cannot keep: GitHub never sends such a ref, sha or repository name."""
    for path, face in KEPT_FIELDS:
        value: Any = payload
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, str) and (why := problem(value, face)) is not None:
            raise WebhookRejected(400, f"payload field {'.'.join(path)} {why}")


def verify_delivery(
    secret: str | SecretStr | None, body: bytes, signature: str | None, delivery_id: str
) -> dict[str, Any]:
    """Everything checked before a delivery is looked at, in the HTTP endpoint's order:
    size, signature, delivery id, JSON object. Returns the payload."""
    if len(body) > MAX_BODY_BYTES:
        raise WebhookRejected(413, f"payload larger than {MAX_BODY_BYTES} bytes")
    check_signature(secret, body, signature)
    check_delivery_id(delivery_id)
    return parse_payload(body)


# -- push → syncs --------------------------------------------------------------------------


def candidates(fabrics: list[Any], payload: dict[str, Any]) -> tuple[list[int], Outcome]:
    """Fabrics the push concerns (repository, branch, GitOps directory, settings), among
    ``fabrics`` (objects with the Fabric's setting attributes and ``fabric_id``)."""
    outcome = Outcome()
    branch = branch_of(payload.get("ref"))
    repository = payload.get("repository")
    if branch is None:
        outcome.ignored = "not a branch push"
        return [], outcome
    if payload.get("deleted"):
        outcome.ignored = "branch deleted"
        return [], outcome
    if not isinstance(repository, dict):
        outcome.ignored = "payload names no repository"
        return [], outcome
    keys = push_repository_keys(repository)
    paths, complete = touched_paths(payload)
    matching = [f for f in fabrics if fabric_matches(f, keys, branch)]
    if not matching:
        outcome.ignored = "no fabric tracks this repository and branch"
        return [], outcome
    chosen = []
    for fabric in matching:
        # A truncated commit list may hide GitOps changes: sync rather than miss them.
        if complete and not touches_directory(paths, fabric.gitops_directory):
            outcome.skipped.append(
                {
                    "fabric_id": fabric.fabric_id,
                    "reason": "push does not touch the GitOps directory",
                }
            )
        elif not fabric.sync_enabled:
            outcome.skipped.append({"fabric_id": fabric.fabric_id, "reason": "sync disabled"})
        elif not fabric.auto_sync_on_change:
            outcome.skipped.append(
                {"fabric_id": fabric.fabric_id, "reason": "auto_sync_on_change is off"}
            )
        else:
            chosen.append(fabric.fabric_id)
    if not chosen:
        outcome.ignored = "no matching fabric is due a sync (see skipped)"
    return chosen, outcome


def fabric_settings(read_model: Any) -> list[Any]:
    """Every fabric's settings from the read model: one query, where loading each Fabric
    aggregate would replay its history (this runs for every delivery)."""
    return [
        SimpleNamespace(fabric_id=row["id"], **{k: row[k] for k in SETTINGS_USED})
        for row in read_model.fabrics()
    ]


class RecentFabrics:
    """``fabrics()`` at most once per ``ttl`` seconds: a burst of deliveries matches against
    one read of the fabric list (a fabric registered within the last second may miss a
    push; GitHub's pushes come long after a fabric is set up)."""

    def __init__(self, fabrics: Callable[[], list[Any]], ttl: float = 1.0) -> None:
        self.fabrics, self.ttl = fabrics, ttl
        self.cached: list[Any] = []
        self.expires = 0.0
        self.lock = threading.Lock()

    def __call__(self) -> list[Any]:
        with self.lock:
            now = time.monotonic()
            if now >= self.expires:
                self.cached, self.expires = self.fabrics(), now + self.ttl
            return self.cached


def fabric_settings_from_app(app: FGDApplication) -> list[Any]:
    """The same from the aggregates (a process without a read model, e.g. a bus worker)."""
    return [
        SimpleNamespace(fabric_id=f.fabric_id, **{k: getattr(f, k) for k in SETTINGS_USED})
        for f in app.list_fabrics()
    ]


def _recorded(app: FGDApplication, delivery_id: str) -> bool:
    try:
        app.repository.get(delivery_uuid(delivery_id))
    except AggregateNotFoundError:
        return False
    return True


def record_delivery(
    app: FGDApplication,
    delivery_id: str,
    payload: dict[str, Any],
    cid: str,
    fabrics: Callable[[], list[Any]],
    audit: Callable[[Outcome], Any] | None = None,
) -> Outcome:
    """Record the delivery and start its syncs in ONE save — with ``audit(outcome)``'s
    entry, when given: either all of it happened once, or (a redelivery, a lost race) none
    of it. Uses FGDApplication.prepare_sync per fabric."""
    repository = payload.get("repository")
    full_name = repository.get("full_name") if isinstance(repository, dict) else None
    for _ in range(RETRIES):
        fabric_ids, outcome = candidates(fabrics(), payload)
        to_save: list[Any] = []
        capacity = app.sync_capacity()  # shared: all of this delivery's syncs take slots
        for fabric_id in fabric_ids:
            try:
                prepared = app.prepare_sync(
                    fabric_id, "webhook", None, f"github-{delivery_id}-fabric-{fabric_id}",
                    capacity=capacity,
                )
            except (SyncAlreadyInProgressError, WorkerPoolExhaustedError):
                # Busy fabric: the running sync's fetch may miss it; no free slot: nothing
                # ran. Either way the scheduler gives a coalesced fabric one follow-up.
                outcome.coalesced.append(fabric_id)
                continue
            outcome.triggered.append({"fabric_id": fabric_id, "sync_id": prepared.sync.sync_id})
            to_save += [prepared.sync, prepared.fabric]
        if capacity is not None and outcome.triggered:
            to_save.append(capacity)
        delivery = WebhookDelivery(
            delivery_id=delivery_id,
            correlation_id=cid,
            github_event="push",
            repository=str(full_name or "")[:500],
            ref=str(payload.get("ref") or "")[:500],
            after=str(payload.get("after") or "")[:100],
            triggered=outcome.triggered,
            coalesced=outcome.coalesced,
            ignored=outcome.ignored,
        )
        if audit is not None:
            to_save.append(audit(outcome))
            outcome.audited = True
        try:
            app.save(delivery, *to_save)
        except IntegrityError:
            # The delivery's id is taken (a redelivery — the save is the dedup check, so a
            # new delivery costs no extra read) or a sync started meanwhile: look again.
            if _recorded(app, delivery_id):
                return Outcome(duplicate=True)
            continue
        return outcome
    raise DatabaseError("too much contention: webhook delivery not recorded", details={})


# -- a verified delivery → its result --------------------------------------------------------


@dataclass
class WebhookResult:
    """What a verified delivery came to: ``status`` is ``pong`` (ping), ``ignored`` (an
    event other than push), ``duplicate`` (delivery id seen before, by either path) or
    ``accepted`` (``outcome`` says which syncs it started)."""

    status: str
    delivery_id: str
    event: str
    payload: dict[str, Any]
    outcome: Outcome | None = None

    @property
    def http_status(self) -> int:
        return 200 if self.status in ("pong", "duplicate") else 202

    def body(self) -> dict[str, Any]:
        """The answer, identical over HTTP and on the bus."""
        if self.status == "pong":
            return {"msg": "pong", "delivery": self.delivery_id,
                    "hook_id": self.payload.get("hook_id")}
        if self.status == "ignored":
            return {"status": "ignored", "delivery": self.delivery_id, "event": self.event}
        if self.status == "duplicate":
            return {"status": "duplicate", "delivery": self.delivery_id}
        assert self.outcome is not None
        return {
            "status": "accepted",
            "delivery": self.delivery_id,
            "triggered": self.outcome.triggered,
            "coalesced": self.outcome.coalesced,
            "ignored": self.outcome.ignored,
            "skipped": self.outcome.skipped,
        }

    def audit_details(self) -> dict[str, Any]:
        """What the audit entry of a processed delivery records beyond event and delivery."""
        if self.status != "accepted":
            return {"status": self.status}
        assert self.outcome is not None
        repository = self.payload.get("repository")
        ref = self.payload.get("ref")
        name = repository.get("full_name") if isinstance(repository, dict) else None
        return {  # the texts checked by check_kept_fields; anything else is not kept
            "status": "accepted",
            "ref": ref if isinstance(ref, str) else None,
            "repository": name if isinstance(name, str) else None,
            "triggered": self.outcome.triggered,
            "coalesced": self.outcome.coalesced,
            "ignored": self.outcome.ignored,
        }


def handle_delivery(
    app: FGDApplication,
    github_event: str,
    delivery_id: str,
    payload: dict[str, Any],
    correlation_id: str,
    fabrics: Callable[[], list[Any]],
    audit: Callable[[WebhookResult], Any] | None = None,
) -> WebhookResult:
    """A verified delivery (see ``verify_delivery``): ping → pong, push → recorded once with
    its syncs (started, not run: the caller runs ``outcome.triggered``), anything else
    ignored."""
    if github_event == "ping":
        return WebhookResult("pong", delivery_id, github_event, payload)
    if github_event != "push":
        return WebhookResult("ignored", delivery_id, github_event, payload)
    def audit_outcome(outcome: Outcome) -> Any:
        assert audit is not None
        return audit(WebhookResult("accepted", delivery_id, github_event, payload, outcome))

    outcome = record_delivery(
        app, delivery_id, payload, correlation_id, fabrics, audit_outcome if audit else None
    )
    status = "duplicate" if outcome.duplicate else "accepted"
    return WebhookResult(status, delivery_id, github_event, payload, outcome)
