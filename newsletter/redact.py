"""Hide credentials in URLs before they reach any message, log line or stored error.

Operators put secrets in source URLs (``https://user:pw@host/feed?api_key=…``); those URLs
then show up in gather reports, ``status``, logs and the error stored per source. Every
message path passes its text through :func:`mask_text` (or a single URL through
:func:`mask_url`), so a secret is replaced by ``***`` wherever it would be shown.
"""

from __future__ import annotations

import logging
import re
import traceback

__all__ = [
    "MASK",
    "MaskingFilter",
    "is_secret_name",
    "mask_text",
    "mask_url",
    "scrub_content",
    "url_secrets",
]

MASK = "***"

#: parameter names (or parts of them) that carry a secret; matched on whole words
_SECRET_WORDS = frozenset(
    {
        "key",
        "apikey",
        "token",
        "secret",
        "password",
        "passwd",
        "pass",
        "pwd",
        "sig",
        "signature",
        "auth",
        "authorization",
        "credential",
        "credentials",
        "session",
        "sessionid",
        "sid",
        "jwt",
        "bearer",
        "hmac",
        "otp",
        "pw",
        "passphrase",
    }
)
# "api_key", "X-Amz-Signature", "accessToken", "client-secret": split into words
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")
# a URL anywhere in free text (error messages quote them, sometimes in quotes or brackets)
_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def is_secret_name(name: str) -> bool:
    """True when a query parameter called ``name`` probably holds a secret."""
    flat = re.sub(r"[^a-z0-9]", "", name.lower())
    if not flat:
        return False
    if flat in _SECRET_WORDS or flat.endswith(("key", "token", "secret", "password")):
        return True
    return any(word.lower() in _SECRET_WORDS for word in _WORD.findall(name))


def _unquote(text: str) -> str:
    return re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), text)


# "&" and the older ";" both separate parameters (``?page=1;token=abc``)
_PARAM_SPLIT = re.compile(r"([&;])")


def _params(part: str) -> list[tuple[str, str]]:
    """(name, value) of each parameter with a value in a query or fragment."""
    found = []
    for piece in _PARAM_SPLIT.split(part):
        name, sep, value = piece.partition("=")
        if sep and value:
            found.append((name, value))
    return found


def _mask_params(part: str) -> str:
    pieces = []
    for piece in _PARAM_SPLIT.split(part):
        name, sep, value = piece.partition("=")
        # percent-encoded names ("api%5Fkey") must not slip through
        if sep and value and is_secret_name(_unquote(name)):
            piece = f"{name}={MASK}"
        pieces.append(piece)
    return "".join(pieces)


def mask_url(url: str) -> str:
    """``url`` with its userinfo secret and secret-looking parameters replaced by ``***``.

    ``https://ann:pw@host/f?api_key=1&page=2`` -> ``https://ann:***@host/f?api_key=***&page=2``.
    A user name given without a password is masked too: alone it is usually a token. The
    rest of the URL is kept byte for byte, so the message still says which URL failed.
    """
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    end = len(rest)
    for stop in "/?#":
        at = rest.find(stop)
        if at != -1:
            end = min(end, at)
    authority, tail = rest[:end], rest[end:]
    userinfo, at_sign, hostport = authority.rpartition("@")
    if at_sign:
        user, colon, _password = userinfo.partition(":")
        authority = f"{user}:{MASK}@{hostport}" if colon else f"{MASK}@{hostport}"
    path, hash_sign, fragment = tail.partition("#")
    path, question, query = path.partition("?")
    if question:
        query = _mask_params(query)
    if hash_sign:
        # OAuth's implicit flow puts access_token=... in the fragment
        fragment = _mask_params(fragment)
    return f"{scheme}{sep}{authority}{path}{question}{query}{hash_sign}{fragment}"


def url_secrets(url: str | None) -> frozenset[str]:
    """The secrets an operator put in ``url``: the userinfo's password (or a user name
    given alone, usually a token) and the values of secret-looking parameters, each as
    written and percent-decoded. :func:`scrub_content` keeps them out of gathered content."""
    if not url or "://" not in url:
        return frozenset()
    rest = url.partition("://")[2]
    authority = re.split(r"[/?#]", rest, maxsplit=1)[0]
    tail = rest[len(authority) :]
    found: set[str] = set()
    userinfo, at_sign, _host = authority.rpartition("@")
    if at_sign and userinfo:
        user, colon, password = userinfo.partition(":")
        found.add(password if colon else user)
    path, _hash, fragment = tail.partition("#")
    query = path.partition("?")[2]
    for name, value in [*_params(query), *_params(fragment)]:
        if is_secret_name(_unquote(name)):
            found.add(value)
    found |= {_unquote(value) for value in found}
    return frozenset(value for value in found if value)


# the authority of a URL in text or markup, up to and including a userinfo's "@"
_USERINFO = re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://)[^/?#\s'\"<>`@]*@")


def scrub_content(text: str, secrets: frozenset[str] = frozenset()) -> str:
    """Gathered ``text`` (a link, an image URL, a guid, a body of HTML) with no URL in it
    carrying credentials: every userinfo is removed and every parameter whose value is
    one of ``secrets`` (:func:`url_secrets` of the source's own URL) is masked.

    A relative link in a page fetched from ``https://ann:pw@host/list?api_key=K`` resolves
    to a URL that carries ``ann:pw``; mailed out, it would hand the source's credentials
    to every reader. A userinfo in a link is never something a reader needs (and
    ``https://bank.example@evil.example/`` is a known disguise), so all of them go.
    """
    if "://" in text:
        text = _USERINFO.sub(r"\1", text)
    for secret in sorted(secrets, key=len, reverse=True):
        if secret in text:
            text = re.sub(r"(?<==)" + re.escape(secret) + r"(?=$|[&;#\s'\"<>])", MASK, text)
    return text


def mask_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`mask_url`."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(lambda m: mask_url(m.group(0)), text)


class MaskingFilter(logging.Filter):
    """A logging filter that masks URLs in a record's message and traceback.

    Attached to the CLI's log handler and to loggers that print request URLs themselves
    (httpx logs every request), so a source URL's credentials never reach a log.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Rewrite the record's message with URLs masked; never drops a record."""
        message = record.getMessage()
        masked = mask_text(message)
        if masked != message:
            record.msg, record.args = masked, None
        if record.exc_info and record.exc_info[0] is not None and not record.exc_text:
            # formatters print exc_text when set: an exception's text may quote the URL
            trace = "".join(traceback.format_exception(*record.exc_info)).rstrip("\n")
            record.exc_text = mask_text(trace)
        return True
