"""The ``[web]`` table: the subscriber-facing web app."""

from __future__ import annotations

from pydantic import Field, field_validator

from newsletter.config.base import Model

__all__ = ["Web"]


class Web(Model):
    """The subscriber-facing web app; ``base_url`` is what links in emails point to."""

    base_url: str = Field(
        default="https://news.example.org",
        description="Public URL of the web app, which links in emails point to.",
    )
    host: str = Field(default="127.0.0.1", description="Address `newsletter serve` listens on.")
    port: int = Field(
        default=8000, ge=0, le=65535, description="Port `newsletter serve` listens on."
    )
    max_body_bytes: int = Field(
        default=65_536, ge=1024, description="Larger request bodies are refused with 413 unread."
    )
    forwarded_allow_ips: list[str] = Field(
        default_factory=lambda: ["127.0.0.1"],
        description="Reverse proxies whose X-Forwarded-For and -Proto headers are trusted.",
    )
    consent_version: str = Field(
        default="1", description="Version label of the sign-up consent text; change it with it."
    )
    record_consent_ip: bool = Field(
        default=False, description="Store the sign-up request's IP address with the consent."
    )
    subscribe_limit_per_ip: int = Field(
        default=10, ge=1, description="Sign-up requests allowed per client IP per window."
    )
    subscribe_limit_per_address: int = Field(
        default=3, ge=1, description="Sign-up requests allowed per email address per window."
    )
    subscribe_limit_window: int = Field(
        default=3600, ge=1, description="Seconds of the sign-up rate-limit window."
    )
    confirm_max_age_days: int = Field(
        default=7, ge=1, description="Days a confirmation link stays valid."
    )
    max_pause_weeks: int = Field(
        default=12, ge=1, le=104, description="Longest pause a subscriber can choose."
    )
    archive_limit: int = Field(
        default=50, ge=1, le=500, description="Editions listed on an archive page and its feed."
    )

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")
