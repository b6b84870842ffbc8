"""Hostile bus commands, straight into ``CommandIntake.handle`` (no broker needed to ask
"what does this input do?"), on SQLite and PostgreSQL: whatever arrives — any routing key,
bytes, JSON almost right, tokens of every kind in every place — the intake answers or refuses
with a documented reason, never raises, records exactly one event (the receipt or the denial's
audit entry) unless it started a sync, and never stores a token."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from fgd_core.application.app import FGDApplication
from fgd_core.application.auth import create_token
from fgd_workers.command_intake import REFUSAL_REASONS, Command, CommandIntake

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40),
                         st.floats(allow_nan=False), st.text(max_size=30))
json_values = st.recursive(json_scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)),
    max_leaves=12)


def mostly(right: st.SearchStrategy[Any], *wrong: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """``right`` about nine times in ten, else one of ``wrong``: with several fields each
    mostly right, whole commands are often right too (with one_of, each field would be
    right 1/n of the time and whole valid commands would be rare)."""
    return st.sampled_from([True] * 9 + [False]).flatmap(
        lambda ok: right if ok else st.one_of(*wrong))


def trigger_bodies(fabric_id: int) -> st.SearchStrategy[Any]:
    """sync.trigger bodies, from right to subtly wrong."""
    return st.fixed_dictionaries(
        {"fabric_id": mostly(st.just(fabric_id), st.integers(-5, 2**33), st.booleans(),
                             st.text(max_size=5), st.none())},
        optional={
            "trigger": mostly(st.sampled_from(["manual", "webhook", "scheduled"]),
                              st.text(max_size=12)),
            "options": mostly(
                st.fixed_dictionaries({}, optional={
                    "force_refresh": st.just(False), "validate_only": st.booleans(),
                    "include_github_sync": st.booleans()}),
                st.fixed_dictionaries({"force_refresh": st.just(True)}),
                st.fixed_dictionaries({"include_github_sync": st.integers()}),
                json_values),
            "correlation_id": mostly(st.text(st.characters(min_codepoint=32), min_size=1,
                                             max_size=200),
                                     st.text(max_size=250), st.integers()),
            "extra": json_values,
        },
    )


def raw_bodies(fabric_id: int) -> st.SearchStrategy[bytes]:
    return mostly(
        trigger_bodies(fabric_id).map(lambda v: json.dumps(v).encode()),
        st.binary(max_size=200),
        json_values.map(lambda v: orjson.dumps(v)),
    )


def test_no_command_crashes_the_intake_or_stores_more_than_it_should(
    app: FGDApplication,
) -> None:
    fabric_id = int(app.register_fabric("lab", "https://github.com/example/f.git").fabric_id)
    trigger_key, _ = create_token(app, "ci", permissions=["trigger_fgd_sync"],
                                  fabrics=[fabric_id])
    viewer_key, _ = create_token(app, "viewer", permissions=["view_fgd_sync"])
    intake = CommandIntake(app, "webhook-secret")
    keys = (trigger_key, viewer_key)
    authorization = mostly(
        st.just(f"Token {trigger_key}"),
        st.just(f"Token {viewer_key}"),
        st.sampled_from([trigger_key, "Token " + "0" * 40,
                         f"Bearer {trigger_key}", "Token", ""]),
        st.none(), st.text(max_size=60), st.binary(max_size=20), st.integers())
    commands = st.builds(
        Command,
        routing_key=mostly(st.just("sync.trigger"), st.sampled_from([
            "webhook.github", "sync.trigger.x", "", "SYNC.TRIGGER", "sync.trigger\x00"])),
        body=raw_bodies(fabric_id),
        headers=authorization.map(lambda a: {} if a is None else {"authorization": a}),
        message_id=mostly(  # new ones, and a small pool, so that some commands repeat
            st.uuids().map(str),
            st.sampled_from(["m-1", "m-2", f"Token {trigger_key}"]), st.none(),
            st.just(""), st.text(max_size=40)),
        correlation_id=st.one_of(st.none(), st.text(max_size=40)),
        reply_to=st.none(),
        app_id=st.one_of(st.none(), st.text(max_size=20), st.just(f"Token {trigger_key}")),
    )

    def stored() -> list[dict[str, Any]]:
        return [orjson.loads(n.state) for n in
                app.recorder.select_notifications(start=1, limit=10**6)]

    def verify(cmd: Command) -> str:
        """Handle ``cmd``, check what it recorded; its outcome kind."""
        before = len(stored())
        result = intake.handle(cmd)
        new = stored()[before:]
        types = [e["event_type"] for e in new]
        if result.dead is not None:
            assert result.kind in REFUSAL_REASONS
            assert result.reply is None
            assert types == ["audit.recorded"] and new[0]["payload"]["success"] is False
        else:
            assert isinstance(result.reply, dict)
            started = "sync.started" in types
            assert types.count("audit.recorded") == 1
            # a started sync: the sync, the fabric's lock (and the capacity slot); else
            # nothing but the receipt or the webhook's own records
            assert started or cmd.routing_key == "webhook.github" or len(new) == 1, types
        text = json.dumps(new)
        assert all(key not in text for key in keys)
        return result.kind

    # every path once, for sure …
    body = json.dumps({"fabric_id": fabric_id}).encode()
    auth = {"authorization": f"Token {trigger_key}"}
    known = [
        ("started", Command("sync.trigger", body, auth, "k-1")),
        ("duplicate", Command("sync.trigger", body, auth, "k-1")),
        ("FGD_3001", Command("sync.trigger", body, auth, "k-2")),
        ("unauthenticated", Command("sync.trigger", body, {}, "k-3")),
        ("forbidden", Command("sync.trigger", body,
                              {"authorization": f"Token {viewer_key}"}, "k-4")),
        ("schema", Command("sync.trigger", b'{"fabric_id": "1"}', auth, "k-5")),
        ("not_json", Command("sync.trigger", b"\xff{", auth, "k-6")),
        ("missing_message_id", Command("sync.trigger", body, auth, None)),
        ("unknown_command", Command("sync.delete", body, auth, "k-7")),
        ("signature", Command("webhook.github", json.dumps(
            {"event": "push", "delivery_id": "d-1", "signature": "sha256=" + "0" * 64,
             "body": "{}"}).encode(), {}, "k-8")),
    ]
    assert [verify(cmd) for _, cmd in known] == [kind for kind, _ in known]

    # … then whatever hypothesis makes of them
    @settings(max_examples=150, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(commands)
    def check(cmd: Command) -> None:
        verify(cmd)

    check()


def test_validly_signed_garbage_deliveries_are_answered_or_refused_never_crash(
    app: FGDApplication,
) -> None:
    """webhook.github commands whose signature is right but whose delivery is anything at
    all — push payloads with wrong or missing fields, other events, non-objects: each is
    answered (accepted, duplicate, ignored, pong) or refused (invalid_delivery, schema), the
    consumer never raises, and nothing but audit entries, the delivery and its syncs is
    stored."""
    import hashlib
    import hmac

    secret = "It's a Secret to Everybody"
    app.register_fabric("lab", "https://github.com/hedgehog/fabric.git",
                        auto_sync_on_change=True)
    intake = CommandIntake(app, secret)
    push_like = st.fixed_dictionaries(
        {"ref": st.one_of(st.just("refs/heads/main"), st.text(max_size=20), json_values)},
        optional={
            "repository": st.one_of(
                st.fixed_dictionaries({"clone_url": st.one_of(
                    st.just("https://github.com/hedgehog/fabric.git"), json_values)}),
                json_values),
            "commits": st.one_of(st.lists(st.fixed_dictionaries({}, optional={
                "added": st.one_of(st.lists(st.text(max_size=30), max_size=3), json_values),
                "modified": json_values}), max_size=3), json_values),
            "deleted": json_values,
            "after": json_values,
        })
    bodies = st.one_of(push_like.map(lambda v: json.dumps(v).encode()),
                       json_values.map(orjson.dumps), st.binary(max_size=50))
    deliveries = st.builds(
        lambda event, delivery, raw: (event, delivery, raw),
        st.sampled_from(["push", "push", "push", "ping", "issues", "", "PUSH"]),
        st.one_of(st.uuids().map(str), st.sampled_from(["d-1", "d-2"]), st.text(max_size=80)),
        bodies,
    )
    kinds: set[str] = set()

    @settings(max_examples=120, deadline=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(deliveries)
    @example(("push", "6f1c1b6e-0000-4000-8000-000000000001", b"[]"))  # not an object
    @example(("ping", "6f1c1b6e-0000-4000-8000-000000000002", b"{}"))
    @example(("push", "6f1c1b6e-0000-4000-8000-000000000003", json.dumps({
        "ref": "refs/heads/main", "after": "a" * 40,
        "repository": {"clone_url": "https://github.com/hedgehog/fabric.git"},
        "commits": [{"added": ["gitops/raw/x.yaml"]}]}).encode()))  # starts a sync
    @example(("push", "6f1c1b6e-0000-4000-8000-000000000004", json.dumps({
        "ref": "refs/heads/main", "commits": True,  # not a list (found by hypothesis)
        "repository": {"clone_url": "https://github.com/hedgehog/fabric.git"}}).encode()))
    @example(("push", "6f1c1b6e-0000-4000-8000-000000000005", json.dumps({
        "ref": "refs/heads/main", "commits": [{"added": True, "removed": 3}],
        "repository": {"clone_url": "https://github.com/hedgehog/fabric.git"}}).encode()))
    def check(delivery: tuple[str, str, bytes]) -> None:
        event, delivery_id, raw = delivery
        signature = "sha256=" + hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()
        body = {"event": event, "delivery_id": delivery_id, "signature": signature}
        try:
            body["body"] = raw.decode("utf-8")
        except UnicodeDecodeError:
            import base64

            body["body_base64"] = base64.b64encode(raw).decode()
        before = app.recorder.max_notification_id() or 0
        result = intake.handle(Command("webhook.github", orjson.dumps(body), {}, "m"))
        kinds.add(result.kind)
        new = [orjson.loads(n.state)["event_type"] for n in
               app.recorder.select_notifications(start=before + 1, limit=1000)]
        if result.dead is not None:
            assert result.kind in REFUSAL_REASONS and new == ["audit.recorded"]
        else:
            assert result.reply is not None
            assert result.kind in ("accepted", "duplicate", "ignored", "pong"), result
            assert set(new) <= {"audit.recorded", "webhook.received", "sync.started",
                                "fabric.syncing", "capacity.acquired"}, new

    check()
    assert {"invalid_delivery", "accepted", "pong"} <= kinds, kinds
