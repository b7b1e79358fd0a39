"""The next edition arranged by hand: lead, exclusions, order and intros, applied by the
real digest; previews and test sends rendered as the email is."""

from __future__ import annotations

import asyncio
import email
import email.policy
import re
from pathlib import Path

import pytest

from digest.editorial.conftest import EDITOR, NOW, desk
from newsletter.config import Settings
from newsletter.digest import editorial as ed
from newsletter.digest.edition import Digest
from newsletter.errors import EditorialError
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store


def keys(plan: ed.EditionPlan) -> list[str]:
    return [s.key for s in plan.stories]


def test_lead_exclusions_and_order_shape_the_next_edition(settings: Settings, store: Store) -> None:
    one, two, three, four = (desk(settings, store, n) for n in (1, 2, 3, 4))
    k = {n: f"item:{i}" for n, i in zip((1, 2, 3, 4), (one, two, three, four), strict=True)}
    plan = ed.next_edition(settings, store, "members", now=NOW)
    assert keys(plan) == [k[1], k[2], k[3], k[4]] and plan.skipped is None
    assert plan.period == "2026-W48" and plan.edition_id is None

    change = ed.pin_lead(settings, store, "members", k[3], actor=EDITOR, now=NOW)
    assert (change.action, change.target, change.detail) == (
        "plan.lead",
        "segment:members",
        {"story": k[3]},
    )
    ed.exclude_story(settings, store, "members", k[2], actor=EDITOR, now=NOW)
    ed.move_story(settings, store, "members", k[4], 1, actor=EDITOR, now=NOW)
    plan = ed.next_edition(settings, store, "members", now=NOW)
    assert keys(plan) == [k[3], k[4], k[1]]
    assert plan.lead_key == k[3] and plan.stories[0].lead
    assert [s.key for s in plan.excluded] == [k[2]] and plan.excluded[0].position == -1

    ed.include_story(settings, store, "members", k[2], actor=EDITOR, now=NOW)
    plan = ed.next_edition(settings, store, "members", now=NOW)
    assert keys(plan) == [k[3], k[4], k[1], k[2]]
    # moving another story above the pinned lead unpins it
    ed.move_story(settings, store, "members", k[1], 0, actor=EDITOR, now=NOW)
    plan = ed.next_edition(settings, store, "members", now=NOW)
    assert keys(plan) == [k[1], k[3], k[4], k[2]] and plan.lead_key is None

    ed.reset_plan(settings, store, "members", actor=EDITOR, now=NOW)
    assert keys(ed.next_edition(settings, store, "members", now=NOW)) == [k[1], k[2], k[3], k[4]]


def test_unknown_stories_and_segments_are_refused(settings: Settings, store: Store) -> None:
    desk(settings, store, 1)
    with pytest.raises(EditorialError, match="not among the next stories"):
        ed.pin_lead(settings, store, "members", "item:999", actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="not among the next stories"):
        ed.move_story(settings, store, "members", "nope", 0, actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="not excluded"):
        ed.include_story(settings, store, "members", "nope", actor=EDITOR, now=NOW)
    with pytest.raises(EditorialError, match="nosuch"):
        ed.next_edition(settings, store, "nosuch", now=NOW)
    with pytest.raises(EditorialError, match="longer than"):
        ed.set_intro(settings, store, "members", "bg", "x" * 2001, actor=EDITOR, now=NOW)


def test_the_digest_applies_the_plan_and_then_starts_clean(
    settings: Settings, store: Store, tmp_path: Path
) -> None:
    one, two, three = (desk(settings, store, n) for n in (1, 2, 3))
    ed.pin_lead(settings, store, "members", f"item:{three}", actor=EDITOR, now=NOW)
    ed.exclude_story(settings, store, "members", f"item:{two}", actor=EDITOR, now=NOW)
    ed.set_intro(
        settings, store, "members", "bg", "Здравейте!\n\nВтори абзац.", actor=EDITOR, now=NOW
    )
    digest = Digest(
        settings,
        store,
        provider=OutboxProvider(tmp_path / "outbox"),
        signer=TokenSigner(["k1"]),
        clock=lambda: NOW,
    )
    (res,) = asyncio.run(digest.run())
    assert res.edition_id is not None
    assert store.editions.get(res.edition_id).item_ids == (three, one)
    assert store.plans.of_edition(res.edition_id).intros == {"bg": "Здравейте!\n\nВтори абзац."}
    # the next edition's plan is empty; the excluded story is still to come
    assert store.plans.pending("members").empty
    plan = ed.next_edition(settings, store, "members", now=NOW)
    assert keys(plan) == [f"item:{two}"] and plan.edition_id == res.edition_id


def test_intros_fall_back_like_stories_and_are_escaped(settings: Settings, store: Store) -> None:
    desk(settings, store, 1)
    ed.set_intro(
        settings,
        store,
        "members",
        "bg",
        "Скъпи читатели, <script>alert(1)</script>",
        actor=EDITOR,
        now=NOW,
    )
    bg = ed.preview_next(settings, store, "members", "bg", now=NOW)
    en = ed.preview_next(settings, store, "members", "en", now=NOW)
    assert bg is not None and en is not None
    assert "Скъпи читатели, &lt;script&gt;" in bg.html and "<script>alert" not in bg.html
    assert "Скъпи читатели" in bg.text
    # no English intro: the reader's chain falls back to the default locale's, marked as such
    assert re.search(r'<p class="period" lang="bg" dir="ltr"[^>]*>Скъпи читатели', en.html)
    ed.set_intro(settings, store, "members", "en", "Dear readers", actor=EDITOR, now=NOW)
    en = ed.preview_next(settings, store, "members", "en", now=NOW)
    assert en is not None and "Dear readers" in en.html and "Скъпи" not in en.html
    assert ed.next_edition(settings, store, "members", now=NOW).intros == {
        "bg": "Скъпи читатели, <script>alert(1)</script>",
        "en": "Dear readers",
    }
    ed.set_intro(settings, store, "members", "en", "  ", actor=EDITOR, now=NOW)
    assert "en" not in ed.next_edition(settings, store, "members", now=NOW).intros


def test_preview_renders_as_the_email_does(settings: Settings, store: Store) -> None:
    assert ed.preview_next(settings, store, "members", "bg", now=NOW) is None
    desk(settings, store, 1)
    variant = ed.preview_next(settings, store, "members", "en", now=NOW)
    assert variant is not None and variant.locale == "en" and variant.item_count == 1
    assert variant.html.startswith("<!DOCTYPE html>") and "Новина 1 от бюрото" in variant.html


def test_a_test_send_goes_to_one_address_only(settings: Settings, store: Store) -> None:
    desk(settings, store, 1)
    outbox = settings.provider.path  # type: ignore[union-attr]
    change = ed.test_send(settings, store, "members", "en", "me@example.org", actor=EDITOR, now=NOW)
    assert change.action == "edition.test_send" and change.detail["to"] == "me@example.org"
    (path,) = list(Path(outbox).rglob("*.eml"))
    msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert msg["To"] == "me@example.org" and msg["Subject"].startswith("[TEST] ")
    assert store.editions.list() == []
    for bad in ("a@example.org, b@example.org", "x@example.org\r\nBcc: y@example.org", "nobody"):
        with pytest.raises(EditorialError, match="not one email address"):
            ed.test_send(settings, store, "members", "en", bad, actor=EDITOR, now=NOW)
