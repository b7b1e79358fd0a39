"""SMTP provider against a real aiosmtpd server on loopback (STARTTLS, trustme certificate)."""

from __future__ import annotations

import asyncio
import email
import email.policy
import ssl
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.config import Settings
from newsletter.errors import ConfigError, ProviderError
from newsletter.models import ResultStatus, SendResult
from newsletter.send.providers import build_provider
from newsletter.send.providers.smtp import SmtpProvider
from send.providers.smtpserver import SmtpServer, smtp_server
from send.providers.support import StandIn, make_message, statuses
from send.providers.support import send_batches as run

PASSWORD = "correct horse"


STAND_IN = StandIn(smtp_server, spec_checked=False)


def provider_for(server: SmtpServer, **options: object) -> SmtpProvider:
    """A provider that trusts the test CA and talks STARTTLS to ``server``."""
    settings: dict[str, object] = {
        "security": "starttls",
        "tls_context": ssl.create_default_context(cafile=server.ca_file),
        "local_hostname": "client.example.org",
        "timeout": 5.0,
    }
    settings.update(options)
    return SmtpProvider("127.0.0.1", server.port, **settings)  # type: ignore[arg-type]


def parse(data: bytes) -> EmailMessage:
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


A, P, R = ResultStatus.ACCEPTED, ResultStatus.PERMANENT, ResultStatus.RETRYABLE
U = ResultStatus.UNKNOWN


def test_batch_over_starttls_arrives_intact_on_one_connection(server: SmtpServer) -> None:
    messages = [
        make_message(1, to_name='Мария "Енергия" Петрова, инж.'),
        make_message(2, subject="Бюлетин — Слънчева енергия в Добруджа и Варна, седмица 48"),
        make_message(3),
    ]
    [results] = run(provider_for(server), messages)
    assert statuses(results) == [A, A, A]
    assert [r.provider_message_id for r in results] == [m.message_id for m in messages]
    assert server.connections == 1
    assert [r.rcpt_tos for r in server.received] == [(m.to_email,) for m in messages]
    assert {r.mail_from for r in server.received} == {"news@cluster.example.org"}
    for msg, got in zip(messages, server.received, strict=True):
        parsed = parse(got.data)
        assert str(parsed["Subject"]) == msg.subject
        assert parsed["To"].addresses[0].display_name == msg.to_name
        assert parsed["From"].addresses[0].display_name == msg.from_name
        assert parsed["Message-ID"] == msg.message_id
        assert parsed["List-Unsubscribe"] == msg.headers["List-Unsubscribe"]
        assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
        html = parsed.get_body(preferencelist=("html",))
        assert html is not None and html.get_content() == msg.html
        assert got.data.isascii()


def test_rejected_and_deferred_recipients_only_fail_themselves(server: SmtpServer) -> None:
    server.rules.rcpt_replies = {
        "gone@example.org": "550 5.1.1 <gone@example.org>: Recipient address rejected",
        "busy@example.org": "451 4.7.1 Greylisted, try again in 5 minutes",
    }
    server.rules.data_replies = {"spammy@example.org": "554 5.7.1 Message rejected as spam"}
    batch = [
        make_message(1),
        make_message(2, to_email="gone@example.org"),
        make_message(3, to_email="busy@example.org"),
        make_message(4, to_email="spammy@example.org"),
        make_message(5),
    ]
    [results] = run(provider_for(server), batch)
    assert statuses(results) == [A, P, R, P, A]
    assert results[1].error is not None and "550 5.1.1" in results[1].error
    assert "gone@example.org" in results[1].error
    assert results[2].error is not None and "Greylisted" in results[2].error
    assert results[3].error is not None and "554 5.7.1 Message rejected as spam" in results[3].error
    assert all(r.provider_message_id is None for r in results[1:4])
    # refusals end only their own transaction (RSET), not the connection
    assert server.connections == 1
    assert [r.rcpt_tos for r in server.received] == [
        ("reader1@example.org",),
        ("reader5@example.org",),
    ]


def test_connection_is_reused_across_batches(server: SmtpServer) -> None:
    results = run(provider_for(server), [make_message(1), make_message(2)], [make_message(3)])
    assert [statuses(r) for r in results] == [[A, A], [A]]
    assert server.connections == 1
    assert {r.connection for r in server.received} == {1}


def test_dropped_connection_is_reopened_and_nothing_lost(server: SmtpServer) -> None:
    server.rules.drop_after = 2  # a server limiting messages per connection
    [results] = run(provider_for(server), [make_message(i) for i in range(1, 6)])
    assert statuses(results) == [A] * 5
    assert [r.connection for r in server.received] == [1, 1, 2, 2, 3]
    assert [r.rcpt_tos[0] for r in server.received] == [
        f"reader{i}@example.org" for i in range(1, 6)
    ]


