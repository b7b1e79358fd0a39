"""Every key config.toml takes, with its type, default and description, for people.

The keys are read from the models themselves: :class:`~newsletter.config.Settings` walked
recursively, the ``[provider]`` models through the provider registry
(:data:`newsletter.send.providers.PROVIDERS`, each class's ``config_type``) and the
``[[sources]]`` models through the source registry
(:data:`newsletter.gather.sources.SOURCES`). A registered class without a ``config_type``
is matched by its name to a member of the discriminated union the ``Settings`` field is
declared with (the unions of ``config/providers.py`` and ``config/content.py``). The
descriptions are the models' ``Field(description=...)``, so ``newsletter config explain``,
``docs/configuration.md`` and the code cannot say different things without a test failing.

Paths are dotted, arrays of tables written ``name[]``: ``provider.batch_size``,
``webhooks.ses.topic_arns``, ``schedule[].window.start``. A key whose type, default or
meaning differs between providers (or source kinds) is listed once per variant, with the
provider names (or kinds) it applies to.
"""

from __future__ import annotations

import difflib
import json
import re
import types
import typing
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import time, timedelta
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from newsletter.config.schedule import format_duration
from newsletter.errors import ConfigError

__all__ = ["INTERNAL_KEYS", "KeyDoc", "UnknownKeyError", "all_keys", "explain"]

#: fields of Settings that are set by the program, never written in the file
INTERNAL_KEYS = frozenset({"config_path"})

#: a tag field (``name`` of a provider, ``kind`` of a source) that has no description yet
_TAG_DESCRIPTIONS = {
    "name": "Which provider sends; its name picks the keys below.",
    "kind": "What kind of source it is; the kind picks the keys below.",
}


class UnknownKeyError(ConfigError):
    """No config key has the path that was asked about."""


@dataclass(frozen=True)
class KeyDoc:
    """One config key as a person reads it."""

    #: dotted path, arrays of tables as ``name[]``: ``schedule[].window.start``
    path: str
    #: the TOML type with its limits: ``integer (> 0)``, ``"trim" | "refuse"``, ``table``
    type: str
    #: the default as written in TOML (``200``, ``"12h"``, ``[]``), ``required`` or ``(none)``
    default: str
    description: str
    #: which providers or source kinds the key belongs to (``name = "outbox"``); "" for all
    applies: str = ""

    @property
    def is_table(self) -> bool:
        """Whether the key is a table or array of tables rather than a value."""
        return self.type in ("table", "array of tables")


def all_keys() -> list[KeyDoc]:
    """Every key of config.toml, tables included, in the order the models declare them."""
    from newsletter.config import Settings

    return list(_walk(Settings, "", ""))


def explain(key: str | None = None) -> list[KeyDoc]:
    """Every key (``key`` None), or the entries of one key (one per provider variant).

    ``key`` may be written with indexes (``schedule[0].cron``) or without brackets
    (``schedule.cron``). Raises :class:`UnknownKeyError` with the closest keys as a hint.
    """
    keys = all_keys()
    if key is None:
        return keys
    wanted = _canonical(key)
    found = [k for k in keys if k.path == wanted]
    if not found:
        loose = wanted.replace("[]", "")
        found = [k for k in keys if k.path.replace("[]", "") == loose]
    if found:
        return found
    paths = list(dict.fromkeys(k.path for k in keys))
    close = difflib.get_close_matches(wanted, paths, n=3, cutoff=0.6)
    leaf = wanted.rsplit(".", 1)[-1]
    close += [p for p in paths if p.rsplit(".", 1)[-1] == leaf and p not in close][:3]
    hint = f"did you mean {', '.join(close)}? " if close else ""
    raise UnknownKeyError(
        f"unknown config key {key!r}; {hint}`newsletter config explain` lists every key"
    )


# -- walking ---------------------------------------------------------------------------


