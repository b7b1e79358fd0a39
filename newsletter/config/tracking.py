"""The ``[tracking]`` table: what engagement is measured, all of it off by default.

Delivery, bounce, complaint and unsubscribe events are always kept (they decide who gets
mail). Opens and clicks are personal behaviour: they are kept only when switched on here,
and ``anonymous = true`` keeps their counts without naming the reader.
"""

from __future__ import annotations

from pydantic import Field

from newsletter.config.base import Model

__all__ = ["Tracking"]


class Tracking(Model):
    """Click and open measurement, and how long the events are kept."""

    clicks: bool = Field(
        default=False,
        description="Links in emails go through `/r/<token>` on `newsletter serve` and count "
        "clicks; provider click events are kept too.",
    )
    opens: bool = Field(
        default=False,
        description="Keep provider open events and add our own open pixel (`/o/<token>`); "
        "opens are estimates.",
    )
    anonymous: bool = Field(
        default=False,
        description="Tracked links and pixels carry no delivery or subscriber: counts only, "
        "no unique readers.",
    )
    retention_days: int = Field(
        default=180,
        ge=1,
        description="Events older than this are folded into per-edition counts and deleted.",
    )