def test_server_going_down_marks_the_rest_retryable(server: SmtpServer) -> None:
    provider = provider_for(server)
    first = [make_message(1)]
    second = [make_message(2), make_message(3), make_message(4)]

    async def go() -> list[list[SendResult]]:
        async with provider:
            done = [await provider.send_batch(first)]
            server.rules.drop_at_mail = True
            done.append(await provider.send_batch(second))
            return done

    before, after = asyncio.run(go())
    assert statuses(before) == [A]
    assert statuses(after) == [R, R, R]
    assert all(r.error and "127.0.0.1" in r.error for r in after)
    # the idle connection dropped (reconnect once), the fresh one too: stop there
    assert server.connections == 2


def test_connection_cut_during_data_is_unknown_and_flagged(server: SmtpServer) -> None:
    # the server may have queued it: not retried automatically, the others go on
    server.rules.cut_during_data = {"reader2@example.org"}
    [results] = run(provider_for(server), [make_message(1), make_message(2), make_message(3)])
    assert statuses(results) == [A, U, A]
    assert results[1].error is not None and "may have been delivered" in results[1].error
    assert server.connections == 2


def test_slow_answer_past_the_timeout_is_unknown(server: SmtpServer) -> None:
    server.rules.data_delay = 1.0
    [results] = run(provider_for(server, timeout=0.3), [make_message(1)])
    assert statuses(results) == [U]
    assert results[0].error is not None and "may have been delivered" in results[0].error


def test_unreachable_server_is_retryable_not_an_exception(server: SmtpServer) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    provider = SmtpProvider("127.0.0.1", closed_port, security="none", timeout=2.0)
    [results] = run(provider, [make_message(1), make_message(2)])
    assert statuses(results) == [R, R]
    assert results[0].error is not None and str(closed_port) in results[0].error


def test_login_and_refused_login() -> None:
    with smtp_server(password=PASSWORD) as server:
        [ok] = run(
            provider_for(server, username="newsletter", password=PASSWORD), [make_message(1)]
        )
        assert statuses(ok) == [A]
        with pytest.raises(ProviderError, match="login as 'newsletter' refused: 535"):
            run(provider_for(server, username="newsletter", password="wrong"), [make_message(2)])
        # aiosmtplib tries each offered mechanism before giving up
        assert {given for _, given in server.logins} == {PASSWORD, "wrong"}
        assert len(server.received) == 1


def test_untrusted_certificate_stops_the_run(server: SmtpServer) -> None:
    provider = provider_for(server, tls_context=ssl.create_default_context())
    with pytest.raises(ProviderError, match=r"certificate not trusted.*provider\.ca_file"):
        run(provider, [make_message(1)])
    assert server.received == []


def test_implicit_tls() -> None:
    with smtp_server(implicit_tls=True) as server:
        [results] = run(provider_for(server, security="tls"), [make_message(1)])
        assert statuses(results) == [A]
        assert parse(server.received[0].data)["Subject"] == make_message(1).subject


def test_unencodable_message_is_permanent_without_a_transaction(server: SmtpServer) -> None:
    bad = make_message(2, headers={"Subject": "duplicate"})
    [results] = run(provider_for(server), [make_message(1), bad])
    assert statuses(results) == [A, P]
    assert len(server.received) == 1


def test_from_config_reads_password_env_and_ca_file(
    make_config: Callable[..., Settings], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    with smtp_server(password=PASSWORD) as server:
        (tmp_path / "ca.pem").write_bytes(Path(server.ca_file).read_bytes())
        table = {
            "name": "smtp",
            "host": "127.0.0.1",
            "port": server.port,
            "username": "newsletter",
            "password_env": "TEST_SMTP_PASSWORD",
            "ca_file": "ca.pem",
            "local_hostname": "client.example.org",
            "envelope_from": "bounces@cluster.example.org",
        }
        provider = build_provider(make_config(provider=table))
        assert isinstance(provider, SmtpProvider)
        [results] = run(provider, [make_message(1)])
        assert statuses(results) == [A]
        assert server.received[0].mail_from == "bounces@cluster.example.org"
        assert server.logins == [("newsletter", PASSWORD)]


def test_from_config_errors_name_the_key(
    make_config: Callable[..., Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    base = {"name": "smtp", "host": "mail.example.org"}
    with_login = {**base, "username": "u", "password_env": "TEST_SMTP_PASSWORD"}
    with pytest.raises(ConfigError, match=r"provider\.password_env: .*TEST_SMTP_PASSWORD"):
        build_provider(make_config(provider=with_login))
    with pytest.raises(ConfigError, match=r"provider\.batch_size: 101 is above"):
        build_provider(make_config(provider={**base, "batch_size": 101}))
    with pytest.raises(ConfigError, match=r"provider\.ca_file: .*missing\.pem"):
        build_provider(make_config(provider={**base, "ca_file": "missing.pem"}))
    with pytest.raises(ConfigError, match="username and password_env"):
        make_config(provider={**base, "username": "u"})
    with pytest.raises(ConfigError, match=r"provider\.security"):
        make_config(provider={**base, "security": "ssl"})
