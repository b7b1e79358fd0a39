"""Provider-neutral message -> MIME bytes exactly as they go on the wire.

Headers are encoded here rather than by :mod:`email`'s folder: on Python 3.11 the
stdlib refolds long non-ASCII headers wrongly (it repeats or drops words of a long
Cyrillic subject, and splits display names into encoded-words that its own parser then
reads back with extra spaces). Every header is therefore written pre-encoded and pre-folded
(RFC 2047 base64 encoded-words, never glued together) and stored in the
:class:`~email.message.EmailMessage` as raw text that the policy emits verbatim.

Bodies are UTF-8 with base64 transfer encoding (the stdlib would pick quoted-printable for
Cyrillic HTML, which some gateways mangle) and CRLF line breaks, the canonical form of
``text/*`` (RFC 2046): decoding a part and turning CRLF back into LF gives the input.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from datetime import UTC, datetime
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from typing import Any, Final

from newsletter.models import OutgoingMessage

__all__ = ["build_mime", "clean_name", "clean_text", "make_message_id", "to_bytes"]

#: RFC 5322 hard limit for a line, without its CRLF
MAX_LINE: Final = 998
#: RFC 5322 recommended line length; plain ASCII headers are folded to it
SOFT_LINE: Final = 78
#: RFC 2047: an encoded-word in an unstructured header is at most 75 characters; with
#: "=?utf-8?b?" and "?=" around it that leaves 63 base64 characters, i.e. 45 bytes
_EW_BYTES: Final = 45
#: longest display name encoded as one word; Python's parser (and many clients) would
#: insert a space between two adjacent encoded-words inside an address phrase
_PHRASE_EW_BYTES: Final = 700

#: headers this module writes itself; ``OutgoingMessage.headers`` may not override them
RESERVED_HEADERS: Final = frozenset(
    {
        "from",
        "to",
        "cc",
        "bcc",
        "subject",
        "date",
        "message-id",
        "reply-to",
        "mime-version",
        "content-type",
        "content-transfer-encoding",
        "content-language",
    }
)

_HEADER_NAME = re.compile(r"^[!-9;-~]+$")
_LANG_TAG = re.compile(r"^[A-Za-z]{1,8}(-[A-Za-z0-9]{1,8})*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SPACES = re.compile(r" \s+")
_DOMAIN = re.compile(r"^[A-Za-z0-9.-]+$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_ANGLE_TAIL = re.compile(r"^(?P<phrase>.*?)\s*(?P<angle><[!-~]+>)$")


class _RawHeader(str):
    """Header text already encoded and folded; stored and emitted verbatim."""

    __slots__ = ()


class _WirePolicy(EmailPolicy):
    """SMTP policy that keeps pre-encoded headers exactly as built."""

    def header_store_parse(self, name: str, value: Any) -> tuple[str, Any]:
        """Store :class:`_RawHeader` values untouched (as if parsed from a file)."""
        if isinstance(value, _RawHeader):
            # a plain str here is what the parser stores for source headers; the policy
            # emits such values as they are when refold_source is "none"
            return (name, str(value))
        return super().header_store_parse(name, value)


#: the one policy used to build and serialize messages
POLICY: Final = _WirePolicy(linesep="\r\n", refold_source="none", max_line_length=SOFT_LINE)


def clean_text(value: str) -> str:
    """A header text safe to encode: control characters become spaces, ends trimmed.

    Line breaks in a subject or name would otherwise inject headers; tabs are read back
    as spaces by parsers anyway.
    """
    return _CONTROL.sub(" ", value).strip()


def clean_name(value: str) -> str:
    """A display name as it will read back: :func:`clean_text`, whitespace after a space
    dropped.

    Python's parser (and some clients) collapse a run of whitespace that starts with a
    space inside an address phrase, so collapsing here keeps what is sent equal to what
    is read.
    """
    return _SPACES.sub(" ", clean_text(value))


def _chunks(text: str, limit: int) -> list[str]:
    """Split ``text`` at code point boundaries into pieces of at most ``limit`` UTF-8 bytes."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for char in text:
        width = len(char.encode("utf-8"))
        if current and size + width > limit:
            out.append("".join(current))
            current, size = [], 0
        current.append(char)
        size += width
    if current:
        out.append("".join(current))
    return out


def _ew(text: str) -> str:
    return "=?utf-8?b?" + base64.b64encode(text.encode("utf-8")).decode("ascii") + "?="


