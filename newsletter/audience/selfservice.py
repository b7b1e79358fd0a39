"""What a subscriber can do themselves: sign up (double opt-in), confirm, unsubscribe,
change preferences. The web app calls these; they hold the rules, the web app the forms.

Every change is recorded as a subscriber event with its time and source, and a sign-up
as a consent record (GDPR Art. 7).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from newsletter.audience.subscribers import normalize_email
from newsletter.config import Settings
from newsletter.errors import SubscriberError
from newsletter.models import NewSubscriber, Subscriber, SubscriberStatus
from newsletter.store import Store
from newsletter.textclean import clean_text

#: suppressions a person may lift by signing up again and confirming: they chose to leave
#: (bounces and complaints come from mailbox providers; a sign-up must not override those)
RESUBSCRIBABLE: Final = frozenset({"erased", "unsubscribed"})
#: statuses no sign-up request changes until the confirmation link is followed
BLOCKED: Final = frozenset({SubscriberStatus.BOUNCED, SubscriberStatus.COMPLAINED})


def joinable_lists(settings: Settings) -> list[str]:
    """Names of the lists anyone may join (``public = true`` in ``[[lists]]``)."""
    return [lst.name for lst in settings.lists if lst.public]


@dataclass(frozen=True)
class SignupRequest:
    """What the sign-up form sent, already checked for presence (not for validity)."""

    email: str
    name: str
    locale: str
    lists: tuple[str, ...]
    #: where the form was (e.g. ``web:/subscribe``)
    source: str
    #: the consent sentence exactly as the person saw it, and its version label
    consent_text: str
    form_version: str
    #: only given when the config says to record it
    ip: str | None = None


@dataclass(frozen=True)
class SignupOutcome:
    """Whom to send a confirmation email to; ``None`` when nothing is to be sent.

    The caller shows the same page in every case, so the form never reveals whether an
    address is already subscribed or suppressed.
    """

    subscriber: Subscriber | None
    locale: str


def request_signup(
    settings: Settings, store: Store, req: SignupRequest, now: datetime
) -> SignupOutcome:
    """Record a sign-up request; :class:`SubscriberError` for invalid form input.

    A new address becomes a ``pending`` subscriber in no list; the lists chosen wait in
    the consent record until the person confirms. An address already stored is not
    changed (no duplicate), only a new consent record is added.
    """
    email = normalize_email(req.email)
    name = clean_text(req.name)  # a public form: no control characters or escapes stored
    if req.locale not in settings.locales.available:
        raise SubscriberError(f"unknown language {req.locale!r}")
    unknown = set(req.lists) - set(joinable_lists(settings))
    if unknown:
        raise SubscriberError(f"no such list to join: {', '.join(sorted(unknown))}")
    suppression = store.suppressions.get(email)
    if suppression is not None and suppression.reason not in RESUBSCRIBABLE:
        return SignupOutcome(None, req.locale)
    sub = store.subscribers.find(email)
    if sub is None:
        pending = NewSubscriber(
            email=email, name=name, locale=req.locale, status=SubscriberStatus.PENDING
        )
        try:
            sub = store.subscribers.add(pending, now, allow_suppressed=True)
        except SubscriberError:
            # the same address submitted twice at once: the other request stored it
            sub = store.subscribers.find(email)
            if sub is None:
                raise
    elif sub.status in BLOCKED:
        return SignupOutcome(None, req.locale)
    store.consents.request(
        sub.id,
        now=now,
        source=req.source,
        form_version=req.form_version,
        consent_text=req.consent_text,
        name=name,
        locale=req.locale,
        lists=req.lists,
        ip=req.ip,
    )
    return SignupOutcome(sub, req.locale)


def confirm_signup(store: Store, subscriber_id: int, *, source: str, now: datetime) -> Subscriber:
    """Apply the newest unconfirmed sign-up of a subscriber: active, its lists joined.

    Following the link twice is harmless (the second time changes nothing). The address
    leaves the suppression list: the person proved they own it and asked again.
    """
    sub = store.subscribers.get(subscriber_id)
    consent = store.consents.latest_pending(subscriber_id)
    if consent is None or not store.consents.confirm(consent.id, now):
        return sub
    sub = store.subscribers.update(
        sub.id,
        now,
        status=SubscriberStatus.ACTIVE,
        status_source=source,
        lists=set(sub.lists) | set(consent.lists),
        locale=consent.locale,
        name=consent.name or sub.name,
        consent_at=now,
        consent_source=f"{consent.source} (form {consent.form_version})",
        paused_until=None,
    )
    store.suppressions.remove(sub.email)
    store.events.record(
        sub.id,
        "confirmed",
        source=source,
        now=now,
        detail={"consent_id": consent.id, "lists": list(consent.lists)},
    )
    return sub


def unsubscribe(
    store: Store, subscriber_id: int, *, source: str, now: datetime, edition_id: int | None = None
) -> Subscriber:
    """Unsubscribe at once (RFC 8058 one-click, or the page's button); idempotent.

    Rows of editions still sending are skipped when claimed, because the sender only
    sends to ``active`` subscribers.
    """
    sub = store.subscribers.get(subscriber_id)
    if sub.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PENDING):
        sub = store.subscribers.update(
            sub.id, now, status=SubscriberStatus.UNSUBSCRIBED, status_source=source
        )
        store.events.record(
            sub.id, "unsubscribed", source=source, now=now, detail={"edition_id": edition_id}
        )
    return sub


def resubscribe(store: Store, subscriber_id: int, *, source: str, now: datetime) -> Subscriber:
    """Undo an unsubscribe from the preference centre (only the person has that link)."""
    sub = store.subscribers.get(subscriber_id)
    if sub.status is not SubscriberStatus.UNSUBSCRIBED:
        raise SubscriberError(f"subscriber {sub.id} is {sub.status}, not unsubscribed")
    sub = store.subscribers.update(
        sub.id, now, status=SubscriberStatus.ACTIVE, status_source=source
    )
    store.events.record(sub.id, "resubscribed", source=source, now=now)
    return sub


@dataclass(frozen=True)
class PurgeReport:
    """What :func:`purge_pending` deleted."""

    #: pending subscribers who never confirmed
    subscribers: int
    #: unconfirmed sign-up requests (theirs, and those of people already subscribed)
    requests: int


def purge_pending(settings: Settings, store: Store, now: datetime) -> PurgeReport:
    """Delete sign-ups whose confirmation link has expired (``web.confirm_max_age_days``).

    An unconfirmed request is no consent, so neither the address nor the name it brought
    in is kept once its link can no longer be followed.
    """
    before = now - timedelta(days=settings.web.confirm_max_age_days)
    people, requests = store.consents.purge_unconfirmed(before)
    return PurgeReport(subscribers=people, requests=requests)


def pause_choices(settings: Settings) -> list[int]:
    """The pause lengths (weeks) offered in the preference centre."""
    limit = settings.web.max_pause_weeks
    return sorted({w for w in (1, 2, 4, 8, 12, 26, 52) if w <= limit} | {limit})


def editable_lists(settings: Settings, sub: Subscriber) -> list[str]:
    """Lists shown in the preference centre: the joinable ones and those the person is on."""
    return sorted(set(joinable_lists(settings)) | set(sub.lists))


def update_preferences(
    settings: Settings,
    store: Store,
    sub: Subscriber,
    *,
    locale: str,
    lists: tuple[str, ...],
    pause_weeks: int | None,
    source: str,
    now: datetime,
) -> Subscriber:
    """Set language, lists and pause; ``pause_weeks`` None keeps the current pause, 0 ends
    it. :class:`SubscriberError` for a value the form could not have offered."""
    if locale not in settings.locales.available:
        raise SubscriberError(f"unknown language {locale!r}")
    unknown = set(lists) - set(editable_lists(settings, sub))
    if unknown:
        raise SubscriberError(f"no such list to join: {', '.join(sorted(unknown))}")
    changes: dict[str, Any] = {}
    if locale != sub.locale:
        changes["locale"] = locale
    if sorted(set(lists)) != sorted(sub.lists):
        changes["lists"] = sorted(set(lists))
    if pause_weeks is not None:
        if pause_weeks and pause_weeks not in pause_choices(settings):
            raise SubscriberError(f"pause of {pause_weeks} weeks is not offered")
        until = now + timedelta(weeks=pause_weeks) if pause_weeks else None
        if until != sub.paused_until and (until is not None or sub.is_paused(now)):
            changes["paused_until"] = until
    if not changes:
        return sub
    updated = store.subscribers.update(sub.id, now, **changes)
    detail = {k: v.isoformat() if isinstance(v, datetime) else v for k, v in changes.items()}
    store.events.record(sub.id, "preferences", source=source, now=now, detail=detail)
    return updated
