"""Commands that manage data: subscribers, editions, items, the database."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from newsletter.cli.app import (
    db_app,
    editions_app,
    err,
    items_app,
    now,
    opened,
    out,
    settings,
    subscribers_app,
)
from newsletter.cli.output import JsonOpt, print_json, print_table, safe

ListOpt = Annotated[str | None, typer.Option("--list", help="Only subscribers on this list.")]


def _encoding(value: str | None) -> str | None:
    from newsletter.audience.csvfile import text_encoding

    try:
        return None if value is None else text_encoding(value)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


@subscribers_app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="CSV file with an 'email' column.")],
    list_name: Annotated[
        str | None, typer.Option("--list", help="Add every imported row to this list.")
    ] = None,
    encoding: Annotated[
        str | None,
        typer.Option(
            help="The file's encoding if not UTF-8 and without a byte order mark (e.g. cp1251).",
            callback=_encoding,
        ),
    ] = None,
) -> None:
    """Import subscribers from CSV: good rows are stored, bad rows reported with their line."""
    from newsletter.audience.subscribers import import_csv

    cfg = settings()
    with opened(cfg) as store:
        report = import_csv(
            store,
            file,
            list_name=list_name,
            default_locale=cfg.locales.default,
            now=now(),
            encoding=encoding,
        )
    out.print(
        f"{safe(file)}: {report.rows} row(s): {report.added} added, {report.updated} updated, "
        f"{report.unchanged} unchanged, {report.suppressed} suppressed, "
        f"{len(report.errors)} bad row(s)"
    )
    for e in report.errors:
        err.print(f"{safe(file)}: {safe(e)}", highlight=False)
    if report.errors:
        raise typer.Exit(1)


@subscribers_app.command("export")
def export_cmd(
    list_name: ListOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    output: Annotated[Path | None, typer.Option("--out", help="File (default: stdout).")] = None,
) -> None:
    """Write subscribers as CSV (the same columns the import reads)."""
    from newsletter.audience.subscribers import export_csv
    from newsletter.models import SubscriberStatus

    cfg = settings()
    st = SubscriberStatus(status) if status else None
    with opened(cfg) as store:
        subs = store.subscribers.iter(status=st, list_name=list_name)
        if output is None:
            n = export_csv(subs, sys.stdout)
        else:
            with output.open("w", encoding="utf-8", newline="") as fh:
                n = export_csv(subs, fh)
    err.print(f"{n} subscriber(s) exported")


@subscribers_app.command("add")
def add_cmd(
    email: str,
    name: Annotated[str, typer.Option(help="Display name.")] = "",
    locale: Annotated[str, typer.Option(help="Language (default: the config's default).")] = "",
    list_name: Annotated[
        list[str] | None, typer.Option("--list", help="List to join (repeatable).")
    ] = None,
    organisation: Annotated[str, typer.Option()] = "",
    country: Annotated[str, typer.Option(help="Two-letter ISO code.")] = "",
    tag: Annotated[list[str] | None, typer.Option("--tag", help="Tag (repeatable).")] = None,
    consent_source: Annotated[str, typer.Option(help="Where consent was given.")] = "cli",
) -> None:
    """Add one subscriber (active, consent recorded now)."""
    from newsletter.audience.subscribers import normalize_email, normalize_locale
    from newsletter.models import NewSubscriber
    from newsletter.textclean import clean_subscriber

    cfg = settings()
    when = now()
    new = clean_subscriber(
        NewSubscriber(
            email=normalize_email(email),
            name=name,
            locale=normalize_locale(locale, cfg.locales.default),
            organisation=organisation,
            country=country.upper(),
            lists=tuple(list_name or ()),
            tags=tuple(tag or ()),
            consent_at=when,
            consent_source=consent_source,
        )
    )
    with opened(cfg) as store:
        sub = store.subscribers.add(new, when)
    out.print(
        f"added {safe(sub.email)} (id {sub.id}, {safe(sub.locale)}, "
        f"lists: {safe(', '.join(sub.lists) or '-')})",
        highlight=False,
    )


@subscribers_app.command("list")
def list_cmd(
    list_name: ListOpt = None,
    status: Annotated[str | None, typer.Option(help="Only this status.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print subscribers: a table, tab-separated lines in a pipe, or JSON."""
    from newsletter.models import SubscriberStatus

    cfg = settings()
    with opened(cfg) as store:
        st = SubscriberStatus(status) if status else None
        subs = list(store.subscribers.iter(status=st, list_name=list_name))
    if as_json:
        print_json(subs)
        return
    print_table(
        ("id", "email", "name", "locale", "country", "lists", "status"),
        (
            (str(s.id), s.email, s.name, s.locale, s.country, ",".join(s.lists), s.status.value)
            for s in subs
        ),
    )


@subscribers_app.command("remove")
def remove_cmd(
    email: str,
    list_name: Annotated[
        str | None, typer.Option("--list", help="Only take them off this list.")
    ] = None,
) -> None:
    """Unsubscribe someone (or take them off one list); their record and history stay."""
    from newsletter.audience.subscribers import normalize_email
    from newsletter.models import SubscriberStatus

    cfg = settings()
    address = normalize_email(email)
    with opened(cfg) as store:
        if list_name:
            sub = store.subscribers.remove_from_list(address, list_name, now())
            out.print(f"{safe(sub.email)} removed from {safe(list_name)}", highlight=False)
        else:
            store.subscribers.set_status(
                address, SubscriberStatus.UNSUBSCRIBED, source="cli", now=now()
            )
            out.print(f"{safe(address)} unsubscribed", highlight=False)


