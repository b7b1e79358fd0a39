"""Make untrusted item HTML safe for an email: nh3 (ammonia) with an email-sized allow-list.

Control characters and terminal escape sequences are removed. Only http, https and
mailto links survive; relative links and image sources are made
absolute against the item's own URL (a relative link cannot work inside an email) or
dropped when there is none. Scripts, styles, iframes, forms, event handlers and ``style``
attributes never pass.
"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin, urlsplit

import lxml.html
import nh3
from lxml import etree

from newsletter.textclean import clean_multiline, has_controls

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "cite", "code", "dd", "del", "div",
        "dl", "dt", "em", "figcaption", "figure", "h2", "h3", "h4", "h5", "h6", "hr", "i",
        "img", "ins", "li", "mark", "ol", "p", "pre", "q", "s", "small", "span", "strong",
        "sub", "sup", "table", "tbody", "td", "tfoot", "th", "thead", "time", "tr", "u", "ul",
    }
)  # fmt: skip

ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "a": {"href", "title", "hreflang"},
    "img": {"src", "alt", "title", "width", "height"},
    "td": {"colspan", "rowspan"},
    "th": {"colspan", "rowspan", "scope"},
    "time": {"datetime"},
    "abbr": {"title"},
    "ol": {"start"},
    "*": {"lang", "dir"},
}

# removed together with everything inside them, not just unwrapped
DROP_WITH_CONTENT = frozenset(
    {
        "script", "style", "iframe", "noscript", "form", "object", "embed", "template",
        "textarea", "select", "button", "svg", "math", "head", "title",
    }
)  # fmt: skip

URL_SCHEMES = frozenset({"http", "https", "mailto"})

_BLOCKS = frozenset(
    {"p", "div", "li", "blockquote", "pre", "dd", "dt", "tr", "br", "ul", "ol", "table"}
)
_SKIP_IN_SUMMARY = frozenset({"h1", "h2", "h3", "h4", "h5", "h6", "figcaption", "table", "pre"})
_WS = re.compile(r"\s+")


def http_base(url: str | None) -> str | None:
    """``url`` if it is an absolute http(s) URL usable as a base, else ``None``."""
    if not url:
        return None
    parts = urlsplit(url)
    return url if parts.scheme in ("http", "https") and parts.netloc else None


def clean_html(html_text: str, base_url: str | None = None) -> str:
    """Sanitize an HTML fragment; relative URLs resolve against ``base_url`` or are dropped."""
    base = http_base(base_url)
    cleaned = nh3.clean(
        # terminal escapes and control characters are no text a reader should get
        clean_multiline(html_text),
        tags=set(ALLOWED_TAGS),
        clean_content_tags=set(DROP_WITH_CONTENT),
        attributes=ALLOWED_ATTRIBUTES,
        url_schemes=set(URL_SCHEMES),
        url_relative=("rewrite_with_base", base) if base else "deny",
        link_rel="noopener noreferrer",
        strip_comments=True,
    )
    return cleaned.strip()


def clean_url(url: str | None, base_url: str | None = None) -> str | None:
    """An absolute http(s) URL for ``url`` (resolved against ``base_url``), else ``None``."""
    if not url or has_controls(url.strip()):
        # a link with a control character is broken or an attack; no browser needs it
        return None
    base = http_base(base_url)
    absolute = urljoin(base, url.strip()) if base else url.strip()
    return http_base(absolute)


def text_paragraphs(html_text: str) -> list[str]:
    """The visible text of a fragment, one string per block, whitespace collapsed."""
    if not html_text.strip():
        return []
    try:
        root = lxml.html.fragment_fromstring(html_text, create_parent="div")
    except (etree.ParserError, ValueError):
        return [t for t in (_WS.sub(" ", html_text).strip(),) if t]
    for el in list(root.iter()):
        if not isinstance(el.tag, str):
            continue
        if el.tag in _SKIP_IN_SUMMARY or el.tag in DROP_WITH_CONTENT:
            if el.getparent() is not None:
                # drop_tree keeps the tail text; the newline keeps the block boundary
                el.tail = "\n" + (el.tail or "")
                el.drop_tree()
            continue
        if el.tag in _BLOCKS:
            el.text = "\n" + (el.text or "")
            el.tail = "\n" + (el.tail or "")
    text = root.text_content()
    return [p for p in (_WS.sub(" ", chunk).strip() for chunk in text.split("\n")) if p]


def truncate(text: str, max_chars: int) -> str:
    """``text`` cut at a word boundary to at most ``max_chars`` characters, with an ellipsis."""
    if len(text) <= max_chars:
        return text
    cut = text[: max_chars - 1]
    space = cut.rfind(" ")
    # a single very long word is cut mid-word rather than emptied
    if space > max_chars // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—") + "…"


def summarize(html_text: str, max_chars: int) -> str:
    """A short plain-text summary of ``html_text``, HTML-escaped (safe to embed as HTML).

    Takes the first paragraph(s) that fit in ``max_chars``; a first paragraph longer than
    that is cut at a word boundary and ends with an ellipsis. Headings are skipped because
    the digest shows the title already.
    """
    paragraphs = text_paragraphs(html_text)
    picked: list[str] = []
    length = 0
    for para in paragraphs:
        extra = len(para) + (1 if picked else 0)
        if picked and length + extra > max_chars:
            break
        picked.append(para)
        length += extra
        if length >= max_chars:
            break
    return html.escape(truncate(" ".join(picked), max_chars), quote=False)
