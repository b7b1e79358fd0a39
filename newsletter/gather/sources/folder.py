"""Folder source: Markdown or plain-text files with YAML front matter.

Sibling files that differ only by a language suffix are translations of one story::

    2026-11-16-solar-roofs.bg.md   lang bg, translation key "2026-11-16-solar-roofs"
    2026-11-16-solar-roofs.en.md   lang en, same key

Front matter keys: title, date, lang, translation_key, tags, image, guid, summary, link.
A file that cannot be read (broken front matter, bad date, no title) is reported in the
result's warnings, naming the file and the key, and skipped; the other files still load.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml
from markdown_it import MarkdownIt
from pydantic import ConfigDict, Field

from newsletter.config import Gather, RelPath, SourceBase
from newsletter.errors import SourceError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources.base import FetchResult, Source, SourceState, parse_date
from newsletter.models import SourceItem

KNOWN_KEYS = frozenset(
    {"title", "date", "lang", "translation_key", "tags", "image", "guid", "summary", "link"}
)
#: other files (images, notes) may live in the folder and are left alone
SUFFIXES = frozenset({".md", ".markdown", ".txt"})
_LANG_SUFFIX = re.compile(r"^[a-z]{2,3}(?:[-_][A-Za-z]{2,4})?$")
# the seed's own format: a last line "Дата: 15.10.2012г."
_DATE_LINE = re.compile(r"\n\s*Дата:\s*(\d{1,2}\.\d{1,2}\.\d{4})\s*г?\.?\s*$")


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader that leaves dates as text, so ``parse_date`` reads every date one way
    (and an impossible date is reported under its key instead of crashing the loader)."""


_FrontMatterLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


class FileError(ValueError):
    """One file of the folder is unusable; the message names the file and the key."""


class FolderSourceConfig(SourceBase):
    """``kind = "folder"``: Markdown or text files with YAML front matter."""

    #: the keys of a smallest working table besides name and kind (docs and tests use it)
    model_config = ConfigDict(json_schema_extra={"examples": [{"path": "news"}]})

    kind: Literal["folder"] = Field(
        description='Selects a folder of Markdown or text files: "folder".'
    )
    path: RelPath = Field(description="Folder holding the files, relative to the config file.")
    pattern: str = Field(
        default="*.md",
        description='Glob pattern of the files read in the folder (not recursive), e.g. "*.md".',
    )


