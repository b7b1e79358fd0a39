"""List and show commands in pipes and scripts, and hostile text shown inert.

Real ``newsletter`` processes where the kind of stdout matters (a pipe, a pseudo-terminal);
typer's CliRunner (never a terminal) for the JSON of every command.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from support import child_env
from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.config import load
from newsletter.gather.run import gather
from newsletter.models import NewSubscriber, RenderedVariant
from newsletter.store import Store
from newsletter.store.items import ItemRecord
from newsletter.store.runs import RunStatus

ROOT = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
LONG_EMAIL = "svetoslava.kostadinova-hristova.energy-efficiency-office@members.example.org"
LONG_NAME = "Светослава Костадинова-Христова, отдел „Енергийна ефективност“"
# a clear-screen, an OSC 8 hyperlink, a window-title change, rich markup, a NUL
HOSTILE_TITLE = (
    "\x1b[2J\x1b]8;;https://evil.example.com/\x1b\\Solar park\x1b]8;;\x1b\\ opens "
    "[bold red]now[/] [link=https://evil.example.com]here[/link]\x1b]0;owned\x07"
)
STORED_RAW = "Old \x1b[2Jtitle\x9b31m [blink]stored[/blink] before cleaning\x07"

FEED = """<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Partners</title><link>https://partners.example.com/</link>
<description>x</description>
<item><title>{title}</title><link>https://partners.example.com/solar</link>
<guid>https://partners.example.com/solar</guid>
<pubDate>Mon, 23 Nov 2026 07:00:00 +0000</pubDate>
<description>&lt;p&gt;Body&lt;/p&gt;</description></item>
</channel></rss>
"""

CONFIG = """
[organisation]
name = "Example Cluster"
from_email = "news@example.org"

[database]
url = "sqlite:///{db}"
url_env = "NEWSLETTER_TEST_UNUSED_URL"

[locales]
default = "en"
available = ["en", "bg"]

[paths]
templates = "{templates}"

[[sources]]
name = "partners"
kind = "feed"
path = "partners.xml"
lang = "en"

[[segments]]
name = "members"
rules = [{{ field = "lists", op = "contains", value = "members" }}]

