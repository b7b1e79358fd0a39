"""What the reader is told and given: the preference centre says what is tracked, the data
export holds the reader's own clicks, the pixel counts opens only when switched on, and an
anonymous link carries nobody."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.models import Subscriber
from newsletter.reports import edition_report
from newsletter.send.tracking import LinkTracker, TrackingSigner
from newsletter.store import Store
from newsletter.store.tables import deliveries
from newsletter.web import create_app
from newsletter.web.redirect import PIXEL
from web.web_helpers import NOW, SECRET, Clock, TestClient, Web, csrf_of, publish_edition


def tracked_web(web_settings: Settings, store: Store, clock: Clock, **tracking: bool) -> TestClient:
    settings = web_settings.model_copy(
        update={"tracking": web_settings.tracking.model_copy(update=tracking)}
    )
    return TestClient(create_app(settings, store, clock=clock), base_url="https://news.example.org")


def test_preference_centre_says_nothing_is_tracked_by_default(web: Web) -> None:
    sub = web.add(locale="en")
    page = web.client.get(f"/preferences/{web.token('preferences', sub)}")
    assert "delivered, bounced or reported as spam" in page.text
    assert "We do not record whether you open our emails or click their links." in page.text


@pytest.mark.parametrize("anonymous", [False, True])
def test_clicks_and_opens_are_said_counted_exported_and_anonymous_when_asked(
    web: Web, web_settings: Settings, store: Store, clock: Clock, anonymous: bool
) -> None:
    sub = web.add(locale="en")
    edition = publish_edition(web.settings, store)
    store.deliveries.plan(edition.id, [(sub.id, "en")], NOW)
    delivery_id = _delivery(store, edition.id)
    tracker = LinkTracker(
        TrackingSigner([SECRET]),
        "https://news.example.org",
        clicks=True,
        opens=True,
        anonymous=anonymous,
    )
    html = tracker.rewrite(
        '<a href="https://cluster.example.org/n/1">x</a><a href="https://news.example.org/'
        'preferences/t">p</a></body>',
        edition_id=edition.id,
        locale="en",
        delivery_id=delivery_id,
    )
    assert 'href="https://news.example.org/preferences/t"' in html  # our own pages stay
    [link] = [p.split('"')[0] for p in html.split('href="https://news.example.org/r/')[1:]]
    [pixel] = [p.split('"')[0] for p in html.split('src="https://news.example.org/o/')[1:]]
    with tracked_web(
        web_settings, store, clock, clicks=True, opens=True, anonymous=anonymous
    ) as client:
        page = client.get(f"/preferences/{web.token('preferences', sub)}")
        assert "counts the clicks on each story" in page.text
        assert "such counts are estimates" in page.text
        assert ("without recording who made them" in page.text) is anonymous
        opened = client.get(f"/o/{pixel}")
        assert opened.content == PIXEL and opened.headers["cache-control"].startswith("no-store")
        assert client.get(f"/r/{link}", follow_redirects=False).status_code == 302
        exported = client.post(
            f"/preferences/{web.token('preferences', sub)}/export",
            data={"csrf_token": _csrf(client, web, sub)},
        )
    [line] = [
        x for x in edition_report(web_settings, store, edition.id).locales if x.locale == "en"
    ]
    assert (line.clicks_total, line.opens_total) == (1, 1)
    assert (line.clicks_unique, line.opens_unique) == ((0, 0) if anonymous else (1, 1))
    kinds = {e["kind"] for e in exported.json()["provider_events"]}
    assert kinds == (set() if anonymous else {"clicked", "opened"})


def test_pixel_and_clicks_are_not_counted_when_tracking_is_off(web: Web, store: Store) -> None:
    edition = publish_edition(web.settings, store)
    signer = TrackingSigner([SECRET])
    click = signer.sign(
        "click",
        edition_id=edition.id,
        delivery_id=None,
        locale="bg",
        target="https://e.example.org/",
    )
    pixel = signer.sign("open", edition_id=edition.id, delivery_id=None, locale="bg")
    # an old email's link still leads on, but nothing is counted
    assert web.client.get(f"/r/{click}", follow_redirects=False).status_code == 302
    assert web.client.get(f"/o/{pixel}").content == PIXEL
    # a pixel token is no link token
    assert web.client.get(f"/r/{pixel}", follow_redirects=False).status_code == 400
    assert store.engagement.counts(edition.id).events == {}


def _delivery(store: Store, edition_id: int) -> int:
    with store.engine.connect() as conn:
        return int(
            conn.execute(
                sa.select(deliveries.c.id).where(deliveries.c.edition_id == edition_id)
            ).scalar_one()
        )


def _csrf(client: TestClient, web: Web, sub: Subscriber) -> str:
    page = client.get(f"/preferences/{web.token('preferences', sub)}")
    return csrf_of(page.text, "/export")
