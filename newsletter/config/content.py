"""What goes into a digest: organisation, locales, sources, segments, lists, rendering."""

from __future__ import annotations

from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from newsletter.audience.csvfile import text_encoding
from newsletter.config.base import Model, RelPath, check_timezone


class Colors(Model):
    """Brand colours used by the default templates (hex, #rrggbb)."""

    primary: str = "#0b5e7a"
    accent: str = "#c8102e"
    text: str = "#1f2933"
    muted: str = "#52606d"
    background: str = "#f4f6f8"
    surface: str = "#ffffff"
    #: used by clients in dark mode (prefers-color-scheme, Outlook.com's data-ogsc hooks)
    dark_background: str = "#11161b"
    dark_surface: str = "#1b2229"
    dark_text: str = "#e6e9ec"
    dark_muted: str = "#a8b3bd"
    dark_primary: str = "#7cc7e0"
    dark_accent: str = "#f07a8a"

    @field_validator("*")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not (len(value) == 7 and value.startswith("#")):
            raise ValueError("expected a colour like '#0b5e7a'")
        int(value[1:], 16)
        return value.lower()


class Organisation(Model):
    """Who sends the newsletter."""

    name: str
    #: the name per locale, for the From display name and the header
    names: dict[str, str] = Field(default_factory=dict)
    #: postal address shown in every email's footer; ``addresses`` per locale override it
    address: str = ""
    addresses: dict[str, str] = Field(default_factory=dict)
    #: why readers get the email, per locale (default: the catalog's "you are on the list")
    reasons: dict[str, str] = Field(default_factory=dict)
    website: str = "https://example.org"
    #: absolute URL of a logo that reads on ``colors.primary``; drawn at logo_width x height
    logo_url: str | None = None
    logo_width: int = Field(default=160, gt=0, le=552)
    logo_height: int = Field(default=48, gt=0, le=300)
    from_email: str
    reply_to: str | None = None
    colors: Colors = Colors()

    def name_for(self, locale: str) -> str:
        """The organisation's name as readers of ``locale`` know it."""
        return self.names.get(locale, self.name)

    def address_for(self, locale: str) -> str:
        """The postal address as written for readers of ``locale``."""
        return self.addresses.get(locale, self.address)


class Database(Model):
    """Where the store lives; ``url_env`` (if set in the environment) overrides ``url``."""

    url: str = "sqlite:///var/newsletter.db"
    url_env: str = "NEWSLETTER_DATABASE_URL"


class Paths(Model):
    """Folders, relative to the config file."""

    templates: RelPath = Path("templates")
    var: RelPath = Path("var")
    preview: RelPath = Path("preview")


class Locales(Model):
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


class Translation(Model):
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


class Security(Model):
    """Names of environment variables holding secrets (never the secrets themselves)."""

    secret_key_env: str = "NEWSLETTER_SECRET_KEY"


class Render(Model):
    """Rendering limits."""

    #: HTML budget per variant in bytes; Gmail clips bodies above ~102 KB
    max_html_bytes: int = Field(default=100_000, gt=1000)
    #: what to do above the budget: drop items from the end with a warning, or fail
    over_budget: Literal["trim", "refuse"] = "trim"
    max_items: int = Field(default=30, gt=0)
    summary_chars: int = Field(default=320, gt=20)
    #: headings of the sections of segments with ``sections``: tag or source name -> locale
    #: -> title (missing: the name itself)
    section_titles: dict[str, dict[str, str]] = Field(default_factory=dict)


class SourceBase(Model):
    """Keys every ``[[sources]]`` table has; ``kind`` picks the rest.

    Each kind's own model (``FeedSourceConfig`` and so on) lives beside its adapter in
    ``newsletter/gather/sources/<kind>.py`` as the class's ``config_type``; the table is
    validated against the model that ``kind`` picks from the registry
    (:data:`newsletter.gather.sources.SOURCES`).
    """

    name: str = Field(
        description="Name of the source, unique in the file; items and segments' "
        "``sources`` refer to it."
    )
    kind: str = Field(
        description='What the source reads: a registered source kind, e.g. "folder", '
        '"feed" or "page".'
    )
    lang: str | None = Field(
        default=None,
        description="Language of the items that declare none and are not detected, e.g. "
        '"bg"; unset means the default locale.',
    )
    enabled: bool = Field(
        default=True,
        description="Whether a gather reads this source; a disabled one is read only "
        "when named on the command line.",
    )
    tags: list[str] = Field(
        default_factory=list, description="Tags added to every item of this source."
    )


class Rule(Model):
    """One condition over a subscriber field; a segment matches when all its rules do."""

    field: Literal["lists", "tags", "locale", "country", "organisation", "email"]
    op: Literal["==", "!=", "in", "not in", "contains", "not contains"] = "=="
    value: str | list[str]


#: values of a segment's ``overlap`` key
OVERLAP_MODES = ("exclusive", "allow")


class Segment(Model):
    """A named set of subscribers that gets its own edition."""

    name: str
    description: str = ""
    #: the description per locale (archive pages and feeds), overriding ``description``
    descriptions: dict[str, str] = Field(default_factory=dict)
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
    #: after the lead story, group the others under a heading per (first) tag or per
    #: source, in order of first appearance; stories without a tag come last
    sections: Literal["none", "tag", "source"] = "none"
    #: "exclusive": a subscriber who also matches an earlier exclusive segment with the
    #: same ``period`` gets that one's digest instead (one digest per person per period);
    #: "allow": everyone matching gets this one too, for a digest that is really different
    overlap: Literal["exclusive", "allow"] = "exclusive"

    @field_validator("overlap", mode="before")
    @classmethod
    def _overlap(cls, value: object) -> object:
        # before pydantic's own check, whose message gives no hint of what each value does
        if value not in OVERLAP_MODES:
            raise ValueError(
                'expected "exclusive" (the default: one digest per person per period, the '
                'first matching segment in config order wins) or "allow" (this digest goes '
                "to everyone matching, whatever else they get)"
            )
        return value

    @property
    def exclusive(self) -> bool:
        """Whether this segment takes part in "one digest per person per period"."""
        return self.overlap == "exclusive"

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @property
    def tz(self) -> ZoneInfo:
        """The segment's time zone."""
        return ZoneInfo(self.timezone)

    def description_for(self, locale: str) -> str:
        """What readers of ``locale`` see as the segment's title (its name if none)."""
        return self.descriptions.get(locale) or self.description or self.name


class ListConfig(Model):
    """A mailing list; with ``file``, that CSV is merged into the store before each digest.

    Merging only adds people and fills empty fields: it never resubscribes anyone.
    """

    name: str
    description: str = ""
    #: the description per locale (sign-up form, preference centre), overriding ``description``
    descriptions: dict[str, str] = Field(default_factory=dict)
    file: RelPath | None = None
    #: the file's encoding when it has no byte order mark and is not UTF-8 (e.g. cp1251)
    encoding: str | None = None
    #: anyone may join it on the sign-up form and in the preference centre
    public: bool = False

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        return None if value is None else text_encoding(value)

    def description_for(self, locale: str) -> str:
        """What readers of ``locale`` see as the list's label (its name if none)."""
        return self.descriptions.get(locale) or self.description or self.name