[[schedule]]
id = "members-weekly"
job = "digest"
segment = "members"
cron = "0 9 * * mon"
timezone = "Europe/Sofia"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A config with one hostile feed gathered, subscribers, an edition and a job run."""
    (tmp_path / "partners.xml").write_text(FEED.format(title=HOSTILE_TITLE), encoding="utf-8")
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        CONFIG.format(db=tmp_path / "store.db", templates=ROOT / "templates"), encoding="utf-8"
    )
    settings = load(cfg)
    with Store.open(settings.database_url()) as store:
        report = gather(settings, store, now=NOW)
        assert report.ok and report.new == 1, report
        # rows written before cleaning existed (the store itself does not clean)
        store.items.upsert(
            ItemRecord(
                source="old",
                guid="old-1",
                title=STORED_RAW,
                body_html="<p>x</p>",
                summary_html="x",
                link=None,
                published_at=NOW.replace(day=1),
                lang="en",
                translation_key=None,
                tags=(),
                image=None,
                content_hash="old-1",
            ),
            NOW,
        )
        long = store.subscribers.add(
            NewSubscriber(email=LONG_EMAIL, name=LONG_NAME, locale="bg", lists=("members",)),
            NOW,
        )
        raw = store.subscribers.add(
            NewSubscriber(email="raw@example.org", name=STORED_RAW, locale="en"), NOW
        )
        edition = store.editions.create("members", "2026-W48", [], NOW)
        store.editions.save_variant(
            edition.id,
            RenderedVariant("bg", f"Бюлетин {STORED_RAW}", "", "Клъстер", "<p>x</p>", "x", 1),
        )
        store.deliveries.plan(edition.id, [(long.id, "bg"), (raw.id, "bg")], NOW)
        store.runs.note("members-weekly", NOW, RunStatus.DONE, STORED_RAW, NOW)
    return cfg


def _piped(cfg: Path, *args: str) -> subprocess.CompletedProcess[bytes]:
    """``newsletter ARGS | …``: stdout a pipe, no COLUMNS, as in a shell script."""
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), *args],
        capture_output=True,
        check=False,
        cwd=cfg.parent,
        env=child_env(),
    )


def _raw_controls(data: bytes) -> list[str]:
    text = data.decode("utf-8")
    return sorted(
        {hex(ord(c)) for c in text if (ord(c) < 32 and c not in "\t\n") or 127 <= ord(c) < 160}
    )


def test_lists_in_a_pipe_print_whole_values_one_row_per_line(project: Path) -> None:
    subs = _piped(project, "subscribers", "list")
    assert subs.returncode == 0, subs.stderr
    assert _raw_controls(subs.stdout) == []
    lines = subs.stdout.decode().splitlines()
    assert lines[0].split("\t") == ["id", "email", "name", "locale", "country", "lists", "status"]
    rows = {cols[1]: cols for cols in (line.split("\t") for line in lines[1:])}
    assert len(lines) == 3 and all(len(cols) == 7 for cols in rows.values())
    assert rows[LONG_EMAIL][2] == LONG_NAME  # nothing cut, no "…"
    # what was stored raw is shown, inert: the escapes as text, the markup as written
    assert rows["raw@example.org"][2] == (
        "Old \\x1b[2Jtitle\\x9b31m [blink]stored[/blink] before cleaning\\x07"
    )

    items = _piped(project, "items", "list")
    assert items.returncode == 0, items.stderr
    assert _raw_controls(items.stdout) == []
    titles = [line.split("\t")[-1] for line in items.stdout.decode().splitlines()[1:]]
    # gathered: escapes removed, the markup kept as the text it is
    assert (
        titles[0] == "Solar park opens [bold red]now[/] [link=https://evil.example.com]here[/link]"
    )
    assert titles[1].startswith("Old \\x1b[2Jtitle")


def test_items_list_on_a_terminal_shows_markup_and_escapes_inert(project: Path) -> None:
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "--config", str(project), "items", "list"],
        stdout=follower,
        stderr=subprocess.PIPE,
        cwd=project.parent,
        env=child_env(COLUMNS="400", TERM="xterm-256color"),
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    assert proc.wait(timeout=60) == 0, proc.stderr.read() if proc.stderr else ""
    shown = b"".join(chunks).decode("utf-8")
    # rich styles the table itself; none of the feed's own sequences may come through
    for attack in ("\x1b[2J", "\x1b]8;", "\x1b]0;", "\x9b", "\x07"):
        assert attack not in shown, repr(attack)
    assert "[bold red]now[/]" in shown and "[link=https://evil.example.com]here[/link]" in shown
    assert "[blink]stored[/blink]" in shown and "\\x1b[2Jtitle" in shown


def _iso(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    assert parsed.tzinfo is not None, value
    return parsed


COMMANDS: dict[str, tuple[str, ...]] = {
    "subscribers": ("subscribers", "list"),
    "items": ("items", "list"),
    "editions": ("editions", "list"),
    "edition": ("editions", "show", "1"),
    "schedule": ("schedule", "list"),
    "history": ("schedule", "history"),
    "status": ("status",),
}


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_list_and_show_command_prints_json(project: Path, name: str) -> None:
    res = CliRunner().invoke(app, ["-c", str(project), *COMMANDS[name], "--json"])
    assert res.exit_code == 0, res.output
    assert "\x1b" not in res.stdout and "\x9b" not in res.stdout
    data: Any = json.loads(res.stdout)
    if name == "subscribers":
        by_email = {s["email"]: s for s in data}
        assert list(by_email[LONG_EMAIL]) == [
            "id", "email", "name", "locale", "organisation", "country", "lists", "tags",
            "status", "consent_at", "consent_source", "paused_until",
        ]  # fmt: skip
        assert by_email[LONG_EMAIL]["lists"] == ["members"]
        assert by_email["raw@example.org"]["name"] == STORED_RAW  # exact, as JSON escapes
    elif name == "items":
        assert data[0]["title"].startswith("Solar park opens [bold red]now[/]")
        assert _iso(data[0]["published_at"]) == NOW.replace(hour=7)
        assert data[1]["title"] == STORED_RAW
    elif name == "editions":
        [edition] = data
        assert edition["deliveries"] == {"queued": 2} and edition["status"] == "planned"
        assert _iso(edition["created_at"]) == NOW
    elif name == "edition":
        assert data["total"] == 2 and data["counts"]["queued"] == 2
        assert data["counts"]["sent"] == 0  # every status is a key
        [locale] = data["locales"]
        assert locale["locale"] == "bg" and locale["subject"] == f"Бюлетин {STORED_RAW}"
    elif name == "schedule":
        [job] = data
        assert job["id"] == "members-weekly" and job["timezone"] == "Europe/Sofia"
        assert job["last_run"]["status"] == "done" and job["last_run"]["detail"] == STORED_RAW
        assert _iso(job["last_run"]["scheduled_for"]) == NOW
    elif name == "history":
        [run] = data
        assert run["job"] == "members-weekly" and _iso(run["finished_at"]) == NOW
    else:
        assert data["scheduler"]["alive"] is False
        [source] = data["sources"]
        assert source["name"] == "partners" and _iso(source["last_gathered_at"]) == NOW
        assert data["segments"][0]["edition"]["id"] == 1
        assert isinstance(data["problems"], list)
