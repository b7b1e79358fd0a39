"""The weekly digest end to end: sample sources -> store -> editions -> outbox .eml files."""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import sync_lists
from newsletter.config import Settings
from newsletter.digest.edition import Digest, SegmentResult
from newsletter.digest.stories import select_stories
from newsletter.digest.trial import dry_run_segment, send_test
from newsletter.gather.run import gather
from newsletter.models import (
    DeliveryStatus,
    EditionStatus,
    ResultStatus,
    SendResult,
    SubscriberStatus,
)
from newsletter.render.i18n import catalog_locales
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store

ROOT = Path(__file__).resolve().parents[2]
# Friday of the sample content's newest week, in Sofia
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
SEGMENTS = [
    {"name": "members", "rules": [{"field": "lists", "op": "contains", "value": "members"}]},
    {
        "name": "partners-abroad",
        "rules": [
            {"field": "lists", "op": "contains", "value": "partners"},
            {"field": "country", "op": "!=", "value": "BG"},
        ],
        "timezone": "Europe/Bucharest",
    },
]


@pytest.fixture
def settings(make_config: Callable[..., Settings], tmp_path: Path, db_url: str) -> Settings:
    return make_config(
        database={"url": db_url},
        locales={
            "default": "bg",
            "available": catalog_locales(),
        },
        sources=[
            {"name": "cluster-news", "kind": "folder", "path": str(ROOT / "news"), "lang": "bg"},
            {"name": "partner-news", "kind": "feed", "path": str(ROOT / "feeds" / "partners.xml")},
        ],
        lists=[
            {"name": "members", "file": str(ROOT / "subscribers" / "members.csv")},
            {"name": "partners", "file": str(ROOT / "subscribers" / "partners.csv")},
        ],
        segments=SEGMENTS,
        provider={"name": "outbox", "path": str(tmp_path / "outbox")},
    )


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def prepare(settings: Settings, now: datetime = NOW) -> tuple[Store, Clock, Digest]:
    store = Store.open(settings.database_url())
    sync_lists(settings, store, now)
    report = gather(settings, store, now=now)
    assert not report.failed, report.failed
    clock = Clock(now)
    provider = OutboxProvider(settings.provider.path)
    digest = Digest(settings, store, provider=provider, signer=TokenSigner(["k1"]), clock=clock)
    return store, clock, digest


def run(digest: Digest, **kw: Any) -> list[SegmentResult]:
    return asyncio.run(digest.run(**kw))


def emls(folder: Path) -> list[EmailMessage]:
    out = []
    for path in sorted(folder.rglob("*.eml")):
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())  # type: ignore[attr-defined]