class FolderSource(Source[FolderSourceConfig]):
    """Reads every file matching ``pattern`` in ``path`` (not recursive), sorted by name."""

    kind: ClassVar[str] = "folder"
    config_type: ClassVar[type[FolderSourceConfig]] = FolderSourceConfig

    def __init__(
        self,
        config: FolderSourceConfig,
        client: GuardedClient | None = None,
        policy: Gather | None = None,
    ) -> None:
        super().__init__(config, client, policy)
        self._markdown = MarkdownIt("commonmark", {"html": True}).enable(["table", "strikethrough"])

    def fetch(self, state: SourceState) -> FetchResult:
        """Load every file; unusable files become warnings, not errors."""
        folder = self.config.path
        if not folder.is_dir():
            raise SourceError(f"{folder}: folder not found (source {self.config.name!r})")
        items: list[SourceItem] = []
        warnings: list[str] = []
        paths = folder.glob(self.config.pattern)
        for path in sorted(p for p in paths if p.is_file() and p.suffix.lower() in SUFFIXES):
            try:
                items.append(self.read_file(path))
            except FileError as exc:
                warnings.append(str(exc))
        return FetchResult(items=items, warnings=warnings)

    def read_file(self, path: Path) -> SourceItem:
        """One file as a :class:`SourceItem`; raises :class:`FileError` when unusable."""
        rel = path.relative_to(self.config.path).as_posix()
        try:
            text = path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise FileError(f"{path}: cannot read: {exc}") from exc
        meta, body = split_front_matter(text, path)
        unknown = sorted(set(meta) - KNOWN_KEYS)
        if unknown:
            raise FileError(f"{path}: unknown front matter key {unknown[0]!r}")

        stem, suffix_lang = split_lang_suffix(path)
        is_markdown = path.suffix.lower() in (".md", ".markdown")
        title = _text(meta, "title", path)
        if title is None:
            title, body = _title_from_body(body, is_markdown)
        if not title:
            raise FileError(f"{path}: key 'title' is missing (and the text has no heading)")

        raw_date = meta.get("date")
        if raw_date is None:
            match = _DATE_LINE.search(body)
            if match is None:
                raise FileError(f"{path}: key 'date' is missing")
            raw_date, body = match.group(1), body[: match.start()]
        try:
            published = parse_date(raw_date)
        except ValueError as exc:
            raise FileError(
                f"{path}: key 'date': {exc} (use YYYY-MM-DD, an ISO datetime or DD.MM.YYYY)"
            ) from exc

        tags = meta.get("tags", [])
        if isinstance(tags, str):
            tags = [t.strip() for t in tags.split(",") if t.strip()]
        if not isinstance(tags, list) or not all(isinstance(t, str | int) for t in tags):
            raise FileError(f"{path}: key 'tags': expected a list of words")

        summary = _text(meta, "summary", path)
        return SourceItem(
            source=self.config.name,
            guid=_text(meta, "guid", path) or rel,
            title=title.strip(),
            body_html=self._render(body, is_markdown),
            link=_text(meta, "link", path),
            summary_html=html.escape(summary) if summary else None,
            published=published,
            lang=_text(meta, "lang", path) or suffix_lang,
            translation_key=_text(meta, "translation_key", path) or stem,
            tags=tuple(str(t) for t in tags),
            image=_text(meta, "image", path),
        )

    def _render(self, body: str, is_markdown: bool) -> str:
        if is_markdown:
            return str(self._markdown.render(body))
        paragraphs = [p.strip() for p in re.split(r"\n\s*\n", body) if p.strip()]
        return "\n".join(
            # hard-wrapped prose: a single newline is not a line break
            "<p>" + html.escape(" ".join(p.split())) + "</p>"
            for p in paragraphs
        )


def split_front_matter(text: str, path: Path) -> tuple[dict[str, Any], str]:
    """(front matter mapping, body); a file without front matter has an empty mapping."""
    if not text.startswith("---"):
        return {}, text
    lines = text.splitlines(keepends=True)
    if lines[0].strip() != "---":
        return {}, text
    for index, line in enumerate(lines[1:], start=1):
        if line.strip() in ("---", "..."):
            block, body = "".join(lines[1:index]), "".join(lines[index + 1 :])
            break
    else:
        raise FileError(f"{path}: front matter starts with '---' but never ends")
    try:
        meta = yaml.load(block, Loader=_FrontMatterLoader) or {}
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line_no = f" line {where.line + 2}" if where is not None else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise FileError(f"{path}:{line_no}: broken front matter: {reason}") from exc
    if not isinstance(meta, dict):
        raise FileError(f"{path}: front matter must be a mapping of keys to values")
    return {str(k): v for k, v in meta.items()}, body


def split_lang_suffix(path: Path) -> tuple[str, str | None]:
    """(name without extension and language suffix, language suffix or ``None``)."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    base, dot, maybe_lang = stem.rpartition(".")
    if dot and base and _LANG_SUFFIX.match(maybe_lang):
        return base, maybe_lang.replace("_", "-")
    return stem, None


def _text(meta: dict[str, Any], key: str, path: Path) -> str | None:
    value = meta.get(key)
    if value is None:
        return None
    if isinstance(value, dict | list):
        raise FileError(f"{path}: key {key!r}: expected text, got a {type(value).__name__}")
    return str(value).strip() or None


def _title_from_body(body: str, is_markdown: bool) -> tuple[str, str]:
    """The first heading (Markdown) or first line (text) as title, and the rest as body."""
    lines = body.lstrip("\n").splitlines()
    if not lines:
        return "", body
    first = lines[0].strip()
    if is_markdown:
        if not first.startswith("# "):
            return "", body
        first = first[2:]
    return first.strip(), "\n".join(lines[1:])
