"""SMTP: the cluster's own mail server (or any relay), through aiosmtplib.

One connection carries a whole batch, one mail transaction per message (MAIL, RCPT, DATA),
and stays open for the next batch. Connections live in a small pool, so batches sent
concurrently each get their own.

What each SMTP answer means for the message (RFC 5321 reply classes):

- 2xx after DATA: ``ACCEPTED``; the provider message id is the message's own Message-ID,
  the one thing both sides know (servers word their queue ids freely).
- 4xx at MAIL, RCPT or DATA: ``RETRYABLE`` (greylisting, full queue, rate limit).
- 5xx at RCPT or DATA: ``PERMANENT`` for that message only (unknown user, rejected
  content); 552 at MAIL (message too large) too. Any other 5xx at MAIL means the server
  refuses our sender for every message: :class:`~newsletter.errors.ProviderError`.
- 421, or a dropped connection before the message's data went out: the message was not
  taken, so it is sent again on a fresh connection. The provider reconnects only when the
  dropped connection had finished at least one transaction; a fresh connection that
  drops at once means the server is down, and the rest of the batch is ``RETRYABLE``.
- A connection lost or timed out while the data was on the way: ``UNKNOWN`` (SMTP cannot
  tell whether the server queued it, and servers do not deduplicate), so it is not sent
  again automatically; if an operator resends it, it carries the same Message-ID, which
  lets some receiving systems drop the duplicate.
- Refused login or an untrusted certificate: :class:`~newsletter.errors.ProviderError`;
  no message can go through until the configuration changes.
"""

from __future__ import annotations

import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self

import aiosmtplib
from pydantic import Field, model_validator

from newsletter.config.base import RelPath
from newsletter.config.providers import ProviderBase
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send import mime as message
from newsletter.send.providers.base import Provider
from newsletter.send.providers.configured import check_batch_size, env_secret, where

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["DEFAULT_PORTS", "SmtpProvider", "SmtpProviderConfig"]

Security = Literal["starttls", "tls", "none"]

#: the port each security mode uses unless ``port`` is set (submission, submissions, smtp)
DEFAULT_PORTS: Final[dict[str, int]] = {"starttls": 587, "tls": 465, "none": 25}
#: reply code of a server that is closing the connection (RFC 5321 4.2.3)
_CLOSING: Final = 421
#: reply code for "message too large" (RFC 1870), sent at MAIL when SIZE is announced
_TOO_LARGE: Final = 552


class SmtpProviderConfig(ProviderBase):
    """``[provider] name = "smtp"``: an SMTP server (the cluster's own, or a relay)."""

    name: Literal["smtp"] = Field(default="smtp", description='Selects SMTP: "smtp".')
    host: str = Field(
        min_length=1,
        examples=["smtp.example.org"],
        description="Host name or address of the SMTP server.",
    )
    port: int | None = Field(
        default=None,
        gt=0,
        lt=65536,
        description="TCP port of the server; unset means 587 with starttls, 465 with tls "
        "and 25 with none.",
    )
    security: Security = Field(
        default="starttls",
        description='"starttls" upgrades a plain connection and refuses a server without '
        'STARTTLS, "tls" speaks TLS from the first byte, "none" sends plain text (for a '
        "relay on the same host).",
    )
    username: str | None = Field(
        default=None,
        description="User name to log in with, set together with password_env; unset "
        "means no login.",
    )
    password_env: str | None = Field(
        default=None,
        description="Name of the environment variable holding the password (required "
        "with username).",
    )
    ca_file: RelPath | None = Field(
        default=None,
        description="PEM file of the CA that signed a private server's certificate, "
        "relative to the config file; unset means the system's trusted CAs.",
    )
    timeout: float = Field(
        default=30.0,
        gt=0,
        description="Seconds allowed for connecting and for each SMTP reply.",
    )
    local_hostname: str | None = Field(
        default=None,
        description="Name sent in EHLO; unset means this machine's fully qualified name.",
    )
    envelope_from: str | None = Field(
        default=None,
        description="MAIL FROM (bounce) address; unset means each message's From address.",
    )

    @model_validator(mode="after")
    def _login_pair(self) -> SmtpProviderConfig:
        if (self.username is None) != (self.password_env is None):
            raise ValueError("username and password_env must be set together")
        return self


