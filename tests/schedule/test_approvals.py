"""The scheduler releases approved editions and those past their approval deadline."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.digest import editorial as ed
from newsletter.digest.edition import Digest
from newsletter.models import EditionStatus, NewSubscriber
from newsletter.schedule.runner import Runner
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store

NOW = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)


def test_the_scheduler_releases_an_edition_past_its_deadline(
    make_config: Callable[..., Settings],
    db_url: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    settings = make_config(
        database={"url": db_url},
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
        segments=[
            {
                "name": "members",
                "rules": [{"field": "lists", "op": "contains", "value": "members"}],
                "approval": "required",
                "approve_within": "2h",
            }
        ],
    )
    with Store.open(settings.database_url()) as store:
        store.subscribers.add(
            NewSubscriber(email="ana@example.org", locale="bg", lists=("members",)), NOW
        )
        draft = ed.StoryDraft(title="Новина", body_markdown="Текст.", lang="bg", published=NOW)
        ed.create_story(settings, store, draft, actor="cli", now=NOW)
        digest = Digest(
            settings,
            store,
            provider=OutboxProvider(tmp_path / "outbox"),
            signer=TokenSigner(["k1"]),
            clock=lambda: NOW,
        )
        (res,) = asyncio.run(digest.run())
        assert res.edition_id is not None and res.awaiting_approval
        runner = Runner(settings, store)
        assert runner.release_approved(now=NOW + timedelta(hours=1)) == []
        with caplog.at_level(logging.WARNING, "newsletter.scheduler"):
            assert runner.release_approved(now=NOW + timedelta(hours=2)) == [res.edition_id]
        # no digest job sends the segment: the log says what will
        assert "no digest job sends members" in caplog.text
        assert store.editions.status(res.edition_id) is EditionStatus.SENDING
        assert ed.approval_of(settings, store, res.edition_id).approved_by == "deadline"


def test_a_scheduled_run_that_prepares_an_edition_for_approval_is_done() -> None:
    from newsletter.digest.edition import DigestReport, SegmentResult
    from newsletter.schedule.jobs import digest_outcome
    from newsletter.store.runs import RunStatus

    res = SegmentResult("members", "2026-W48", edition_id=4, items=2)
    res.awaiting_approval = True
    res.skipped = "edition 4 is awaiting approval"
    settings_like = None
    outcome = digest_outcome(settings_like, DigestReport(None, [res]), NOW)  # type: ignore[arg-type]
    assert outcome.status is RunStatus.DONE
    assert outcome.detail == "members: edition 4 awaiting approval"
