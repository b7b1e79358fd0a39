"""Housekeeping: sign-ups whose link expired are purged (at app start and from the CLI),
old webhook event ids are pruned; people who confirmed or were imported stay."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import sqlalchemy as sa
from support import child_env

from newsletter.models import NewSubscriber, SubscriberStatus
from newsletter.store import Store
from newsletter.store.tables import consents, webhook_events
from newsletter.store.webhooks import EventRow
from newsletter.web import create_app
from web.web_helpers import SECRET, TestClient, Web, csrf_of


def signup(web: Web, email: str) -> None:
    page = web.client.get("/subscribe?lang=en")
    data = {
        "csrf_token": csrf_of(page.text, "/subscribe"),
        "email": email,
        "name": "Invented Person",
        "locale": "en",
        "lists": ["news"],
        "consent": "yes",
    }
    assert web.client.post("/subscribe", data=data).status_code == 200


def test_app_start_purges_expired_signups_and_prunes_webhook_ids(web: Web) -> None:
    web.add("ana@example.org")  # active; asks again and never confirms
    signup(web, "ana@example.org")
    signup(web, "stale@example.org")  # never confirms
    imported = web.add("imported@example.org", status=SubscriberStatus.PENDING)
    started = web.clock()
    old_row = EventRow("evt-old", "soft_bounce", imported.id, started)
    assert web.store.webhooks.claim("mailgun", [old_row], started) == [True]

    web.clock.advance(days=6)
    signup(web, "recent@example.org")  # six days later: its link is still valid
    web.clock.advance(days=2)  # the first requests are eight days old now
    recent_row = EventRow("evt-new", "delivered", imported.id, web.clock())
    web.store.webhooks.claim("mailgun", [recent_row], web.clock())

    with TestClient(create_app(web.settings, web.store, signer=web.signer, clock=web.clock)):
        pass  # start-up runs the housekeeping once

    assert web.store.subscribers.find("stale@example.org") is None
    assert web.store.subscribers.find("recent@example.org") is not None
    ana = web.store.subscribers.find("ana@example.org")
    assert ana is not None and ana.status is SubscriberStatus.ACTIVE
    assert web.store.consents.for_subscriber(ana.id) == []  # the unconfirmed request went
    assert web.store.subscribers.get(imported.id).status is SubscriberStatus.PENDING
    with web.store.engine.connect() as conn:
        left = conn.execute(sa.select(consents.c.subscriber_id)).scalars().all()
    recent = web.store.subscribers.find("recent@example.org")
    assert recent is not None and left == [recent.id]

    # webhook event ids are kept for webhooks.retention_days after they were received
    web.clock.advance(days=web.settings.webhooks.retention_days - 5)
    with TestClient(create_app(web.settings, web.store, signer=web.signer, clock=web.clock)):
        pass
    with web.store.engine.connect() as conn:
        ids = conn.execute(sa.select(webhook_events.c.event_id)).scalars().all()
    assert ids == ["evt-new"]


def test_confirmed_signup_is_never_purged(web: Web) -> None:
    signup(web, "kept@example.org")
    sub = web.store.subscribers.find("kept@example.org")
    assert sub is not None
    link = f"/confirm/{web.token('confirm', sub)}"
    web.client.post(link, data={"csrf_token": csrf_of(web.client.get(link).text)})
    web.clock.advance(days=400)
    with TestClient(create_app(web.settings, web.store, signer=web.signer, clock=web.clock)):
        pass
    kept = web.store.subscribers.get(sub.id)
    assert kept.status is SubscriberStatus.ACTIVE
    assert [c.confirmed_at is not None for c in web.store.consents.for_subscriber(sub.id)] == [True]


def test_cli_purge_pending(tmp_path: Path) -> None:
    db = tmp_path / "nl.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[organisation]\nname = "Test Cluster"\nfrom_email = "news@cluster.example.org"\n'
        f'[database]\nurl = "sqlite:///{db}"\n[web]\nconfirm_max_age_days = 3\n',
        encoding="utf-8",
    )
    long_ago = datetime.now(UTC) - timedelta(days=4)
    with Store.open(f"sqlite:///{db}") as store:
        for email, when in (("old@example.org", long_ago), ("new@example.org", None)):
            at = when or datetime.now(UTC)
            sub = store.subscribers.add(
                NewSubscriber(email=email, status=SubscriberStatus.PENDING), at
            )
            store.consents.request(
                sub.id,
                now=at,
                source="web:/subscribe",
                form_version="1",
                consent_text="I agree.",
                name="",
                locale="bg",
                lists=(),
                ip=None,
            )
    done = subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), "subscribers", "purge-pending"],
        capture_output=True,
        text=True,
        check=False,
        cwd=tmp_path,
        env=child_env(COLUMNS="200", NEWSLETTER_SECRET_KEY=SECRET),
    )
    assert done.returncode == 0, done.stderr
    assert "1 unconfirmed sign-up(s) deleted, 1 expired request(s) deleted" in done.stdout
    with Store.open(f"sqlite:///{db}") as store:
        assert store.subscribers.find("old@example.org") is None
        assert store.subscribers.find("new@example.org") is not None