@subscribers_app.command("erase")
def erase_cmd(
    email: str,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Erase someone (GDPR Art. 17): their record and history go, a hashed suppression stays."""
    from newsletter.audience.privacy import erase
    from newsletter.audience.subscribers import normalize_email

    cfg = settings()
    address = normalize_email(email)
    if not yes:
        typer.confirm(f"Erase {address} and everything stored about them?", abort=True)
    with opened(cfg) as store:
        report = erase(store, address, source="cli", now=now())
    if report.found:
        out.print(
            f"{safe(address)} erased ({report.deliveries_deleted} delivery row(s) deleted); "
            "its hash stays on the suppression list"
        )
    else:
        state = "added to" if report.newly_suppressed else "already on"
        out.print(
            f"{safe(address)} is not a subscriber; its hash is {state} the suppression list",
            highlight=False,
        )


@subscribers_app.command("purge-pending")
def purge_pending_cmd() -> None:
    """Delete sign-ups never confirmed whose link expired (web.confirm_max_age_days).

    ``newsletter serve`` does this by itself at start and every few hours.
    """
    from newsletter.audience.selfservice import purge_pending

    cfg = settings()
    with opened(cfg) as store:
        report = purge_pending(cfg, store, now())
    out.print(
        f"{report.subscribers} unconfirmed sign-up(s) deleted, "
        f"{report.requests} expired request(s) deleted"
    )


@editions_app.command("list")
def editions_list(
    segment: Annotated[str | None, typer.Option(help="Only this segment.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print recent editions with their delivery counts (a table, or JSON)."""
    cfg = settings()
    with opened(cfg) as store:
        found = [(e, store.deliveries.counts(e.id)) for e in store.editions.list(segment=segment)]
    if as_json:
        print_json(
            [
                {
                    "id": e.id,
                    "segment": e.segment,
                    "period": e.period,
                    "status": e.status,
                    "created_at": e.created_at,
                    "item_ids": e.item_ids,
                    "deliveries": dict(sorted(counts.items())),
                }
                for e, counts in found
            ]
        )
        return
    print_table(
        ("id", "segment", "period", "status", "created", "items", "deliveries"),
        (
            (
                str(e.id),
                e.segment,
                e.period,
                e.status.label,
                f"{e.created_at:%Y-%m-%d %H:%M}",
                str(len(e.item_ids)),
                ", ".join(f"{k.value} {v}" for k, v in sorted(counts.items())),
            )
            for e, counts in found
        ),
    )


@items_app.command("list")
def items_list(
    limit: Annotated[int, typer.Option(help="How many, newest first.")] = 30,
    source: Annotated[str | None, typer.Option(help="Only this source.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print gathered items, newest first, with their language and translation key."""
    cfg = settings()
    with opened(cfg) as store:
        items = store.items.list(sources=[source] if source else None, limit=limit)
    if as_json:
        print_json(
            [
                {
                    "id": i.id,
                    "published_at": i.published_at,
                    "source": i.source,
                    "guid": i.guid,
                    "lang": i.lang,
                    "translation_key": i.translation_key,
                    "translated_from": i.translated_from,
                    "title": i.title,
                    "link": i.link,
                    "image": i.image,
                    "tags": i.tags,
                    "first_seen_at": i.first_seen_at,
                    "updated_at": i.updated_at,
                }
                for i in items
            ]
        )
        return
    print_table(
        ("id", "published", "source", "lang", "translation key", "title"),
        (
            (
                str(i.id),
                f"{i.published_at:%Y-%m-%d}",
                i.source,
                i.lang,
                i.translation_key or "",
                i.title,
            )
            for i in items
        ),
    )


ItemId = Annotated[int, typer.Argument(help="Item id (see `newsletter items list`).")]


@items_app.command("hide")
def items_hide(
    item_id: ItemId,
    reason: Annotated[str, typer.Option(help="Why, for the other editors.")] = "",
) -> None:
    """Keep an item (any source) out of every future edition; `items show` undoes it."""
    from newsletter.digest.editorial import hide_item

    cfg = settings()
    with opened(cfg) as store:
        hide_item(store, item_id, actor="cli", now=now(), reason=reason)
    out.print(f"item {item_id} hidden from future editions", highlight=False)


@items_app.command("show")
def items_show(item_id: ItemId) -> None:
    """Let a hidden item into future editions again."""
    from newsletter.digest.editorial import show_item

    cfg = settings()
    with opened(cfg) as store:
        show_item(store, item_id, actor="cli", now=now())
    out.print(f"item {item_id} is shown again", highlight=False)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    from newsletter.store import db

    cfg = settings()
    engine = db.create_engine(cfg.database_url())
    try:
        before, after = db.upgrade(engine)
    finally:
        engine.dispose()
    if before == after:
        out.print(f"{safe(db.redact(cfg.database_url()))}: already at {after}")
    else:
        out.print(f"{safe(db.redact(cfg.database_url()))}: migrated {before or 'empty'} -> {after}")
