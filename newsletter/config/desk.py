"""The ``[desk]`` table: the staff's web desk under ``/desk/`` in ``newsletter serve``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from newsletter.config.base import Model

__all__ = ["Desk"]


class Desk(Model):
    """The editor's desk: off unless ``enabled``; session and login limits."""

    enabled: bool = Field(
        default=False, description="Serve the staff's desk under /desk/ in `newsletter serve`."
    )
    idle_timeout_minutes: int = Field(
        default=30, ge=1, le=24 * 60, description="Minutes without a request that end a session."
    )
    absolute_timeout_hours: int = Field(
        default=12, ge=1, le=24 * 7, description="Hours after login that end a session anyway."
    )
    secure_cookie: Literal["auto", "always", "never"] = Field(
        default="auto",
        description=("Mark the session cookie Secure: `auto` when the request came over https."),
    )
    login_limit_per_ip: int = Field(
        default=20, ge=1, description="Login attempts allowed per client IP per window."
    )
    login_limit_per_account: int = Field(
        default=5, ge=1, description="Failed login attempts allowed per account per window."
    )
    login_limit_window: int = Field(
        default=900, ge=1, description="Seconds of the login rate-limit window."
    )
    progress_refresh_seconds: int = Field(
        default=5, ge=1, le=600, description="How often pages with live delivery progress reload."
    )
