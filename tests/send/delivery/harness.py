"""Set-up for the delivery process tests: a seeded edition, a config file, worker processes.

The edition is built directly in the store (subscribers, one small variant per locale,
planned rows, status ``sending``), so the tests exercise sending and nothing before it.
Workers are real ``python -m newsletter worker`` processes with the real adapters.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from newsletter.models import DeliveryStatus, EditionStatus, NewSubscriber, RenderedVariant
from newsletter.send.personalize import markers, new_nonce
from newsletter.store import Store
from newsletter.store.subscribers import SubscriberStore
from newsletter.store.tables import deliveries, subscribers

ROOT = Path(__file__).resolve().parents[3]
NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
SECRET_ENV = "NEWSLETTER_TEST_DELIVERY_SECRET"
TOKENS = {"postmark": "POSTMARK_SERVER_TOKEN", "resend": "RESEND_API_KEY"}


def variant(locale: str, period: str = "2026-W48") -> RenderedVariant:
    """A small digest with the per-recipient placeholders a real one carries; the subject
    names the period, so the fake provider can tell editions apart."""
    nonce = new_nonce()
    p, tp = markers(nonce).placeholders, markers(nonce).text_placeholders
    html = (
        f"<html><body><p>Здравейте, {p['name']}!</p><p>Новини на клъстера ({locale}).</p>"
        f'<a href="{p["unsubscribe_url"]}">unsubscribe</a> '
        f'<a href="{p["preferences_url"]}">preferences</a></body></html>'
    )
    text = f"Здравейте, {tp['name']}!\nunsubscribe: {tp['unsubscribe_url']}\n"
    subject = f"Бюлетин {period} {locale}"
    return RenderedVariant(locale, subject, "", "Клъстер", html, text, 1, nonce)


def email(i: int) -> str:
    """The address of the i-th test reader."""
    return f"reader{i:06d}@example.org"


def seed_edition(url: str, n: int, *, period: str = "2026-W48") -> int:
    """``n`` readers (bg and en), an edition of segment members with rows for all: its id."""
    with Store.open(url) as store:
        if not store.subscribers.find(email(0)):
            rows = [
                SubscriberStore._values(
                    NewSubscriber(
                        email=email(i),
                        name=f"Читател {i}",
                        locale="bg" if i % 3 else "en",
                        lists=("members",),
                        consent_at=NOW,
                        consent_source="test",
                    ),
                    NOW,
                )
                for i in range(n)
            ]
            with store.engine.begin() as conn:
                for start in range(0, n, 5000):
                    conn.execute(sa.insert(subscribers), rows[start : start + 5000])
        edition = store.editions.create("members", period, [], NOW)
        for loc in ("bg", "en"):
            store.editions.save_variant(edition.id, variant(loc, period))
        with store.engine.connect() as conn:
            ids = conn.execute(
                sa.select(subscribers.c.id, subscribers.c.locale).order_by(subscribers.c.id)
            ).all()
        store.deliveries.plan(edition.id, ((i, loc) for i, loc in ids), NOW)
        store.editions.set_status(edition.id, EditionStatus.SENDING, NOW)
        return edition.id


def write_config(folder: Path, db_url: str, provider: dict[str, Any]) -> Path:
    """A config.toml for worker processes; ``provider`` is the ``[provider]`` table."""

    def value(v: Any) -> str:
        if isinstance(v, str):
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
        return str(v).lower() if isinstance(v, bool) else str(v)

    table = "\n".join(f"{k} = {value(v)}" for k, v in provider.items())
    text = f"""
[organisation]
name = "Test Energy Cluster"
address = "1 Example Street, 9000 Varna, Bulgaria"
website = "https://cluster.example.org"
from_email = "news@cluster.example.org"

[locales]
default = "bg"
available = ["bg", "en"]

[database]
url = {value(db_url)}
url_env = "NEWSLETTER_TEST_UNUSED_URL"

[paths]
templates = {value(str(ROOT / "templates"))}
var = {value(str(folder / "var"))}

[security]
secret_key_env = "{SECRET_ENV}"

[provider]
{table}
"""
    path = folder / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def sqlite_edition(folder: Path, n: int, provider: dict[str, Any]) -> tuple[str, int, Path]:
    """A new ``folder`` with a SQLite store holding an edition of ``n`` readers (see
    :func:`seed_edition`) and a config whose ``[provider]`` table is ``provider``.

    Returns (database URL, edition id, config path). Call it from the main thread:
    Alembic's migration context is process-global.
    """
    folder.mkdir()
    url = f"sqlite:///{folder / 'store.db'}"
    edition = seed_edition(url, n)
    return url, edition, write_config(folder, url, provider)


def env() -> dict[str, str]:
    """The environment of a worker process: credentials and the signing secret."""
    out = dict(os.environ)
    out.update({v: f"test-{k}-token" for k, v in TOKENS.items()})
    out[SECRET_ENV] = "delivery-test-secret"
    out.pop("NEWSLETTER_TEST_UNUSED_URL", None)
    return out


@dataclass
class Proc:
    """A worker (or other CLI) process and where its output goes."""

    popen: subprocess.Popen[bytes]
    log: Path

    def output(self) -> str:
        """What it printed (stdout and stderr)."""
        return self.log.read_text(encoding="utf-8", errors="replace")


def start(config: Path, *args: str, log: Path) -> Proc:
    """Start ``newsletter -c config ARGS...`` in a new process."""
    fh = log.open("wb")
    cmd = [sys.executable, "-m", "newsletter", "-c", str(config), *args]
    popen = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, env=env(), cwd=config.parent)
    fh.close()
    return Proc(popen, log)


def run(config: Path, *args: str, log: Path, timeout: float = 120) -> Proc:
    """Run ``newsletter -c config ARGS...`` to the end; fails the test if it fails."""
    proc = start(config, *args, log=log)
    code = proc.popen.wait(timeout=timeout)
    assert code == 0, f"newsletter {' '.join(args)} exited {code}:\n{proc.output()}"
    return proc


def rows(url: str, edition_id: int) -> list[tuple[str, DeliveryStatus, str | None, str | None]]:
    """(address, status, provider message id, batch key) of every row of the edition."""
    with Store.open(url) as store, store.engine.connect() as conn:
        found = conn.execute(
            sa.select(
                subscribers.c.email,
                deliveries.c.status,
                deliveries.c.provider_message_id,
                deliveries.c.batch_key,
            )
            .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .where(deliveries.c.edition_id == edition_id)
        ).all()
    return [(e, DeliveryStatus(s), m, b) for e, s, m, b in found]


def counts(url: str, edition_id: int) -> dict[DeliveryStatus, int]:
    """Rows per status."""
    with Store.open(url) as store:
        return store.deliveries.counts(edition_id)
