"""Registries found by import: providers by ``name``, source kinds by ``kind``.

Nothing lists the providers or source kinds by hand: each class is found in its package,
carries its own key and its config model, and that model is what validates its table.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, get_args

import pytest
from pydantic import BaseModel

from newsletter.config import ProviderBase, Settings, SourceBase
from newsletter.config.registry import discover
from newsletter.errors import ConfigError
from newsletter.gather.sources import SOURCES
from newsletter.send.providers import PROVIDERS

REGISTRIES: dict[str, tuple[dict[str, Any], str, type[BaseModel]]] = {
    "providers": (PROVIDERS, "name", ProviderBase),
    "sources": (SOURCES, "kind", SourceBase),
}


@pytest.mark.parametrize("registry", sorted(REGISTRIES))
def test_every_class_is_keyed_by_its_own_name_and_has_its_config_model(registry: str) -> None:
    classes, key, base = REGISTRIES[registry]
    assert classes, f"no {registry} found"
    for value, cls in classes.items():
        assert getattr(cls, key) == value
        model = cls.config_type
        assert issubclass(model, base), f"{cls.__name__}.config_type is not a {base.__name__}"
        assert get_args(model.model_fields[key].annotation) == (value,)
        # the model is defined beside the adapter, not in newsletter.config
        assert model.__module__ == cls.__module__


@pytest.mark.parametrize("registry", sorted(REGISTRIES))
def test_every_key_of_every_config_model_has_a_description(registry: str) -> None:
    classes, _key, _base = REGISTRIES[registry]
    for cls in classes.values():
        for field_name, field in cls.config_type.model_fields.items():
            text = field.description or ""
            assert text.strip().endswith("."), (
                f"{cls.config_type.__name__}.{field_name}: needs Field(description=...), "
                "one plain sentence"
            )


def test_each_source_table_is_validated_by_its_kinds_model(
    make_config: Callable[..., Settings],
) -> None:
    tables = []
    for kind, cls in SOURCES.items():
        extra = cls.config_type.model_config.get("json_schema_extra") or {}
        assert isinstance(extra, dict) and extra.get("examples"), (
            f"{cls.config_type.__name__}: give it model_config json_schema_extra examples"
        )
        tables.append({"name": kind, "kind": kind, **extra["examples"][0]})
    settings = make_config(sources=tables)
    for source in settings.sources:
        assert type(source) is SOURCES[source.kind].config_type


def test_relative_source_paths_resolve_against_the_config_file(
    make_config: Callable[..., Settings], tmp_path: Path
) -> None:
    settings = make_config(sources=[{"name": "n", "kind": "folder", "path": "news"}])
    assert settings.sources[0].path == tmp_path / "news"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"provider": {"token_env": "X"}}, "provider.name: required key is missing"),
        ({"provider": "postmark"}, "provider: Input should be a valid dictionary"),
        ({"provider": {"name": 3}}, "provider: unknown kind 3; expected one of 'brevo'"),
        ({"sources": [{"name": "x"}]}, "sources[0].kind: required key is missing"),
        (
            {"sources": [{"name": "x", "kind": "feed", "url": "u", "timeot": 1}]},
            "sources[0].timeot: unknown key",
        ),
        (
            {"sources": [{"name": "x", "kind": "feed", "url": "u", "path": "p"}]},
            "sources[0]: Value error, give exactly one of 'url' or 'path'",
        ),
        (
            {"provider": {"name": "smtp", "host": "h", "username": "u"}},
            "provider: Value error, username and password_env must be set together",
        ),
    ],
)
def test_table_errors_name_the_key(
    make_config: Callable[..., Settings], extra: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as err:
        make_config(**extra)
    text = str(err.value)
    assert f": {message}" in text and "\n" not in text, text


def test_unknown_kinds_list_every_registered_one(make_config: Callable[..., Settings]) -> None:
    cases: list[tuple[dict[str, Any], str, dict[str, Any]]] = [
        ({"provider": {"name": "mandrill"}}, "provider: unknown kind 'mandrill'", PROVIDERS),
        (
            {"sources": [{"name": "x", "kind": "telegram"}]},
            "sources[0]: unknown kind 'telegram'",
            SOURCES,
        ),
    ]
    for extra, start, known in cases:
        with pytest.raises(ConfigError) as err:
            make_config(**extra)
        listed = ", ".join(repr(k) for k in known)
        assert str(err.value).endswith(f": {start}; expected one of {listed}"), err.value


def test_loading_the_config_module_imports_no_provider_or_source() -> None:
    code = (
        "import sys, newsletter.config as c; "
        "print(sorted(m for m in sys.modules if m.startswith(('newsletter.send', "
        "'newsletter.gather', 'httpx', 'aiosmtplib'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"


# --- discover() on a package made up for the test ----------------------------------------


@pytest.fixture
def plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty package ``nl_test_plugins`` (a base class and a config model) on sys.path."""
    package = tmp_path / "nl_test_plugins"
    package.mkdir()
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import abc
            from typing import ClassVar, Literal
            from pydantic import BaseModel

            class Plugin(abc.ABC):
                name: ClassVar[str]
                config_type: ClassVar[type[BaseModel]]

                @abc.abstractmethod
                def run(self) -> None: ...
            """
        ),
        encoding="utf-8",
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield package
    for module in [m for m in sys.modules if m.split(".")[0] == "nl_test_plugins"]:
        del sys.modules[module]


def _plugin(package: Path, module: str, cls: str, name: str, literal: str | None = None) -> None:
    (package / f"{module}.py").write_text(
        textwrap.dedent(
            f"""
            from typing import ClassVar, Literal
            from pydantic import BaseModel
            from nl_test_plugins import Plugin

            class {cls}Config(BaseModel):
                name: Literal[{literal or name!r}] = {literal or name!r}

            class {cls}(Plugin):
                name: ClassVar[str] = {name!r}
                config_type: ClassVar[type[BaseModel]] = {cls}Config

                def run(self) -> None: ...
            """
        ),
        encoding="utf-8",
    )


def _discover(package: Path) -> dict[str, type]:
    import nl_test_plugins  # type: ignore[import-not-found]

    return discover("nl_test_plugins", [str(package)], nl_test_plugins.Plugin, "name")


def test_discover_finds_each_concrete_class_once_by_its_own_name(plugins: Path) -> None:
    _plugin(plugins, "alpha", "Alpha", "a")
    _plugin(plugins, "beta", "Beta", "b")
    (plugins / "helpers.py").write_text("from nl_test_plugins.alpha import Alpha\n")
    found = _discover(plugins)
    assert {key: cls.__name__ for key, cls in found.items()} == {"a": "Alpha", "b": "Beta"}


def test_two_classes_with_one_name_fail_at_import(plugins: Path) -> None:
    _plugin(plugins, "alpha", "Alpha", "same")
    _plugin(plugins, "beta", "Beta", "same")
    with pytest.raises(
        TypeError, match=r"name 'same' is used by both .*alpha\.Alpha and .*beta\.Beta"
    ):
        _discover(plugins)


def test_a_config_model_for_another_name_fails_at_import(plugins: Path) -> None:
    _plugin(plugins, "alpha", "Alpha", "a", literal="b")
    with pytest.raises(TypeError, match=r"AlphaConfig\.name must be Literal\['a'\]"):
        _discover(plugins)
