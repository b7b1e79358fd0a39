"""Approval: a segment's edition is prepared, waits, is approved (by a person, or at its
deadline) and only then sent, within its send window; real digest, store and outbox."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.digest import editorial as ed
from newsletter.digest.edition import Digest, SegmentResult
from newsletter.errors import EditionError, EditorialError
from newsletter.models import DeliveryStatus, EditionStatus, NewSubscriber
from newsletter.schedule.status import health
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.send.worker import Worker, WorkerOptions, resume_edition
from newsletter.store import Store

# a Friday, 09:00 in Sofia
NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
APPROVER = "approver@cluster.example.org"
READERS = ("ana@example.org", "boris@example.com", "vera@example.org")


def segment(**extra: Any) -> dict[str, Any]:
    return {
        "name": "members",
        "rules": [{"field": "lists", "op": "contains", "value": "members"}],
        "approval": "required",
        "approvers": [APPROVER],
        **extra,
    }


@pytest.fixture
def configure(
    make_config: Callable[..., Settings], db_url: str, tmp_path: Path
) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "database": {"url": db_url},
            "provider": {"name": "outbox", "path": str(tmp_path / "outbox")},
            "segments": [segment()],
        }
        values.update(overrides)
        return make_config(**values)

    return make


@pytest.fixture
def store(configure: Callable[..., Settings]) -> Iterator[Store]:
    with Store.open(configure().database_url()) as st:
        for n, address in enumerate(READERS):
            st.subscribers.add(
                NewSubscriber(email=address, name=f"Reader {n}", locale="bg", lists=("members",)),
                NOW,
            )
        ed.create_story(
            configure(),
            st,
            ed.StoryDraft(
                title="Новина от бюрото",
                body_markdown="Текст.",
                lang="bg",
                published=NOW - timedelta(hours=3),
            ),
            actor="editor@cluster.example.org",
            now=NOW,
        )
        yield st


def run(settings: Settings, store: Store, when: datetime) -> SegmentResult:
    digest = Digest(
        settings,
        store,
        provider=OutboxProvider(settings.provider.path),  # type: ignore[union-attr]
        signer=TokenSigner(["k1"]),
        clock=lambda: when,
    )
    (res,) = asyncio.run(digest.run())
    asyncio.run(digest.aclose())
    return res


def sent_to(settings: Settings) -> list[str]:
    out = []
    for path in sorted(Path(settings.provider.path).rglob("*.eml")):  # type: ignore[union-attr]
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(str(msg["To"].addresses[0].addr_spec))
    return out


def test_an_edition_waits_for_approval_then_goes(
    configure: Callable[..., Settings], store: Store
) -> None:
    settings = configure()
    res = run(settings, store, NOW)
    assert res.awaiting_approval and res.sent is None and res.edition_id is not None
    edition_id = res.edition_id
    assert store.editions.status(edition_id) is EditionStatus.AWAITING_APPROVAL
    # prepared: every row planned, every variant rendered, nothing sent but the request
    assert store.deliveries.counts(edition_id) == {DeliveryStatus.QUEUED: 3}
    assert sorted(store.editions.variants(edition_id)) == ["bg"]
    # not public before it is approved
    assert store.archive.variant(edition_id, "bg") is None
    assert sent_to(settings) == [APPROVER]
    (path,) = Path(settings.provider.path).rglob("*.eml")  # type: ignore[union-attr]
    request = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert isinstance(request, EmailMessage)
    text = request.get_body(preferencelist=("plain",))
    assert text is not None
    assert f"https://news.example.org/desk/editions/{edition_id}" in str(text.get_content())
    state = ed.approval_of(settings, store, edition_id)
    assert state.requested_at == NOW and state.deadline is None and state.approved_by is None
    assert [a.edition_id for a in ed.awaiting_approval(settings, store)] == [edition_id]
    assert any("awaiting approval" in p for p in health(settings, store, NOW).problems)
    # nothing else goes out however often the digest runs, and nobody is asked twice
    assert run(settings, store, NOW + timedelta(hours=1)).awaiting_approval
    assert sent_to(settings) == [APPROVER]
    with pytest.raises(EditionError, match="awaiting approval"):
        resume_edition(settings, edition_id, store=store)
    with pytest.raises(EditorialError, match="approve it first"):
        ed.send_edition(settings, store, edition_id)

    later = NOW + timedelta(hours=2)
    change, state = ed.approve_edition(settings, store, edition_id, actor=APPROVER, now=later)
    assert (change.action, change.target, change.actor) == (
        "edition.approve",
        f"edition:{edition_id}",
        APPROVER,
    )
    assert state.status is EditionStatus.SENDING and state.starts_at is None
    assert (state.approved_by, state.approved_at) == (APPROVER, later)
    with pytest.raises(EditorialError, match="sending, not awaiting approval"):
        ed.approve_edition(settings, store, edition_id, actor="other@example.org", now=later)
    report = ed.send_edition(
        settings,
        store,
        edition_id,
        provider=OutboxProvider(settings.provider.path),  # type: ignore[union-attr]
    )
    assert report.finished
    assert sorted(sent_to(settings)) == sorted([APPROVER, *READERS])
    assert store.editions.status(edition_id) is EditionStatus.FINISHED


def test_the_deadline_approves_it(configure: Callable[..., Settings], store: Store) -> None:
    settings = configure(segments=[segment(approve_within="4h")])
    res = run(settings, store, NOW)
    assert res.edition_id is not None
    assert ed.approval_of(settings, store, res.edition_id).deadline == NOW + timedelta(hours=4)
    assert ed.release_due(settings, store, now=NOW + timedelta(hours=3, minutes=59)) == []
    assert ed.release_due(settings, store, now=NOW + timedelta(hours=4)) == [res.edition_id]
    state = ed.approval_of(settings, store, res.edition_id)
    assert state.approved_by == ed.DEADLINE_ACTOR == "deadline"
    assert state.status is EditionStatus.SENDING


def test_outside_the_send_window_the_approval_waits_for_it(
    configure: Callable[..., Settings], store: Store
) -> None:
    job = {
        "id": "weekly",
        "job": "digest",
        "segment": "members",
        "cron": "0 9 * * 5",
        "window": {"start": "09:00", "end": "17:00", "days": "mon-fri"},
    }
    settings = configure(schedule=[job])
    res = run(settings, store, NOW)
    assert res.edition_id is not None
    friday_night = datetime(2026, 11, 27, 18, 0, tzinfo=UTC)  # 20:00 in Sofia
    _, state = ed.approve_edition(settings, store, res.edition_id, actor=APPROVER, now=friday_night)
    monday = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)  # 09:00 in Sofia
    assert state.status is EditionStatus.AWAITING_APPROVAL and state.starts_at == monday
    with pytest.raises(EditorialError, match=f"approved already by {APPROVER}"):
        ed.approve_edition(settings, store, res.edition_id, actor="cli", now=friday_night)
    # a worker releases and sends it once the window opens, not before
    worker = Worker(
        settings,
        store,
        OutboxProvider(settings.provider.path),  # type: ignore[union-attr]
        options=WorkerOptions(once=True, wait=0),
        clock=lambda: monday - timedelta(minutes=1),
    )
    asyncio.run(worker.run())
    assert store.editions.status(res.edition_id) is EditionStatus.AWAITING_APPROVAL
    worker.clock = lambda: monday
    asyncio.run(worker.run())
    assert store.editions.status(res.edition_id) is EditionStatus.FINISHED
    assert len(sent_to(settings)) == 1 + len(READERS)


def test_approval_config_is_checked(configure: Callable[..., Settings]) -> None:
    from newsletter.errors import ConfigError

    with pytest.raises(ConfigError, match="approve_within"):
        configure(segments=[{**segment(approve_within="4h"), "approval": "none"}])
    with pytest.raises(ConfigError, match="not an email address"):
        configure(segments=[segment(approvers=["nobody"])])


def test_hand_picked_sends_and_other_segments_do_not_wait(
    configure: Callable[..., Settings], store: Store
) -> None:
    settings = configure(segments=[{**segment(), "approval": "none", "approvers": []}])
    res = run(settings, store, NOW)
    assert not res.awaiting_approval and res.sent is not None and res.sent.finished
    assert ed.awaiting_approval(settings, store) == []


def test_the_desk_prepares_an_edition_and_holds_it_for_approval(
    configure: Callable[..., Settings], store: Store
) -> None:
    settings = configure(segments=[{**segment(), "approval": "none"}])
    outbox = OutboxProvider(settings.provider.path)  # type: ignore[union-attr]
    change, edition_id = ed.prepare_edition(
        settings, store, "members", actor=APPROVER, now=NOW, provider=outbox
    )
    assert change.action == "edition.prepare" and change.target == f"edition:{edition_id}"
    assert change.detail == {"segment": "members", "period": "2026-W48", "stories": "1"}
    assert store.editions.status(edition_id) is EditionStatus.AWAITING_APPROVAL
    # asking again while it waits gives the same edition
    assert ed.prepare_edition(settings, store, "members", actor=APPROVER, now=NOW)[1] == edition_id
    ed.approve_edition(settings, store, edition_id, actor=APPROVER, now=NOW)
    assert ed.send_edition(settings, store, edition_id, provider=outbox).finished
    with pytest.raises(EditorialError, match="is finished: one edition per period"):
        ed.prepare_edition(settings, store, "members", actor=APPROVER, now=NOW)


def test_an_edition_awaiting_approval_can_be_cancelled(
    configure: Callable[..., Settings], store: Store
) -> None:
    from newsletter.send.control import cancel_edition

    settings = configure()
    res = run(settings, store, NOW)
    assert res.edition_id is not None
    cancel_edition(store, res.edition_id, NOW)
    assert store.editions.status(res.edition_id) is EditionStatus.CANCELLED
    assert store.deliveries.counts(res.edition_id) == {DeliveryStatus.SKIPPED: 3}
    with pytest.raises(EditorialError, match="cancelled, not awaiting approval"):
        ed.approve_edition(settings, store, res.edition_id, actor=APPROVER, now=NOW)
    assert ed.release_due(settings, store, now=NOW + timedelta(days=30)) == []
