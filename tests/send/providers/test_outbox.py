"""The outbox provider's own promises: files that parse back, atomic writes, idempotent
resends, safe folder names, and errors that name the path."""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.errors import ProviderError
from newsletter.models import ResultStatus
from newsletter.send.providers import OutboxProvider
from send.providers.support import make_message, send


def _read(path: str) -> EmailMessage:
    parsed = email.message_from_bytes(Path(path).read_bytes(), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_outbox_file_parses_back(tmp_path: Path) -> None:
    msg = make_message(7, to_name='Мария "Енергия" Петрова, инж.')
    [result] = send(OutboxProvider(tmp_path / "outbox"), [msg])
    path = Path(result.provider_message_id or "")
    assert (
        path == tmp_path / "outbox" / "0003-members-2026-W48" / "00000007-reader7@example.org.eml"
    )
    parsed = _read(str(path))
    assert str(parsed["Subject"]) == msg.subject
    assert parsed["From"].addresses[0].display_name == msg.from_name
    assert parsed["To"].addresses[0].display_name == msg.to_name
    assert parsed["To"].addresses[0].addr_spec == msg.to_email
    html = parsed.get_body(preferencelist=("html",))
    assert html is not None and html.get_content() == msg.html
    assert parsed["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]


def test_outbox_atomic_write_and_idempotent_resend(tmp_path: Path) -> None:
    outbox = OutboxProvider(tmp_path / "outbox", fsync=True)
    send(outbox, [make_message(1), make_message(2)])
    send(outbox, [make_message(1, subject="Повторно изпращане")])
    folder = tmp_path / "outbox" / "0003-members-2026-W48"
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["00000001-reader1@example.org.eml", "00000002-reader2@example.org.eml"]
    assert str(_read(str(folder / names[0]))["Subject"]) == "Повторно изпращане"


def test_outbox_failed_write_leaves_no_partial_file(tmp_path: Path) -> None:
    folder = tmp_path / "outbox" / "adhoc"
    # a directory where the file should go makes the final rename fail
    (folder / "00000005-reader5@example.org.eml").mkdir(parents=True)
    outbox = OutboxProvider(tmp_path / "outbox")
    with pytest.raises(ProviderError, match=r"00000005-reader5@example\.org\.eml"):
        send(outbox, [make_message(5, metadata={})])
    assert [p.name for p in folder.iterdir()] == ["00000005-reader5@example.org.eml"]


def test_outbox_crash_before_rename_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # the process dies between writing the temporary file and renaming it: simulated by
    # making the rename fail, the one step a crash can interrupt that matters here
    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("newsletter.send.providers.outbox.os.replace", crash)
    with pytest.raises(ProviderError, match="No space left"):
        send(OutboxProvider(tmp_path / "outbox"), [make_message(1)])
    assert list((tmp_path / "outbox" / "0003-members-2026-W48").iterdir()) == []


def test_outbox_subfolders_are_safe(tmp_path: Path) -> None:
    outbox = OutboxProvider(tmp_path / "outbox")
    results = send(
        outbox,
        [
            make_message(1, metadata={}),
            make_message(2, metadata={"edition_label": "../../escape"}),
            make_message(3, to_email="Odd/Name+tag@Example.org"),
        ],
    )
    paths = [Path(r.provider_message_id or "") for r in results]
    assert paths[0].parent == tmp_path / "outbox" / "adhoc"
    assert paths[1].parent == tmp_path / "outbox" / "escape"
    assert paths[2].name == "00000003-odd_name+tag@example.org.eml"
    assert all(p.resolve().is_relative_to(tmp_path / "outbox") for p in paths)


def test_outbox_unwritable_folder_raises_naming_the_path(tmp_path: Path) -> None:
    # a regular file in the way: fails even for root, unlike chmod
    (tmp_path / "not-a-dir").write_text("x")
    outbox = OutboxProvider(tmp_path / "not-a-dir" / "outbox")
    with pytest.raises(ProviderError, match="not-a-dir/outbox"):
        send(outbox, [make_message(1)])


def test_outbox_unencodable_message_is_permanent(tmp_path: Path) -> None:
    bad = make_message(2, headers={"Subject": "duplicate"})
    results = send(OutboxProvider(tmp_path / "outbox"), [make_message(1), bad])
    assert [r.status for r in results] == [ResultStatus.ACCEPTED, ResultStatus.PERMANENT]
    assert results[1].error and "Subject" in results[1].error
