"""Personalize: one rendered variant + one subscriber -> one provider-neutral message.

This is the only per-recipient step, so it does plain string work: token signing and
placeholder substitution. Rendering and CSS inlining happened once per variant.
"""

from __future__ import annotations

import hashlib
import html as html_lib
from collections.abc import Callable
from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.models import Edition, OutgoingMessage, RenderedVariant, SharedBody
from newsletter.send.mime import make_message_id
from newsletter.send.personalize import personalize, require_markers, shared_body
from newsletter.send.tokens import TokenSigner, load_secrets
from newsletter.send.tracking import LinkTracker, TrackingSigner


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to; ``subscriber_id`` 0 means a test address, not a subscriber."""

    delivery_id: int
    subscriber_id: int
    email: str
    name: str


def edition_label(edition_id: int, segment: str, period: str) -> str:
    """A filesystem- and header-safe name for an edition: ``0003-members-2026-W48``."""
    return f"{edition_id:04d}-{segment}-{period}".replace(":", "")


def view_url(settings: Settings, edition_id: int, locale: str) -> str:
    """The public "view in browser" page of one variant."""
    return f"{settings.web.base_url}/archive/{edition_id}/{locale}"


class Composer:
    """Builds the messages of one edition; holds what is the same for every recipient."""

    def __init__(
        self,
        settings: Settings,
        signer: TokenSigner,
        *,
        edition_id: int,
        segment: str,
        period: str,
        subject_prefix: str = "",
        tracker: LinkTracker | None = None,
    ) -> None:
        self.settings = settings
        self.signer = signer
        self.edition_id = edition_id
        self.segment = segment
        self.subject_prefix = subject_prefix
        #: rewrites links when ``[tracking]`` is on (only here: the archive stays plain)
        self.tracker = tracker
        #: whether each message gets its personal ``html``/``text``; the engine turns it
        #: off for a provider that sends only the shared body and the substitutions
        self.bodies = True
        self.label = edition_label(edition_id, segment, period)
        self.domain = settings.organisation.from_email.rpartition("@")[2]
        list_host = settings.web.base_url.split("://", 1)[1].split("/")[0].split(":")[0]
        self.list_id = f"{segment} <{segment}.{list_host}>"
        # a handful per edition: one per (variant, which values are empty)
        self._shared: dict[tuple[RenderedVariant, frozenset[str]], SharedBody] = {}

    def shared(self, variant: RenderedVariant, present: frozenset[str]) -> SharedBody:
        """The body shared by the recipients of ``variant`` whose non-empty values are
        ``present`` (computed once, then cached)."""
        found = self._shared.get((variant, present))
        if found is None:
            html, text = shared_body(variant, present)
            if self.tracker is not None:
                # one body for many recipients: its links cannot name one of them
                html = self.tracker.rewrite(
                    html, edition_id=self.edition_id, locale=variant.locale, delivery_id=None
                )
            digest = hashlib.sha256(f"{html}\0{text}".encode()).hexdigest()[:20]
            found = SharedBody(key=f"{self.label}.{variant.locale}.{digest}", html=html, text=text)
            self._shared[(variant, present)] = found
        return found

    def compose(self, variant: RenderedVariant, to: Recipient) -> OutgoingMessage:
        """The personalized message for one recipient of one variant.

        A variant stored before markers carried a nonce is refused (:class:`RenderError`).
        """
        found = require_markers(variant, f"edition {self.edition_id}")
        base = self.settings.web.base_url
        token = self.signer.sign("unsubscribe", to.subscriber_id, self.edition_id)
        unsubscribe = f"{base}/unsubscribe/{token}"
        preferences = f"{base}/preferences/{self.signer.sign('preferences', to.subscriber_id)}"
        values = {
            "name": to.name,
            "email": to.email,
            "unsubscribe_url": unsubscribe,
            "preferences_url": preferences,
        }
        escaped = {k: html_lib.escape(v, quote=True) for k, v in values.items()}
        if self.bodies:
            html, text = personalize(variant, values, escaped)
            if self.tracker is not None and to.subscriber_id:
                html = self.tracker.rewrite(
                    html,
                    edition_id=self.edition_id,
                    locale=variant.locale,
                    delivery_id=to.delivery_id,
                )
        else:
            html = text = ""  # the provider sends the shared body with the substitutions
        # keyed by the variant's own markers: a provider substituting them server-side
        # cannot match anything a story wrote
        placeholders, text_placeholders = found.placeholders, found.text_placeholders
        substitutions = {placeholders[k]: v for k, v in escaped.items()}
        substitutions.update({text_placeholders[k]: v for k, v in values.items()})
        present = frozenset(k for k, v in values.items() if v)
        return OutgoingMessage(
            delivery_id=to.delivery_id,
            to_email=to.email,
            to_name=to.name,
            from_email=self.settings.organisation.from_email,
            from_name=variant.from_name,
            subject=self.subject_prefix + variant.subject,
            html=html,
            text=text,
            locale=variant.locale,
            message_id=make_message_id(
                self.domain, self.edition_id, to.subscriber_id or to.delivery_id
            ),
            headers={
                "List-Unsubscribe": f"<{unsubscribe}>",
                "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
                "List-Id": self.list_id,
            },
            idempotency_key=f"nl-{self.edition_id}-{to.subscriber_id}",
            metadata={
                "edition_id": str(self.edition_id),
                "subscriber_id": str(to.subscriber_id),
                "segment": self.segment,
                "edition_label": self.label,
            },
            reply_to=self.settings.organisation.reply_to,
            shared=self.shared(variant, present),
            substitutions=substitutions,
        )


#: builds the :class:`Composer` of an edition, its links signed by the signer given
ComposerFactory = Callable[[Edition, TokenSigner], Composer]


def composer_factory(settings: Settings) -> ComposerFactory:
    """Composers for the editions of these settings (the engine never sees the settings)."""

    tracking = settings.tracking
    tracker: LinkTracker | None = None
    if tracking.clicks or tracking.opens:
        keys = load_secrets(settings.security.secret_key_env, settings.paths.var)
        tracker = LinkTracker(
            TrackingSigner(keys),
            settings.web.base_url,
            clicks=tracking.clicks,
            opens=tracking.opens,
            anonymous=tracking.anonymous,
        )

    def make(edition: Edition, signer: TokenSigner) -> Composer:
        return Composer(
            settings,
            signer,
            edition_id=edition.id,
            segment=edition.segment,
            period=edition.period,
            tracker=tracker,
        )

    return make
