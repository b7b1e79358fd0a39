"""The CLI as a user runs it: real subprocesses on a config in a temporary folder."""

from __future__ import annotations

from pathlib import Path

from support import cli, project


def test_digest_prints_summary_and_writes_outbox(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    proc = cli(cfg, "digest")
    assert proc.returncode == 0, proc.stderr
    assert "members" in proc.stdout and "partners-abroad" in proc.stdout
    assert "bg 32" in proc.stdout  # recipients per locale
    assert "Outbox:" in proc.stdout
    emls = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(emls) >= 50
    assert (tmp_path / "outbox" / "index.html").exists()
    # a second run sends nothing again
    again = cli(cfg, "digest")
    assert again.returncode == 0 and "already sent" in again.stdout
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) == len(emls)
    shown = cli(cfg, "editions", "show", "1")
    assert shown.returncode == 0 and "sent" in shown.stdout
    listed = cli(cfg, "items", "list")
    assert listed.returncode == 0 and "Новина 0" in listed.stdout


def test_errors_are_one_line_with_exit_1_and_usage_exit_2(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    proc = cli(cfg, "editions", "show", "99")
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == ["error: no edition with id 99"]
    debug = cli(cfg, "--debug", "editions", "show", "99")
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    usage = cli(cfg, "digest", "--no-such-flag")
    assert usage.returncode == 2


def test_subscriber_commands(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "email,name,locale\nok@example.org,Ок,bg\nbroken,Х,bg\nfine@example.com,Fine,en\n",
        encoding="utf-8",
    )
    proc = cli(cfg, "subscribers", "import", str(bad), "--list", "members")
    assert proc.returncode == 1
    assert "2 added" in proc.stdout and "line 3" in proc.stderr and "broken" in proc.stderr
    assert cli(cfg, "subscribers", "add", "new@example.org", "--list", "members").returncode == 0
    dup = cli(cfg, "subscribers", "add", "NEW@example.org")
    assert dup.returncode == 1 and "already" in dup.stderr
    assert cli(cfg, "subscribers", "remove", "new@example.org").returncode == 0
    listed = cli(cfg, "subscribers", "list", "--status", "unsubscribed")
    assert "new@example.org" in listed.stdout
    out = tmp_path / "export.csv"
    assert cli(cfg, "subscribers", "export", "--out", str(out)).returncode == 0
    assert "ok@example.org" in out.read_text(encoding="utf-8")


def test_dry_run_and_preview(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    proc = cli(cfg, "digest", "--dry-run")
    assert proc.returncode == 0, proc.stderr
    assert "dry run" in proc.stdout and not (tmp_path / "outbox").exists()
    prev = cli(cfg, "preview", "--segment", "members", "--locale", "de", "--locale", "bg")
    assert prev.returncode == 0, prev.stderr
    assert (tmp_path / "preview" / "members" / "de.html").exists()
    index = (tmp_path / "preview" / "index.html").read_text(encoding="utf-8")
    # side by side: one frame per variant, with its subject and size
    assert index.count("<iframe") == 2 and 'src="members/de.html"' in index and "KB" in index


def test_db_upgrade(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    first = cli(cfg, "db", "upgrade")
    assert first.returncode == 0 and "migrated empty" in first.stdout
    assert "already at" in cli(cfg, "db", "upgrade").stdout


def test_an_edition_awaiting_approval_is_listed_and_approved_from_the_shell(
    tmp_path: Path,
) -> None:
    cfg = project(tmp_path)
    text = cfg.read_text(encoding="utf-8")
    text = text.replace(
        'rules = [{ field = "lists", op = "contains", value = "members" }]\n',
        'rules = [{ field = "lists", op = "contains", value = "members" }]\n'
        'approval = "required"\napprovers = ["approver@example.org"]\n',
        1,
    )
    # no send window: whatever the hour the test runs at, approving starts sending
    text = text.replace('window = { days = "mon-fri", start = "08:00", end = "18:00" }\n', "")
    cfg.write_text(text, encoding="utf-8")
    proc = cli(cfg, "digest", "--segment", "members")
    assert proc.returncode == 0, proc.stderr
    assert "awaiting approval" in proc.stdout
    listed = cli(cfg, "editions", "list")
    assert listed.returncode == 0 and "awaiting approval" in listed.stdout
    status = cli(cfg, "status")
    assert "awaiting approval" in status.stdout
    shown = cli(cfg, "editions", "show", "1")
    assert shown.returncode == 0 and "awaiting approval" in shown.stdout
    emls = list((tmp_path / "outbox").rglob("*.eml"))
    assert len(emls) == 1  # the request to the approver, nothing to readers yet
    approved = cli(cfg, "editions", "approve", "1")
    assert approved.returncode == 0, approved.stderr
    assert "edition 1 approved" in approved.stdout
    assert len(list((tmp_path / "outbox").rglob("*.eml"))) > 30
    again = cli(cfg, "editions", "approve", "1")
    assert again.returncode == 1
    assert again.stderr.strip().splitlines() == [
        "error: edition 1 is finished, not awaiting approval"
    ]


def test_items_are_hidden_and_shown_from_the_shell(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert cli(cfg, "gather").returncode == 0
    hidden = cli(cfg, "items", "hide", "1", "--reason", "duplicate")
    assert hidden.returncode == 0 and "item 1 hidden" in hidden.stdout
    dry = cli(cfg, "digest", "--dry-run", "--no-gather", "--segment", "members")
    assert dry.returncode == 0, dry.stderr
    shown = cli(cfg, "items", "show", "1")
    assert shown.returncode == 0 and "item 1 is shown again" in shown.stdout
    missing = cli(cfg, "items", "hide", "999")
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == ["error: no item with id 999"]
