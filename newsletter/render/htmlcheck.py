"""Email-client safety of rendered HTML: what Gmail, Outlook and Apple Mail cannot show.

The renderer runs :func:`problems` on every variant and logs what it finds, so a
customized template that uses, say, ``display:flex`` is reported at preview time rather
than by a reader. The rules are deliberately few and certain:

* no ``<script>``, ``<form>``, ``<iframe>`` (or other embedded/active content);
* every ``<img>`` has ``alt``, and ``width`` and ``height`` in pixels;
* every link and image URL is absolute (``http(s)://`` or ``mailto:``);
* inline ``style`` attributes avoid properties that Outlook's Word engine or Gmail drop
  (:data:`DENIED_PROPERTIES`, :data:`DENIED_DISPLAY`) and images in CSS (meaning that
  disappears when images are blocked);
* no ``@import`` or ``@font-face``: text must never wait for an external font.

Rules inside ``<style>`` blocks (media queries, dark mode) are progressive enhancement
and not restricted beyond the last point.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import lxml.etree
import lxml.html

#: properties dropped by Outlook (Word engine) or Gmail, whose loss breaks a layout
DENIED_PROPERTIES: frozenset[str] = frozenset(
    {
        "position",
        "float",
        "flex",
        "gap",
        "transform",
        "transition",
        "animation",
        "filter",
        "clip-path",
        "object-fit",
        "background-image",
        "behavior",
        "content",
    }
)
#: property prefixes denied as a family (flex-direction, grid-template-columns, ...)
DENIED_PREFIXES: tuple[str, ...] = ("flex-", "grid", "animation-", "transition-")
#: ``display`` values Outlook and Gmail do not lay out
DENIED_DISPLAY: frozenset[str] = frozenset({"flex", "inline-flex", "grid", "inline-grid"})
#: CSS functions that Gmail strips or that load something (images, expressions)
DENIED_FUNCTIONS: tuple[str, ...] = ("var(", "url(", "expression(", "env(")
#: elements that no mail client runs or that leak the reader's actions
DENIED_ELEMENTS: tuple[str, ...] = (
    "script",
    "form",
    "iframe",
    "frame",
    "object",
    "embed",
    "input",
    "button",
    "select",
    "textarea",
    "video",
    "audio",
    "base",
)
_ABSOLUTE = ("https://", "http://", "mailto:")
_AT_RULES = re.compile(r"@(import|font-face)\b", re.IGNORECASE)


def style_problems(style: str) -> list[str]:
    """The denied declarations in one ``style`` attribute value."""
    out = []
    for declaration in style.split(";"):
        prop, sep, value = declaration.partition(":")
        if not sep:
            continue
        prop = prop.strip().lower()
        value = value.strip().lower().replace(" !important", "").replace("!important", "")
        if prop in DENIED_PROPERTIES or prop.startswith(DENIED_PREFIXES):
            out.append(f"{prop}: {value}")
        elif prop == "display" and value in DENIED_DISPLAY:
            out.append(f"display: {value}")
        elif any(fn in value for fn in DENIED_FUNCTIONS):
            out.append(f"{prop}: {value}")
    return out


def _describe(el: lxml.html.HtmlElement) -> str:
    label = el.get("class") or el.get("src") or el.get("href") or ""
    line = el.sourceline
    return f"<{el.tag}{' ' + label if label else ''}>" + (f" (line {line})" if line else "")


def problems(html: str, allowed_urls: Iterable[str] = ()) -> list[str]:
    """Everything in ``html`` that some major mail client cannot show as intended.

    ``allowed_urls`` are values accepted in ``href``/``src`` besides absolute URLs (the
    per-recipient placeholders of a not yet personalized variant).
    """
    allowed = set(allowed_urls)
    doc = lxml.html.document_fromstring(html)
    out: list[str] = []
    for tag in DENIED_ELEMENTS:
        for el in doc.iter(tag):
            out.append(f"{_describe(el)}: <{tag}> is not allowed in email")
    for img in doc.iter("img"):
        if img.get("alt") is None:
            out.append(f"{_describe(img)}: no alt text")
        for attr in ("width", "height"):
            if not (img.get(attr) or "").isdigit():
                out.append(f"{_describe(img)}: no {attr} in pixels")
    for el in doc.iter(lxml.etree.Element):
        for attr in ("href", "src"):
            url = el.get(attr)
            if url is not None and url not in allowed and not url.startswith(_ABSOLUTE):
                out.append(f"{_describe(el)}: {attr} {url!r} is not an absolute URL")
        if el.get("background") is not None:
            out.append(f"{_describe(el)}: background images carry no meaning in email")
        style = el.get("style")
        if style:
            for bad in style_problems(style):
                out.append(f"{_describe(el)}: style '{bad}' is not supported by every client")
    for style_el in doc.iter("style"):
        for match in _AT_RULES.finditer(style_el.text or ""):
            out.append(f"<style>: @{match.group(1)} (external fonts or CSS) is not allowed")
    for link in doc.iter("link"):
        out.append(f"{_describe(link)}: external stylesheets are stripped by mail clients")
    return out
