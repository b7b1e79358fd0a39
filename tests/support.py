"""Helpers shared by test folders: the repository root, the CLI as a subprocess, and a
copy of the demo project whose news is dated this week."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: what a CLI subprocess inherits besides what a test gives it: the preloaded clock of
#: scripts/pytest-year-ahead, so the child reads the same (shifted) time as the test
CLOCK_ENV = ("LD_PRELOAD", "FAKETIME", "FAKETIME_DONT_FAKE_MONOTONIC")


def child_env(**values: str) -> dict[str, str]:
    """A minimal environment for a CLI subprocess: PATH, the test's clock, ``values``."""
    kept = {k: os.environ[k] for k in CLOCK_ENV if k in os.environ}
    return {"PATH": "/usr/bin:/bin", **kept, **values}


def cli(cfg: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cfg.parent,
        env=child_env(COLUMNS="200", NEWSLETTER_SECRET_KEY="test-key"),
    )


def project(tmp_path: Path) -> Path:
    """A copy of the demo config with news dated this week, so it never goes stale."""
    shutil.copytree(ROOT / "subscribers", tmp_path / "subscribers")
    shutil.copytree(ROOT / "feeds", tmp_path / "feeds")
    news = tmp_path / "news"
    news.mkdir()
    today = datetime.now(UTC).date()
    for n, slug in enumerate(["solar", "wind", "hydrogen"]):
        day = today - timedelta(days=n)
        for lang, title in (("bg", f"Новина {n}: {slug}"), ("en", f"News {n}: {slug}")):
            if lang == "en" and n == 2:
                continue
            (news / f"{day}-{slug}.{lang}.md").write_text(
                f'---\ntitle: "{title}"\ndate: {day}\n---\nТекст на новината.\n', encoding="utf-8"
            )
    text = (ROOT / "config.toml").read_text(encoding="utf-8")
    text = text.replace('templates = "templates"', f'templates = "{ROOT / "templates"}"')
    cfg = tmp_path / "config.toml"
    cfg.write_text(text, encoding="utf-8")
    return cfg
