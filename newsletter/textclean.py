"""Control characters and terminal escape sequences out of untrusted text.

Feeds, pages and sign-up forms can send ``ESC[2J`` (clear the screen), OSC 8 hyperlinks,
NUL bytes and C1 controls. Stored, they reach an operator's terminal and make XML
documents ill-formed. :func:`clean_text` and :func:`clean_multiline` remove them where
text comes in; :func:`visible` and :func:`xml_text` make text printable or XML-legal on
the way out, for data that was stored before it was cleaned.
"""

from __future__ import annotations

import dataclasses
import re

from newsletter.models import NewSubscriber

# CSI (ESC [ or the 8-bit 0x9b): parameters, intermediates, one final byte
_CSI = r"(?:\x1b\[|\x9b)[0-?]*[ -/]*[@-~]"
# OSC, DCS, SOS, PM, APC (7- or 8-bit introducer) up to BEL or ST; an unterminated one
# swallows the rest, as a terminal would
_STRING = r"(?:\x1b[\]PX^_]|[\x90\x98\x9d\x9e\x9f])[^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
# every other escape: ESC, intermediates, one final byte (e.g. ESC c resets a terminal)
_OTHER = r"\x1b[ -/]*[0-~]"
_ESCAPES = re.compile(f"{_CSI}|{_STRING}|{_OTHER}")
#: C0 controls except tab and newline, DEL, C1 controls
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_ANY_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# bidirectional overrides and isolates reorder what a terminal shows ("Trojan Source"):
# a one-line field (a title, a name) never needs them, and they are shown inert on output
_BIDI = re.compile("[\u202a-\u202e\u2066-\u2069]")
# every character that starts an escape or is removed: a text without one needs no cleaning
_SPECIAL = re.compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# what XML 1.0 forbids outright (controls are gone already): surrogates, U+FFFE, U+FFFF
_NOT_XML = re.compile("[\ud800-\udfff\ufffe\uffff]")


def strip_escapes(text: str) -> str:
    """``text`` without terminal escape sequences (their parameters go with them)."""
    return _ESCAPES.sub("", text)


def clean_text(value: str | None) -> str:
    """A one-line field (a name, a title, a tag): escapes and controls removed.

    Line breaks and tabs become single spaces and the ends are trimmed, so the value
    prints on one line and fits a mail header.
    """
    if not value:
        return ""
    if _SPECIAL.search(value) is None:  # the usual case: nothing to remove
        return " ".join(value.split())
    text = _BIDI.sub("", _CONTROLS.sub("", strip_escapes(value).replace("\r", " ")))
    return " ".join(text.split())


def clean_multiline(value: str | None) -> str:
    """A body: escapes and controls removed; tabs and line breaks (as ``\\n``) are kept."""
    if not value:
        return ""
    text = strip_escapes(value).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def has_controls(value: str) -> bool:
    """True when ``value`` holds any C0 or C1 control character (tab and newline too)."""
    return _ANY_CONTROL.search(value) is not None


def visible(value: str) -> str:
    """``value`` safe to print: every control character shown as ``\\xNN``, nothing raw.

    Line breaks and tabs are shown too; a caller that wants them splits first.
    Bidirectional overrides and isolates are shown as ``\\u202e`` and the like.
    """
    shown = _ANY_CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", value)
    return _BIDI.sub(lambda m: f"\\u{ord(m.group()):04x}", shown)


def xml_text(value: str) -> str:
    """``value`` with everything XML 1.0 does not allow removed (controls, escapes, ...)."""
    return _NOT_XML.sub("", clean_multiline(value))


def clean_subscriber(new: NewSubscriber) -> NewSubscriber:
    """``new`` with its free-text fields cleaned (name, organisation, lists, tags, source).

    The address is left alone: it is validated, and a control character makes it invalid
    rather than silently becoming another address.
    """
    return dataclasses.replace(
        new,
        name=clean_text(new.name),
        organisation=clean_text(new.organisation),
        consent_source=clean_text(new.consent_source),
        lists=tuple(dict.fromkeys(x for x in map(clean_text, new.lists) if x)),
        tags=tuple(dict.fromkeys(x for x in map(clean_text, new.tags) if x)),
    )
