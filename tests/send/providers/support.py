"""What every provider test shares: running batches, and what a service received.

:class:`Received` is one message as the provider's service got it, whatever the API's
shape (a JSON element, a SendGrid personalization, a Mailgun recipient, raw MIME), so the
shared contract suite can check every adapter the same way: the right recipients, names,
subject and headers, each intact, and no request over the provider's batch limit. Each
``fake_<provider>.py`` has a ``received(server)`` that builds them from the requests its
server accepted; :class:`Contract` pairs a provider with that view.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from email.message import EmailMessage
from email.utils import parseaddr
from typing import Any

from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.base import Provider
from newsletter.send.providers.http import HttpProvider
from send.providers.specvalidators import Recorded


@dataclass(frozen=True)
class Received:
    """One message as the service received it."""

    to_email: str
    to_name: str
    from_name: str
    subject: str
    #: header names in lower case
    headers: dict[str, str]
    #: which request (or connection, or file) carried it, counted from 0
    request: int


@dataclass
class Contract:
    """A provider wired to a local stand-in for its service, and what that service got."""

    provider: Provider
    received: Callable[[], list[Received]]


@dataclass(frozen=True)
class StandIn:
    """How the shared ``server`` fixture (``conftest.py``) starts a module's stand-in.

    A ``test_<provider>.py`` module sets ``STAND_IN = StandIn(serve, ...)``: ``start`` is
    the fake's context manager (``fake_<provider>.serve``, ``smtpserver.smtp_server``),
    called with the module's ``fake`` fixture first when ``with_fake``, then ``options``.
    With ``spec_checked`` (the default), the test fails if the spec-checking server saw a
    request that breaks the provider's spec (a test that sends one on purpose is marked
    ``spec_invalid``); a server that checks no spec (SMTP) turns it off.
    """

    start: Callable[..., AbstractContextManager[Any]]
    with_fake: bool = False
    options: Mapping[str, Any] = field(default_factory=dict)
    spec_checked: bool = True


#: client timeout for every phase in ``test_lost_answers.py`` (its late answers take 5 s)
LOST_ANSWER_TIMEOUT = 0.2


@dataclass(frozen=True)
class LostAnswer:
    """How ``test_lost_answers.py`` runs an HTTP adapter against its fake (``serve()``).

    Each ``fake_<provider>.py`` of an HTTP provider sets ``LOST_ANSWER``: ``build(url)``
    is the provider pointed at ``url`` with :data:`LOST_ANSWER_TIMEOUT`, ``requests`` the
    API requests that the test's two messages take before any resend.
    """

    build: Callable[[str], HttpProvider]
    requests: int


def mailbox_parts(value: str) -> tuple[str, str]:
    """(name, address) of a ``"Name" <address>`` string, as a mail service reads it."""
    return parseaddr(value)


def lower_keys(headers: dict[str, str]) -> dict[str, str]:
    """The same headers with lower-case names."""
    return {k.lower(): v for k, v in headers.items()}


def from_mime(data: bytes, request: int) -> Received:
    """A message that travels as MIME (SMTP, SES raw, the outbox's .eml files)."""
    parsed = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    to = parsed["To"].addresses[0]
    sender = parsed["From"].addresses[0]
    return Received(
        to_email=to.addr_spec,
        to_name=to.display_name,
        from_name=sender.display_name,
        subject=str(parsed["Subject"]),
        headers={k.lower(): str(v) for k, v in parsed.items()},
        request=request,
    )


def accepted(requests: list[Recorded]) -> list[tuple[int, Recorded]]:
    """(request number, request) of the valid requests the server answered with 2xx."""
    return [
        (n, r)
        for n, r in enumerate(requests)
        if r.valid and r.answered is not None and 200 <= r.answered < 300
    ]


def send_batches(provider: Provider, *batches: list[OutgoingMessage]) -> list[list[SendResult]]:
    """Send each batch in turn inside ``async with provider``; the results of each."""

    async def go() -> list[list[SendResult]]:
        async with provider:
            return [await provider.send_batch(batch) for batch in batches]

    return asyncio.run(go())


def statuses(results: list[SendResult]) -> list[ResultStatus]:
    """The status of each result, in order."""
    return [r.status for r in results]


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
