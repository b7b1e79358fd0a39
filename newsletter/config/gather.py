"""``[gather]``: limits on every fetch of gathered content and the private-origin allow-list."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field

from newsletter.config.base import Model

__all__ = ["DEFAULT_PORTS", "Gather", "normalize_origin"]

DEFAULT_PORTS = {"http": 80, "https": 443}


def normalize_origin(text: str) -> str:
    """``scheme://host:port`` (port always written, host lower case) or a ``ValueError``.

    An origin is only a scheme, a host and an optional port: anything else (a path, a
    query, credentials) is refused, so an allow-list entry cannot be read as wider or
    narrower than it looks.
    """
    try:
        parts = urlsplit(text.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"{text!r} is not an origin like 'http://127.0.0.1:8080'") from exc
    if parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        raise ValueError(f"{text!r} is not an http(s) origin like 'http://127.0.0.1:8080'")
    if parts.username is not None or parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ValueError(f"{text!r}: give only scheme, host and port (no path, query or user)")
    host = parts.hostname.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{shown}:{port if port is not None else DEFAULT_PORTS[parts.scheme]}"


class Gather(Model):
    """What a fetch of a feed, a listing page or an article may do.

    Gathered content (feed and page URLs, a page's article links, every redirect) may only
    reach public addresses: loopback, private, link-local and other special ranges are
    refused unless their origin is listed in ``allow_private``.
    """

    allow_private: list[Annotated[str, AfterValidator(normalize_origin)]] = Field(
        default_factory=list,
        description='Origins such as "http://127.0.0.1:8080" that may be fetched though private.',
    )
    max_bytes: int = Field(
        default=10_000_000, gt=0, description="Most bytes one response may have, decompressed."
    )
    max_redirects: int = Field(
        default=5, ge=0, le=20, description="Most redirects one fetch follows."
    )
    concurrency: int = Field(
        default=16, ge=1, le=256, description="Sources fetched at the same time, in all."
    )
    per_host: int = Field(
        default=4,
        ge=1,
        le=64,
        description="Requests to one host at the same time, so one slow host cannot hold the rest.",
    )