def _walk(model: type[BaseModel], prefix: str, applies: str) -> Iterator[KeyDoc]:
    from newsletter.config import Settings

    for name, field in model.model_fields.items():
        if model is Settings and name in INTERNAL_KEYS:
            continue
        path = prefix + name
        inner, array = _container(field.annotation)
        members = _variants(path, field, inner)
        if not members:
            yield KeyDoc(
                path, _type(field.annotation, field), _default(field), _desc(field), applies
            )
            continue
        if array:
            path += "[]"
        yield KeyDoc(
            path,
            "array of tables" if array else "table",
            "[]" if array else _table_default(field),
            _desc(field),
            applies,
        )
        if len(members) == 1:
            yield from _walk(members[0], path + ".", applies)
        else:
            yield from _union_keys(members, path + ".", field)


def _union_keys(
    members: Sequence[type[BaseModel]], prefix: str, field: FieldInfo
) -> Iterator[KeyDoc]:
    """The keys of a tagged union, each variant once, with the tags it applies to."""
    tag_key = _tag_key(members)
    tags = [_tag(m, tag_key) for m in members]
    default = field.get_default(call_default_factory=True)
    tag_default = getattr(default, tag_key, None) if isinstance(default, BaseModel) else None
    tag_field = members[0].model_fields[tag_key]
    yield KeyDoc(
        prefix + tag_key,
        " | ".join(json.dumps(t) for t in tags),
        json.dumps(tag_default) if isinstance(tag_default, str) else "required",
        tag_field.description or _TAG_DESCRIPTIONS.get(tag_key, ""),
    )
    groups: dict[tuple[str, str, str, str], list[str]] = {}
    for member, tag in zip(members, tags, strict=True):
        for doc in _walk(member, prefix, ""):
            if doc.path == prefix + tag_key:
                continue
            groups.setdefault((doc.path, doc.type, doc.default, doc.description), []).append(tag)
    # keep the order of first appearance, variants of one key together
    order = list(dict.fromkeys(path for path, *_ in groups))
    for wanted in order:
        for (path, type_, default_, desc), owners in groups.items():
            if path != wanted:
                continue
            applies = "" if len(owners) == len(tags) else _applies(tag_key, owners)
            yield KeyDoc(path, type_, default_, desc, applies)


def _applies(tag_key: str, tags: Iterable[str]) -> str:
    return f"{tag_key} = " + ", ".join(json.dumps(t) for t in tags)


def _variants(path: str, field: FieldInfo, inner: Any) -> list[type[BaseModel]]:
    """The models behind a field: one for a table, every variant for a tagged union."""
    members = _models_in(inner)
    if path in ("provider", "sources"):
        # validated through a registry: the variants are the registered models
        return _registered(path, [])
    if len(members) <= 1:
        return members
    return _registered(path, members)


