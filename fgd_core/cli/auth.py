"""``fgd token create|list|revoke``: API tokens. ``create`` prints the key once, as its last
line (``fgd token create --user ci --perm trigger_fgd_sync | tail -1``); nothing else ever
shows it again."""

from __future__ import annotations

from typing import Any

import click

from fgd_core.cli.common import fgd_errors


def _app() -> Any:
    from fgd_core.bootstrap import build_app

    return build_app(source="fgd_cli")


@click.group()
def token() -> None:
    """Manage API tokens (Authorization: Token <key>)."""


@token.command()
@click.option("--user", required=True, help="User name the token authenticates as.")
@click.option("--superuser", is_flag=True, help="Every permission on every fabric.")
@click.option(
    "--perm",
    "perms",
    multiple=True,
    help="Permission, e.g. trigger_fgd_sync or netbox_hedgehog.trigger_fgd_sync (repeatable).",
)
@click.option(
    "--fabric",
    "fabrics",
    type=int,
    multiple=True,
    help="Limit the permissions to this fabric id (repeatable; default: every fabric).",
)
@click.option("--expires", help="Expiry, ISO 8601 (e.g. 2026-01-31T00:00:00Z); default: never.")
@fgd_errors
def create(
    user: str,
    superuser: bool,
    perms: tuple[str, ...],
    fabrics: tuple[int, ...],
    expires: str | None,
) -> None:
    """Create a token; its key is the last line printed."""
    from fgd_core.application.auth import create_token

    app = _app()
    try:
        key, tok = create_token(
            app, user, superuser=superuser, permissions=perms, fabrics=fabrics, expires=expires
        )
    finally:
        app.close()
    click.echo(f"token_id:    {tok.token_id}")
    click.echo(f"user:        {tok.user} (id {tok.user_id}){' superuser' if tok.superuser else ''}")
    click.echo(f"permissions: {', '.join(tok.permissions) or '-'}")
    click.echo(f"fabrics:     {', '.join(map(str, tok.fabrics)) or 'all'}")
    click.echo(f"expires:     {tok.expires or 'never'}")
    click.echo("The key is shown only now; store it safely:", err=True)
    click.echo(key)


@token.command("list")
@click.option("--json", "as_json", is_flag=True, help="One token per line, as JSON.")
@fgd_errors
def list_(as_json: bool) -> None:
    """List tokens (never their keys)."""
    import json

    from fgd_core.application.auth import list_tokens

    app = _app()
    try:
        tokens = list_tokens(app)
    finally:
        app.close()
    for tok in tokens:
        info = tok.as_dict()
        if as_json:
            click.echo(json.dumps(info))
            continue
        state = "revoked" if tok.revoked else "active"
        perms = (
            "superuser"
            if tok.superuser
            else ",".join(p.split(".", 1)[1] for p in tok.permissions) or "-"
        )
        fabrics = ",".join(map(str, tok.fabrics)) or "all"
        click.echo(
            f"{tok.token_id}  {state:<7}  {tok.user:<16} perms={perms} fabrics={fabrics}"
            f" expires={tok.expires or 'never'}"
        )


@token.command()
@click.argument("token_id")
@click.option("--reason", default="", help="Why (recorded with the revocation).")
@fgd_errors
def revoke(token_id: str, reason: str) -> None:
    """Revoke TOKEN_ID (a key works too)."""
    from fgd_core.application.auth import revoke_token

    app = _app()
    try:
        tok = revoke_token(app, token_id, reason=reason)
    finally:
        app.close()
    click.echo(f"revoked {tok.token_id} ({tok.user})")
