"""Reconciling ``unknown`` rows with the provider: Postmark's message search and Mailgun's
events API tell which messages arrived; only the others are queued again.

Real stores (SQLite, and PostgreSQL when set), the real adapters against the spec-checking
stand-ins of tests/providers. A message "arrived" when the adapter sent it to the fake
and its answer was thrown away, which is what a lost answer is.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.config import Settings
from newsletter.errors import EditionError, ProviderError
from newsletter.models import (
    DeliveryStatus,
    EditionStatus,
    OutgoingMessage,
    ResultStatus,
    SendResult,
)
from newsletter.send.providers.base import Probe, Provider
from newsletter.send.providers.http import HttpProvider
from newsletter.send.providers.mailgun import MailgunProvider
from newsletter.send.providers.postmark import PostmarkProvider
from newsletter.send.providers.sendgrid import SendgridProvider
from newsletter.send.reconcile import DEFAULT_SETTLE, ReconcileReport, reconcile
from newsletter.send.worker import resume_edition
from newsletter.store import Store
from newsletter.store.tables import deliveries as t
from send.delivery.harness import email, seed_edition
from send.providers import fake_mailgun, fake_postmark
from send.providers.specserver import Answer, SpecServer

Make = Callable[[], Provider]
NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=10)
LEASE = timedelta(minutes=5)
LOST = "no answer; it may have been accepted"


def _message(delivery_id: int, i: int, edition_id: int) -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=delivery_id,
        to_email=email(i),
        to_name=f"Reader {i}",
        from_email="news@cluster.example.org",
        from_name="Cluster",
        subject="Digest 2026-W48",
        html="<p>news</p>",
        text="news",
        locale="en",
        message_id=f"<{delivery_id}@cluster.example.org>",
        metadata={"edition_id": str(edition_id), "subscriber_id": str(i)},
    )


def _unknown_edition(
    store: Store, db_url: str, n: int, *, period: str = "2026-W48"
) -> tuple[int, list[int]]:
    """An edition of ``n`` rows, all recorded ``unknown`` at NOW, and its row ids."""
    edition = seed_edition(db_url, n, period=period)
    at = NOW
    batch = store.deliveries.claim_batch(edition, "w#1", n, LEASE, at)
    results = [SendResult(r.id, ResultStatus.UNKNOWN, error=LOST) for r in batch.rows]
    store.deliveries.record(results, at, max_attempts=1, backoff=lambda a, r: 1, claimed_by="w#1")
    store.editions.set_status(edition, EditionStatus.FINISHED, at)
    return edition, sorted(r.id for r in batch.rows)


def _arrive(make: Make, edition: int, ids: Sequence[int], readers: Sequence[int]) -> None:
    """Send these rows' messages to the provider and throw the answers away."""

    async def go() -> None:
        async with make() as provider:
            await provider.send_batch(
                [_message(d, i, edition) for d, i in zip(ids, readers, strict=True)]
            )

    asyncio.run(go())


def _reconcile(store: Store, make: Make, edition: int, now: datetime) -> ReconcileReport:
    """Reconcile with a provider of its own event loop (a pool belongs to one loop)."""

    async def go() -> ReconcileReport:
        async with make() as provider:
            return await reconcile(store, provider, edition, now)

    return asyncio.run(go())


def _rows(store: Store, ids: Sequence[int]) -> dict[int, tuple[DeliveryStatus, str | None]]:
    """Status and provider message id of these rows."""
    query = sa.select(t.c.id, t.c.status, t.c.provider_message_id).where(t.c.id.in_(ids))
    with store.engine.connect() as conn:
        return {
            r.id: (DeliveryStatus(r.status), r.provider_message_id) for r in conn.execute(query)
        }


@pytest.fixture
def postmark() -> Iterator[SpecServer]:
    with fake_postmark.serve() as server:
        yield server
        assert server.invalid == [], server.invalid[0].error


@pytest.fixture
def mailgun() -> Iterator[SpecServer]:
    with fake_mailgun.serve() as server:
        server.responder.clock = NOW.timestamp()  # type: ignore[attr-defined]
        yield server
        assert server.invalid == [], server.invalid[0].error


