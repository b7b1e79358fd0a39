"""The command line: parse, call one library function, print.

``NewsletterError`` becomes one line on stderr with exit code 1 (2 for configuration
errors); ``--debug`` shows the traceback instead. Usage errors exit 2.
"""

from __future__ import annotations

import sys

from newsletter.cli import (  # noqa: F401  (importing registers the commands)
    admin,
    config,
    delivery,
    desk,
    engagement,
    run,
    schedule,
    segments,
    web,
)
from newsletter.cli.app import app, err
from newsletter.cli.output import safe
from newsletter.errors import ConfigError, NewsletterError


def main() -> None:
    """Entry point of the ``newsletter`` command."""
    debug = "--debug" in sys.argv
    try:
        app()
    except ConfigError as exc:
        if debug:
            raise
        err.print(f"[red]config error:[/] {safe(exc)}", highlight=False)
        sys.exit(2)
    except NewsletterError as exc:
        if debug:
            raise
        err.print(f"[red]error:[/] {safe(exc)}", highlight=False)
        sys.exit(1)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
