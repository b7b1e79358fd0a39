"""Start-up stays light: `--help` loads no store, sending or gathering code."""

from __future__ import annotations

import subprocess
import sys

from newsletter.cli.delivery import SETTLE_SECONDS
from newsletter.send.reconcile import DEFAULT_SETTLE


def test_settle_default_matches_the_engine() -> None:
    assert DEFAULT_SETTLE.total_seconds() == SETTLE_SECONDS


def test_help_imports_only_the_cli() -> None:
    code = (
        "import sys\n"
        "from newsletter.cli import app\n"
        "heavy = [m for m in ('sqlalchemy', 'alembic', 'httpx', 'feedparser', 'jinja2',\n"
        "         'starlette', 'premailer', 'pydantic', 'newsletter.store', 'newsletter.send',\n"
        "         'newsletter.gather', 'newsletter.digest') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == ""
