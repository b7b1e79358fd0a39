"""Control characters and terminal escapes from feeds and sign-ups: removed where text
comes in (gather, CSV import), shown inert where it goes out."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import import_csv
from newsletter.gather.run import prepare
from newsletter.gather.sanitize import clean_html, clean_url
from newsletter.models import SourceItem
from newsletter.store import Store
from newsletter.textclean import clean_multiline, clean_text, visible, xml_text

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
CLEAR = "\x1b[2J\x1b[H"  # clear the screen, cursor home
OSC8 = "\x1b]8;;https://evil.example.com/\x1b\\"  # a hyperlink the reader cannot see
OSC8_END = "\x1b]8;;\x1b\\"
TITLE_BAR = "\x1b]0;owned\x07"  # sets the terminal's window title
C1_CSI = "\x9b31m"  # 8-bit CSI: red on terminals that honour C1


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (f"{CLEAR}Open days", "Open days"),
        (f"{OSC8}click here{OSC8_END}", "click here"),
        (f"{TITLE_BAR}Solar{C1_CSI} park", "Solar park"),
        ("a\x00b\x07c\x08d\x7fe\x85f\x9ag", "abcdefg"),
        ("line one\r\nline\ttwo\x0b\x0c", "line one line two"),
        ("\x1bc reset \x1b(B charset", "reset charset"),
        ("unterminated \x1b]8;;https://evil.example.com/ swallowed", "unterminated"),
        ("[bold red]markup stays text[/]", "[bold red]markup stays text[/]"),
        ("Кирилица и 中文 ✓", "Кирилица и 中文 ✓"),
        # "Trojan Source": overrides and isolates make a terminal show another text
        ("invoice\u202egpj.exe", "invoicegpj.exe"),
        ("\u2066admin\u2069 \u202aok\u202c\u202b\u202d", "admin ok"),
        (None, ""),
    ],
)
def test_clean_text_removes_escapes_and_controls(raw: str | None, expected: str) -> None:
    assert clean_text(raw) == expected


def test_clean_multiline_keeps_tabs_and_line_breaks() -> None:
    assert clean_multiline(f"a\tb\r\nc\rd{CLEAR}\x00e\n") == "a\tb\nc\nde\n"


def test_visible_and_xml_text_leave_nothing_raw() -> None:
    assert visible("a\x1b[2Jb\x9bc\nd") == "a\\x1b[2Jb\\x9bc\\x0ad"
    assert visible("name\u202eexe.pdf\u2066") == "name\\u202eexe.pdf\\u2066"
    assert xml_text("ok\x00\x1b[1m\ufffe\uffff\x0b!") == "ok!"


def test_gathered_fields_are_stored_without_escapes(make_config: Any) -> None:
    settings = make_config()
    item = SourceItem(
        source="feed",
        guid="https://cluster.example.org/n/1\x1b[2J",
        title=f"{CLEAR}{OSC8}Wind farm{OSC8_END} [link=https://evil.example.com]opens[/link]\x00",
        body_html=f"<p>Body{TITLE_BAR}\x00 text\x1b[31m red</p>",
        summary_html=f"<p>Short{C1_CSI}\x07</p>",
        link="https://cluster.example.org/n/1",
        tags=("wind\x1b[5m", "\x00"),
        translation_key="k\x1b[8m1",
        lang="en\x1b[2J",
    )
    rec = prepare(settings, type("Cfg", (), {"tags": [], "lang": None})(), item)
    assert rec.title == "Wind farm [link=https://evil.example.com]opens[/link]"
    assert rec.body_html == "<p>Body text red</p>"
    assert rec.summary_html == "Short"
    assert rec.tags == ("wind",) and rec.translation_key == "k1" and rec.lang == "en"
    assert rec.guid == "https://cluster.example.org/n/1\\x1b[2J"  # distinct, but inert


def test_clean_html_and_clean_url_refuse_controls() -> None:
    assert clean_html("<p>a\x1b[2Jb\x00c</p>") == "<p>abc</p>"
    assert clean_url("https://cluster.example.org/\x1b[2J") is None
    assert clean_url("https://cluster.example.org/a\x00") is None
    assert clean_url(" https://cluster.example.org/a ") == "https://cluster.example.org/a"


def test_csv_import_stores_names_without_controls_or_escapes(store: Store, tmp_path: Path) -> None:
    # (a NUL in a cell is refused as a bad row by the CSV reader: tests/test_subscribers_csv)
    path = tmp_path / "people.csv"
    path.write_text(
        "email,name,organisation,tags\r\n"
        f'ana@example.org,"{CLEAR}[bold red]Ана[/]{OSC8} Петрова{OSC8_END}",'
        f'"Example\x1b[8m Ltd\x07","a\x1b[1m;b\x9b"\r\n',
        encoding="utf-8",
        newline="",
    )
    report = import_csv(store, path, list_name="members\x1b[5m", default_locale="bg", now=NOW)
    assert (report.added, report.errors) == (1, [])
    sub = store.subscribers.find("ana@example.org")
    assert sub is not None
    assert sub.name == "[bold red]Ана[/] Петрова"
    assert sub.organisation == "Example Ltd"
    assert sub.tags == ("a", "b") and sub.lists == ("members",)
