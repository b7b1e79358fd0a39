"""Registries that cannot drift: plug-in classes found by importing their package.

Providers (``newsletter.send.providers``) and source kinds (``newsletter.gather.sources``)
are not listed by hand anywhere. Each package builds its registry with :func:`discover`:
every module of the package is imported and each concrete subclass of the plug-in base
defined there is registered under its own key (``name`` for providers, ``kind`` for
sources). Every such class carries ``config_type``, the config model of its table, and
:func:`validate_tagged` validates a table by looking its key up in the registry and
validating against that model.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeVar, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import (
    InitErrorDetails,
    PydanticCustomError,
    PydanticKnownError,
    PydanticUndefined,
)

__all__ = ["UNKNOWN_KIND", "discover", "validate_tagged"]

#: the error type of a table whose key names no registered class
UNKNOWN_KIND = "unknown_kind"

T = TypeVar("T")


def discover(package: str, path: Iterable[str], base: type[T], key: str) -> dict[str, type[T]]:
    """Import every module of ``package`` and register its concrete ``base`` subclasses.

    ``path`` is the package's ``__path__``. A class counts when it is defined in the module
    (not imported into it) and is not abstract; it is registered under its ``key`` class
    attribute, and its ``config_type`` must be a config model whose ``key`` field is
    ``Literal[<that value>]``. Two classes with one key, a class without its key or without a
    matching ``config_type``, raise :class:`TypeError` at import: a plug-in that would
    silently shadow another or never be found is a programming error.
    """
    found: dict[str, type[T]] = {}
    for info in sorted(pkgutil.iter_modules(list(path)), key=lambda m: m.name):
        module = importlib.import_module(f"{package}.{info.name}")
        for cls in vars(module).values():
            if not (
                inspect.isclass(cls)
                and issubclass(cls, base)
                and cls.__module__ == module.__name__
                and not inspect.isabstract(cls)
            ):
                continue
            label = f"{module.__name__}.{cls.__qualname__}"
            value = getattr(cls, key, None)
            if not isinstance(value, str) or not value:
                raise TypeError(f"{label}: a concrete {base.__name__} needs a {key!r} string")
            _check_config_type(cls, label, key, value)
            if value in found:
                other = found[value]
                raise TypeError(
                    f"{package}: {key} {value!r} is used by both "
                    f"{other.__module__}.{other.__qualname__} and {label}"
                )
            found[value] = cls
    return found


def _check_config_type(cls: type, label: str, key: str, value: str) -> None:
    config_type = getattr(cls, "config_type", None)
    if not (inspect.isclass(config_type) and issubclass(config_type, BaseModel)):
        raise TypeError(f"{label}: needs a config_type (the pydantic model of its table)")
    field = config_type.model_fields.get(key)
    if (
        field is None
        or get_args(field.annotation) != (value,)
        or field.default not in (PydanticUndefined, value)
    ):
        raise TypeError(
            f"{label}: {config_type.__name__}.{key} must be Literal[{value!r}], "
            f"the class's own {key}"
        )


def validate_tagged(
    value: Any,
    key: str,
    types: Mapping[str, type[BaseModel]],
    context: Any,
    already: Callable[[Any], Any],
) -> Any:
    """Validate one config table against the model that its ``key`` value names.

    ``types`` maps each registered value to its model (in the order shown when the value
    is unknown); ``context`` is the validation context (``base_dir`` for relative paths).
    An already built model instance goes to ``already`` (pydantic's own handler). Errors
    carry the same locations and wording as a pydantic discriminated union's, minus the
    tag in the location: ``provider.token_env: ...``, ``sources[0].kind: required key is
    missing``, or an :data:`UNKNOWN_KIND` error listing the known values.
    """
    if isinstance(value, BaseModel):
        return already(value)
    if not isinstance(value, dict):
        raise PydanticKnownError("model_attributes_type")
    if key not in value:
        missing: InitErrorDetails = {"type": "missing", "loc": (key,), "input": value}
        raise ValidationError.from_exception_data("tagged table", [missing])
    tag = value[key]
    model = types.get(tag) if isinstance(tag, str) else None
    if model is None:
        known = ", ".join(repr(name) for name in types)
        raise PydanticCustomError(
            UNKNOWN_KIND,
            "unknown kind {kind}; expected one of {known}",
            {"kind": repr(tag), "known": known},
        )
    return model.model_validate(value, context=context)