def test_weekly_digest_writes_one_eml_per_active_recipient(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    members, partners = run(digest)
    assert members.skipped is None and partners.skipped is None
    active_members = [
        s for s in store.subscribers.iter(status=SubscriberStatus.ACTIVE, list_name="members")
    ]
    assert sum(members.recipients.values()) == len(active_members)
    assert members.sent is not None and members.sent.finished
    assert members.sent.counts == {DeliveryStatus.SENT: len(active_members)}
    folder = settings.provider.path
    messages = emls(folder)
    assert len(messages) == sum(members.recipients.values()) + sum(partners.recipients.values())
    inactive = {
        s.email for s in store.subscribers.iter() if s.status is not SubscriberStatus.ACTIVE
    }
    assert not inactive & {str(m["To"].addresses[0].addr_spec) for m in messages}
    # partners abroad: nobody in Bulgaria
    partner_dir = next(folder.glob("*partners-abroad*"))
    for path in partner_dir.glob("*.eml"):
        sub = store.subscribers.find(path.stem.split("-", 1)[1])
        assert sub is not None and sub.country != "BG"
    # an index links every rendered variant
    assert digest.write_outbox_index() == folder / "index.html"
    index = (folder / "index.html").read_text(encoding="utf-8")
    for res in (members, partners):
        assert res.edition_id is not None
        for locale in res.recipients:
            assert f"{locale}.html" in index
    store.close()


def test_each_reader_gets_their_language_with_headers(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    run(digest, segments=["members"])
    signer = TokenSigner(["k1"])
    by_lang: dict[str, EmailMessage] = {}
    for msg in emls(settings.provider.path):
        by_lang.setdefault(str(msg["Content-Language"]), msg)
        unsub = str(msg["List-Unsubscribe"]).strip("<>")
        assert unsub.startswith("https://") and msg["List-Unsubscribe-Post"] == (
            "List-Unsubscribe=One-Click"
        )
        data = signer.verify("unsubscribe", unsub.rsplit("/", 1)[1])
        sub = store.subscribers.get(data.subscriber_id)
        assert sub.email == msg["To"].addresses[0].addr_spec
        assert unsub in body(msg, "html") and unsub in body(msg, "plain")
    assert {"bg", "en", "de"} <= set(by_lang)
    assert (
        "нови" in str(by_lang["bg"]["Subject"]).lower()
        or "новин" in str(by_lang["bg"]["Subject"]).lower()
    )
    assert str(by_lang["bg"]["Subject"]) != str(by_lang["en"]["Subject"])
    assert by_lang["bg"]["From"].addresses[0].display_name == "Тестов енергиен клъстер"
    store.close()


def test_german_reader_gets_english_variant_or_labelled_original(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    (res,) = run(digest, segments=["members"])
    variant = res.variants["de"]
    # 2026-11-27 offshore forum has a German translation, the solar park only bg + en,
    # the training for energy managers only bg
    assert "Offshore" in variant.html
    solar_en = next(
        i
        for i in store.items.list()
        if i.translation_key and "dobrich-solar" in i.translation_key and i.lang == "en"
    )
    solar_bg = next(
        i
        for i in store.items.list()
        if i.translation_key == solar_en.translation_key and i.lang == "bg"
    )
    assert solar_en.title in variant.html and solar_bg.title not in variant.html
    training = next(i for i in store.items.list() if "municipal-energy-managers" in i.guid)
    assert training.lang == "bg" and training.title in variant.html
    assert "Original auf Bulgarisch" in variant.html or "Bulgarisch" in variant.html
    store.close()


def test_second_run_sends_nothing_twice_and_next_week_only_new_items(settings: Settings) -> None:
    store, clock, digest = prepare(settings)
    first = run(digest, segments=["members"])[0]
    assert first.edition_id is not None
    count = len(emls(settings.provider.path))
    again = run(digest, segments=["members"])[0]
    assert again.skipped == f"already sent as edition {first.edition_id}"
    assert len(emls(settings.provider.path)) == count
    # a week later with nothing gathered: nothing new, segment skipped, nothing sent
    clock.now = NOW + timedelta(days=7)
    later = run(digest, segments=["members"])[0]
    assert later.skipped == "nothing new" and later.edition_id is None
    assert len(emls(settings.provider.path)) == count
    store.close()


def test_unsubscribed_before_sending_is_skipped_with_reason(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    seg = settings.segment("members")
    stories = select_stories(settings, store, seg, NOW)
    edition = store.editions.create(
        "members", "2026-W48", [(s.original.id, s.key) for s in stories], NOW
    )
    stayer, leaver = list(
        store.subscribers.iter(status=SubscriberStatus.ACTIVE, list_name="members")
    )[:2]
    store.deliveries.plan(edition.id, [(stayer.id, "bg"), (leaver.id, "bg")], NOW)
    store.editions.set_status(edition.id, EditionStatus.SENDING, NOW)  # planning finished
    # planned with both, then one leaves before their row is sent
    store.subscribers.set_status(
        leaver.email, SubscriberStatus.UNSUBSCRIBED, source="test", now=NOW
    )
    (res,) = run(digest, segments=["members"])
    assert res.resumed and res.sent is not None
    assert res.sent.counts == {DeliveryStatus.SENT: 1, DeliveryStatus.SKIPPED: 1}
    assert store.deliveries.errors(edition.id) == [("subscriber unsubscribed before sending", 1)]
    assert [p.name.split("-", 1)[1] for p in settings.provider.path.rglob("*.eml")] == [
        f"{stayer.email}.eml"
    ]
    store.close()


def test_dry_run_stores_and_sends_nothing(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    results = [dry_run_segment(digest, segment) for segment in settings.segments]
    assert all(r.variants and r.edition_id is None for r in results)
    assert store.editions.list() == []
    assert not settings.provider.path.exists() or emls(settings.provider.path) == []
    store.close()


def test_test_send_goes_to_one_address_per_locale(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    res = asyncio.run(send_test(digest, settings.segment("members"), "editor@example.org"))
    messages = emls(settings.provider.path)
    assert len(messages) == len(res.variants) >= 3
    assert all(m["To"].addresses[0].addr_spec == "editor@example.org" for m in messages)
    assert all(str(m["Subject"]).startswith("[TEST] ") for m in messages)
    assert store.editions.list() == []
    store.close()


def test_manual_send_of_chosen_items(settings: Settings) -> None:
    store, _, digest = prepare(settings)
    old = next(i for i in store.items.list() if i.published_at.year == 2012)
    (res,) = run(digest, segments=["members"], item_ids=[old.id])
    assert res.items == 1 and res.period.startswith("manual-") and res.sent is not None
    assert old.title in res.variants["bg"].html
    store.close()


class ForgetfulOutbox(OutboxProvider):
    """The outbox as a provider without idempotency keys would behave (SMTP, Postmark...)."""

    supports_idempotency = False


@pytest.mark.parametrize("idempotent", [True, False])
def test_a_crash_mid_send_is_resumed_without_resending(
    settings: Settings, idempotent: bool
) -> None:
    store, clock, digest = prepare(settings)
    if not idempotent:
        digest = Digest(
            settings,
            store,
            provider=ForgetfulOutbox(settings.provider.path),
            signer=TokenSigner(["k1"]),
            clock=clock,
        )
    seg = settings.segment("members")
    stories = select_stories(settings, store, seg, NOW)
    edition = store.editions.create(
        "members", "2026-W48", [(s.original.id, s.key) for s in stories], NOW
    )
    # a first process planned and rendered, sent 5 rows and died holding a lease on 5 more
    members = store.subscribers.iter(status=SubscriberStatus.ACTIVE, list_name="members")
    store.deliveries.plan(
        edition.id, ((s.id, settings.locales.resolve(s.locale)) for s in members), NOW
    )
    store.editions.set_status(edition.id, EditionStatus.SENDING, NOW)
    sent = store.deliveries.claim(edition.id, "dead", 5, timedelta(minutes=5), NOW)
    store.deliveries.record(
        [SendResult(d.id, ResultStatus.ACCEPTED, "x") for d in sent],
        NOW,
        max_attempts=3,
        backoff=lambda a, r: 1,
    )
    held = store.deliveries.claim(edition.id, "dead", 5, timedelta(minutes=5), NOW)
    assert len(held) == 5
    clock.now = NOW + timedelta(minutes=10)
    (after,) = run(digest, segments=["members"])
    assert after.resumed and after.edition_id == edition.id and after.sent is not None
    total = sum(after.recipients.values())
    files = {p.name for p in settings.provider.path.rglob("*.eml")}
    assert not any(f.startswith(tuple(f"{d.id:08d}-" for d in sent)) for f in files)
    if idempotent:
        # re-sent under the same key: the held rows' files are written (once each)
        assert after.sent.counts == {DeliveryStatus.SENT: total}
        assert len(files) == total - 5
        assert after.sent.finished
    else:
        # whether the dead worker sent them is unknown: they are not re-sent automatically
        assert after.sent.counts[DeliveryStatus.UNKNOWN] == 5
        assert after.sent.counts[DeliveryStatus.SENT] == total - 5
        assert len(files) == total - 10
        assert store.editions.get(edition.id).status is EditionStatus.FINISHED


def test_machine_translation_fills_only_stories_without_a_human_variant(
    settings: Settings,
) -> None:
    from digest.translate_fake import KEY, FakeDeepL  # the DeepL imitation on 127.0.0.1
    from newsletter.digest.translate.deepl import DeepLTranslator

    fake = FakeDeepL()
    fake.thread.start()
    try:
        store, clock, _ = prepare(settings)
        translator = DeepLTranslator(KEY, base_url=fake.url, timeout=5)
        digest = Digest(
            settings,
            store,
            provider=OutboxProvider(settings.provider.path),
            signer=TokenSigner(["k1"]),
            translator=translator,
            clock=clock,
        )
        res = dry_run_segment(digest, settings.segment("members"))
        de = res.variants["de"].html
        solar_en = next(
            i
            for i in store.items.list()
            if i.translation_key and "dobrich-solar" in i.translation_key and i.lang == "en"
        )
        # a human English variant beats a machine translation; bg-only stories get one
        assert solar_en.title in de
        assert "Maschinelle Übersetzung" in de
        assert fake.requests
        first = len(fake.requests)
        dry_run_segment(digest, settings.segment("members"))
        assert len(fake.requests) == first  # served from the store's cache
        store.close()
    finally:
        fake.server.shutdown()
        fake.server.server_close()


def test_too_few_items_wait_for_the_next_period(settings: Settings) -> None:
    few = settings.model_copy(
        update={"segments": [settings.segments[0].model_copy(update={"min_items": 50})]}
    )
    store, clock, _ = prepare(few)
    digest = Digest(
        few,
        store,
        provider=OutboxProvider(few.provider.path),
        clock=clock,
        signer=TokenSigner(["k1"]),
    )
    (res,) = run(digest)
    assert res.skipped is not None and "fewer than min_items=50" in res.skipped
    assert res.edition_id is None and store.editions.list() == []
    store.close()
