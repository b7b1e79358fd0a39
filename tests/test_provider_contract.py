"""The provider contract, run against every registered provider; then outbox specifics.

To cover a new provider, add a factory to ``FACTORIES``: a context manager that starts
whatever the provider talks to (for an HTTP API, a local ``http.server`` on 127.0.0.1,
port 0, that imitates the endpoint and rejects the address ``INVALID``) and yields the
provider pointed at it. ``test_every_registered_provider_has_a_factory`` fails until
that is done.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import replace
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.errors import ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.providers import PROVIDERS, OutboxProvider, Provider, build_provider
from newsletter.providers.http import HttpProvider
from newsletter.providers.smtp import SmtpProvider

#: a recipient every provider (or its test double) must reject permanently
INVALID = "no-at-sign.example.org"


@contextmanager
def _outbox(tmp_path: Path) -> Iterator[Provider]:
    yield OutboxProvider(tmp_path / "outbox")


@contextmanager
def _smtp(tmp_path: Path) -> Iterator[Provider]:
    from providers.smtpserver import smtp_server

    from newsletter.providers.smtp import SmtpProvider

    with smtp_server() as server:
        yield SmtpProvider(
            "127.0.0.1",
            server.port,
            tls_context=ssl.create_default_context(cafile=server.ca_file),
            local_hostname="client.example.org",
        )


@contextmanager
def _postmark(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_postmark import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


@contextmanager
def _sendgrid(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_sendgrid import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


@contextmanager
def _brevo(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_brevo import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


@contextmanager
def _mailgun(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_mailgun import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


@contextmanager
def _resend(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_resend import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


@contextmanager
def _ses(tmp_path: Path) -> Iterator[Provider]:
    from providers.fake_ses import contract_factory

    with contract_factory(tmp_path) as provider:
        yield provider


FACTORIES: dict[str, Callable[[Path], AbstractContextManager[Provider]]] = {
    "brevo": _brevo,
    "outbox": _outbox,
    "postmark": _postmark,
    "resend": _resend,
    "sendgrid": _sendgrid,
    "ses": _ses,
    "mailgun": _mailgun,
    "smtp": _smtp,
}


@pytest.fixture(params=sorted(PROVIDERS))
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    """Each registered provider, wired to a local stand-in for its service."""
    factory = FACTORIES.get(request.param)
    if factory is None:
        pytest.fail(f"provider {request.param!r} has no contract factory in FACTORIES")
    with factory(tmp_path) as prov:
        assert isinstance(prov, PROVIDERS[request.param])
        yield prov


def make_message(delivery_id: int, **changes: object) -> OutgoingMessage:
    """A realistic personalized message for delivery ``delivery_id``."""
    base = OutgoingMessage(
        delivery_id=delivery_id,
        to_email=f"reader{delivery_id}@example.org",
        to_name=f"Читател {delivery_id}",
        from_email="news@cluster.example.org",
        from_name="Североизточен енергиен клъстер",
        subject="Седмичен бюлетин: 4 нови новини",
        html=f"<p>Здравейте, читател {delivery_id}!</p>",
        text=f"Здравейте, читател {delivery_id}!",
        locale="bg",
        message_id=f"<nl.3.{delivery_id}@cluster.example.org>",
        headers={
            "List-Unsubscribe": f"<https://news.example.org/u/tok{delivery_id}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        },
        idempotency_key=f"3-{delivery_id}",
        metadata={"edition_label": "0003-members-2026-W48", "edition_id": "3"},
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def send(provider: Provider, messages: list[OutgoingMessage]) -> list[SendResult]:
    """Run one batch to completion."""
    return asyncio.run(provider.send_batch(messages))


# --- the contract --------------------------------------------------------------------


def test_every_registered_provider_has_a_factory() -> None:
    assert set(FACTORIES) == set(PROVIDERS)


def test_registry_classes_declare_the_interface() -> None:
    for key, cls in PROVIDERS.items():
        assert cls.name == key
        assert cls.max_batch >= 1
        assert isinstance(cls.supports_idempotency, bool)


def test_one_result_per_message_in_order(provider: Provider) -> None:
    ids = [907, 3, 55, 12, 4000]
    results = send(provider, [make_message(i) for i in ids])
    assert [r.delivery_id for r in results] == ids
    assert all(r.status is ResultStatus.ACCEPTED for r in results)
    assert all(r.provider_message_id for r in results)
    assert len({r.provider_message_id for r in results}) == len(ids)


def test_empty_batch(provider: Provider) -> None:
    assert send(provider, []) == []


def test_full_batch_of_max_batch(provider: Provider) -> None:
    messages = [make_message(i) for i in range(1, provider.max_batch + 1)]
    results = send(provider, messages)
    assert len(results) == provider.max_batch
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}


def test_batch_over_max_batch_is_refused(provider: Provider) -> None:
    messages = [make_message(i) for i in range(1, provider.max_batch + 2)]
    with pytest.raises(ValueError, match="max_batch"):
        send(provider, messages)


def test_invalid_recipient_is_permanent_and_others_go_through(provider: Provider) -> None:
    batch = [make_message(1), make_message(2, to_email=INVALID), make_message(3)]
    results = send(provider, batch)
    assert [r.delivery_id for r in results] == [1, 2, 3]
    assert [r.status for r in results] == [
        ResultStatus.ACCEPTED,
        ResultStatus.PERMANENT,
        ResultStatus.ACCEPTED,
    ]
    assert results[1].error and INVALID in results[1].error
    assert results[1].provider_message_id is None


def test_async_context_manager_closes(provider: Provider) -> None:
    async def run() -> list[SendResult]:
        async with provider as entered:
            assert entered is provider
            assert not provider.closed
            return await provider.send_batch([make_message(1)])

    assert asyncio.run(run())[0].status is ResultStatus.ACCEPTED
    assert provider.closed
    asyncio.run(provider.aclose())  # closing twice is harmless
    with pytest.raises(ProviderError):
        send(provider, [make_message(2)])


class _HangUp(BaseHTTPRequestHandler):
    """Reads each whole request, then closes the connection without a word."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.close_connection = True

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _hang_up_server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _HangUp)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def test_lost_answer_is_unknown_unless_the_provider_deduplicates(provider: Provider) -> None:
    # the provider got the whole request and may have taken it; only a provider whose
    # resend is deduplicated may retry it (SMTP's data-phase drop: test_smtp.py)
    if not isinstance(provider, HttpProvider):
        pytest.skip("not an HTTP provider")
    with _hang_up_server() as url:
        provider.base_url = url
        results = send(provider, [make_message(1), make_message(2)])
    assert [r.delivery_id for r in results] == [1, 2]
    expected = ResultStatus.RETRYABLE if provider.supports_idempotency else ResultStatus.UNKNOWN
    assert {r.status for r in results} == {expected}, results[0].error
    assert all(r.provider_message_id is None for r in results)


def test_refused_connection_is_retryable(provider: Provider) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    # the port is closed again: nothing can have been sent
    if isinstance(provider, HttpProvider):
        provider.base_url = f"http://127.0.0.1:{port}"
    elif isinstance(provider, SmtpProvider):
        provider.port = port
    else:
        pytest.skip("does not connect anywhere")
    results = send(provider, [make_message(1), make_message(2)])
    assert [(r.delivery_id, r.status) for r in results] == [
        (1, ResultStatus.RETRYABLE),
        (2, ResultStatus.RETRYABLE),
    ]


# --- the registry ----------------------------------------------------------------------


def test_build_provider_from_settings(make_config: Callable[..., Settings], tmp_path: Path) -> None:
    settings = make_config(provider={"name": "outbox", "path": "mail-out"})
    built = build_provider(settings)
    assert isinstance(built, OutboxProvider)
    assert built.folder == tmp_path / "mail-out"


def test_build_provider_unknown_name(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delitem(PROVIDERS, "outbox")
    with pytest.raises(ProviderError, match="unknown provider 'outbox'"):
        build_provider(make_config())


# --- outbox specifics --------------------------------------------------------------------


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

    monkeypatch.setattr("newsletter.providers.outbox.os.replace", crash)
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
