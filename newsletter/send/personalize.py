"""Per-recipient values in a rendered variant: marker strings, swapped in by string work.

A variant is rendered and CSS-inlined once; the values that differ per recipient (name,
unsubscribe URL, ...) are marker strings that survive Jinja, premailer and URL attributes.
:func:`personalize` splits a variant at its markers once (cached) and joins the parts with
each recipient's values: microseconds per message.

**Markers are unforgeable.** Every render draws a random nonce (:func:`new_nonce`, kept in
:attr:`RenderedVariant.nonce`) and its markers carry it: ``@@nl<nonce>:email@@``. Only the
renderer hands marker strings to the templates; gathered content (a title, a link, an
image URL, a translation) is fetched before the nonce exists, so whatever it contains is
text. A story cannot make a message carry the reader's address to another host, and a
conditional in a title cannot pair with the footer's and cut the message.

Variants stored before nonces existed (``nonce == ""``) used the fixed form ``@@nl:email@@``,
which content could forge: in them nothing is substituted (every marker is plain text),
and :func:`require_markers` refuses to send them.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass

from newsletter.errors import RenderError
from newsletter.models import RenderedVariant

#: the per-recipient values a variant can hold
KEYS: tuple[str, ...] = ("name", "email", "unsubscribe_url", "preferences_url")
#: random bytes per render (hex-encoded: twice as many characters)
NONCE_BYTES = 12
_NONCE = re.compile(r"[0-9a-f]{16,64}")
# the shape of a value marker of any nonce: only used for layout (wrapping the text part)
_VALUE_SHAPE = re.compile(r"@@nl[0-9a-f]{16,64}:(?:" + "|".join(KEYS) + r")@@")


def new_nonce() -> str:
    """A fresh random nonce for one render (96 bits: content cannot guess it)."""
    return secrets.token_hex(NONCE_BYTES)


@dataclass(frozen=True, eq=False)
class Markers:
    """The marker strings of one nonce, and the pattern that finds them."""

    nonce: str
    #: key -> marker of a value (the HTML part, and the text part of a personalized message)
    placeholders: Mapping[str, str]
    #: ``if_<key>``, ``else``, ``end`` -> marker
    conditionals: Mapping[str, str]
    #: key -> marker of a value in the text part of a shared body (see :func:`shared_body`)
    text_placeholders: Mapping[str, str]
    pattern: re.Pattern[str]

    def context(self) -> dict[str, str]:
        """What the templates get as ``placeholders``: values and conditionals by name."""
        return {**self.placeholders, **self.conditionals}


@functools.lru_cache(maxsize=64)
def markers(nonce: str) -> Markers:
    """The markers of ``nonce`` (built and compiled once per nonce, not per recipient)."""
    if not _NONCE.fullmatch(nonce):
        raise RenderError(f"marker nonce {nonce!r} is not 16 to 64 lowercase hex digits")
    tag = f"@@nl{nonce}:"
    values = {key: f"{tag}{key}@@" for key in KEYS}
    conditionals = {f"if_{key}": f"{tag}if:{key}@@" for key in KEYS}
    conditionals |= {"else": f"{tag}else@@", "end": f"{tag}end@@"}
    # ``if ... else ... end`` keeps the first part when the key's value is non-empty, else
    # the second: the greeting without a name, the archive copy without "sent to ...".
    # No nesting: the templates never need it.
    pattern = re.compile(
        re.escape(tag)
        + r"(?:if:(?P<cond>"
        + "|".join(KEYS)
        + r")@@(?P<yes>.*?)"
        + re.escape(conditionals["else"])
        + r"(?P<no>.*?)"
        + re.escape(conditionals["end"])
        + r"|(?P<key>"
        + "|".join(KEYS)
        + r")@@)",
        re.DOTALL,
    )
    text_values = {key: f"{tag}text:{key}@@" for key in KEYS}
    return Markers(nonce, values, conditionals, text_values, pattern)


def is_placeholder(value: str) -> bool:
    """True for a per-recipient value marker such as ``@@nl<nonce>:unsubscribe_url@@``.

    Only the shape is checked (any nonce): used for layout, never to substitute.
    """
    return _VALUE_SHAPE.fullmatch(value) is not None


def placeholder_spans(line: str) -> list[tuple[int, int]]:
    """Where value markers (of any nonce) sit in ``line``: for layout only."""
    return [m.span() for m in _VALUE_SHAPE.finditer(line)]


def require_markers(variant: RenderedVariant, where: str) -> Markers:
    """The variant's markers; a variant stored before nonces existed is refused.

    Such a variant cannot tell the template's markers from ones a story carried, so it
    must not be personalized for a recipient. ``where`` names it in the message.
    """
    if not variant.nonce:
        raise RenderError(
            f"{where}, locale {variant.locale}: rendered by a version whose per-recipient "
            "markers content could forge; it is not sent (cancel it and make a new edition)"
        )
    return markers(variant.nonce)


def personalize(
    variant: RenderedVariant, values: Mapping[str, str], escaped: Mapping[str, str] | None = None
) -> tuple[str, str]:
    """Substitute per-recipient ``values`` into a variant: (html, text).

    Values are HTML-escaped in the HTML part and inserted raw in the text part. Every
    placeholder the variant contains must have a value; ``name`` may be empty (the
    greeting then has no name). The variant is split at its placeholders once (cached),
    so each call is a join of a few dozen strings. A variant without a nonce (stored
    before nonces existed) is returned as it is: its fixed-form markers are plain text.
    ``escaped`` is ``values`` HTML-escaped, when the caller has it already.
    """
    if not variant.nonce:
        return variant.html, variant.text
    if escaped is None:
        escaped = {key: html_lib.escape(value, quote=True) for key, value in values.items()}
    return (
        _join(_split(variant.html, variant.nonce), escaped),
        _join(_split(variant.text, variant.nonce), values),
    )


#: a split template: literal text, a placeholder key, or (key, parts if set, parts if not)
_Part = str | tuple[str] | tuple[str, "_Parts", "_Parts"]
_Parts = tuple[_Part, ...]


@functools.lru_cache(maxsize=256)
def _split(template: str, nonce: str) -> _Parts:
    parts: list[_Part] = []
    pos = 0
    for match in markers(nonce).pattern.finditer(template):
        if match.start() > pos:
            parts.append(template[pos : match.start()])
        key = match.group("key")
        if key is None:
            yes, no = _split(match.group("yes"), nonce), _split(match.group("no"), nonce)
            parts.append((match.group("cond"), yes, no))
        else:
            parts.append((key,))
        pos = match.end()
    parts.append(template[pos:])
    return tuple(parts)


def _join(parts: _Parts, values: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif len(part) == 1:
            try:
                out.append(values[part[0]])
            except KeyError:
                raise RenderError(f"personalize: no value for placeholder {part[0]!r}") from None
        else:
            out.append(_join(part[1] if values.get(part[0]) else part[2], values))
    return "".join(out)


def shared_body(variant: RenderedVariant, present: frozenset[str]) -> tuple[str, str]:
    """The variant with its conditionals decided but its placeholders kept: (html, text).

    For providers that send one body per request with per-recipient substitutions.
    ``present`` names the keys whose values are non-empty for the recipients this body
    serves (conditionals depend on nothing else). The HTML part keeps the variant's
    ``placeholders``, the text part gets its ``text_placeholders``, so one substitution
    table can hold HTML-escaped and raw values side by side. Both carry the variant's
    nonce, so a provider substituting them server-side cannot match anything content
    wrote.
    """
    found = require_markers(variant, "shared body")
    return (
        _decide(_split(variant.html, variant.nonce), present, found.placeholders),
        _decide(_split(variant.text, variant.nonce), present, found.text_placeholders),
    )


def _decide(parts: _Parts, present: frozenset[str], markers: Mapping[str, str]) -> str:
    out: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif len(part) == 1:
            out.append(markers[part[0]])
        else:
            out.append(_decide(part[1] if part[0] in present else part[2], present, markers))
    return "".join(out)
