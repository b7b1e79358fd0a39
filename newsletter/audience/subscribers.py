"""Subscriber input and output: address validation, CSV import and export."""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TextIO

from babel import Locale, UnknownLocaleError
from email_validator import EmailNotValidError, validate_email

from newsletter.audience.csvfile import escape_cell, read_table
from newsletter.config import Settings
from newsletter.errors import ImportRowError, SubscriberError
from newsletter.mailbox import simple_normalized
from newsletter.models import NewSubscriber, Subscriber, SubscriberStatus
from newsletter.store import Store
from newsletter.textclean import clean_subscriber

COLUMNS = (
    "email",
    "name",
    "locale",
    "organisation",
    "country",
    "lists",
    "tags",
    "status",
    "consent_at",
    "consent_source",
)
#: the store's column sizes: a longer cell makes its row an error, not a database error
COLUMN_LIMITS = {
    "email": 320,
    "name": 300,
    "locale": 16,
    "organisation": 300,
    "consent_source": 300,
}


def normalize_email(raw: str) -> str:
    """A valid address in one canonical form (lower case), or SubscriberError."""
    fast = simple_normalized(raw.strip())
    if fast is not None:
        return fast.lower()
    try:
        info = validate_email(raw.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise SubscriberError(f"invalid email address {raw.strip()!r}: {exc}") from exc
    return info.normalized.lower()


def normalize_locale(raw: str, default: str) -> str:
    """A Babel-known locale identifier (``bg``, ``pt_BR``); empty means ``default``."""
    value = raw.strip().replace("-", "_") or default
    if not _known_locale(value):
        try:
            Locale.parse(value)
        except (UnknownLocaleError, ValueError) as exc:
            raise SubscriberError(f"unknown locale {raw!r}") from exc
    return value


@functools.lru_cache(maxsize=1024)
def _known_locale(value: str) -> bool:
    """Whether Babel knows ``value`` (cached: an import asks for the same few thousands of
    times)."""
    try:
        Locale.parse(value)
    except (UnknownLocaleError, ValueError):
        return False
    return True


def _split(value: str | None) -> tuple[str, ...]:
    return tuple(
        sorted({p.strip() for p in (value or "").replace(",", ";").split(";") if p.strip()})
    )


def parse_row(
    row: Mapping[str, str | None], line: int, *, list_name: str | None, default_locale: str
) -> NewSubscriber:
    """One CSV row as a new subscriber, or ImportRowError naming the line and the reason."""
    try:
        email = normalize_email(row.get("email") or "")
        locale = normalize_locale(row.get("locale") or "", default_locale)
        country = (row.get("country") or "").strip().upper()
        if country and not (len(country) == 2 and country.isalpha()):
            raise SubscriberError(f"country {country!r} is not a two-letter ISO code")
        status_raw = (row.get("status") or "active").strip().lower()
        try:
            status = SubscriberStatus(status_raw)
        except ValueError as exc:
            allowed = ", ".join(s.value for s in SubscriberStatus)
            raise SubscriberError(f"status {status_raw!r} is not one of {allowed}") from exc
        consent_raw = (row.get("consent_at") or "").strip()
        consent_at = None
        if consent_raw:
            try:
                consent_at = datetime.fromisoformat(consent_raw)
            except ValueError as exc:
                raise SubscriberError(f"consent_at {consent_raw!r} is not an ISO date") from exc
            if consent_at.tzinfo is None:
                raise SubscriberError(f"consent_at {consent_raw!r} has no time zone")
    except SubscriberError as exc:
        raise ImportRowError(line, str(exc)) from exc
    lists = set(_split(row.get("lists")))
    if list_name:
        lists.add(list_name)
    new = NewSubscriber(
        email=email,
        name=(row.get("name") or "").strip(),
        locale=locale,
        organisation=(row.get("organisation") or "").strip(),
        country=country,
        lists=tuple(sorted(lists)),
        tags=_split(row.get("tags")),
        status=status,
        consent_at=consent_at,
        consent_source=(row.get("consent_source") or "").strip(),
    )
    return clean_subscriber(new)  # names come from public sign-ups: no controls or escapes


@dataclass
class ImportReport:
    """What an import did: counts, and every bad row with its line number."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    #: rows for addresses on the suppression list, not added
    suppressed: int = 0
    errors: list[ImportRowError] = field(default_factory=list)

    @property
    def rows(self) -> int:
        """Data rows read: each is counted in exactly one of the numbers above."""
        return self.added + self.updated + self.unchanged + self.suppressed + len(self.errors)


def import_csv(
    store: Store,
    path: Path,
    *,
    list_name: str | None,
    default_locale: str,
    now: datetime,
    encoding: str | None = None,
    hint: str = "--encoding cp1251",
) -> ImportReport:
    """Import a CSV file: good rows are stored, bad rows are reported and change nothing.

    A row for an address already stored is merged (lists and tags added, empty fields
    filled); a stored status is never changed by an import; a suppressed address (erased,
    bounced, complained) is counted in ``suppressed`` and not added. The file is read by
    :func:`newsletter.audience.csvfile.read_table`: every data row is counted in exactly one of the
    report's numbers, and a problem with the file as a whole raises before anything is
    stored. ``encoding`` is for files without a byte order mark that are not UTF-8;
    ``hint`` says how to give it, in the error for a file that is not UTF-8.
    """
    table = read_table(
        path,
        allowed=COLUMNS,
        required=("email",),
        limits=COLUMN_LIMITS,
        encoding=encoding,
        hint=hint,
    )
    report = ImportReport()
    seen: dict[str, int] = {}
    batch: list[NewSubscriber] = []
    for row in table.rows:
        try:
            if row.error is not None:
                raise ImportRowError(row.line, row.error)
            new = parse_row(row.cells, row.line, list_name=list_name, default_locale=default_locale)
            if new.email in seen:
                raise ImportRowError(
                    row.line, f"{new.email} already appears on line {seen[new.email]}"
                )
        except ImportRowError as exc:
            report.errors.append(exc)
            continue
        seen[new.email] = row.line
        batch.append(new)
        if len(batch) >= IMPORT_BATCH:
            _merge(store, batch, now, report)
            batch = []
    _merge(store, batch, now, report)
    return report


#: rows merged per transaction: set queries and batched writes, no round trip per row
IMPORT_BATCH = 5000


def _merge(store: Store, batch: list[NewSubscriber], now: datetime, report: ImportReport) -> None:
    if not batch:
        return
    for outcome in store.subscribers.merge_many(batch, now):
        setattr(report, outcome, getattr(report, outcome) + 1)


def export_csv(subscribers: Iterable[Subscriber], out: TextIO) -> int:
    """Write subscribers as CSV with the import's columns; returns the row count.

    Cells a spreadsheet would run as formulas are escaped (:func:`escape_cell`); the
    import undoes exactly that, so an exported file imports as the same data.
    """
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    n = 0
    for sub in subscribers:
        cells = [
            sub.email,
            sub.name,
            sub.locale,
            sub.organisation,
            sub.country,
            ";".join(sub.lists),
            ";".join(sub.tags),
            sub.status.value,
            sub.consent_at.isoformat() if sub.consent_at else "",
            sub.consent_source,
        ]
        writer.writerow([escape_cell(c) for c in cells])
        n += 1
    return n


def sync_lists(settings: Settings, store: Store, now: datetime) -> dict[str, ImportReport]:
    """Merge every list's configured CSV file into the store; reports by list name."""
    return {
        lst.name: import_csv(
            store,
            lst.file,
            list_name=lst.name,
            default_locale=settings.locales.default,
            now=now,
            encoding=lst.encoding,
            hint=f'encoding = "cp1251" in the list {lst.name!r} of the config',
        )
        for lst in settings.lists
        if lst.file is not None
    }
