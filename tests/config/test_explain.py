"""``newsletter config explain``: every key with type, default and the model's description."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import cli

from newsletter.config import Web
from newsletter.config.explain import UnknownKeyError, all_keys, explain
from newsletter.errors import ConfigError


def test_paths_are_dotted_with_arrays_of_tables_marked() -> None:
    paths = {k.path for k in all_keys()}
    for path in (
        "provider.batch_size",
        "gather.allow_private",
        "schedule[].cron",
        "schedule[].window.start",
        "segments[].rules[].op",
        "sources[].kind",
        "webhooks.ses.confirm_subscriptions",
        "webhooks.postmark.query_param",
        "provider.local_hostname",
        "on_empty",
    ):
        assert path in paths, path
    assert "config_path" not in paths  # set by load(), not a key of the file


def test_one_key_with_type_default_and_description() -> None:
    (doc,) = explain("web.port")
    assert doc.type == "integer (≥ 0, ≤ 65535)"
    assert doc.default == "8000"
    assert doc.description == Web.model_fields["port"].description
    (lock,) = explain("scheduler.lock_ttl")
    assert lock.default == '"1m"' and lock.type.startswith("duration")
    (org,) = explain("organisation.from_email")
    assert org.default == "required"


def test_variants_of_a_provider_key_name_their_providers() -> None:
    variants = explain("provider.batch_size")
    assert {v.default for v in variants} == {"200", "(none)"}
    outbox = next(v for v in variants if v.default == "200")
    assert outbox.applies == 'name = "outbox"'
    (name,) = explain("provider.name")
    assert name.default == '"outbox"' and '"postmark"' in name.type and '"smtp"' in name.type
    (kind,) = explain("sources[].kind")
    assert kind.type == '"desk" | "feed" | "folder" | "page"' and kind.default == "required"


def test_indexes_and_missing_brackets_are_accepted() -> None:
    assert explain("schedule[0].cron") == explain("schedule[].cron") == explain("schedule.cron")


def test_unknown_key_is_a_config_error_with_a_hint() -> None:
    with pytest.raises(UnknownKeyError, match=r"did you mean provider\.batch_size") as info:
        explain("provider.batchsize")
    assert isinstance(info.value, ConfigError)
    with pytest.raises(UnknownKeyError, match=r"webhooks\.ses\.confirm_subscriptions"):
        explain("confirm_subscription")


def test_cli_lists_every_key_and_explains_one(tmp_path: Path) -> None:
    cfg = tmp_path / "absent.toml"  # explain reads no config file
    listed = cli(cfg, "config", "explain")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "key\ttype\tdefault\tdescription"
    assert len(lines) - 1 == len(all_keys())
    one = cli(cfg, "config", "explain", "webhooks.ses.confirm_subscriptions")
    assert one.returncode == 0, one.stderr
    assert "boolean" in one.stdout and "true" in one.stdout and "SubscribeURL" in one.stdout
    as_json = cli(cfg, "config", "explain", "on_empty", "--json")
    assert json.loads(as_json.stdout)[0]["default"] == '"skip"'
    bad = cli(cfg, "config", "explain", "provider.batchsize")
    assert bad.returncode == 2
    assert "provider.batch_size" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
