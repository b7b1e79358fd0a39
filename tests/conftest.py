"""Shared fixtures: configs built from defaults, stores on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from newsletter.config import Settings, from_dict
from newsletter.store import Store

ROOT = Path(__file__).resolve().parent.parent
PG_URL = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")


def _merge(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


BASE_CONFIG: dict[str, Any] = {
    "organisation": {
        "name": "Test Energy Cluster",
        "names": {"bg": "Тестов енергиен клъстер", "en": "Test Energy Cluster"},
        "address": "1 Example Street, 9000 Varna, Bulgaria",
        "website": "https://cluster.example.org",
        "from_email": "news@cluster.example.org",
    },
    "locales": {"default": "bg", "available": ["bg", "en"]},
    "segments": [
        {"name": "members", "rules": [{"field": "lists", "op": "contains", "value": "members"}]}
    ],
}


@pytest.fixture
def make_config(tmp_path: Path) -> Callable[..., Settings]:
    """Build settings from test defaults; keyword overrides are merged into the TOML tree.

    The config "file" lives in tmp_path, so relative paths (outbox, var) land there; the
    templates folder defaults to the project's own.
    """

    def make(**overrides: Any) -> Settings:
        raw = _merge(BASE_CONFIG, overrides)
        raw.setdefault("paths", {})
        raw["paths"].setdefault("templates", str(ROOT / "templates"))
        raw.setdefault("database", {})
        raw["database"].setdefault("url", f"sqlite:///{tmp_path / 'var' / 'test.db'}")
        raw["database"].setdefault("url_env", "NEWSLETTER_TEST_UNUSED_URL")
        return from_dict(raw, tmp_path / "config.toml")

    return make


def _fresh_postgres(url: str) -> str:
    """A new, empty database on the test server, so tests never see each other's rows."""
    name = f"nl_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(
        sa.make_url(url).set(drivername="postgresql+psycopg"), isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return (
        sa.make_url(url)
        .set(drivername="postgresql+psycopg", database=name)
        .render_as_string(hide_password=False)
    )


def _drop_postgres(url: str) -> None:
    target = sa.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)'))
    admin.dispose()


BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])


@pytest.fixture(params=BACKENDS)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A URL to an empty database: SQLite always, PostgreSQL too when configured."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'store.db'}"
        return
    assert PG_URL is not None
    url = _fresh_postgres(PG_URL)
    try:
        yield url
    finally:
        _drop_postgres(url)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    """A migrated store on every backend under test."""
    with Store.open(db_url) as st:
        yield st
