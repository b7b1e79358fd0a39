"""A request without an answer: did the provider get it?

Every HTTP adapter against its own spec-checking fake. The fake reads the whole request,
then answers too late (past the client's timeout) or resets the connection: the provider
may have taken the batch. Postmark, SendGrid, Mailgun and SES cannot recognise a resend,
so those messages are ``UNKNOWN`` and are not sent again; Resend and Brevo resend under
the same idempotency key, so theirs stay ``RETRYABLE``. A request cut while its body was
still being written never reached the provider, even though httpcore reports it as a
read error: ``RETRYABLE``. (A refused connection, for every provider: the contract suite.)
"""

from __future__ import annotations

import asyncio
import importlib
import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pytest

from newsletter.config import Settings
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers import PROVIDERS
from newsletter.send.providers.answers import RequestTrace, may_have_arrived
from newsletter.send.providers.http import HttpProvider
from newsletter.send.providers.postmark import PostmarkProvider
from send.providers import fake_postmark
from send.providers.composed import composed
from send.providers.specserver import Answer, SpecServer

A, R, U = ResultStatus.ACCEPTED, ResultStatus.RETRYABLE, ResultStatus.UNKNOWN


@dataclass(frozen=True)
class Case:
    """How to run one adapter against its fake (from its ``LOST_ANSWER``)."""

    serve: Callable[[], AbstractContextManager[SpecServer]]
    build: Callable[[str], HttpProvider]
    #: API requests the two test messages take (before any resend)
    requests: int


def _cases() -> dict[str, Case]:
    """The case of every ``fake_<provider name>.py`` that sets ``LOST_ANSWER``."""
    found = {}
    for path in sorted(Path(__file__).parent.glob("fake_*.py")):
        module = importlib.import_module(f"send.providers.{path.stem}")
        lost = getattr(module, "LOST_ANSWER", None)
        if lost is not None:
            found[path.stem.removeprefix("fake_")] = Case(module.serve, lost.build, lost.requests)
    return found


CASES = _cases()


def test_every_http_provider_has_a_case() -> None:
    http = {name for name, cls in PROVIDERS.items() if issubclass(cls, HttpProvider)}
    missing = sorted(http - set(CASES))
    assert not missing, f"no LOST_ANSWER in fake_<name>.py for: {missing}"
    assert set(CASES) == http


@pytest.fixture
def messages(make_config: Callable[..., Settings]) -> list[OutgoingMessage]:
    return composed(make_config, 2, names=["Анна Петрова", "Борис Иванов"])


def send(provider: HttpProvider, batch: list[OutgoingMessage]) -> list[SendResult]:
    async def go() -> list[SendResult]:
        async with provider:
            return await provider.send_batch(batch)

    return asyncio.run(go())


@pytest.mark.parametrize("lost", ["late", "reset"])
@pytest.mark.parametrize("name", sorted(CASES))
def test_answer_lost_after_the_request_arrived(
    name: str, lost: str, messages: list[OutgoingMessage]
) -> None:
    case = CASES[name]
    answer = Answer(200, {}, delay=5.0) if lost == "late" else Answer(reset=True)
    with case.serve() as server:
        server.script(*[answer] * 2 * case.requests)
        provider = case.build(server.base_url)
        assert isinstance(provider, PROVIDERS[name])
        results = send(provider, messages)
        assert server.invalid == [], server.invalid[0].error
        received = len(server.requests)
    assert [r.delivery_id for r in results] == [m.delivery_id for m in messages]
    # a resend under the same key is deduplicated only by an idempotent provider
    expected = R if provider.supports_idempotency else U
    assert {r.status for r in results} == {expected}, results[0].error
    error = results[0].error or ""
    assert "no answer from" in error and "may have been accepted" in error, error
    assert ("ReadTimeout" if lost == "late" else "ReadError") in error, error
    # non-idempotent: each request exactly once; idempotent: resent once under its key
    resends = 2 if provider.supports_idempotency else 1
    assert received == case.requests * resends


@contextmanager
def raw_server(full_body: bool) -> Iterator[str]:
    """An HTTP endpoint that never answers: it reads the whole request and closes cleanly
    (the provider got everything), or reads the head and 1 MB of the body, then resets
    the connection while the client is still writing the rest."""
    listener = socket.socket()
    # a small fixed receive buffer (no autotuning, inherited by the accepted socket), so
    # an unread body cannot end up whole in the server's kernel before the reset
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    port = listener.getsockname()[1]

    def serve_one() -> None:
        conn, _ = listener.accept()
        with conn:
            data = b""
            while b"\r\n\r\n" not in data and (chunk := conn.recv(65536)):
                data += chunk
            head, _, body = data.partition(b"\r\n\r\n")
            length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
            # once 1 MB is read the client is surely waiting to write more, not before
            # its first write, where asyncio would only report the reset later
            while len(body) < (length if full_body else 1_000_000) and (chunk := conn.recv(65536)):
                body += chunk
            if full_body:
                conn.shutdown(socket.SHUT_WR)  # FIN: "server disconnected"
            else:
                conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))

    thread = threading.Thread(target=serve_one, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        thread.join(5)
        listener.close()


def test_request_cut_while_its_body_was_written_did_not_arrive(
    messages: list[OutgoingMessage],
) -> None:
    # 10 MB of body cannot sit in the socket buffers (client's at most 4 MB here): the
    # reset meets the writer
    big = [replace(m, html=m.html + "x" * 5_000_000) for m in messages]
    with raw_server(full_body=False) as url:
        results = send(PostmarkProvider(fake_postmark.TOKEN, base_url=url, timeout=5), big)
    assert {r.status for r in results} == {R}
    assert "did not reach the provider" in (results[0].error or ""), results[0].error


def test_server_closing_after_the_whole_request_is_unknown(
    messages: list[OutgoingMessage],
) -> None:
    with raw_server(full_body=True) as url:
        results = send(PostmarkProvider(fake_postmark.TOKEN, base_url=url, timeout=5), messages)
    assert {r.status for r in results} == {U}
    assert "RemoteProtocolError" in (results[0].error or ""), results[0].error


def test_untraced_transport_assumes_the_worst() -> None:
    # a transport that reports no trace events: only connect-phase errors are certain
    untraced = RequestTrace()
    assert may_have_arrived(httpx.ReadTimeout("late"), untraced)
    assert may_have_arrived(httpx.RemoteProtocolError("gone"), untraced)
    assert not may_have_arrived(httpx.ConnectError("refused"), untraced)
    assert not may_have_arrived(httpx.PoolTimeout("busy"), untraced)
    assert not may_have_arrived(httpx.WriteTimeout("stuck"), untraced)
