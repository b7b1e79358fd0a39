"""Provider events change the edition report: each kind, signed as Mailgun signs it, lands
under the edition and locale of its delivery; opens and clicks only while tracked."""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa
from starlette.testclient import TestClient

from newsletter.config import Settings
from newsletter.models import Subscriber
from newsletter.reports import edition_report
from newsletter.store import Store
from newsletter.store.tables import deliveries

from .conftest import NOW, add_subscriber, client_for, mailgun_call, mailgun_failed

KEY = "key-3ax6xnjp29jd6fds4gc373sgvjxteol0"
ENV = "TEST_MAILGUN_KEY"


def sent_edition(store: Store, subs: list[tuple[Subscriber, str]]) -> tuple[int, dict[int, int]]:
    """An edition sent to ``subs`` (subscriber, locale); returns its id and delivery ids."""
    edition = store.editions.create("members", "2026-W48", [], NOW)
    store.deliveries.plan(edition.id, [(s.id, loc) for s, loc in subs], NOW)
    with store.engine.begin() as conn:
        conn.execute(
            sa.update(deliveries)
            .where(deliveries.c.edition_id == edition.id)
            .values(status="sent", sent_at=NOW)
        )
        rows = conn.execute(
            sa.select(deliveries.c.subscriber_id, deliveries.c.id).where(
                deliveries.c.edition_id == edition.id
            )
        ).all()
    return edition.id, {int(s): int(d) for s, d in rows}


def mailgun(event: str, email: str, delivery_id: int, **extra: Any) -> dict[str, Any]:
    """A Mailgun event-data object naming our delivery in its user variables."""
    return {
        "event": event,
        "id": secrets.token_urlsafe(16),
        "timestamp": time.time(),
        "recipient": email,
        "message": {"headers": {"message-id": "20261130090000.1.ABC@mg.cluster.example.org"}},
        "user-variables": {"delivery_id": str(delivery_id)},
        **extra,
    }


def post(client: TestClient, data: dict[str, Any]) -> dict[str, Any]:
    response = client.post("/webhooks/mailgun", json=mailgun_call(KEY, data))
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_each_kind_of_signed_event_changes_the_report(
    make_config: Callable[..., Settings], store: Store
) -> None:
    settings = make_config(
        webhooks={"mailgun": {"signing_key_env": ENV}}, tracking={"clicks": True, "opens": True}
    )
    ana = add_subscriber(store, "ana@example.org")
    ivo = add_subscriber(store, "ivo@example.org", "Ivo Ivanov")
    eka = add_subscriber(store, "eka@example.org", "Eka Beridze")
    edition_id, ids = sent_edition(store, [(ana, "bg"), (ivo, "bg"), (eka, "ka")])

    def line(locale: str) -> dict[str, Any]:
        rep = edition_report(settings, store, edition_id).to_json()
        return next(x for x in rep["locales"] if x["locale"] == locale)

    assert line("ka") | {"locale": "ka"} == line("ka")
    assert (line("ka")["sent"], line("ka")["delivered"], line("bg")["sent"]) == (1, 0, 2)
    with client_for(settings, store, environ={ENV: KEY}) as client:
        post(client, mailgun("delivered", "eka@example.org", ids[eka.id]))
        assert line("ka")["delivered"] == 1
        post(client, mailgun("opened", "eka@example.org", ids[eka.id]))
        post(client, mailgun("opened", "eka@example.org", ids[eka.id]))
        post(
            client,
            mailgun("opened", "ana@example.org", ids[ana.id], **{"client-info": {"bot": "apple"}}),
        )
        ka, bg = line("ka"), line("bg")
        assert (ka["opens_unique"], ka["opens_total"], ka["machine_opens"]) == (1, 2, 0)
        assert (bg["opens_unique"], bg["machine_opens"]) == (0, 1)  # Apple MPP apart
        story = "https://cluster.example.org/n/1"
        post(client, mailgun("clicked", "eka@example.org", ids[eka.id], url=story))
        post(client, mailgun("clicked", "eka@example.org", ids[eka.id], url=story))
        ka = line("ka")
        assert (ka["clicks_unique"], ka["clicks_total"]) == (1, 2)
        rep = edition_report(settings, store, edition_id).to_json()
        [clicked] = [s for s in rep["stories"] if s["clicks"]]
        assert clicked["link"] == story and clicked["clicks"] == {"ka": {"unique": 1, "total": 2}}
        bounce = mailgun_failed("ivo@example.org", **{"user-variables": {}})
        bounce["user-variables"] = {"delivery_id": str(ids[ivo.id])}
        post(client, bounce)
        assert line("bg")["hard_bounces"] == 1
        post(client, mailgun("complained", "ana@example.org", ids[ana.id]))
        assert line("bg")["complained"] == 1
        post(client, mailgun("unsubscribed", "eka@example.org", ids[eka.id]))
        assert line("ka")["unsubscribed"] == 1
    # the person's own events are in their export; erasure removes them from the report
    from newsletter.audience.privacy import erase, export_data

    exported = export_data(store, eka.id, NOW)["provider_events"]
    assert {e["kind"] for e in exported} >= {"delivered", "opened", "clicked"}
    erase(store, "eka@example.org", source="test", now=NOW)
    rep = edition_report(settings, store, edition_id)
    assert sum(x.clicks_total + x.opens_total for x in rep.locales) == 0
    assert all(not s.clicks for s in rep.stories)


def test_opens_and_clicks_are_thrown_away_when_not_tracked(
    make_config: Callable[..., Settings], store: Store
) -> None:
    settings = make_config(webhooks={"mailgun": {"signing_key_env": ENV}})
    ana = add_subscriber(store, "ana@example.org")
    edition_id, ids = sent_edition(store, [(ana, "bg")])
    with client_for(settings, store, environ={ENV: KEY}) as client:
        assert post(client, mailgun("opened", "ana@example.org", ids[ana.id]))["ignored"] == 1
        assert post(client, mailgun("clicked", "ana@example.org", ids[ana.id]))["ignored"] == 1
        assert post(client, mailgun("delivered", "ana@example.org", ids[ana.id]))["applied"] == 1
    [bg] = edition_report(settings, store, edition_id).locales
    assert (bg.delivered, bg.opens_total, bg.clicks_total) == (1, 0, 0)
    with store.engine.connect() as conn:
        kinds = {k for (k,) in conn.execute(sa.text("SELECT kind FROM webhook_events"))}
    assert "opened" not in kinds and "clicked" not in kinds