def _is_plain_ascii(text: str) -> bool:
    """True when ``text`` can be written literally and parses back unchanged."""
    return (
        text.isascii()
        and text.isprintable()
        and "=?" not in text
        and "  " not in text
        and text == text.strip()
    )


def _fold(name: str, tokens: list[str]) -> str:
    """``name: `` and the space-joined ``tokens``, folded between tokens near 78 columns.

    A line break goes only before a separating space, so unfolding (removing CRLF) gives
    back exactly ``" ".join(tokens)``.
    """
    lines: list[str] = []
    line = f"{name}:"
    for index, token in enumerate(tokens):
        if index and len(line) + 1 + len(token) > SOFT_LINE:
            lines.append(line)
            line = " " + token
        else:
            line += " " + token
    lines.append(line)
    if any(len(x) > MAX_LINE for x in lines):
        raise ValueError(f"header {name} has a part longer than {MAX_LINE} characters")
    return "\r\n".join(lines)


def encode_unstructured(name: str, value: str) -> str:
    """``name: value`` folded, with RFC 2047 encoded-words when the value needs them."""
    value = clean_text(value)
    if not value:
        return f"{name}:"
    if _is_plain_ascii(value) and all(len(w) < MAX_LINE - len(name) - 3 for w in value.split()):
        return _fold(name, value.split(" "))
    # adjacent encoded-words are joined with no space by every decoder (RFC 2047 6.2)
    return _fold(name, [_ew(part) for part in _chunks(value, _EW_BYTES)])


def _phrase(display_name: str) -> str:
    """A display name as an RFC 5322 phrase: a quoted-string or encoded-word(s)."""
    if _is_plain_ascii(display_name):
        escaped = display_name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{escaped}"'
    # one encoded-word keeps the name intact through parsers that put a space between
    # adjacent words of a phrase; only an absurdly long name is split
    return " ".join(_ew(part) for part in _chunks(display_name, _PHRASE_EW_BYTES))


def _addr_spec(addr: str) -> str:
    """The address with an IDNA domain; refuses what cannot be a single mailbox."""
    addr = addr.strip()
    local, at, domain = addr.rpartition("@")
    if not at or not local or not domain:
        raise ValueError(f"not an email address: {addr!r}")
    if _CONTROL.search(addr) or (any(c in addr for c in "<>, ") and not local.startswith('"')):
        raise ValueError(f"not a single email address: {addr!r}")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as exc:
            raise ValueError(f"invalid domain in email address: {addr!r}") from exc
    return f"{local}@{domain}"


def encode_address(name: str, display_name: str, addr: str) -> str:
    """``name: "Display" <addr>``, the display name encoded as needed."""
    spec = _addr_spec(addr)
    display_name = clean_name(display_name)
    if not display_name:
        return _fold(name, [f"<{spec}>"])
    return _fold(name, [*_phrase(display_name).split(" "), f"<{spec}>"])


def encode_header(name: str, value: str) -> str:
    """An extra header (List-Unsubscribe, List-Id, ...) folded; non-ASCII text encoded.

    ASCII values are folded only after commas, so URLs in List-Unsubscribe stay whole.
    A non-ASCII value ending in ``<...>`` (List-Id) keeps the angle part literal.
    """
    if not _HEADER_NAME.match(name):
        raise ValueError(f"invalid header name: {name!r}")
    if "\r" in value or "\n" in value:
        raise ValueError(f"header {name} contains a line break")
    if value.isascii():
        parts = [p.strip() for p in value.split(",")]
        if len(parts) > 1 and all(parts):
            return _fold(name, [p + "," for p in parts[:-1]] + [parts[-1]])
        return _fold(name, [value.strip()])
    match = _ANGLE_TAIL.match(value.strip())
    if match and match["phrase"]:
        return _fold(name, [*_phrase(clean_name(match["phrase"])).split(" "), match["angle"]])
    return encode_unstructured(name, value)


def _language_tag(locale: str) -> str:
    tag = locale.replace("_", "-")
    if not _LANG_TAG.match(tag):
        raise ValueError(f"invalid locale for Content-Language: {locale!r}")
    return tag


def _set_raw(mime: EmailMessage, folded: str) -> None:
    name, _, value = folded.partition(":")
    mime[name] = _RawHeader(value.removeprefix(" "))


