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

from pydantic import (
    BaseModel,
    Field,
    SerializeAsAny,
    ValidationError,
    ValidationInfo,
    ValidatorFunctionWrapHandler,
    WrapValidator,
    field_validator,
    model_validator,
)

from newsletter.config.base import Model, RelPath, check_timezone
from newsletter.config.content import (
    Colors,
    Database,
    ListConfig,
    Locales,
    Organisation,
    Paths,
    Render,
    Rule,
    Security,
    Segment,
    SourceBase,
    Translation,
)
from newsletter.config.desk import Desk
from newsletter.config.gather import Gather
from newsletter.config.providers import HttpProviderBase, ProviderBase
from newsletter.config.registry import UNKNOWN_KIND, validate_tagged
from newsletter.config.schedule import ScheduleJob, SchedulerConfig
from newsletter.config.tracking import Tracking
from newsletter.config.web import Web
from newsletter.config.webhooks import Webhooks
from newsletter.errors import ConfigError
from newsletter.redact import mask_text

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG",
    "Colors",
    "Database",
    "Desk",
    "Gather",
    "HttpProviderBase",
    "ListConfig",
    "Locales",
    "Model",
    "Organisation",
    "Paths",
    "ProviderBase",
    "RelPath",
    "Render",
    "Rule",
    "ScheduleJob",
    "SchedulerConfig",
    "Security",
    "Segment",
    "Settings",
    "SourceBase",
    "Translation",
    "Web",
    "Webhooks",
    "check_timezone",
    "from_dict",
    "load",
]

DEFAULT_CONFIG = "config.toml"
CONFIG_ENV = "NEWSLETTER_CONFIG"
#: a config file is a few kilobytes; anything this large is a mistake (or /dev/zero)
MAX_CONFIG_BYTES = 4 * 1024 * 1024


def _default_provider() -> ProviderBase:
    """The outbox, for a config without a ``[provider]`` table."""
    from newsletter.send.providers.outbox import OutboxProviderConfig

    return OutboxProviderConfig()


def _provider_models() -> dict[str, type[BaseModel]]:
    """Each registered provider's ``[provider]`` model by name (imports the providers)."""
    from newsletter.send.providers import PROVIDERS

    return {name: cls.config_type for name, cls in PROVIDERS.items()}


def _source_models() -> dict[str, type[BaseModel]]:
    """Each registered source kind's ``[[sources]]`` model (imports the sources)."""
    from newsletter.gather.sources import SOURCES

    return {kind: cls.config_type for kind, cls in SOURCES.items()}


def _source(value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo) -> Any:
    return validate_tagged(value, "kind", _source_models(), info.context, handler)


#: one ``[[sources]]`` table, validated against the model its ``kind`` picks
SourceTable = Annotated[SerializeAsAny[SourceBase], WrapValidator(_source)]


