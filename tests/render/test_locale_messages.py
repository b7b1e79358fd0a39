"""Every locale's subject and From display name survive MIME encode -> parse unchanged."""

from __future__ import annotations

import email
import email.policy
from collections.abc import Callable
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from factories import make_item

from newsletter.config import Settings
from newsletter.models import DigestEntry, Item
from newsletter.render.i18n import catalog_locales
from newsletter.render.renderer import Renderer
from newsletter.send.compose import Composer, Recipient
from newsletter.send.mime import to_bytes
from newsletter.send.tokens import TokenSigner

ROOT = Path(__file__).resolve().parents[2]
#: every locale with a catalog
LOCALES = catalog_locales()
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def item(n: int) -> Item:
    return make_item(
        n,
        when=NOW,
        guid=f"g{n}",
        title=f"Соларен парк „Добрич {n}“ е пуснат в експлоатация",
        body_html="<p>Текст.</p>",
        summary_html="<p>Текст.</p>",
        link=f"https://cluster.example.org/n/{n}",
        content_hash=f"h{n}",
    )


@pytest.fixture
def settings(make_config: Callable[..., Settings]) -> Settings:
    import tomllib

    names = tomllib.loads((ROOT / "config.toml").read_text(encoding="utf-8"))["organisation"]
    return make_config(
        organisation={"names": names["names"]},
        locales={"default": "bg", "available": LOCALES},
    )


@pytest.mark.parametrize("locale", LOCALES)
def test_subject_and_display_name_survive_mime(settings: Settings, locale: str) -> None:
    renderer = Renderer(settings)
    entries = [DigestEntry(item(n), "bg", locale != "bg") for n in range(3)]
    variant = renderer.render(
        segment=settings.segments[0],
        period_label="23–29.11.2026",
        edition_date=date(2026, 11, 27),
        entries=entries,
        locale=locale,
        view_url="https://news.example.org/archive/1/" + locale,
    )
    composer = Composer(
        settings, TokenSigner(["k"]), edition_id=1, segment="members", period="2026-W48"
    )
    out = composer.compose(variant, Recipient(1, 7, "reader@example.org", "Ψ Читател „Ω“"))
    raw = to_bytes(out)
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    assert str(parsed["Subject"]) == variant.subject
    assert parsed["From"].addresses[0].display_name == settings.organisation.name_for(locale)
    assert parsed["To"].addresses[0].display_name == "Ψ Читател „Ω“"
    assert parsed["Content-Language"] == locale
    assert b"?==?" not in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    # the subject really is in the reader's language, not a copy of another locale's
    if locale != "en":
        english = renderer.render(
            segment=settings.segments[0],
            period_label="23–29.11.2026",
            edition_date=date(2026, 11, 27),
            entries=entries,
            locale="en",
            view_url="https://news.example.org/archive/1/en",
        )
        assert variant.subject != english.subject


def test_segment_expressions_set_subject_preheader_and_from_name_per_locale(
    make_config: Callable[..., Settings],
) -> None:
    settings = make_config(
        segments=[
            {
                "name": "members",
                # msgids from the catalogs, so every locale has them translated
                "subject": "{{ cluster_name }}: {{ ngettext('%(num)d item in this issue', "
                "'%(num)d items in this issue', items|length) }}",
                "preheader": "{{ period_label }}",
                "from_name": "{{ cluster_name }} · Digest",
            }
        ]
    )
    renderer = Renderer(settings)
    out = {}
    for locale in ("bg", "en"):
        out[locale] = renderer.render(
            segment=settings.segments[0],
            period_label=f"P-{locale}",
            edition_date=date(2026, 11, 27),
            entries=[DigestEntry(item(n), "bg", locale != "bg") for n in range(2)],
            locale=locale,
            view_url="https://news.example.org/archive/1/" + locale,
        )
    assert out["en"].from_name == "Test Energy Cluster · Digest"
    assert out["bg"].from_name == "Тестов енергиен клъстер · Digest"
    assert out["en"].subject == "Test Energy Cluster: 2 items in this issue"
    assert out["bg"].subject.startswith("Тестов енергиен клъстер: 2 ")
    assert "items" not in out["bg"].subject
    assert out["bg"].preheader == "P-bg"
