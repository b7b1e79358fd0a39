"""The provider contract, run against every registered provider (outbox specifics:
``test_outbox.py``).

The factories are found, not listed: every ``fake_<provider name>.py`` beside this module
exposes ``contract_factory``, and the two providers that speak no HTTP API (outbox, smtp)
have theirs here. A factory is a context manager that starts whatever the provider talks
to (for an HTTP API, a local ``http.server`` on 127.0.0.1, port 0, that imitates the
endpoint and rejects the address ``INVALID``) and yields a
:class:`~send.providers.support.Contract`: the provider pointed at it, and a function
listing what the service received (:class:`~send.providers.support.Received`, one per
message). ``test_every_registered_provider_has_a_factory`` fails until a new provider's
fake has one.
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import ssl
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.errors import ProviderError
from newsletter.models import ResultStatus, SendResult
from newsletter.send.providers import PROVIDERS, OutboxProvider, Provider, build_provider
from newsletter.send.providers.http import HttpProvider
from newsletter.send.providers.smtp import SmtpProvider
from send.providers.support import Contract, Received, from_mime, make_message, send

#: a recipient every provider (or its test double) must reject permanently
INVALID = "no-at-sign.example.org"


@contextmanager
def _outbox(tmp_path: Path) -> Iterator[Contract]:
    folder = tmp_path / "outbox"

    def received() -> list[Received]:
        files = sorted(folder.rglob("*.eml"))
        return [from_mime(path.read_bytes(), n) for n, path in enumerate(files)]

    yield Contract(OutboxProvider(folder), received)


@contextmanager
def _smtp(tmp_path: Path) -> Iterator[Contract]:
    from send.providers.smtpserver import smtp_server

    with smtp_server() as server:
        provider = SmtpProvider(
            "127.0.0.1",
            server.port,
            tls_context=ssl.create_default_context(cafile=server.ca_file),
            local_hostname="client.example.org",
        )
        # one "request" per message: SMTP has no batch on the wire
        yield Contract(
            provider, lambda: [from_mime(m.data, n) for n, m in enumerate(server.received)]
        )


Factory = Callable[[Path], AbstractContextManager[Contract]]


def _fake_factories() -> dict[str, Factory]:
    """The ``contract_factory`` of every ``fake_<provider name>.py`` in this folder."""
    found: dict[str, Factory] = {}
    for path in sorted(Path(__file__).parent.glob("fake_*.py")):
        module = importlib.import_module(f"send.providers.{path.stem}")
        factory = getattr(module, "contract_factory", None)
        if factory is not None:
            found[path.stem.removeprefix("fake_")] = factory
    return found


#: how to wire each provider to a stand-in: the non-HTTP ones here, the rest from fakes
FACTORIES: dict[str, Factory] = {"outbox": _outbox, "smtp": _smtp, **_fake_factories()}


@pytest.fixture(params=sorted(PROVIDERS))
def contract(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Contract]:
    """Each registered provider, wired to a local stand-in for its service."""
    factory = FACTORIES.get(request.param)
    if factory is None:
        pytest.fail(
            f"provider {request.param!r} has no contract factory: give "
            f"fake_{request.param}.py a contract_factory"
        )
    with factory(tmp_path) as made:
        assert isinstance(made.provider, PROVIDERS[request.param])
        yield made


@pytest.fixture
def provider(contract: Contract) -> Provider:
    """The provider of :func:`contract`, for tests that only look at results."""
    return contract.provider


# --- the contract --------------------------------------------------------------------


def test_every_registered_provider_has_a_factory() -> None:
    missing = sorted(set(PROVIDERS) - set(FACTORIES))
    assert not missing, f"no contract_factory in fake_<name>.py for: {missing}"
    assert set(FACTORIES) == set(PROVIDERS), "a fake for a provider that is not registered"


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


def test_full_batch_of_max_batch(contract: Contract) -> None:
    provider = contract.provider
    messages = [make_message(i) for i in range(1, provider.max_batch + 1)]
    results = send(provider, messages)
    assert len(results) == provider.max_batch
    assert {r.status for r in results} == {ResultStatus.ACCEPTED}
    # the service got every message once, none in a request above the provider's limit
    received = contract.received()
    assert Counter(r.to_email for r in received) == Counter(m.to_email for m in messages)
    assert max(Counter(r.request for r in received).values()) <= provider.max_batch


#: readers whose names and subject break naive encodings: quotes, commas, Cyrillic, Greek
HARD_NAMES = ('Мария "Енергия" Петрова, инж.', "Иван & Синове (ЕООД)", "Ελένη Παπαδοπούλου")


def test_recipients_names_subject_and_headers_arrive_intact(contract: Contract) -> None:
    messages = [
        make_message(
            i,
            to_name=name,
            subject=f"Бюлетин „Енергия“ № {i}: 4 нови новини",
            from_name="Черноморски енергиен клъстер, Варна",
        )
        for i, name in enumerate(HARD_NAMES, start=1)
    ]
    results = send(contract.provider, messages)
    assert [r.status for r in results] == [ResultStatus.ACCEPTED] * len(messages)
    received = {r.to_email: r for r in contract.received()}
    assert sorted(received) == sorted(m.to_email for m in messages)
    for msg in messages:
        got = received[msg.to_email]
        assert (got.to_name, got.from_name, got.subject) == (
            msg.to_name,
            msg.from_name,
            msg.subject,
        )
        # one-click unsubscribe (RFC 8058) travels with every message, exactly as composed
        for name in ("List-Unsubscribe", "List-Unsubscribe-Post"):
            assert got.headers.get(name.lower()) == msg.headers[name], (name, got.headers)


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
