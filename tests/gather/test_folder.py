"""Folder source: front matter, translations by file name, dates, bad files skipped."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fixtures.sources.httpserver import FIXTURES

from newsletter.errors import SourceError
from newsletter.gather.sources import (
    SOURCES,
    FolderSource,
    FolderSourceConfig,
    SourceState,
    build_source,
)
from newsletter.gather.sources.base import parse_date
from newsletter.gather.sources.folder import split_lang_suffix

NEWS = FIXTURES / "news"


def _fetch(path: Path, pattern: str = "*") -> tuple[dict[str, object], list[str]]:
    cfg = FolderSourceConfig(kind="folder", name="news", path=path, pattern=pattern)
    with build_source(cfg) as source:
        result = source.fetch(SourceState())
    return {item.guid: item for item in result.items}, result.warnings


def test_registry_picks_folder_source() -> None:
    cfg = FolderSourceConfig(kind="folder", name="news", path=NEWS)
    with build_source(cfg) as source:
        assert isinstance(source, SOURCES["folder"])
        assert isinstance(source, FolderSource)


def test_translations_share_key_and_take_lang_from_suffix() -> None:
    items, _ = _fetch(NEWS)
    bg = items["2026-11-16-solar-roofs.bg.md"]
    en = items["2026-11-16-solar-roofs.en.md"]
    assert bg.translation_key == en.translation_key == "2026-11-16-solar-roofs"
    assert (bg.lang, en.lang) == ("bg", "en")
    assert bg.title == "Соларни покриви за три училища във Варна"
    assert bg.tags == ("solar", "schools")
    assert bg.image == "https://cluster.example.org/img/solar-roofs.jpg"
    assert "<strong>40%</strong>" in bg.body_html


def test_dates_date_only_is_midnight_in_sofia_and_iso_keeps_offset() -> None:
    items, _ = _fetch(NEWS)
    bg = items["2026-11-16-solar-roofs.bg.md"]
    en = items["2026-11-16-solar-roofs.en.md"]
    assert bg.published is not None and en.published is not None
    # 00:00 in Sofia (EET, UTC+2 in November)
    assert bg.published.astimezone(UTC) == datetime(2026, 11, 15, 22, 0, tzinfo=UTC)
    assert en.published.astimezone(UTC) == datetime(2026, 11, 16, 7, 30, tzinfo=UTC)


def test_text_file_with_seed_style_date_and_front_matter_key() -> None:
    items, _ = _fetch(NEWS)
    item = items["2012-10-15-open-days.txt"]
    assert item.translation_key == "open-days-2012"
    assert item.lang == "bg"
    assert item.published is not None
    # summer time in 2012: UTC+3
    assert item.published.astimezone(UTC) == datetime(2012, 10, 14, 21, 0, tzinfo=UTC)
    assert item.summary_html is not None and "еко-клъстерите" in item.summary_html
    assert item.body_html.startswith("<p>Административният секретар")


def test_markdown_without_front_matter_uses_heading_and_date_line() -> None:
    items, _ = _fetch(NEWS)
    item = items["2026-11-20-heat-pumps.md"]
    assert item.title == "Семинар за термопомпи в Добрич"
    assert item.published is not None and item.published.date().isoformat() == "2026-11-20"
    assert "Дата" not in item.body_html
    assert item.lang is None


def test_bad_files_are_reported_by_name_and_key_and_others_still_load() -> None:
    items, warnings = _fetch(NEWS)
    assert len(items) == 4
    assert "notes.csv" not in " ".join(items)
    assert len(warnings) == 2
    bad_date = next(w for w in warnings if "2026-11-18-bad-date.bg.md" in w)
    assert "'date'" in bad_date and "2026-13-45" in bad_date
    broken = next(w for w in warnings if "2026-11-19-broken.md" in w)
    assert "front matter" in broken


def test_pattern_limits_files(tmp_path: Path) -> None:
    shutil.copytree(NEWS, tmp_path / "news")
    items, warnings = _fetch(tmp_path / "news", pattern="*.txt")
    assert list(items) == ["2012-10-15-open-days.txt"]
    assert warnings == []


def test_guid_from_front_matter_and_nested_pattern(tmp_path: Path) -> None:
    (tmp_path / "2026").mkdir()
    (tmp_path / "2026" / "a.md").write_text(
        "---\ntitle: A\ndate: 2026-01-02\nguid: news-a\n---\nText\n", encoding="utf-8"
    )
    items, _ = _fetch(tmp_path, pattern="**/*.md")
    assert list(items) == ["news-a"]


def test_missing_title_and_unknown_key_are_reported(tmp_path: Path) -> None:
    (tmp_path / "no-title.md").write_text("---\ndate: 2026-01-02\n---\nText\n", encoding="utf-8")
    (tmp_path / "typo.md").write_text(
        "---\ntitle: T\ndate: 2026-01-02\ntagz: [a]\n---\nText\n", encoding="utf-8"
    )
    (tmp_path / "unterminated.md").write_text("---\ntitle: T\n", encoding="utf-8")
    items, warnings = _fetch(tmp_path)
    assert items == {}
    assert any("no-title.md" in w and "'title'" in w for w in warnings)
    assert any("typo.md" in w and "'tagz'" in w for w in warnings)
    assert any("unterminated.md" in w and "never ends" in w for w in warnings)


def test_missing_folder_is_a_source_error(tmp_path: Path) -> None:
    cfg = FolderSourceConfig(kind="folder", name="news", path=tmp_path / "nope")
    with build_source(cfg) as source, pytest.raises(SourceError, match="nope"):
        source.fetch(SourceState())


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-16", datetime(2026, 11, 15, 22, 0, tzinfo=UTC)),
        ("2026-11-16T10:00:00Z", datetime(2026, 11, 16, 10, 0, tzinfo=UTC)),
        ("15.10.2012", datetime(2012, 10, 14, 21, 0, tzinfo=UTC)),
        ("15.10.2012г.", datetime(2012, 10, 14, 21, 0, tzinfo=UTC)),
        ("Дата: 15.10.2012г.", datetime(2012, 10, 14, 21, 0, tzinfo=UTC)),
    ],
)
def test_parse_date_formats(value: str, expected: datetime) -> None:
    assert parse_date(value).astimezone(UTC) == expected


@pytest.mark.parametrize("value", ["32.10.2012", "yesterday", "2026-02-30", ""])
def test_parse_date_rejects(value: str) -> None:
    with pytest.raises(ValueError, match="not a date"):
        parse_date(value)


def test_lang_suffix_only_for_language_like_parts() -> None:
    assert split_lang_suffix(Path("x.bg.md")) == ("x", "bg")
    assert split_lang_suffix(Path("x.pt_BR.md")) == ("x", "pt-BR")
    assert split_lang_suffix(Path("report.final.md")) == ("report.final", None)
    assert split_lang_suffix(Path("plain.md")) == ("plain", None)
