"""A bad ``[provider]`` table stops the run at start with one line naming the file and key.

Every registered provider refuses a ``batch_size`` above its own limit; and through the
real CLI (``newsletter digest`` in a subprocess), a missing credential, an unknown name,
a batch size over the limit or an unusable ``base_url`` print one line, exit 2, no
traceback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from support import cli, project

from newsletter.config import Settings
from newsletter.errors import ConfigError
from newsletter.send.providers import PROVIDERS, build_provider


def minimal_table(name: str) -> dict[str, Any]:
    """The smallest valid ``[provider]`` table of ``name``, from its own config model.

    Each required key takes the first of its ``examples``; each credential (a ``*_env``
    key with a default) names TEST_PROVIDER_KEY.
    """
    table: dict[str, Any] = {"name": name}
    for key, field in PROVIDERS[name].config_type.model_fields.items():
        if key == "name":
            continue
        if field.is_required():
            assert field.examples, f"{name}: required key {key!r} needs examples=[...]"
            table[key] = field.examples[0]
        elif key.endswith("_env") and field.default is not None:
            table[key] = "TEST_PROVIDER_KEY"
    return table


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_every_provider_builds_from_its_minimal_table(
    name: str, make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "key")
    settings = make_config(provider=minimal_table(name))
    assert isinstance(settings.provider, PROVIDERS[name].config_type)
    provider = build_provider(settings)
    assert isinstance(provider, PROVIDERS[name])
    asyncio.run(provider.aclose())


@pytest.mark.parametrize("name", sorted(PROVIDERS))
def test_batch_size_above_the_provider_limit_is_refused_at_start(
    name: str, make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "key")
    limit = PROVIDERS[name].max_batch
    table = minimal_table(name)
    settings = make_config(provider={**table, "batch_size": limit + 1})
    with pytest.raises(ConfigError) as err:
        build_provider(settings)
    assert str(err.value) == (
        f"{settings.config_path}: provider.batch_size: {limit + 1} is above {name}'s limit "
        f"of {limit} messages per batch"
    )
    # the limit itself is fine
    provider = build_provider(make_config(provider={**table, "batch_size": limit}))
    asyncio.run(provider.aclose())


def test_a_base_url_that_cannot_work_names_the_file(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_PROVIDER_KEY", "key")
    settings = make_config(
        provider={"name": "resend", "api_key_env": "TEST_PROVIDER_KEY", "base_url": "ftp://x"}
    )
    with pytest.raises(ConfigError) as err:
        build_provider(settings)
    assert str(err.value) == (
        f"{settings.config_path}: provider.base_url: 'ftp://x' is not an http(s) URL"
    )


BAD_TABLES = {
    "missing credential": (
        'name = "postmark"\ntoken_env = "NL_TEST_NO_SUCH_TOKEN"',
        "provider.token_env: environment variable NL_TEST_NO_SUCH_TOKEN is not set",
    ),
    "unknown provider": (
        'name = "mandrill"',
        "provider: unknown kind 'mandrill'; expected one of "
        + ", ".join(repr(name) for name in PROVIDERS),
    ),
    "batch size": (
        'name = "sendgrid"\napi_key_env = "PATH"\nbatch_size = 1001',
        "provider.batch_size: 1001 is above sendgrid's limit of 1000 messages per batch",
    ),
    "base url": (
        'name = "mailgun"\ndomain = "mg.example.org"\napi_key_env = "PATH"\nbase_url = "mg"',
        "provider.base_url: 'mg' is not an http(s) URL",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD_TABLES))
def test_digest_with_a_bad_provider_table_prints_one_line_and_exits_2(
    case: str, tmp_path: Path
) -> None:
    cfg = project(tmp_path)
    table, message = BAD_TABLES[case]
    text = cfg.read_text(encoding="utf-8")
    outbox = '[provider]\nname = "outbox"\npath = "outbox"\n'
    assert outbox in text
    cfg.write_text(text.replace(outbox, f"[provider]\n{table}\n"), encoding="utf-8")
    proc = cli(cfg, "digest")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    [line] = proc.stderr.strip().splitlines()
    assert line.startswith(f"config error: {cfg}: {message}"), line
    assert "Traceback" not in proc.stdout + proc.stderr
    assert not list(tmp_path.rglob("*.eml"))
