"""Messages as the Composer makes them (shared body + substitutions), for provider tests.

The variant holds every per-recipient placeholder and a conditional on the name, like the
real digest template, so a provider that sends one body per request has to reproduce each
recipient's message exactly from the shared body and the substitutions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from newsletter.config import Settings
from newsletter.models import OutgoingMessage, RenderedVariant
from newsletter.send.compose import Composer, Recipient
from newsletter.send.personalize import markers
from newsletter.send.tokens import TokenSigner

#: a fixed nonce: provider tests compare request bodies; the renderer draws a random one
NONCE = "5eed0f1ce5eed0f1ce5eed0f"
_M = markers(NONCE)
_P, _C = _M.placeholders, _M.conditionals
HTML = (
    f'<html lang="bg"><body><p>{_C["if_name"]}Здравейте, {_P["name"]}!{_C["else"]}Здравейте!'
    f"{_C['end']}</p><p>Новини от клъстера &mdash; седмица 48.</p>"
    f'<p><a href="{_P["unsubscribe_url"]}">Отписване</a> · '
    f'<a href="{_P["preferences_url"]}">Настройки</a> · изпратено до {_P["email"]}</p>'
    "</body></html>"
)
TEXT = (
    f"{_C['if_name']}Здравейте, {_P['name']}!{_C['else']}Здравейте!{_C['end']}\n\n"
    f"Новини от клъстера - седмица 48.\n\nОтписване: {_P['unsubscribe_url']}\n"
    f"Настройки: {_P['preferences_url']}\nИзпратено до {_P['email']}\n"
)
VARIANT = RenderedVariant(
    locale="bg",
    subject="Седмичен бюлетин: „Енергия“ & още 4 новини",
    preheader="",
    from_name="Североизточен енергиен клъстер",
    html=HTML,
    text=TEXT,
    item_count=4,
    nonce=NONCE,
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
