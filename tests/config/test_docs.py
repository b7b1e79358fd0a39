"""The docs name every config key and every command, so they cannot drift from the code.

A key counts as documented when its dotted path (as ``newsletter config explain`` prints
it, e.g. ``provider.batch_size`` or ``schedule[].window.start``) is written in backticks
in a table row or heading of docs/configuration.md or docs/providers.md. A command counts
when ``newsletter <command>`` is in backticks in a table row of README.md or docs/.
"""

from __future__ import annotations

import re
import types
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import typer
from pydantic import BaseModel

from newsletter.cli import app
from newsletter.config import Settings
from newsletter.config.explain import INTERNAL_KEYS, all_keys
from newsletter.gather.sources import SOURCES
from newsletter.send.providers import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
KEY_DOCS = (DOCS / "configuration.md", DOCS / "providers.md")
_SPAN = re.compile(r"`([^`]+)`")


def _spans(paths: typing.Iterable[Path], *, headings: bool = True) -> set[str]:
    """Backticked text on table rows (and headings) of ``paths``."""
    found: set[str] = set()
    for path in paths:
        for line in path.read_text(encoding="utf-8").splitlines():
            stripped = line.lstrip()
            if stripped.startswith("|") or (headings and stripped.startswith("#")):
                found.update(_SPAN.findall(line))
    return found


# -- an independent walk over the models (not the one config explain uses) ----------------


def _unwrap(annotation: Any) -> list[Any]:
    """The non-None types inside ``annotation`` (Annotated and unions opened)."""
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return [t for a in get_args(annotation) for t in _unwrap(a)]
    return [] if annotation is type(None) else [annotation]


def _tag(model: type[BaseModel]) -> str | None:
    for name in ("name", "kind"):
        field = model.model_fields.get(name)
        if field is not None and get_origin(field.annotation) is Literal:
            return str(get_args(field.annotation)[0])
    return None


def _registry_models(registry: dict[str, Any], union: Any) -> list[type[BaseModel]]:
    """Each registered class's config model: its ``config_type``, else the union's member."""
    members = {_tag(m): m for m in _unwrap(union)}
    models = []
    for name, cls in registry.items():
        model = getattr(cls, "config_type", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel) and _tag(model) == name):
            model = members[name]
        models.append(model)
    return models


#: the discriminated unions Settings declares (today those of config/providers.py and
#: config/content.py), wherever they come to be defined
PROVIDER_UNION = Settings.model_fields["provider"].annotation
SOURCE_UNION = get_args(Settings.model_fields["sources"].annotation)[0]
PROVIDER_MODELS = _registry_models(PROVIDERS, PROVIDER_UNION)
SOURCE_MODELS = _registry_models(SOURCES, SOURCE_UNION)


def _field_paths(model: type[BaseModel], prefix: str = "") -> Iterator[str]:
    for name, field in model.model_fields.items():
        if model is Settings and name in INTERNAL_KEYS:
            continue
        path = prefix + name
        if model is Settings and name == "provider":
            yield path
            for member in PROVIDER_MODELS:
                yield from _field_paths(member, path + ".")
            continue
        if model is Settings and name == "sources":
            yield path + "[]"
            for member in SOURCE_MODELS:
                yield from _field_paths(member, path + "[].")
            continue
        types_ = _unwrap(field.annotation)
        if len(types_) == 1 and get_origin(types_[0]) is list:
            (item,) = _unwrap(get_args(types_[0])[0])
            if isinstance(item, type) and issubclass(item, BaseModel):
                yield path + "[]"
                yield from _field_paths(item, path + "[].")
                continue
        yield path
        for kind in types_:
            if isinstance(kind, type) and issubclass(kind, BaseModel):
                yield from _field_paths(kind, path + ".")


def test_registries_and_config_models_name_the_same_providers_and_kinds() -> None:
    # the config validates [provider] and [[sources]] through the registries, so the
    # models documented are exactly the registered ones, each tagged with its own name
    assert {_tag(m) for m in PROVIDER_MODELS} == set(PROVIDERS)
    assert {_tag(m) for m in SOURCE_MODELS} == set(SOURCES)


def test_config_explain_lists_every_field_of_every_model() -> None:
    listed = {k.path for k in all_keys()}
    missing = sorted(set(_field_paths(Settings)) - listed)
    assert not missing, f"config explain misses {missing}"


def test_every_config_key_is_in_the_docs() -> None:
    documented = _spans(KEY_DOCS)
    keys = sorted(set(_field_paths(Settings)) | {k.path for k in all_keys()})
    missing = [k for k in keys if k not in documented]
    assert not missing, (
        f"config keys in no table row or heading of docs/configuration.md or "
        f"docs/providers.md: {missing}"
    )


def test_every_key_outside_providers_and_sources_has_a_description() -> None:
    # provider and source models get theirs with their move into provider/source modules
    bare = [
        k.path
        for k in all_keys()
        if not k.description and not k.path.startswith(("provider.", "sources[]."))
    ]
    assert not bare, f"keys without Field(description=...): {bare}"


def _commands(group: Any, prefix: str) -> Iterator[str]:
    """Every command below ``group`` (a click group; typer may bring its own click)."""
    for name, command in group.commands.items():
        if command.hidden:
            continue
        path = f"{prefix} {name}"
        if hasattr(command, "commands"):
            yield from _commands(command, path)
        else:
            yield path


def _mentions(spans: set[str], command: str) -> bool:
    return any(s == command or s.startswith((command + " ", command + "[")) for s in spans)


def test_every_command_is_in_a_command_table() -> None:
    root = typer.main.get_command(app)
    assert hasattr(root, "commands")
    commands = sorted(_commands(root, "newsletter"))
    assert "newsletter config explain" in commands and "newsletter editions show" in commands
    spans = _spans([ROOT / "README.md", *sorted(DOCS.glob("*.md"))], headings=False)
    missing = [c for c in commands if not _mentions(spans, c)]
    assert not missing, f"commands in no table row of README.md or docs/: {missing}"
    readme = _spans([ROOT / "README.md"], headings=False)
    top = sorted({" ".join(c.split()[:2]) for c in commands})
    missing_top = [c for c in top if not _mentions(readme, c)]
    assert not missing_top, f"not in the README's command table: {missing_top}"
