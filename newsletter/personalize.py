"""Per-recipient values in a rendered variant: marker strings, swapped in by string work.

A variant is rendered and CSS-inlined once; the values that differ per recipient (name,
unsubscribe URL, ...) are marker strings (:data:`PLACEHOLDERS`) that survive Jinja,
premailer and URL attributes. :func:`personalize` splits a variant at its markers once
(cached) and joins the parts with each recipient's values: microseconds per message.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Mapping

from newsletter.errors import RenderError
from newsletter.models import RenderedVariant

#: per-recipient values -> marker strings that survive Jinja, premailer and URL attributes
PLACEHOLDERS: dict[str, str] = {
    "name": "@@nl:name@@",
    "email": "@@nl:email@@",
    "unsubscribe_url": "@@nl:unsubscribe_url@@",
    "preferences_url": "@@nl:preferences_url@@",
}

# ``if_KEY ... else ... end`` keeps the first part when KEY has a non-empty value, else the
# second: the greeting without a name, the archive copy without "sent to ...". No nesting.
CONDITIONALS: dict[str, str] = {
    **{f"if_{key}": f"@@nl:if:{key}@@" for key in PLACEHOLDERS},
    "else": "@@nl:else@@",
    "end": "@@nl:end@@",
}

_TOKEN_RE = re.compile(
    r"@@nl:if:(?P<cond>\w+)@@(?P<yes>.*?)@@nl:else@@(?P<no>.*?)@@nl:end@@"
    r"|@@nl:(?P<key>" + "|".join(map(re.escape, PLACEHOLDERS)) + r")@@",
    re.DOTALL,
)


def is_placeholder(value: str) -> bool:
    """True for a per-recipient marker such as ``@@nl:unsubscribe_url@@``."""
    return value in PLACEHOLDERS.values()


def personalize(variant: RenderedVariant, values: Mapping[str, str]) -> tuple[str, str]:
    """Substitute per-recipient ``values`` into a variant: (html, text).

    Values are HTML-escaped in the HTML part and inserted raw in the text part. Every
    placeholder the variant contains must have a value; ``name`` may be empty (the
    greeting then has no name). The variant is split at its placeholders once (cached),
    so each call is a join of a few dozen strings.
    """
    escaped = {key: html_lib.escape(value, quote=True) for key, value in values.items()}
    return _join(_split(variant.html), escaped), _join(_split(variant.text), values)


#: a split template: literal text, a placeholder key, or (key, parts if set, parts if not)
_Part = str | tuple[str] | tuple[str, "_Parts", "_Parts"]
_Parts = tuple[_Part, ...]


@functools.lru_cache(maxsize=256)
def _split(template: str) -> _Parts:
    parts: list[_Part] = []
    pos = 0
    for match in _TOKEN_RE.finditer(template):
        if match.start() > pos:
            parts.append(template[pos : match.start()])
        key = match.group("key")
        if key is None:
            yes, no = _split(match.group("yes")), _split(match.group("no"))
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


#: placeholders of the text part of a shared body (see :func:`shared_body`)
TEXT_PLACEHOLDERS: dict[str, str] = {key: f"@@nl:text:{key}@@" for key in PLACEHOLDERS}


def shared_body(variant: RenderedVariant, present: frozenset[str]) -> tuple[str, str]:
    """The variant with its conditionals decided but its placeholders kept: (html, text).

    For providers that send one body per request with per-recipient substitutions.
    ``present`` names the keys whose values are non-empty for the recipients this body
    serves (conditionals depend on nothing else). The HTML part keeps
    :data:`PLACEHOLDERS`, the text part gets :data:`TEXT_PLACEHOLDERS`, so one
    substitution table can hold HTML-escaped and raw values side by side.
    """
    return (
        _decide(_split(variant.html), present, PLACEHOLDERS),
        _decide(_split(variant.text), present, TEXT_PLACEHOLDERS),
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
