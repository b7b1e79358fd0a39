"""The ``[web]`` table: the subscriber-facing web app."""

from __future__ import annotations

from pydantic import field_validator

from newsletter.config.base import Model

__all__ = ["Web"]


class Web(Model):
    """The subscriber-facing web app; ``base_url`` is what links in emails point to."""

    base_url: str = "https://news.example.org"
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")
