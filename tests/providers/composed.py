"""Messages as the Composer makes them (shared body + substitutions), for provider tests.

The variant holds every per-recipient placeholder and a conditional on the name, like the
real digest template, so a provider that sends one body per request has to reproduce each
recipient's message exactly from the shared body and the substitutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from newsletter.compose import Composer, Recipient
from newsletter.config import Settings
from newsletter.models import OutgoingMessage, RenderedVariant
from newsletter.tokens import TokenSigner

HTML = (
    '<html lang="bg"><body><p>@@nl:if:name@@Здравейте, @@nl:name@@!@@nl:else@@Здравейте!'
    "@@nl:end@@</p><p>Новини от клъстера &mdash; седмица 48.</p>"
    '<p><a href="@@nl:unsubscribe_url@@">Отписване</a> · '
    '<a href="@@nl:preferences_url@@">Настройки</a> · изпратено до @@nl:email@@</p></body></html>'
)
TEXT = (
    "@@nl:if:name@@Здравейте, @@nl:name@@!@@nl:else@@Здравейте!@@nl:end@@\n\n"
    "Новини от клъстера - седмица 48.\n\nОтписване: @@nl:unsubscribe_url@@\n"
    "Настройки: @@nl:preferences_url@@\nИзпратено до @@nl:email@@\n"
)
VARIANT = RenderedVariant(
    locale="bg",
    subject="Седмичен бюлетин: „Енергия“ & още 4 новини",
    preheader="",
    from_name="Североизточен енергиен клъстер",
    html=HTML,
    text=TEXT,
    item_count=4,
)
#: invented readers: quotes, commas, ampersands and Cyrillic in names; one without a name
NAMES = ('Мария "Енергия" Петрова, инж.', "Иван & Синове", "", "Ελένη Παπαδοπούλου", "Георги")


def composed(
    make_config: Callable[..., Settings],
    count: int = 5,
    *,
    emails: Sequence[str] | None = None,
    names: Sequence[str] | None = None,
) -> list[OutgoingMessage]:
    """``count`` messages of edition 3 (segment ``members``) for invented readers."""
    composer = Composer(
        make_config(),
        TokenSigner(["test-secret"]),
        edition_id=3,
        segment="members",
        period="2026-W48",
    )
    names = names if names is not None else [NAMES[i % len(NAMES)] for i in range(count)]
    emails = emails if emails is not None else [f"reader{i}@example.org" for i in range(count)]
    return [
        composer.compose(
            VARIANT, Recipient(delivery_id=100 + i, subscriber_id=10 + i, email=e, name=n)
        )
        for i, (e, n) in enumerate(zip(emails, names, strict=True))
    ]