def test_postmark_search_marks_arrived_rows_sent_and_queues_the_rest(
    store: Store, db_url: str, postmark: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 6)
    provider = partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url, timeout=5)
    _arrive(provider, edition, ids[:4], range(4))
    # another edition's message for one of these readers is not this row's
    _arrive(provider, edition + 1000, [ids[5] + 1000], [5])

    rep = _reconcile(store, provider, edition, LATER)

    assert (rep.unknown, rep.sent, rep.requeued, rep.left) == (6, 4, 2, 0)
    arrived = {
        m["Metadata"]["delivery_id"]: m["MessageID"]  # type: ignore[index]
        for m in postmark.responder.sent  # type: ignore[attr-defined]
    }
    rows = _rows(store, ids)
    for row_id in ids[:4]:
        assert rows[row_id] == (DeliveryStatus.SENT, arrived[str(row_id)])
    for row_id in ids[4:]:
        assert rows[row_id] == (DeliveryStatus.QUEUED, None)
    # the rows to send again make the edition send again; they go out as a new batch
    assert store.editions.status(edition) is EditionStatus.SENDING
    again = store.deliveries.claim_batch(edition, "w#2", 10, LEASE, LATER)
    assert sorted(r.id for r in again.rows) == ids[4:] and not again.again
    # one search per row, filtered by its own delivery id on the configured stream
    searches = [r for r in postmark.requests if r.method == "GET"]
    assert sorted(r.query["metadata_delivery_id"][0] for r in searches) == sorted(map(str, ids))
    assert {r.query["messagestream"][0] for r in searches} == {"broadcast"}


def test_rows_not_found_too_soon_after_sending_stay_unknown(
    store: Store, db_url: str, postmark: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 3)
    provider = partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url, timeout=5)
    _arrive(provider, edition, ids[:1], [0])
    soon = NOW + timedelta(seconds=30)

    rep = _reconcile(store, provider, edition, soon)

    # the search may not show a message accepted a moment ago: not proof it never came
    assert (rep.sent, rep.requeued, rep.recent) == (1, 0, 2)
    assert rep.check_again_at == NOW + DEFAULT_SETTLE
    assert store.editions.status(edition) is EditionStatus.FINISHED
    rows = _rows(store, ids)
    assert [rows[i][0] for i in ids] == [DeliveryStatus.SENT] + [DeliveryStatus.UNKNOWN] * 2
    # later the same rows are settled, and a second look finds nothing new to mark sent
    rep = _reconcile(store, provider, edition, LATER)
    assert (rep.unknown, rep.sent, rep.requeued, rep.recent) == (2, 0, 2, 0)


def test_unanswered_searches_leave_rows_unknown(
    store: Store, db_url: str, postmark: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 3)
    provider = partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url, timeout=5)
    # Postmark's search fails for two of the three lookups: a 500 and an unreadable body
    postmark.script(
        Answer(500, {"ErrorCode": 500, "Message": "down"}),
        Answer(200, "<html>maintenance</html>", content_type="text/html"),
    )
    rep = _reconcile(store, provider, edition, LATER)
    assert (rep.unanswered, rep.requeued, rep.sent) == (2, 1, 0)
    assert sum(1 for s, _ in _rows(store, ids).values() if s is DeliveryStatus.UNKNOWN) == 2


def test_refused_search_credentials_stop_with_one_error_and_change_nothing(
    store: Store, db_url: str, postmark: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 2)
    provider = partial(PostmarkProvider, "wrong-token", base_url=postmark.base_url, timeout=5)
    with pytest.raises(ProviderError, match="refused the credentials"):
        _reconcile(store, provider, edition, LATER)
    assert {s for s, _ in _rows(store, ids).values()} == {DeliveryStatus.UNKNOWN}


def test_rows_older_than_the_provider_keeps_records_are_not_guessed(
    store: Store, db_url: str, postmark: SpecServer
) -> None:
    edition, _ = _unknown_edition(store, db_url, 2)
    provider = partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url, timeout=5)
    rep = _reconcile(store, provider, edition, NOW + timedelta(days=30))
    assert (rep.too_old, rep.requeued, rep.sent) == (2, 0, 0)
    assert not [r for r in postmark.requests if r.method == "GET"]


def test_mailgun_events_find_the_accepted_recipients(
    store: Store, db_url: str, mailgun: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 5)
    provider = partial(
        MailgunProvider,
        fake_mailgun.API_KEY,
        fake_mailgun.DOMAIN,
        base_url=mailgun.base_url,
        timeout=5,
    )
    _arrive(provider, edition, ids[:3], range(3))
    rep = _reconcile(store, provider, edition, LATER)
    assert (rep.sent, rep.requeued, rep.left) == (3, 2, 0)
    rows = _rows(store, ids)
    for row_id in ids[:3]:
        status, message_id = rows[row_id]
        # the id the adapter records for an accepted send: "<call id>/<delivery id>"
        assert status is DeliveryStatus.SENT
        assert message_id is not None and message_id.endswith(f"@{fake_mailgun.DOMAIN}/{row_id}")
    searches = [r for r in mailgun.requests if r.method == "GET"]
    assert {r.query["event"][0] for r in searches} == {"accepted"}
    assert sorted(r.query["recipient"][0] for r in searches) == sorted(email(i) for i in range(5))


