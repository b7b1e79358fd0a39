"""config.toml -> validated, typed settings.

Validated once, at load: an unknown key or a wrong type fails with the file, the key path
and a hint, in one line. Paths resolve relative to the config file. Secrets never live in
the file: it names the environment variables that hold them.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from newsletter.errors import ConfigError

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "NEWSLETTER_CONFIG"


def _resolve_path(value: Path, info: ValidationInfo) -> Path:
    base = (info.context or {}).get("base_dir")
    if base is not None and not value.is_absolute():
        return (Path(base) / value).resolve()
    return value


#: a path in the config file, resolved relative to the file's folder
RelPath = Annotated[Path, AfterValidator(_resolve_path)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Colors(_Model):
    """Brand colours used by the default templates (hex, #rrggbb)."""

    primary: str = "#0b5e7a"
    accent: str = "#c8102e"
    text: str = "#1f2933"
    muted: str = "#52606d"
    background: str = "#f4f6f8"
    surface: str = "#ffffff"

    @field_validator("*")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not (len(value) == 7 and value.startswith("#")):
            raise ValueError("expected a colour like '#0b5e7a'")
        int(value[1:], 16)
        return value.lower()


class Organisation(_Model):
    """Who sends the newsletter."""

    name: str
    #: the name per locale, for the From display name and the header
    names: dict[str, str] = Field(default_factory=dict)
    address: str = ""
    website: str = "https://example.org"
    logo_url: str | None = None
    from_email: str
    reply_to: str | None = None
    colors: Colors = Colors()

    def name_for(self, locale: str) -> str:
        """The organisation's name as readers of ``locale`` know it."""
        return self.names.get(locale, self.name)


class Database(_Model):
    """Where the store lives; ``url_env`` (if set in the environment) overrides ``url``."""

    url: str = "sqlite:///var/newsletter.db"
    url_env: str = "NEWSLETTER_DATABASE_URL"


class Paths(_Model):
    """Folders, relative to the config file."""

    templates: RelPath = Path("templates")
    var: RelPath = Path("var")
    preview: RelPath = Path("preview")


class Locales(_Model):
    """The languages readers get; each needs a message catalog."""

    default: str = "bg"
    available: list[str] = Field(default_factory=lambda: ["bg", "en"])
    #: per-locale fallback chain for items, e.g. ro = ["en", "bg"]
    fallback: dict[str, list[str]] = Field(default_factory=dict)
    #: detect the language of items that declare none (restricted to ``available``)
    detect: bool = True
    #: below this confidence the source's declared language (or ``default``) is kept
    detect_min_confidence: float = Field(default=0.8, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _default_is_available(self) -> Locales:
        if self.default not in self.available:
            raise ValueError(f"default locale {self.default!r} is not in available")
        return self

    def chain(self, locale: str) -> list[str]:
        """Languages to try, in order, for a reader of ``locale`` (no duplicates)."""
        chain = [locale, *self.fallback.get(locale, ["en"])]
        return list(dict.fromkeys(chain))

    def resolve(self, locale: str) -> str:
        """The available locale a reader of ``locale`` gets the chrome in."""
        for candidate in self.chain(locale):
            if candidate in self.available:
                return candidate
        return self.default


class Translation(_Model):
    """Optional machine translation of items missing in a reader's language (off by default).

    Translations are made once, cached in the store and always labelled as machine-made.
    """

    enabled: bool = False
    provider: Literal["deepl"] = "deepl"
    #: environment variable holding the API key (never the key itself)
    api_key_env: str = "DEEPL_API_KEY"
    #: DeepL's free plan uses api-free.deepl.com, pro uses api.deepl.com
    plan: Literal["free", "pro"] = "free"
    #: overrides the plan's host (proxies, tests)
    base_url: str | None = None
    timeout: float = Field(default=15.0, gt=0)


class Security(_Model):
    """Names of environment variables holding secrets (never the secrets themselves)."""

    secret_key_env: str = "NEWSLETTER_SECRET_KEY"


class Web(_Model):
    """The subscriber-facing web app; ``base_url`` is what links in emails point to."""

    base_url: str = "https://news.example.org"
    host: str = "127.0.0.1"
    port: int = 8000

    @field_validator("base_url")
    @classmethod
    def _https(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must start with https://")
        return value.rstrip("/")


class Render(_Model):
    """Rendering limits."""

    #: HTML budget per variant in bytes; Gmail clips bodies above ~102 KB
    max_html_bytes: int = Field(default=100_000, gt=1000)
    #: what to do above the budget: drop items from the end with a warning, or fail
    over_budget: Literal["trim", "refuse"] = "trim"
    max_items: int = Field(default=30, gt=0)
    summary_chars: int = Field(default=320, gt=20)


class _SourceBase(_Model):
    name: str
    #: declared language of items that do not say otherwise
    lang: str | None = None
    enabled: bool = True
    tags: list[str] = Field(default_factory=list)


class FolderSourceConfig(_SourceBase):
    """Markdown or text files with YAML front matter."""

    kind: Literal["folder"]
    path: RelPath
    pattern: str = "*.md"


class FeedSourceConfig(_SourceBase):
    """An RSS or Atom feed, fetched over HTTP (or read from a local file)."""

    kind: Literal["feed"]
    url: str | None = None
    path: RelPath | None = None
    timeout: float = Field(default=15.0, gt=0)
    #: how variants in several feeds are matched: guid suffix after this separator, or link
    translation_key: Literal["guid", "link", "none"] = "none"

    @model_validator(mode="after")
    def _one_location(self) -> FeedSourceConfig:
        if (self.url is None) == (self.path is None):
            raise ValueError("give exactly one of 'url' or 'path'")
        return self


class PageSourceConfig(_SourceBase):
    """An HTML listing page: item links by CSS selector, then each article page."""

    kind: Literal["page"]
    url: str
    item_links: str
    title: str = "h1"
    body: str = "article"
    date: str | None = None
    date_format: str | None = None
    image: str | None = None
    timeout: float = Field(default=15.0, gt=0)
    max_items: int = Field(default=30, gt=0)


SourceConfig = Annotated[
    FolderSourceConfig | FeedSourceConfig | PageSourceConfig, Field(discriminator="kind")
]


class Rule(_Model):
    """One condition over a subscriber field; a segment matches when all its rules do."""

    field: Literal["lists", "tags", "locale", "country", "organisation", "email"]
    op: Literal["==", "!=", "in", "not in", "contains", "not contains"] = "=="
    value: str | list[str]


class Segment(_Model):
    """A named set of subscribers that gets its own edition."""

    name: str
    description: str = ""
    rules: list[Rule] = Field(default_factory=list)
    period: Literal["week", "month", "day"] = "week"
    timezone: str = "Europe/Sofia"
    #: how far back an item may be published to count as new (default: one period)
    lookback_days: int | None = Field(default=None, gt=0)
    #: only items from these sources (empty: all)
    sources: list[str] = Field(default_factory=list)
    #: fewer new items than this: the segment is skipped this period
    min_items: int = Field(default=1, ge=0)
    #: Jinja expressions, rendered per locale with gettext available
    subject: str | None = None
    preheader: str | None = None
    #: the From display name (default: the organisation's name in the reader's locale)
    from_name: str | None = None

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name)") from exc
        return value

    @property
    def tz(self) -> ZoneInfo:
        """The segment's time zone."""
        return ZoneInfo(self.timezone)


class ListConfig(_Model):
    """A mailing list; with ``file``, that CSV is merged into the store before each digest.

    Merging only adds people and fills empty fields: it never resubscribes anyone.
    """

    name: str
    description: str = ""
    file: RelPath | None = None


class OutboxProviderConfig(_Model):
    """Writes one .eml per message into a folder instead of sending."""

    name: Literal["outbox"] = "outbox"
    path: RelPath = Path("outbox")
    batch_size: int = Field(default=200, gt=0)


ProviderConfig = Annotated[OutboxProviderConfig, Field(discriminator="name")]


class ScheduleJob(_Model):
    """A job for ``newsletter run``: gather or send a digest, on a cron expression."""

    id: str
    job: Literal["gather", "digest"]
    cron: str
    timezone: str = "Europe/Sofia"
    segment: str | None = None

    @model_validator(mode="after")
    def _valid_cron(self) -> ScheduleJob:
        from apscheduler.triggers.cron import CronTrigger

        try:
            CronTrigger.from_crontab(self.cron, timezone=ZoneInfo(self.timezone))
        except (ValueError, ZoneInfoNotFoundError) as exc:
            raise ValueError(f"invalid cron {self.cron!r}: {exc}") from exc
        return self


class Settings(_Model):
    """The whole, validated configuration."""

    organisation: Organisation
    database: Database = Database()
    paths: Paths = Paths()
    locales: Locales = Locales()
    security: Security = Security()
    translation: Translation = Translation()
    web: Web = Web()
    render: Render = Render()
    provider: ProviderConfig = OutboxProviderConfig()
    sources: list[SourceConfig] = Field(default_factory=list)
    lists: list[ListConfig] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    schedule: list[ScheduleJob] = Field(default_factory=list)
    #: where this config was read from (set by :func:`load`)
    config_path: Path | None = None
    #: what to say when a segment has nothing new: "skip" quietly logs, "error" fails the run
    on_empty: Literal["skip", "error"] = "skip"

    @model_validator(mode="after")
    def _unique_names(self) -> Settings:
        for label, names in (
            ("sources", [s.name for s in self.sources]),
            ("segments", [s.name for s in self.segments]),
            ("lists", [x.name for x in self.lists]),
            ("schedule", [j.id for j in self.schedule]),
        ):
            dupes = sorted({n for n in names if names.count(n) > 1})
            if dupes:
                raise ValueError(f"{label}: duplicate name {dupes[0]!r}")
        known = {s.name for s in self.segments}
        for job in self.schedule:
            if job.job == "digest" and job.segment is not None and job.segment not in known:
                raise ValueError(f"schedule {job.id!r}: unknown segment {job.segment!r}")
        return self

    def database_url(self) -> str:
        """The database URL, from the environment variable if set, SQLite paths resolved."""
        url = os.environ.get(self.database.url_env) or self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != "sqlite:///:memory:":
            path = Path(url[len(prefix) :])
            if not path.is_absolute():
                base = self.config_path.parent if self.config_path else Path.cwd()
                path = (base / path).resolve()
            return prefix + str(path)
        return url

    def segment(self, name: str) -> Segment:
        """The segment called ``name``."""
        for seg in self.segments:
            if seg.name == name:
                return seg
        known = ", ".join(s.name for s in self.segments) or "none configured"
        raise ConfigError(f"unknown segment {name!r} (known: {known})")


def _format_error(path: Path, exc: ValidationError, model: type[BaseModel]) -> str:
    err = exc.errors()[0]
    loc = ".".join(
        f"[{part}]" if isinstance(part, int) else str(part) for part in err["loc"]
    ).replace(".[", "[")
    # discriminated unions put the tag in the location; it is noise to a user
    for tag in ("folder", "feed", "page", "outbox"):
        loc = loc.replace(f".{tag}.", ".").removesuffix(f".{tag}")
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key (check the spelling; see config.toml in the project for every key)"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == "union_tag_invalid":
        msg = f"unknown kind {err['input'].get('kind', err['input'].get('name'))!r}; " + str(
            err["msg"]
        ).split("does not match any of the expected tags: ")[-1].join(["expected one of ", ""])
    else:
        msg = f"{err['msg']} (got {err.get('input')!r})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    return f"{path}: {loc or '<top>'}: {msg}{more}"


def load(path: Path | str | None = None) -> Settings:
    """Read and validate a config file; ``None`` means $NEWSLETTER_CONFIG or ./config.toml."""
    cfg_path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()
    try:
        raw = tomllib.loads(cfg_path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{cfg_path}: config file not found (use --config PATH)") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from exc
    return from_dict(raw, cfg_path)


def from_dict(raw: dict[str, Any], cfg_path: Path) -> Settings:
    """Validate an already parsed config as if it had been read from ``cfg_path``."""
    if "config_path" in raw:
        raise ConfigError(f"{cfg_path}: config_path: unknown key")
    try:
        return Settings.model_validate(
            {**raw, "config_path": cfg_path}, context={"base_dir": cfg_path.parent}
        )
    except ValidationError as exc:
        raise ConfigError(_format_error(cfg_path, exc, Settings)) from exc