def _crlf(text: str) -> bytes:
    # only CR and LF are line breaks in MIME; str.splitlines would also split at U+2028
    return _LINE_BREAK.sub("\r\n", text).encode("utf-8")


def _headers(msg: OutgoingMessage, date: datetime | None) -> list[str]:
    """The folded top-level headers (without the MIME structure ones), in order."""
    for key in msg.headers:
        if key.lower() in RESERVED_HEADERS:
            raise ValueError(f"header {key} is set from the message fields, not from headers")
    if not msg.message_id.startswith("<") or not msg.message_id.endswith(">"):
        raise ValueError(f"Message-ID must look like <id@domain>: {msg.message_id!r}")
    out = [
        encode_address("From", msg.from_name, msg.from_email),
        encode_address("To", msg.to_name, msg.to_email),
        encode_unstructured("Subject", msg.subject),
        f"Date: {format_datetime(date or datetime.now(UTC))}",
        encode_header("Message-ID", msg.message_id),
    ]
    if msg.reply_to:
        out.append(encode_address("Reply-To", "", msg.reply_to))
    out.extend(encode_header(key, value) for key, value in msg.headers.items())
    return out


def build_mime(msg: OutgoingMessage, *, date: datetime | None = None) -> EmailMessage:
    """The complete MIME message for ``msg``: multipart/alternative, text then HTML.

    ``date`` defaults to now (UTC). Raises :class:`ValueError` for a message that cannot
    be encoded (an address that is not one mailbox, a header that would inject another,
    an extra header overriding one this function writes); a sender treats that as a
    permanent failure of this one message.
    """
    mime = EmailMessage(policy=POLICY)
    for folded in _headers(msg, date):
        _set_raw(mime, folded)
    params = {"charset": "utf-8"}
    mime.set_content(_crlf(msg.text), maintype="text", subtype="plain", cte="base64", params=params)
    mime.add_alternative(
        _crlf(msg.html), maintype="text", subtype="html", cte="base64", params=params
    )
    for part in mime.iter_parts():
        # parts made by add_alternative get their own MIME-Version; only the root needs it
        del part["MIME-Version"]
    # after add_alternative: it moves Content-* headers of the root into the first part
    mime["Content-Language"] = _RawHeader(_language_tag(msg.locale))
    return mime


def _b64_part(subtype: str, text: str) -> bytes:
    head = f'Content-Type: text/{subtype}; charset="utf-8"\r\nContent-Transfer-Encoding: base64'
    # encodebytes wraps at 76 characters, well under the 998-byte line limit
    body = base64.encodebytes(_crlf(text)).replace(b"\n", b"\r\n")
    return head.encode("ascii") + b"\r\n\r\n" + body


def to_bytes(msg: OutgoingMessage, *, date: datetime | None = None) -> bytes:
    """The message as it goes on the wire (CRLF line ends, 7-bit clean).

    The same message as :func:`build_mime`, written directly: the stdlib generator costs
    milliseconds per message, which adds up to minutes for a large list.
    """
    # "_" is not in the base64 alphabet, so the boundary can never occur in a part
    boundary = f"=_nl_{secrets.token_hex(16)}"
    head = [
        *_headers(msg, date),
        "MIME-Version: 1.0",
        f'Content-Type: multipart/alternative; boundary="{boundary}"',
        f"Content-Language: {_language_tag(msg.locale)}",
    ]
    sep = f"--{boundary}\r\n".encode("ascii")
    return b"".join(
        [
            "\r\n".join(head).encode("ascii"),
            b"\r\n\r\n",
            sep,
            _b64_part("plain", msg.text),
            sep,
            _b64_part("html", msg.html),
            f"--{boundary}--\r\n".encode("ascii"),
        ]
    )


def make_message_id(domain: str, edition_id: int, subscriber_id: int) -> str:
    """A stable Message-ID for one (edition, subscriber): ``<nl.E.S.hash@domain>``.

    Stable so that a resend after a crash carries the same id (receivers then see one
    message); the short hash keeps ids of different domains from looking alike.
    """
    domain = domain.strip().lower()
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    if not domain or not _DOMAIN.match(domain):
        raise ValueError(f"invalid Message-ID domain: {domain!r}")
    digest = hashlib.sha256(f"{domain}/{edition_id}/{subscriber_id}".encode()).hexdigest()
    return f"<nl.{edition_id}.{subscriber_id}.{digest[:12]}@{domain}>"