class _Dropped(Exception):
    """The connection went away during a transaction."""

    def __init__(self, reason: str, *, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        #: the data was (partly) transmitted: the server may have queued the message
        self.maybe_sent = maybe_sent


class _Unreachable(Exception):
    """No connection could be made (refused, timed out, server answered 4xx)."""


@dataclass
class _Conn:
    """One open SMTP session and whether it completed a transaction since it opened."""

    smtp: aiosmtplib.SMTP
    progressed: bool = False


def _reply(exc: aiosmtplib.SMTPResponseException) -> str:
    return f"{exc.code} {exc.message}".strip()


def _by_code(msg: OutgoingMessage, code: int, text: str) -> SendResult:
    status = ResultStatus.RETRYABLE if 400 <= code < 500 else ResultStatus.PERMANENT
    return SendResult(msg.delivery_id, status, error=f"{msg.to_email}: {text}")


def _is_cert_error(exc: BaseException) -> bool:
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ssl.SSLCertVerificationError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


class SmtpProvider(Provider):
    """Sends each message as its own SMTP transaction over pooled, reused connections.

    ``security`` is ``"starttls"`` (plain connect, then STARTTLS, refused if the server
    does not offer it), ``"tls"`` (TLS from the first byte) or ``"none"`` (plain text, for
    a relay on the same host). ``tls_context`` defaults to the system's trusted CAs.
    ``envelope_from`` is the bounce address (MAIL FROM); by default each message's From.
    """

    name: ClassVar[str] = "smtp"
    #: messages per batch (one connection each); SMTP itself has no batch limit, servers
    #: often limit messages per connection, and the reconnect rule covers one such cut
    max_batch: ClassVar[int] = 100
    supports_idempotency: ClassVar[bool] = False
    config_type: ClassVar[type[SmtpProviderConfig]] = SmtpProviderConfig

    def __init__(
        self,
        host: str,
        port: int | None = None,
        *,
        security: Security = "starttls",
        username: str | None = None,
        password: str | None = None,
        tls_context: ssl.SSLContext | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        envelope_from: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise ValueError("smtp: username and password go together")
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security: Security = security
        self.username = username
        self._password = password
        self.tls_context = tls_context or ssl.create_default_context()
        self.timeout = timeout
        self.local_hostname = local_hostname
        self.envelope_from = envelope_from
        self._idle: list[_Conn] = []

    @classmethod
    def from_config(cls, config: Any, settings: Settings) -> Self:
        """Build from ``[provider] name = "smtp"``; reads the password from its env var."""
        if not isinstance(config, SmtpProviderConfig):
            raise ProviderError(f"smtp: expected an smtp provider config, got {config!r}")
        check_batch_size(cls, config, settings)
        password = None
        if config.password_env is not None:
            password = env_secret(config, "password_env", settings)
        context = ssl.create_default_context()
        if config.ca_file is not None:
            try:
                context = ssl.create_default_context(cafile=str(config.ca_file))
            except (OSError, ssl.SSLError) as exc:
                raise ConfigError(
                    f"{where(settings)}provider.ca_file: cannot load CA certificates from "
                    f"{config.ca_file}: {exc}"
                ) from exc
        return cls(
            config.host,
            config.port,
            security=config.security,
            username=config.username,
            password=password,
            tls_context=context,
            timeout=config.timeout,
            local_hostname=config.local_hostname,
            envelope_from=config.envelope_from,
        )

    @property
    def where(self) -> str:
        """``smtp host:port``, for error messages."""
        return f"smtp {self.host}:{self.port}"

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send each message in its own transaction; one result per message, in order."""
        self.check_batch(messages)
        if self.closed:
            raise ProviderError(f"{self.where}: provider is closed")
        results: list[SendResult] = []
        conn: _Conn | None = self._idle.pop() if self._idle else None
        try:
            for index, msg in enumerate(messages):
                try:
                    data = message.to_bytes(msg)
                except ValueError as exc:
                    results.append(
                        SendResult(msg.delivery_id, ResultStatus.PERMANENT, error=str(exc))
                    )
                    continue
                while True:
                    if conn is None:
                        try:
                            conn = await self._connect()
                        except _Unreachable as exc:
                            results.extend(self._unsent(messages[index:], str(exc)))
                            return results
                    try:
                        results.append(await self._transaction(conn.smtp, msg, data))
                    except _Dropped as exc:
                        progressed = conn.progressed
                        self._discard(conn)
                        conn = None
                        if exc.maybe_sent:
                            results.append(
                                SendResult(
                                    msg.delivery_id,
                                    ResultStatus.UNKNOWN,
                                    error=f"{self.where}: {exc.reason} while sending the "
                                    "message data; it may have been delivered",
                                )
                            )
                        elif not progressed:
                            # a fresh connection dropped: the server is not taking mail now
                            results.extend(self._unsent(messages[index:], exc.reason))
                            return results
                        else:
                            continue  # not sent: once more, on a new connection
                    else:
                        conn.progressed = True
                    break
        except BaseException:
            if conn is not None:
                self._discard(conn)
                conn = None
            raise
        finally:
            if conn is not None:
                self._idle.append(conn)
        return results

    def _unsent(self, messages: Sequence[OutgoingMessage], reason: str) -> list[SendResult]:
        """RETRYABLE for every message left when no connection is available."""
        error = f"{self.where}: {reason}"
        return [SendResult(m.delivery_id, ResultStatus.RETRYABLE, error=error) for m in messages]

    async def _connect(self) -> _Conn:
        """A new logged-in session; ``_Unreachable`` or ``ProviderError`` when impossible."""
        smtp = aiosmtplib.SMTP(
            hostname=self.host,
            port=self.port,
            username=self.username,
            password=self._password,
            local_hostname=self.local_hostname,
            timeout=self.timeout,
            use_tls=self.security == "tls",
            start_tls=self.security == "starttls",
            tls_context=self.tls_context,
        )
        try:
            await smtp.connect()
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise ProviderError(
                f"{self.where}: login as {self.username!r} refused: {_reply(exc)}"
            ) from exc
        except aiosmtplib.SMTPResponseException as exc:
            if 400 <= exc.code < 500:
                raise _Unreachable(f"server answered {_reply(exc)}") from exc
            raise ProviderError(f"{self.where}: server refused the session: {_reply(exc)}") from exc
        except (aiosmtplib.SMTPException, OSError) as exc:
            if _is_cert_error(exc):
                raise ProviderError(
                    f"{self.where}: server certificate not trusted: {exc} "
                    "(set provider.ca_file for a private CA)"
                ) from exc
            if isinstance(exc, aiosmtplib.SMTPNotSupported) or "not supported" in str(exc):
                raise ProviderError(f"{self.where}: {exc}") from exc
            raise _Unreachable(f"cannot connect: {exc}") from exc
        return _Conn(smtp)

    async def _transaction(
        self, smtp: aiosmtplib.SMTP, msg: OutgoingMessage, data: bytes
    ) -> SendResult:
        """MAIL, RCPT, DATA for one message; raises ``_Dropped`` when the session ends."""
        sender = self.envelope_from or msg.from_email
        rcpt = msg.to_email
        mail_options = []
        if smtp.supports_extension("size"):
            mail_options.append(f"SIZE={len(data)}")
        encoding = "ascii"
        if not (rcpt.isascii() and sender.isascii()):
            if not smtp.supports_extension("smtputf8"):
                return SendResult(
                    msg.delivery_id,
                    ResultStatus.PERMANENT,
                    error=f"{rcpt}: non-ASCII address and the server lacks SMTPUTF8",
                )
            mail_options.append("SMTPUTF8")
            encoding = "utf-8"
        try:
            await smtp.mail(sender, options=mail_options, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(smtp, exc)
            if exc.code >= 500 and exc.code != _TOO_LARGE:
                raise ProviderError(
                    f"{self.where}: sender {sender} refused: {_reply(exc)}"
                ) from exc
            return _by_code(msg, exc.code, _reply(exc))
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _Dropped(f"connection lost ({exc})", maybe_sent=False) from exc
        try:
            await smtp.rcpt(rcpt, encoding=encoding)
        except aiosmtplib.SMTPResponseException as exc:
            await self._after_refusal(smtp, exc)
            return _by_code(msg, exc.code, _reply(exc))
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _Dropped(f"connection lost ({exc})", maybe_sent=False) from exc
        try:
            await smtp.data(data)
        except aiosmtplib.SMTPResponseException as exc:
            # a final reply, even 421, means the server did not take the message
            await self._after_refusal(smtp, exc)
            return _by_code(msg, exc.code, _reply(exc))
        except (aiosmtplib.SMTPException, OSError) as exc:
            raise _Dropped(f"connection lost ({exc})", maybe_sent=True) from exc
        return SendResult(
            msg.delivery_id, ResultStatus.ACCEPTED, provider_message_id=msg.message_id
        )

    async def _after_refusal(
        self, smtp: aiosmtplib.SMTP, exc: aiosmtplib.SMTPResponseException
    ) -> None:
        """End the refused transaction (RSET), or report the session gone on 421."""
        if exc.code == _CLOSING:
            raise _Dropped(f"server closing the connection: {_reply(exc)}", maybe_sent=False)
        try:
            await smtp.rset()
        except (aiosmtplib.SMTPException, OSError):
            # the refusal already tells this message's fate; a closed session makes the
            # next message reconnect
            smtp.close()

    def _discard(self, conn: _Conn) -> None:
        conn.smtp.close()

    async def aclose(self) -> None:
        """Say QUIT on every idle connection and close it."""
        idle, self._idle = self._idle, []
        for conn in idle:
            try:
                if conn.smtp.is_connected:
                    await conn.smtp.quit()
            except (aiosmtplib.SMTPException, OSError):
                pass
            finally:
                conn.smtp.close()
        await super().aclose()
