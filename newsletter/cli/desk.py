"""``newsletter desk``: the desk's staff accounts and its audit log."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from newsletter.cli.app import app, now, opened, out, settings
from newsletter.cli.output import JsonOpt, print_json, print_table, safe

desk_app = typer.Typer(help="Desk accounts and the audit log.", no_args_is_help=True)
app.add_typer(desk_app, name="desk")

PasswordStdin = Annotated[
    bool,
    typer.Option(
        "--password-stdin", help="Read the password from the first line of stdin (no prompt)."
    ),
]


def _password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked twice on the terminal."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\r\n")
    return str(typer.prompt("Password", hide_input=True, confirmation_prompt=True))


@desk_app.command("add-user")
def add_user_cmd(
    email: str,
    role: Annotated[str, typer.Option(help="admin, editor or translator.")],
    locales: Annotated[
        str, typer.Option(help="Comma-separated locales a translator works in (e.g. de,ro).")
    ] = "",
    password_stdin: PasswordStdin = False,
) -> None:
    """Create a desk account (the password is asked for twice unless --password-stdin)."""
    from newsletter.web.desk.users import ROLES, add_user, parse_locales

    if role not in ROLES:
        raise typer.BadParameter(f"{role!r} is not one of {', '.join(ROLES)}", param_hint="--role")
    cfg = settings()
    chosen = parse_locales(locales, cfg.locales.available)
    password = _password(password_stdin)
    with opened(cfg) as store:
        user = add_user(store, email, role, password, locales=chosen, actor="cli", now=now())
    extra = f", locales {','.join(user.locales)}" if user.locales else ""
    out.print(f"added desk user {safe(user.email)} ({user.role}{extra})", highlight=False)


@desk_app.command("list-users")
def list_users_cmd(as_json: JsonOpt = False) -> None:
    """Print the desk accounts."""
    cfg = settings()
    with opened(cfg) as store:
        users = store.desk.users()
    if as_json:
        print_json(
            [
                {
                    "email": u.email,
                    "role": u.role,
                    "locales": list(u.locales),
                    "created_at": u.created_at,
                }
                for u in users
            ]
        )
        return
    print_table(
        ("email", "role", "locales", "created"),
        ((u.email, u.role, ",".join(u.locales), u.created_at.isoformat()) for u in users),
    )


@desk_app.command("remove-user")
def remove_user_cmd(email: str) -> None:
    """Delete a desk account (its entries in the audit log stay)."""
    from newsletter.web.desk.users import remove_user

    cfg = settings()
    with opened(cfg) as store:
        remove_user(store, email, actor="cli", now=now())
    out.print(f"removed desk user {safe(email)}", highlight=False)


@desk_app.command("reset-password")
def reset_password_cmd(email: str, password_stdin: PasswordStdin = False) -> None:
    """Set a new password for a desk account; its sessions end."""
    from newsletter.web.desk.users import get_user, reset_password

    cfg = settings()
    with opened(cfg) as store:
        get_user(store, email)  # an unknown account fails before the password is asked
        reset_password(store, email, _password(password_stdin), actor="cli", now=now())
    out.print(f"new password set for {safe(email)}", highlight=False)


@desk_app.command("audit")
def audit_cmd(
    limit: Annotated[int, typer.Option(help="How many entries, newest first.", min=1)] = 100,
    actor: Annotated[str | None, typer.Option(help="Only changes by this address.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the audit log: who changed what, and when."""
    cfg = settings()
    with opened(cfg) as store:
        entries = store.desk.audit_log(limit=limit, actor=actor)
    if as_json:
        print_json(entries)
        return
    print_table(
        ("when", "who", "action", "target", "detail"),
        (
            (
                e.at.isoformat(timespec="seconds"),
                e.actor,
                e.action,
                e.target,
                ", ".join(f"{k}={v}" for k, v in e.detail.items()),
            )
            for e in entries
        ),
    )
