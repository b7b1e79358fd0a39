"""Email providers behind one interface, picked by ``[provider] name`` from a registry.

The registry is discovered, not listed: every module of this package is imported and
each concrete :class:`Provider` subclass defined in it is registered under its own
``name``, with its ``config_type`` (the ``[provider]`` model, defined beside it) used to
validate the table. Two classes with one name fail at import. A new provider is one
module here: the adapter class and its config model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.config.registry import discover
from newsletter.errors import ProviderError
from newsletter.send.providers.base import Provider
from newsletter.send.providers.outbox import OutboxProvider

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["PROVIDERS", "OutboxProvider", "Provider", "build_provider"]

#: every provider by its own ``name``, found in this package's modules (sorted by module)
# an abstract base is what discover() looks for subclasses of (mypy #4717)
PROVIDERS: dict[str, type[Provider]] = discover(__name__, __path__, Provider, "name")  # type: ignore[type-abstract]


def build_provider(settings: Settings) -> Provider:
    """The provider that ``settings.provider`` names, built from its config table."""
    config = settings.provider
    try:
        cls = PROVIDERS[config.name]
    except KeyError:
        known = ", ".join(sorted(PROVIDERS))
        raise ProviderError(f"unknown provider {config.name!r} (known: {known})") from None
    return cls.from_config(config, settings)
