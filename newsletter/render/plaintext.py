"""Plain-text part helpers: wrap at 72 columns, never inside a word or a URL.

72 columns leave room for the "> " of a quoted reply within the 78 that RFC 5322
recommends. A URL is never broken (a reader could not click it), so a line may run past
72 columns only when it holds nothing but one URL.

Text is wrapped once per variant, before per-recipient values are known, so a placeholder
(an email address, a name) is measured as :data:`PLACEHOLDER_WIDTH` columns: the lines
stay within 72 columns for any value up to that length.
"""

from __future__ import annotations

import textwrap

from newsletter.send.personalize import is_placeholder, placeholder_spans

WIDTH = 72
#: columns reserved for a per-recipient value inside wrapped text
PLACEHOLDER_WIDTH = 48
# pads a marker to PLACEHOLDER_WIDTH; not whitespace, so textwrap keeps it in the word
_PAD = "\x00"


def _reserve(line: str) -> str:
    spans = placeholder_spans(line)
    for start, end in reversed(spans):
        line = line[:end] + _PAD * (PLACEHOLDER_WIDTH - (end - start)) + line[end:]
    return line


def wrap(text: str, width: int = WIDTH) -> str:
    """Wrap every line of ``text`` at ``width``; words and URLs are never split.

    Unlike Jinja's ``wordwrap`` the default here does not break at hyphens, which would
    cut URLs such as ``.../eco-forum`` in two.
    """
    out: list[str] = []
    for line in text.split("\n"):
        line = _reserve(line)
        if len(line) <= width:
            out.append(line)
            continue
        out.extend(
            textwrap.wrap(
                line,
                width=width,
                break_long_words=False,
                break_on_hyphens=False,
                replace_whitespace=False,
            )
        )
    return "\n".join(out).replace(_PAD, "")


def link_line(label: str, url: str, width: int = WIDTH) -> str:
    """``label: url`` on one line when it fits, else the label and the URL on its own line.

    A per-recipient URL (a placeholder) is always put on its own line: its length is only
    known when it is substituted.
    """
    one = f"{label}: {url}"
    if len(one) <= width and not is_placeholder(url):
        return one
    return f"{wrap(label + ':', width)}\n{url}"
