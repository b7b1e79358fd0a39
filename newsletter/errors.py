"""One exception hierarchy for the whole package.

Third-party errors are translated at the boundary (``raise X(...) from exc``), so callers
and the CLI only ever need to catch :class:`NewsletterError`::

    NewsletterError
    ├── ConfigError            config.toml missing, malformed, unknown key, wrong type
    ├── StoreError             database unreachable, migration failed
    │   └── DuplicateEditionError   (segment, period) already has an edition
    ├── SourceError            one source could not be gathered (it is skipped, others go on)
    │   └── DestinationRefusedError  a fetch would reach a non-public address
    ├── ImportRowError         one CSV row is invalid (line number and reason)
    ├── SubscriberError        bad address, unknown subscriber
    ├── TemplateError          template missing or with a syntax error (name and line)
    ├── LocaleError            a configured locale has no catalog
    ├── RenderError            a digest cannot be rendered (over the size budget, ...)
    │   └── ScreenshotError    preview screenshots: playwright or Chromium missing or failing
    ├── ProviderError          an email provider failed as a whole (not one recipient)
    ├── EditionError           unknown edition, wrong state for the requested action
    ├── EditorialError         an editor's change refused: unknown story, bad field, wrong state
    ├── SchedulerError         another scheduler holds the lock, or this one lost it
    ├── WebhookError           a provider webhook call refused: bad signature, replay, bad body
    └── DeskError              desk account unknown or duplicate, bad role or password
"""

from __future__ import annotations


class NewsletterError(Exception):
    """Base of every error this package raises on purpose; its text is one line for a user."""


class ConfigError(NewsletterError):
    """The configuration is missing, malformed or invalid."""


class StoreError(NewsletterError):
    """The database cannot be reached, migrated or written."""


class DuplicateEditionError(StoreError):
    """An edition for this (segment, period) exists already."""


class SourceError(NewsletterError):
    """One source could not be gathered."""


class DestinationRefusedError(SourceError):
    """A fetch of gathered content would reach a non-public address (or not over HTTP)."""


class ImportRowError(NewsletterError):
    """One row of a subscriber CSV file is invalid."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line}: {reason}")
        self.line = line
        self.reason = reason


class SubscriberError(NewsletterError):
    """A subscriber operation failed (invalid address, unknown subscriber)."""


class TemplateError(NewsletterError):
    """A template is missing or cannot be compiled."""


class LocaleError(NewsletterError):
    """A configured locale has no usable message catalog."""


class RenderError(NewsletterError):
    """A digest cannot be rendered."""


class ScreenshotError(RenderError):
    """Preview screenshots cannot be taken: playwright or Chromium missing, or failing."""


class ProviderError(NewsletterError):
    """An email provider failed as a whole."""


class EditionError(NewsletterError):
    """An edition is unknown or in the wrong state."""


class EditorialError(NewsletterError):
    """An editor's change (desk story, version, next-edition override, approval) refused."""


class WebhookError(NewsletterError):
    """A provider webhook call was refused: bad signature, replayed, malformed."""


class SchedulerError(NewsletterError):
    """The scheduler cannot run: another instance holds the lock, or this one lost it."""


class DeskError(NewsletterError):
    """A desk account operation failed: unknown or duplicate account, bad role or password."""