class Settings(Model):
    """The whole, validated configuration.

    ``provider`` and each of ``sources`` are validated against the model that their
    ``name`` or ``kind`` picks from the provider or source registry; the providers and
    sources are imported only then, not with this module.
    """

    organisation: Organisation = Field(description="Who sends the newsletter, and its brand.")
    database: Database = Field(default=Database(), description="Where the store lives.")
    paths: Paths = Field(default=Paths(), description="Folders, relative to the config file.")
    locales: Locales = Field(default=Locales(), description="The languages readers get.")
    security: Security = Field(default=Security(), description="Where the signing keys come from.")
    translation: Translation = Field(
        default=Translation(), description="Optional machine translation (DeepL), off by default."
    )
    web: Web = Field(default=Web(), description="The subscriber web app of `newsletter serve`.")
    desk: Desk = Field(
        default=Desk(), description="The staff's web desk under /desk/, off by default."
    )
    webhooks: Webhooks = Field(
        default=Webhooks(), description="Which provider webhooks are accepted, and how."
    )
    tracking: Tracking = Field(
        default=Tracking(), description="Click and open measurement (off by default)."
    )
    render: Render = Field(default=Render(), description="Rendering limits and section titles.")
    gather: Gather = Field(
        default=Gather(), description="Limits on every fetch of gathered content."
    )
    provider: SerializeAsAny[ProviderBase] = Field(
        default_factory=_default_provider,
        description="The email provider that sends, chosen by `name`, and its keys.",
    )
    sources: list[SourceTable] = Field(
        default_factory=list, description="Where news items are gathered from, by `kind`."
    )
    lists: list[ListConfig] = Field(
        default_factory=list, description="Mailing lists, optionally fed from CSV files."
    )
    segments: list[Segment] = Field(
        default_factory=list, description="Sets of subscribers, each getting its own edition."
    )
    schedule: list[ScheduleJob] = Field(
        default_factory=list, description="Jobs that `newsletter run` starts on a schedule."
    )
    scheduler: SchedulerConfig = Field(
        default=SchedulerConfig(), description="How `newsletter run` treats late runs and its lock."
    )
    #: where this config was read from (set by :func:`load`, not a key of the file)
    config_path: Path | None = Field(
        default=None, description="Where this config was read from (set on load, not a key)."
    )
    on_empty: Literal["skip", "error"] = Field(
        default="skip",
        description="Scheduled digests: a segment with nothing new is skipped, or fails the run.",
    )

    @field_validator("provider", mode="wrap")
    @classmethod
    def _provider(
        cls, value: Any, handler: ValidatorFunctionWrapHandler, info: ValidationInfo
    ) -> Any:
        return validate_tagged(value, "name", _provider_models(), info.context, handler)

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
    loc = ".".join(f"[{part}]" if isinstance(part, int) else str(part) for part in err["loc"])
    loc = loc.replace(".[", "[")
    kind = err["type"]
    if kind == "extra_forbidden":
        msg = "unknown key (check the spelling; see config.toml in the project for every key)"
    elif kind == "missing":
        msg = "required key is missing"
    elif kind == UNKNOWN_KIND:
        # a provider name or source kind that is not registered: the message lists them
        msg = str(err["msg"])
    else:
        msg = f"{err['msg']} (got {err.get('input')!r})"
    more = f" (and {len(exc.errors()) - 1} more)" if len(exc.errors()) > 1 else ""
    # a rejected value may be a URL with credentials in it
    return mask_text(f"{path}: {loc or '<top>'}: {msg}{more}")


def load(path: Path | str | None = None) -> Settings:
    """Read and validate a config file; ``None`` means $NEWSLETTER_CONFIG or ./config.toml."""
    cfg_path = Path(path or os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG).resolve()
    try:
        with cfg_path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(
                f"{cfg_path}: larger than {MAX_CONFIG_BYTES} bytes: not a config file"
            )
        # a UTF-8 byte order mark (Windows editors write one) is no TOML syntax error
        raw = tomllib.loads(data.decode("utf-8").removeprefix("\ufeff"))
    except FileNotFoundError as exc:
        raise ConfigError(f"{cfg_path}: config file not found (use --config PATH)") from exc
    except IsADirectoryError as exc:
        raise ConfigError(f"{cfg_path}: is a directory, not a config file") from exc
    except PermissionError as exc:
        raise ConfigError(f"{cfg_path}: cannot read the config file: permission denied") from exc
    except OSError as exc:
        raise ConfigError(f"{cfg_path}: cannot read the config file: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"{cfg_path}: line {line}: not UTF-8 (byte 0x{exc.object[exc.start]:02x}); "
            "save the file as UTF-8"
        ) from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{cfg_path}: not valid TOML: {exc}") from exc
    except RecursionError as exc:
        # tomllib parses nested arrays and inline tables recursively
        raise ConfigError(
            f"{cfg_path}: not valid TOML: arrays or tables nested too deeply"
        ) from exc
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
