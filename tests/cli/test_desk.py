"""``newsletter desk``: accounts and the audit log from the shell."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import child_env, project


def _desk(cfg: Path, *args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), "desk", *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        cwd=cfg.parent,
        env=child_env(COLUMNS="200", NEWSLETTER_SECRET_KEY="test-key"),
    )


def test_add_list_reset_remove_and_audit(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    res = _desk(
        cfg,
        "add-user",
        "Elena@Example.org",
        "--role",
        "admin",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert res.returncode == 0, res.stderr
    assert "added desk user elena@example.org (admin)" in res.stdout
    res = _desk(
        cfg,
        "add-user",
        "ivan@example.org",
        "--role",
        "translator",
        "--locales",
        "de,ro",
        "--password-stdin",
        stdin="another long password\n",
    )
    assert res.returncode == 0, res.stderr
    users = json.loads(_desk(cfg, "list-users", "--json").stdout)
    assert [(u["email"], u["role"], u["locales"]) for u in users] == [
        ("elena@example.org", "admin", []),
        ("ivan@example.org", "translator", ["de", "ro"]),
    ]
    assert "password" not in json.dumps(users)  # no hash is ever printed
    res = _desk(cfg, "reset-password", "ivan@example.org", "--password-stdin", stdin="x" * 12)
    assert res.returncode == 0, res.stderr
    assert _desk(cfg, "remove-user", "ivan@example.org").returncode == 0
    res = _desk(cfg, "remove-user", "elena@example.org")
    assert res.returncode == 1 and "last admin" in res.stderr
    audit = json.loads(_desk(cfg, "audit", "--json").stdout)
    assert [(e["actor"], e["action"]) for e in audit] == [
        ("cli", "user.remove"),
        ("cli", "user.reset-password"),
        ("cli", "user.add"),
        ("cli", "user.add"),
    ]


def test_bad_input_is_one_line(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    res = _desk(cfg, "add-user", "a@example.org", "--role", "boss", "--password-stdin", stdin="x")
    assert res.returncode == 2 and "boss" in res.stderr
    res = _desk(
        cfg, "add-user", "a@example.org", "--role", "editor", "--password-stdin", stdin="short"
    )
    assert res.returncode == 1 and "at least 10 characters" in res.stderr
    assert "Traceback" not in res.stderr
    res = _desk(
        cfg,
        "add-user",
        "t@example.org",
        "--role",
        "translator",
        "--locales",
        "xx",
        "--password-stdin",
        stdin="long enough pass",
    )
    assert res.returncode == 1 and "'xx'" in res.stderr
    res = _desk(cfg, "reset-password", "nobody@example.org", "--password-stdin", stdin="x" * 12)
    assert res.returncode == 1 and "no desk account" in res.stderr
    res = _desk(
        cfg,
        "add-user",
        "not an address",
        "--role",
        "editor",
        "--password-stdin",
        stdin="long enough pass",
    )
    assert res.returncode == 1 and res.stderr.count("\n") == 1