def test_mailgun_pages_through_a_busy_recipient_and_never_follows_a_foreign_link(
    store: Store, db_url: str, mailgun: SpecServer
) -> None:
    edition, ids = _unknown_edition(store, db_url, 1)
    provider = partial(
        MailgunProvider,
        fake_mailgun.API_KEY,
        fake_mailgun.DOMAIN,
        base_url=mailgun.base_url,
        timeout=5,
    )
    fake = mailgun.responder
    other = {"event": "accepted", "recipient": email(0), "timestamp": fake.clock}  # type: ignore[attr-defined]
    fake.events.extend(  # type: ignore[attr-defined]
        {**other, "id": f"old{n}", "user-variables": {"delivery_id": "999999"}} for n in range(300)
    )
    _arrive(provider, edition, ids, [0])
    rep = _reconcile(store, provider, edition, LATER)
    assert rep.sent == 1
    assert len([r for r in mailgun.requests if r.method == "GET"]) == 2  # two pages

    # a page whose "next" points at another host is not followed with our key
    edition, ids = _unknown_edition(store, db_url, 1, period="2026-W49")
    full = [{**other, "id": f"x{n}", "user-variables": {}} for n in range(300)]
    mailgun.script(Answer(200, {"items": full, "paging": {"next": "http://evil.example/v3/x"}}))
    rep = _reconcile(store, provider, edition, LATER)
    assert (rep.unanswered, rep.sent, rep.requeued) == (1, 0, 0)


def test_a_provider_that_cannot_tell_is_one_clear_error(store: Store, db_url: str) -> None:
    edition, _ = _unknown_edition(store, db_url, 1)
    provider = partial(SendgridProvider, api_key="k", base_url="http://127.0.0.1:9", timeout=1)
    with pytest.raises(EditionError, match="cannot tell which messages it accepted"):
        _reconcile(store, provider, edition, LATER)


def test_lookup_is_optional_in_the_interface() -> None:
    assert Provider.lookup_horizon is None and HttpProvider.lookup_horizon is None
    assert PostmarkProvider.lookup_horizon and MailgunProvider.lookup_horizon
    probe = Probe(1, 1, "a@example.org", NOW)

    async def go() -> None:
        async with SendgridProvider(
            api_key="k", base_url="http://127.0.0.1:9", timeout=1
        ) as provider:
            with pytest.raises(ProviderError):
                await provider.lookup([probe])

    asyncio.run(go())


def _resume(settings: Settings, store: Store, server: SpecServer, edition: int, **kw: Any) -> None:
    provider = PostmarkProvider(fake_postmark.TOKEN, base_url=server.base_url, timeout=5)
    resume_edition(
        settings,
        edition,
        resend_unknown=True,
        store=store,
        provider=provider,
        clock=lambda: LATER,
        **kw,
    )


def test_resend_unknown_resends_only_what_never_arrived(
    store: Store, db_url: str, postmark: SpecServer, make_config: Callable[..., Settings]
) -> None:
    edition, ids = _unknown_edition(store, db_url, 6)
    _arrive(
        partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url),
        edition,
        ids[:4],
        range(4),
    )
    reports: list[ReconcileReport] = []
    _resume(make_config(), store, postmark, edition, on_reconciled=reports.append)
    assert [(r.sent, r.requeued) for r in reports] == [(4, 2)]
    got = Counter(m["Recipients"][0] for m in postmark.responder.sent)  # type: ignore[attr-defined]
    # six readers, one message each: the four found were not sent again
    assert got == Counter({email(i): 1 for i in range(6)})
    assert {s for s, _ in _rows(store, ids).values()} == {DeliveryStatus.SENT}
    assert store.editions.status(edition) is EditionStatus.FINISHED


def test_resend_unknown_without_reconciling_resends_them_all(
    store: Store, db_url: str, postmark: SpecServer, make_config: Callable[..., Settings]
) -> None:
    edition, ids = _unknown_edition(store, db_url, 3)
    _arrive(
        partial(PostmarkProvider, fake_postmark.TOKEN, base_url=postmark.base_url),
        edition,
        ids[:1],
        [0],
    )
    _resume(make_config(), store, postmark, edition, reconcile_first=False)
    got = Counter(m["Recipients"][0] for m in postmark.responder.sent)  # type: ignore[attr-defined]
    assert got == Counter({email(0): 2, email(1): 1, email(2): 1})  # the operator's choice
    assert not [r for r in postmark.requests if r.method == "GET"]
