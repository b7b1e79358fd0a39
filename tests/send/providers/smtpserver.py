"""A real aiosmtpd server on 127.0.0.1 (port 0), in its own thread and event loop.

It offers STARTTLS (or implicit TLS) with a trustme certificate, optional AUTH, records
every accepted message with the connection it came on, and follows a few scripted rules:
replies for given recipients at RCPT or DATA, dropping a connection after N messages or at
once, and dropping the connection in the middle of DATA. Tests import it as
``providers.smtpserver``.
"""

from __future__ import annotations

import asyncio
import ssl
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trustme
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

HOST = "127.0.0.1"


@dataclass(frozen=True)
class Received:
    """One message the server accepted."""

    connection: int
    mail_from: str
    rcpt_tos: tuple[str, ...]
    data: bytes


@dataclass
class Rules:
    """What the server does besides accepting mail; tests change it between sends."""

    #: recipient -> reply to RCPT TO (e.g. "550 5.1.1 no such user")
    rcpt_replies: dict[str, str] = field(default_factory=dict)
    #: recipient -> final reply to DATA instead of 250
    data_replies: dict[str, str] = field(default_factory=dict)
    #: close each connection after it carried this many messages
    drop_after: int | None = None
    #: close the connection as soon as MAIL FROM arrives (a server that is going down)
    drop_at_mail: bool = False
    #: recipients whose DATA is read and then the connection is cut before the reply
    cut_during_data: set[str] = field(default_factory=set)
    #: seconds to wait before the final reply to DATA (a slow server)
    data_delay: float = 0.0


@dataclass
class SmtpServer:
    """The running server: its port, CA file for clients, rules and what it received."""

    port: int
    ca_file: str
    rules: Rules
    received: list[Received] = field(default_factory=list)
    #: one entry per TCP connection accepted
    connections: int = 0
    #: logins tried, as (user, password)
    logins: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler:
    def __init__(self, server: SmtpServer) -> None:
        self.server = server

    async def handle_MAIL(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if self.server.rules.drop_at_mail:
            assert smtp.transport is not None
            smtp.transport.close()
            return "421 going away"
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, smtp: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        reply = self.server.rules.rcpt_replies.get(address)
        if reply is not None:
            return reply
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, smtp: SMTP, session: Session, envelope: Envelope) -> str:
        rules = self.server.rules
        rcpt = envelope.rcpt_tos[0]
        if rules.data_delay:
            await asyncio.sleep(rules.data_delay)
        if rcpt in rules.data_replies:
            return rules.data_replies[rcpt]
        assert smtp.transport is not None
        if rcpt in rules.cut_during_data:
            smtp.transport.abort()
            return "250 never seen"
        assert isinstance(envelope.original_content, bytes)
        conn_id: int = getattr(smtp, "conn_id", 0)
        with self.server.lock:
            self.server.received.append(
                Received(
                    conn_id,
                    envelope.mail_from or "",
                    tuple(envelope.rcpt_tos),
                    envelope.original_content,
                )
            )
            on_this = sum(1 for r in self.server.received if r.connection == conn_id)
        if rules.drop_after is not None and on_this >= rules.drop_after:
            # reply first, then hang up: the client learns it only at its next command
            smtp.loop.call_soon(smtp.transport.close)
        return f"250 OK queued as {conn_id}.{on_this}"


def _authenticator(server: SmtpServer, password: str) -> Any:
    def check(
        smtp: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        assert isinstance(data, LoginPassword)
        user, given = data.login.decode(), data.password.decode()
        server.logins.append((user, given))
        return AuthResult(success=given == password, handled=False)

    return check


@contextmanager
def smtp_server(
    *, implicit_tls: bool = False, password: str | None = None, rules: Rules | None = None
) -> Iterator[SmtpServer]:
    """Run the server until the block ends; STARTTLS unless ``implicit_tls``.

    With ``password`` the server requires AUTH (any user name, that password).
    """
    ca = trustme.CA()
    cert = ca.issue_cert(HOST, "localhost")
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    cert.configure_cert(tls)
    tmp = tempfile.TemporaryDirectory()
    ca_file = str(Path(tmp.name) / "ca.pem")
    ca.cert_pem.write_to_path(ca_file)

    server = SmtpServer(port=0, ca_file=ca_file, rules=rules or Rules())
    handler = _Handler(server)
    loop = asyncio.new_event_loop()
    ready = threading.Event()

    def factory() -> SMTP:
        smtp = SMTP(
            handler,
            hostname="mail.example.org",
            tls_context=None if implicit_tls else tls,
            require_starttls=not implicit_tls,
            auth_required=password is not None,
            auth_require_tls=True,
            authenticator=_authenticator(server, password) if password else None,
            loop=loop,
        )
        with server.lock:
            server.connections += 1
            smtp.conn_id = server.connections  # type: ignore[attr-defined]
        return smtp

    async def start() -> asyncio.AbstractServer:
        return await loop.create_server(factory, HOST, 0, ssl=tls if implicit_tls else None)

    def run() -> None:
        asyncio.set_event_loop(loop)
        aserver = loop.run_until_complete(start())
        server.port = aserver.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()
        aserver.close()
        loop.run_until_complete(aserver.wait_closed())
        loop.close()

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    assert ready.wait(10), "SMTP server did not start"
    try:
        yield server
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        tmp.cleanup()