def _registered(path: str, union: list[type[BaseModel]]) -> list[type[BaseModel]]:
    """A union's variants, completed from the registry its path belongs to."""
    registry: Mapping[str, Any] = {}
    if path == "provider":
        from newsletter.send.providers import PROVIDERS

        registry = PROVIDERS
    elif path == "sources":
        from newsletter.gather.sources import SOURCES

        registry = SOURCES
    models = [getattr(cls, "config_type", None) for cls in registry.values()]
    tag_key = _tag_key(
        list(union) or [m for m in models if isinstance(m, type) and issubclass(m, BaseModel)]
    )
    by_tag = {_tag(m, tag_key): m for m in union}
    for name, cls in registry.items():
        model = getattr(cls, "config_type", None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            model = None
        elif tag_key not in model.model_fields or _tag(model, tag_key) != name:
            model = None  # inherited from a shared base class, not this provider's own
        if model is not None:
            by_tag[name] = model
    return list(by_tag.values())


def _tag_key(members: Sequence[type[BaseModel]]) -> str:
    """The discriminator: the field every variant declares as a ``Literal``."""
    for key in members[0].model_fields:
        if all(
            key in m.model_fields and get_origin(m.model_fields[key].annotation) is Literal
            for m in members
        ):
            return key
    raise TypeError(f"no tag field shared by {[m.__name__ for m in members]}")


def _tag(model: type[BaseModel], key: str) -> str:
    field = model.model_fields[key]
    if isinstance(field.default, str):
        return field.default
    args = get_args(field.annotation)
    return str(args[0]) if args else model.__name__


# -- types ----------------------------------------------------------------------------


def _strip(annotation: Any) -> Any:
    while get_origin(annotation) is typing.Annotated:
        annotation = get_args(annotation)[0]
    return annotation


def _union_args(annotation: Any) -> tuple[Any, ...]:
    annotation = _strip(annotation)
    if get_origin(annotation) in (typing.Union, types.UnionType):
        return tuple(_strip(a) for a in get_args(annotation))
    return (annotation,)


def _container(annotation: Any) -> tuple[Any, bool]:
    """``(item type, True)`` for ``list[X]``, else ``(annotation, False)``; None dropped."""
    args = [a for a in _union_args(annotation) if a is not type(None)]
    if len(args) == 1 and get_origin(args[0]) is list:
        item = get_args(args[0])[0]
        if _models_in(item):
            return item, True
    return annotation, False


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    args = [a for a in _union_args(annotation) if a is not type(None)]
    models = [a for a in args if isinstance(a, type) and issubclass(a, BaseModel)]
    return models if len(models) == len(args) else []


_NAMES: dict[Any, str] = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    Path: "path",
    timedelta: 'duration ("90s", "15m", "1h30m", "2d"; a number: minutes)',
    time: 'time ("HH:MM")',
}


def _type(annotation: Any, field: FieldInfo | None = None) -> str:
    args = [a for a in _union_args(annotation) if a is not type(None)]
    parts = [_one_type(a) for a in args]
    text = " | ".join(parts)
    limits = _limits(field) if field is not None else []
    return f"{text} ({', '.join(limits)})" if limits else text


def _one_type(annotation: Any) -> str:
    origin = get_origin(annotation)
    if origin is Literal:
        return " | ".join(json.dumps(v, ensure_ascii=False) for v in get_args(annotation))
    if origin in (list, tuple, set, frozenset):
        item = next(a for a in get_args(annotation) if a is not Ellipsis)
        return f"array of {_type(item)}"
    if origin is dict:
        return f"table of {_type(get_args(annotation)[1])}"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "table"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


_LIMITS = (("gt", ">"), ("ge", "≥"), ("lt", "<"), ("le", "≤"))


def _limits(field: FieldInfo) -> list[str]:
    out: list[str] = []
    for meta in field.metadata:
        for attr, sign in _LIMITS:
            value = getattr(meta, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        if getattr(meta, "min_length", None) is not None:
            out.append(f"at least {meta.min_length}")
        if getattr(meta, "max_length", None) is not None:
            out.append(f"at most {meta.max_length}")
        if getattr(meta, "pattern", None) is not None:
            out.append(f"matching {meta.pattern}")
    return out


# -- defaults ---------------------------------------------------------------------------


def _default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    if field.default is PydanticUndefined:
        value = field.get_default(call_default_factory=True)
    else:
        value = field.default
    return _toml(value)


def _toml(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Path):
        return json.dumps(str(value), ensure_ascii=False)
    if isinstance(value, timedelta):
        return json.dumps(format_duration(value))
    if isinstance(value, time):
        return json.dumps(value.strftime("%H:%M"))
    if isinstance(value, Mapping):
        inner = ", ".join(f"{k} = {_toml(v)}" for k, v in value.items())
        return f"{{ {inner} }}" if inner else "{}"
    if isinstance(value, list | tuple | set | frozenset):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _table_default(field: FieldInfo) -> str:
    if field.is_required():
        return "required"
    return "(none)" if field.default is None else ""


def _desc(field: FieldInfo) -> str:
    return " ".join((field.description or "").split())


def _canonical(key: str) -> str:
    key = key.strip()
    key = re.sub(r"\[[^\]]*\]", "[]", key)
    return re.sub(r"\.+", ".", key).strip(".")
