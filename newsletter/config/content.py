"""What goes into a digest: organisation, locales, sources, segments, lists, rendering."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import Field, field_validator, model_validator

from newsletter.audience.csvfile import text_encoding
from newsletter.config.base import Model, RelPath, check_timezone
from newsletter.config.schedule import Duration


class Colors(Model):
    """Brand colours used by the default templates (hex, #rrggbb)."""

    primary: str = Field(
        default="#0b5e7a", description="Masthead background, headings and section rules."
    )
    accent: str = Field(default="#c8102e", description='Background of the "read more" buttons.')
    text: str = Field(default="#1f2933", description="Body text in light mode.")
    muted: str = Field(default="#52606d", description="Dates, footer and other secondary text.")
    background: str = Field(default="#f4f6f8", description="Page background around the column.")
    surface: str = Field(default="#ffffff", description="Background of the content column.")
    dark_background: str = Field(
        default="#11161b", description="Page background in dark mode (prefers-color-scheme)."
    )
    dark_surface: str = Field(
        default="#1b2229", description="Background of the content column in dark mode."
    )
    dark_text: str = Field(default="#e6e9ec", description="Body text in dark mode.")
    dark_muted: str = Field(default="#a8b3bd", description="Secondary text in dark mode.")
    dark_primary: str = Field(
        default="#7cc7e0", description="Headings and section rules in dark mode."
    )
    dark_accent: str = Field(
        default="#f07a8a", description='Background of the "read more" buttons in dark mode.'
    )

    @field_validator("*")
    @classmethod
    def _hex(cls, value: str) -> str:
        if not (len(value) == 7 and value.startswith("#")):
            raise ValueError("expected a colour like '#0b5e7a'")
        int(value[1:], 16)
        return value.lower()


class Organisation(Model):
    """Who sends the newsletter."""

    name: str = Field(description="The organisation's name, used where no locale has its own.")
    names: dict[str, str] = Field(
        default_factory=dict,
        description="The name per locale, for the From display name and the email's header.",
    )
    address: str = Field(default="", description="Postal address shown in every email's footer.")
    addresses: dict[str, str] = Field(
        default_factory=dict, description="The postal address per locale, overriding `address`."
    )
    reasons: dict[str, str] = Field(
        default_factory=dict,
        description="Why readers get the email, per locale (default: the catalog's text).",
    )
    website: str = Field(
        default="https://example.org", description="The organisation's website, linked in emails."
    )
    logo_url: str | None = Field(
        default=None,
        description="Absolute URL of a logo that reads on `colors.primary` (none: the name).",
    )
    logo_width: int = Field(
        default=160, gt=0, le=552, description="Width in pixels the logo is drawn at."
    )
    logo_height: int = Field(
        default=48, gt=0, le=300, description="Height in pixels the logo is drawn at."
    )
    from_email: str = Field(description="The From address of every email.")
    reply_to: str | None = Field(default=None, description="Reply-To address (none: no header).")
    colors: Colors = Field(default=Colors(), description="Brand colours of the default templates.")

    def name_for(self, locale: str) -> str:
        """The organisation's name as readers of ``locale`` know it."""
        return self.names.get(locale, self.name)

    def address_for(self, locale: str) -> str:
        """The postal address as written for readers of ``locale``."""
        return self.addresses.get(locale, self.address)


class Database(Model):
    """Where the store lives; ``url_env`` (if set in the environment) overrides ``url``."""

    url: str = Field(
        default="sqlite:///var/newsletter.db",
        description="SQLAlchemy URL of the store; a relative SQLite path is under the config.",
    )
    url_env: str = Field(
        default="NEWSLETTER_DATABASE_URL",
        description="Environment variable whose value, when set, wins over `url`.",
    )


class Paths(Model):
    """Folders, relative to the config file."""

    templates: RelPath = Field(
        default=Path("templates"), description="Folder of the email and web page templates."
    )
    var: RelPath = Field(
        default=Path("var"), description="Folder for local state such as the development key."
    )
    preview: RelPath = Field(
        default=Path("preview"), description="Where `newsletter preview` writes by default."
    )


class Locales(Model):
    """The languages readers get; each needs a message catalog."""

    default: str = Field(
        default="bg", description="Locale of readers and items that have none; must be available."
    )
    available: list[str] = Field(
        default_factory=lambda: ["bg", "en"],
        description="Locales readers may get; each needs a message catalog (checked at start).",
    )
    fallback: dict[str, list[str]] = Field(
        default_factory=dict,
        description='Per-locale fallback chain for items, e.g. ro = ["en", "bg"] (default: en).',
    )
    detect: bool = Field(
        default=True,
        description="Detect the language of items that declare none (among `available`).",
    )
    detect_min_confidence: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description="Below this confidence the source's `lang` (else `default`) is kept.",
    )

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

    enabled: bool = Field(
        default=False, description="Machine-translate stories missing in a reader's chain."
    )
    provider: Literal["deepl"] = Field(default="deepl", description="The translation service.")
    api_key_env: str = Field(
        default="DEEPL_API_KEY", description="Environment variable holding the API key."
    )
    plan: Literal["free", "pro"] = Field(
        default="free",
        description="DeepL plan: free uses api-free.deepl.com, pro uses api.deepl.com.",
    )
    base_url: str | None = Field(
        default=None, description="Overrides the plan's host (proxies, tests)."
    )
    timeout: float = Field(default=15.0, gt=0, description="Seconds for one translation request.")


