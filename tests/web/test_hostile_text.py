"""Control characters, terminal escapes and rich markup sent by visitors or stored in
editions: cleaned when they come in, never breaking the Atom feed on the way out."""

from __future__ import annotations

from lxml import etree

from newsletter.models import EditionStatus, RenderedVariant
from newsletter.web.archive import ATOM
from web.web_helpers import NOW, Web, confirm_link, csrf_of, signup

HOSTILE_NAME = (
    "\x1b[2J\x1b]8;;https://evil.example.com/\x07[bold red]Мила[/]\x1b]8;;\x07"
    "\x00\x9b31m Иванова\r\nBcc: x"
)


def test_signup_name_is_stored_and_mailed_without_controls_or_escapes(web: Web) -> None:
    # escapes, NUL and C1 controls: the form is refused outright and nothing is stored
    assert signup(web, name=HOSTILE_NAME).status_code == 400
    assert web.store.subscribers.find("mila@example.org") is None
    # what a form may carry (markup, a line break trying a header) is stored cleaned
    res = signup(web, name="[bold red]Мила[/] Иванова\r\nBcc: x")
    assert res.status_code == 200 and "Check your inbox" in res.text
    clean = "[bold red]Мила[/] Иванова Bcc: x"
    sub = web.store.subscribers.find("mila@example.org")
    assert sub is not None and sub.name == clean
    [consent] = web.store.consents.for_subscriber(sub.id)
    assert consent.name == clean
    [msg] = web.emails()
    assert msg["To"].addresses[0].display_name == clean
    assert "Bcc" not in msg or msg["Bcc"] is None
    link = confirm_link(web)
    shown = web.client.get(link)
    web.client.post(link, data={"csrf_token": csrf_of(shown.text)})
    assert web.store.subscribers.get(sub.id).name == clean


def test_atom_feed_is_well_formed_for_a_stored_subject_with_esc_and_nul(web: Web) -> None:
    # PostgreSQL refuses NUL in text outright; SQLite stores it, so it is tried there
    nul = "\x00" if web.store.engine.dialect.name == "sqlite" else ""
    edition = web.store.editions.create("members", "2026-W48", [], NOW)
    web.store.editions.save_variant(
        edition.id,
        RenderedVariant(
            locale="bg",
            subject=f"Бюлетин \x1b[2J{nul}\x0bвреме\x1b]8;;https://evil.example.com/\x1b\\ \ufffe",
            preheader=f"кратко\x07\x1f{nul}\x9c",
            from_name="Клъстер",
            html="<p>x</p>",
            text="x",
            item_count=1,
        ),
    )
    web.store.editions.set_status(edition.id, EditionStatus.FINISHED, NOW)
    feed = web.client.get("/archive/segments/members/bg/feed.atom")
    assert feed.status_code == 200
    root = etree.fromstring(feed.content)  # raises on a document that is not well-formed
    [entry] = root.findall(f"{{{ATOM}}}entry")
    assert entry.findtext(f"{{{ATOM}}}title") == "Бюлетин време "
    assert entry.findtext(f"{{{ATOM}}}summary") == "кратко"
