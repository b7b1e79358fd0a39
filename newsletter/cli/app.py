"""Shared parts of the CLI: the typer apps, global options, store and progress helpers.

Every ``NewsletterError`` becomes one line on stderr and exit code 1 (2 for configuration
errors); ``--debug`` shows the traceback instead. Usage errors exit 2.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console

from newsletter.textclean import visible

if TYPE_CHECKING:
    from rich.progress import Progress

    from newsletter.config import Settings
    from newsletter.store import Store

# commands import what they use when they run: `newsletter --help` loads none of it

app = typer.Typer(
    help="Gather cluster news and send localized digests.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
subscribers_app = typer.Typer(help="Manage subscribers.", no_args_is_help=True)
editions_app = typer.Typer(help="Inspect editions.", no_args_is_help=True)
items_app = typer.Typer(help="Inspect gathered items.", no_args_is_help=True)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(subscribers_app, name="subscribers")
app.add_typer(editions_app, name="editions")
app.add_typer(items_app, name="items")
app.add_typer(db_app, name="db")

# soft wrap: a line is never broken at 80 columns when the output is a pipe or a file
out = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)


class _VisibleControls(logging.Filter):
    """Log lines carry gathered text (titles, server answers): no raw control characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = visible(record.getMessage()), None
        return True


class _State:
    config_path: Path | None = None
    debug: bool = False


state = _State()


@app.callback()
def _main(
    config: Annotated[
        Path | None,
        typer.Option(
            "--config", "-c", help="Config file (default: $NEWSLETTER_CONFIG or ./config.toml)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks and debug logs.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show info logs.")] = False,
) -> None:
    from rich.logging import RichHandler

    from newsletter.redact import MaskingFilter

    state.config_path = config
    state.debug = debug
    level = logging.DEBUG if debug else logging.INFO if verbose else logging.WARNING
    handler = RichHandler(console=err, show_path=False, show_time=False)
    handler.addFilter(MaskingFilter())  # source URLs may carry credentials
    handler.addFilter(_VisibleControls())
    logging.basicConfig(level=level, format="%(message)s", handlers=[handler], force=True)


def settings() -> Settings:
    """The validated configuration for this invocation."""
    from newsletter import config as config_mod

    return config_mod.load(state.config_path)


@contextmanager
def opened(cfg: Settings) -> Iterator[Store]:
    """The store of ``cfg``, migrated, closed afterwards."""
    from newsletter.store import Store

    store = Store.open(cfg.database_url())
    try:
        yield store
    finally:
        store.close()


def now() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def _ids(values: list[str] | None) -> list[int]:
    ids: list[int] = []
    for value in values or []:
        for part in value.split(","):
            if part.strip():
                try:
                    ids.append(int(part))
                except ValueError as exc:
                    raise typer.BadParameter(f"{part!r} is not an item id") from exc
    return ids
