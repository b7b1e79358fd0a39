"""The ``[web]`` table: the subscriber-facing web app."""

from __future__ import annotations

from pydantic import Field, field_validator

from newsletter.config.base import Model

__all__ = ["Web"]


class Web(Model):
    """The subscriber-facing web app; ``base_url`` is what links in emails point to."""

    base_url: str = "https://news.example.org"
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    #: requests with a larger body are refused with 413 before they are read
    max_body_bytes: int = Field(default=65_536, ge=1024)
    #: addresses of reverse proxies whose X-Forwarded-For / -Proto headers are trusted
    forwarded_allow_ips: list[str] = Field(default_factory=lambda: ["127.0.0.1"])
    #: version label of the sign-up consent text; change it whenever that text changes
    consent_version: str = "1"
    #: store the sign-up request's IP address in the consent record (off: data minimisation)
    record_consent_ip: bool = False
    #: sign-up requests allowed per client IP, and per email address, per window
    subscribe_limit_per_ip: int = Field(default=10, ge=1)
    subscribe_limit_per_address: int = Field(default=3, ge=1)
    subscribe_limit_window: int = Field(default=3600, ge=1)
    #: days a confirmation link stays valid
    confirm_max_age_days: int = Field(default=7, ge=1)
    #: the longest pause a subscriber can choose in the preference centre
    max_pause_weeks: int = Field(default=12, ge=1, le=104)
    #: editions listed on an archive index page and in its Atom feed
    archive_limit: int = Field(default=50, ge=1, le=500)

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")
