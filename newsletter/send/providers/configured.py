"""Checks every provider makes on its ``[provider]`` table at start, before sending anything.

A bad table stops the run with one line naming the file and the key, never at the first
batch: a credential missing from the environment (:func:`env_secret`) or a ``batch_size``
above what the provider accepts (:func:`check_batch_size`). Used by every adapter, HTTP or
not, from its ``from_config``.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from newsletter.config.providers import ProviderBase
from newsletter.errors import ConfigError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.send.providers.base import Provider

__all__ = ["check_batch_size", "env_secret", "where"]


def where(settings: Settings | None) -> str:
    """``"<config file>: "`` to start an error line with, or empty when there is no file."""
    return f"{settings.config_path}: " if settings is not None and settings.config_path else ""


def env_secret(config: Any, key: str, settings: Settings | None = None) -> str:
    """The value of the environment variable that ``config.<key>`` names (a ``*_env`` key).

    Raises :class:`ConfigError` naming the key and the variable when it is unset or empty:
    ``config.toml: provider.token_env: environment variable POSTMARK_SERVER_TOKEN is not
    set``.
    """
    var = getattr(config, key)
    value = os.environ.get(var, "")
    if not value.strip():
        raise ConfigError(f"{where(settings)}provider.{key}: environment variable {var} is not set")
    return value.strip()


def check_batch_size(cls: type[Provider], config: ProviderBase, settings: Settings | None) -> None:
    """Refuse at start a configured ``batch_size`` above what the provider accepts."""
    if config.batch_size is not None and config.batch_size > cls.max_batch:
        raise ConfigError(
            f"{where(settings)}provider.batch_size: {config.batch_size} is above "
            f"{cls.name}'s limit of {cls.max_batch} messages per batch"
        )
