"""MIME building: header encoding survives a real parser, bodies are base64 UTF-8."""

from __future__ import annotations

import email
import email.policy
import re
from dataclasses import replace
from datetime import UTC, datetime
from email.header import decode_header, make_header
from email.message import EmailMessage

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.models import OutgoingMessage
from newsletter.send.mime import build_mime, clean_name, make_message_id, to_bytes

UNSUBSCRIBE = (
    "<https://news.example.org/unsubscribe/"
    "eyJzIjo0MiwiZSI6M30.Z2VuZXJhdGVkLXRva2VuLWZvci10ZXN0cw.c2lnbmF0dXJlLXBhcnQ>"
)


def _message(**changes: object) -> OutgoingMessage:
    base = OutgoingMessage(
        delivery_id=17,
        to_email="mira.dimitrova@example.org",
        to_name="Мира Димитрова",
        from_email="news@cluster.example.org",
        from_name="Североизточен енергиен клъстер",
        subject="Бюлетин на клъстера: 5 нови новини",
        html="<html><body><p>Нова слънчева централа край Добрич.</p></body></html>\n",
        text="Нова слънчева централа край Добрич.\n",
        locale="bg",
        message_id="<nl.3.42.abc@cluster.example.org>",
        headers={
            "List-Unsubscribe": f"{UNSUBSCRIBE}, <mailto:leave@cluster.example.org>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
            "List-Id": "Членове <members.news.cluster.example.org>",
        },
        reply_to="office@cluster.example.org",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def _parse(raw: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def _canonical(text: str) -> str:
    return re.sub(r"\r\n|\r|\n", "\r\n", text)


def _assert_wire_clean(raw: bytes) -> None:
    assert raw.isascii()
    assert b"?==?" not in raw
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    # every line ends in CRLF: no bare LF or CR anywhere
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")


# --- property: any subject and display name survives encode -> parse ---------------

_SCRIPTS = st.sampled_from(
    [
        "абвгдежзийклмнопрстуфхцчшщъьюяАБВГДЕЖЗИЙКЛМНОПРСТУФХЦЧШЩЪЬЮЯ",  # Bulgarian
        "ёыэЁЫЭїієґЇІЄҐђћџЂЋЏ",  # other Cyrillic
        "αβγδεζηθικλμνξοπρστυφχψωάέήίόύώΑΒΓΔΩΣ",  # Greek
        "abcdefghijklmnopqrstuvwxyzABCXYZ0123456789",
        " \"<>@,;:\\()[].=?_-'",  # specials that need quoting or encoding
        "🎉🌞⚡🔋🇧🇬👩‍🔬",  # emoji, flags, a ZWJ sequence
        "\u00a0\u200b\u0301\u2028–—„“«»№€",  # nbsp, zero-width, combining, separators
    ]
).flatmap(lambda chars: st.sampled_from(chars))
_ANY = st.characters(blacklist_categories=("Cc", "Cs"))
_CHAR = st.one_of(_SCRIPTS, _SCRIPTS, _SCRIPTS, _ANY)


def _header_text(max_size: int) -> st.SearchStrategy[str]:
    # leading/trailing whitespace is trimmed on purpose (see clean_text); control
    # characters are replaced, tested separately below
    return st.text(_CHAR, min_size=1, max_size=max_size).map(str.strip).filter(bool)


def _display_name(max_size: int) -> st.SearchStrategy[str]:
    # a phrase reads back with whitespace after a space collapsed (see clean_name)
    return _header_text(max_size).map(lambda s: re.sub(r" \s+", " ", s))


@settings(max_examples=300, deadline=None)
@given(
    subject=_header_text(300),
    to_name=_display_name(120),
    from_name=_display_name(120),
    html=st.text(st.one_of(_CHAR, st.sampled_from("\n\r<>&")), max_size=3000),
)
def test_headers_and_body_survive_encode_parse(
    subject: str, to_name: str, from_name: str, html: str
) -> None:
    msg = _message(subject=subject, to_name=to_name, from_name=from_name, html=html)
    raw = to_bytes(msg)
    _assert_wire_clean(raw)
    parsed = _parse(raw)
    assert str(parsed["Subject"]) == subject
    assert parsed["To"].addresses[0].display_name == to_name
    assert parsed["To"].addresses[0].addr_spec == msg.to_email
    assert parsed["From"].addresses[0].display_name == from_name
    assert parsed["From"].addresses[0].addr_spec == msg.from_email
    html_part = parsed.get_body(preferencelist=("html",))
    assert html_part is not None
    assert html_part.get_content() == _canonical(html)


def test_display_name_too_long_for_one_word_is_split_but_decodes() -> None:
    name = "Енергиен клъстер „Север“ " * 40  # ~2 KB of UTF-8
    raw = to_bytes(_message(to_name=name.strip()))
    _assert_wire_clean(raw)
    header = _parse(raw)["To"]
    # RFC 2047 decoders (here the legacy one) join adjacent encoded-words without space
    encoded = raw.split(b"\r\nTo: ", 1)[1].split(b" <mira")[0].decode().replace("\r\n", "")
    assert str(make_header(decode_header(encoded))) == name.strip()
    assert header.addresses[0].addr_spec == "mira.dimitrova@example.org"


def test_line_breaks_in_subject_and_name_cannot_inject_headers() -> None:
    msg = _message(
        subject="Бюлетин\r\nBcc: victim@example.com",
        to_name="Мира\nBcc: other@example.com",
    )
    parsed = _parse(to_bytes(msg))
    assert parsed["Bcc"] is None
    assert str(parsed["Subject"]) == "Бюлетин  Bcc: victim@example.com"
    assert parsed["To"].addresses[0].display_name == "Мира Bcc: other@example.com"


def test_display_name_whitespace_is_normalized_as_it_reads_back() -> None:
    assert clean_name("  Мира \t \u00a0 Димитрова\n") == "Мира Димитрова"
    assert clean_name("ООД\u00a0Енерджи") == "ООД\u00a0Енерджи"
    parsed = _parse(to_bytes(_message(to_name="Мира    Димитрова")))
    assert parsed["To"].addresses[0].display_name == "Мира Димитрова"


# --- header set, parts, encodings ---------------------------------------------------


def test_header_set() -> None:
    msg = _message()
    when = datetime(2026, 11, 23, 8, 30, tzinfo=UTC)
    parsed = _parse(to_bytes(msg, date=when))
    assert parsed["Message-ID"] == "<nl.3.42.abc@cluster.example.org>"
    assert parsed["Date"].datetime == when
    assert parsed["MIME-Version"] == "1.0"
    assert parsed["Content-Language"] == "bg"
    assert str(parsed["Subject"]) == "Бюлетин на клъстера: 5 нови новини"
    assert str(parsed["From"]) == "Североизточен енергиен клъстер <news@cluster.example.org>"
    assert str(parsed["To"]) == "Мира Димитрова <mira.dimitrova@example.org>"
    assert str(parsed["Reply-To"]) == "office@cluster.example.org"
    # the long unsubscribe URL is never broken, only folded after the comma
    assert str(parsed["List-Unsubscribe"]) == msg.headers["List-Unsubscribe"]
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert str(parsed["List-Id"]) == "Членове <members.news.cluster.example.org>"
    for name in ("From", "To", "Subject", "Date", "Message-ID", "List-Unsubscribe"):
        assert len(parsed.get_all(name) or []) == 1, name


def test_reply_to_only_when_set_and_locale_tag() -> None:
    parsed = _parse(to_bytes(_message(reply_to=None, locale="pt_BR")))
    assert parsed["Reply-To"] is None
    assert parsed["Content-Language"] == "pt-BR"


def test_multipart_alternative_text_first_base64_utf8() -> None:
    html = "<p>" + "Възобновяема енергия за общините в региона. " * 3000 + "</p>"
    raw = to_bytes(_message(html=html))
    _assert_wire_clean(raw)
    assert b"quoted-printable" not in raw.lower()
    parsed = _parse(raw)
    assert parsed.get_content_type() == "multipart/alternative"
    parts = list(parsed.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    for part in parts:
        assert part["Content-Transfer-Encoding"] == "base64"
        assert part.get_content_charset() == "utf-8"
        assert part["MIME-Version"] is None
    assert parts[0].get_content() == "Нова слънчева централа край Добрич.\r\n"
    assert parts[1].get_content() == html
    # the base64 body is wrapped well inside the limit, even for a one-line 250 KB body
    body = raw.split(b"Content-Type: text/html", 1)[1]
    assert max(len(line) for line in body.split(b"\r\n")) <= 76


def test_build_mime_returns_readable_message() -> None:
    mime = build_mime(_message())
    assert str(mime["Subject"]) == "Бюлетин на клъстера: 5 нови новини"
    assert mime.get_content_type() == "multipart/alternative"


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"to_email": "no-at-sign.example.org"}, "not an email address"),
        ({"to_email": "a@example.org, b@example.org"}, "not a single email address"),
        ({"headers": {"Subject": "override"}}, "header Subject"),
        ({"headers": {"X-Bad": "a\r\nBcc: x@example.com"}}, "line break"),
        ({"headers": {"Bad Name": "x"}}, "invalid header name"),
        ({"message_id": "no-brackets@example.org"}, "Message-ID"),
        ({"locale": "bg; evil"}, "Content-Language"),
    ],
)
def test_unencodable_messages_raise_value_error(changes: dict[str, object], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        to_bytes(_message(**changes))


def test_idn_recipient_domain_is_punycoded() -> None:
    parsed = _parse(to_bytes(_message(to_email="office@клъстер.example")))
    assert parsed["To"].addresses[0].domain == "xn--e1ajdvdg8c.example"


def test_make_message_id_is_stable_and_unique() -> None:
    first = make_message_id("Cluster.Example.org", 3, 42)
    assert first == make_message_id("cluster.example.org", 3, 42)
    assert re.fullmatch(r"<nl\.3\.42\.[0-9a-f]{12}@cluster\.example\.org>", first)
    ids = {make_message_id("cluster.example.org", e, s) for e in range(1, 30) for s in range(30)}
    assert len(ids) == 29 * 30
    # 3/42 and 34/2 must not collide through the separator
    assert make_message_id("cluster.example.org", 34, 2) != first
    with pytest.raises(ValueError, match="domain"):
        make_message_id("bad domain>", 1, 1)


def test_direct_writer_matches_the_stdlib_generator() -> None:
    """to_bytes writes by hand what build_mime + the stdlib generator would write."""
    msg = _message()
    when = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
    fast = email.message_from_bytes(to_bytes(msg, date=when), policy=email.policy.default)
    slow = email.message_from_bytes(
        build_mime(msg, date=when).as_bytes(), policy=email.policy.default
    )
    assert isinstance(fast, EmailMessage) and isinstance(slow, EmailMessage)
    assert fast.items() == [
        (k, v) if k != "Content-Type" else (k, fast["Content-Type"]) for k, v in slow.items()
    ]
    for kind in ("plain", "html"):
        a, b = fast.get_body((kind,)), slow.get_body((kind,))
        assert a is not None and b is not None
        assert a.get_content() == b.get_content()  # type: ignore[attr-defined]
        assert a["Content-Transfer-Encoding"] == b["Content-Transfer-Encoding"] == "base64"