class Security(Model):
    """Names of environment variables holding secrets (never the secrets themselves)."""

    secret_key_env: str = Field(
        default="NEWSLETTER_SECRET_KEY",
        description="Environment variable with comma-separated signing keys, newest first.",
    )
    legacy_token_days: int = Field(
        default=365,
        ge=0,
        description="Days that links signed in the earlier, longer format (itsdangerous) "
        "keep working after they were issued.",
    )


class Render(Model):
    """Rendering limits."""

    max_html_bytes: int = Field(
        default=100_000,
        gt=1000,
        description="HTML budget per variant in bytes; Gmail clips bodies above about 102 KB.",
    )
    over_budget: Literal["trim", "refuse"] = Field(
        default="trim",
        description="Above the budget: drop items from the end with a warning, or fail.",
    )
    max_items: int = Field(default=30, gt=0, description="Most stories in one digest.")
    summary_chars: int = Field(
        default=320, gt=20, description="Longest summary of a story, in characters."
    )
    section_titles: dict[str, dict[str, str]] = Field(
        default_factory=dict,
        description="Section headings: tag or source name -> locale -> title (else the name).",
    )


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

    field: Literal["lists", "tags", "locale", "country", "organisation", "email"] = Field(
        description="The subscriber field the rule tests."
    )
    op: Literal["==", "!=", "in", "not in", "contains", "not contains"] = Field(
        default="==", description="How the field is compared with `value` (case-insensitive)."
    )
    value: str | list[str] = Field(description="The value, or values, to compare with.")


#: values of a segment's ``overlap`` key
OVERLAP_MODES = ("exclusive", "allow")


class Segment(Model):
    """A named set of subscribers that gets its own edition."""

    name: str = Field(description="The segment's unique name, used in commands and the store.")
    description: str = Field(
        default="", description="The readers' name for the segment (else its name)."
    )
    descriptions: dict[str, str] = Field(
        default_factory=dict, description="The description per locale, overriding `description`."
    )
    rules: list[Rule] = Field(
        default_factory=list,
        description="Conditions a subscriber must all meet (none: every subscriber).",
    )
    period: Literal["week", "month", "day"] = Field(
        default="week", description="How often the segment gets an edition: one per period."
    )
    timezone: str = Field(
        default="Europe/Sofia", description="IANA time zone in which periods begin and end."
    )
    #: a story is new when published within one period (with carry-over of held-back
    #: stories for at most four periods); lookback_days replaces both
    lookback_days: int | None = Field(
        default=None,
        gt=0,
        description="Days back a story may be published to be new (default: one period).",
    )
    sources: list[str] = Field(
        default_factory=list, description="Only items from these sources (empty: all)."
    )
    min_items: int = Field(
        default=1, ge=0, description="Fewer new stories than this: the segment skips the period."
    )
    subject: str | None = Field(
        default=None, description="Jinja expression for the subject, rendered per locale."
    )
    preheader: str | None = Field(
        default=None, description="Jinja expression for the preheader, rendered per locale."
    )
    from_name: str | None = Field(
        default=None,
        description="Jinja expression for the From name (default: the organisation's name).",
    )
    #: after the lead story, group the others under a heading per (first) tag or per
    #: source, in order of first appearance; stories without a tag come last
    sections: Literal["none", "tag", "source"] = Field(
        default="none", description="Group the stories after the lead by tag or by source."
    )
    #: "exclusive": a subscriber who also matches an earlier exclusive segment with the
    #: same ``period`` gets that one's digest instead (one digest per person per period);
    #: "allow": everyone matching gets this one too, for a digest that is really different
    overlap: Literal["exclusive", "allow"] = Field(
        default="exclusive",
        description="exclusive: one digest per person per period; allow: this one goes too.",
    )

    #: "required": a prepared edition waits (status awaiting_approval) until a person
    #: approves it in the desk or with `editions approve`, or ``approve_within`` passes
    approval: Literal["none", "required"] = Field(
        default="none",
        description='"required": each edition waits for a person\'s approval before sending.',
    )
    approve_within: Duration | None = Field(
        default=None,
        description='With approval = "required": approve it anyway this long after, e.g. "4h".',
    )
    approvers: list[str] = Field(
        default_factory=list,
        description="Addresses emailed a link to the desk when an edition awaits approval.",
    )

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, value: list[str]) -> list[str]:
        for address in value:
            local, at, domain = address.partition("@")
            if not (local and at and "." in domain) or any(c.isspace() for c in address):
                raise ValueError(f"not an email address: {address!r}")
        return value

    @model_validator(mode="after")
    def _approval(self) -> Segment:
        if self.approve_within is not None:
            if self.approval != "required":
                raise ValueError('approve_within goes with approval = "required"')
            if self.approve_within < timedelta(minutes=1):
                raise ValueError("approve_within must be at least 1m")
        return self

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

    name: str = Field(description="The list's unique name, as in a subscriber's `lists`.")
    description: str = Field(default="", description="The readers' name for the list.")
    descriptions: dict[str, str] = Field(
        default_factory=dict, description="The description per locale, overriding `description`."
    )
    file: RelPath | None = Field(
        default=None, description="A CSV file merged into the store before every digest."
    )
    encoding: str | None = Field(
        default=None,
        description="The file's encoding when it has no byte order mark and is not UTF-8.",
    )
    public: bool = Field(
        default=False,
        description="Anyone may join it on the sign-up form and in the preference centre.",
    )

    @field_validator("encoding")
    @classmethod
    def _encoding(cls, value: str | None) -> str | None:
        return None if value is None else text_encoding(value)

    def description_for(self, locale: str) -> str:
        """What readers of ``locale`` see as the list's label (its name if none)."""
        return self.descriptions.get(locale) or self.description or self.name
