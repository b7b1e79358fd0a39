"""The sign-up form must not tell anyone what it knows about an address: the answer is
byte-identical for new, pending, subscribed, unsubscribed, bounced, complained and erased
addresses, and it is complete before the store is looked at or the provider called, for
every one of them, so its timing cannot differ either (structural, not a timed test)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from newsletter.config import Settings
from newsletter.models import NewSubscriber, OutgoingMessage, SendResult, SubscriberStatus
from newsletter.send.providers import build_provider
from newsletter.send.providers.base import Provider
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from newsletter.web import create_app
from newsletter.web.csrf import CsrfTokens
from web.web_helpers import SECRET, Web


class Recording(Provider):
    """The real outbox provider, noting in ``log`` when it is called."""

    name = "recording"

    def __init__(self, inner: Provider, log: list[str]) -> None:
        self.inner = inner
        self.log = log

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.log.append("provider")
        return await self.inner.send_batch(messages)

    async def aclose(self) -> None:
        await self.inner.aclose()
        await super().aclose()


async def _post(app: Any, body: bytes, log: list[str]) -> tuple[int, list[Any], bytes]:
    """POST /subscribe straight through ASGI; ``log`` gets "response" once it is sent."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "https",
        "server": ("news.example.org", 443),
        "client": ("203.0.113.7", 50000),
        "root_path": "",
        "path": "/subscribe",
        "raw_path": b"/subscribe",
        "query_string": b"",
        "headers": [
            (b"host", b"news.example.org"),
            (b"origin", b"https://news.example.org"),
            (b"content-type", b"application/x-www-form-urlencoded"),
            (b"content-length", str(len(body)).encode()),
        ],
    }
    sent = False
    status, headers, chunks = 0, [], []

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status, headers
        if message["type"] == "http.response.start":
            status, headers = message["status"], message["headers"]
        elif message["type"] == "http.response.body":
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                log.append("response")

    await app(scope, receive, send)
    return status, headers, b"".join(chunks)


def _states(web: Web) -> dict[str, str]:
    """An address in every state the store can hold one in."""
    now = web.clock()
    store = web.store
    for mail, status in (
        ("pending@example.org", SubscriberStatus.PENDING),
        ("active@example.org", SubscriberStatus.ACTIVE),
        ("left@example.org", SubscriberStatus.UNSUBSCRIBED),
        ("bounced@example.org", SubscriberStatus.BOUNCED),
        ("complained@example.org", SubscriberStatus.COMPLAINED),
    ):
        store.subscribers.add(
            NewSubscriber(email=mail, name="Ivo", locale="en", lists=("news",), status=status),
            now,
        )
    store.suppressions.add("bounced@example.org", "bounced", "webhook:test", now)
    store.suppressions.add("complained@example.org", "complained", "webhook:test", now)
    store.suppressions.add("gone@example.org", "bounced", "webhook:test", now)  # no row
    store.suppressions.add("erased@example.org", "erased", "web:preferences", now)
    return {
        "new": "new@example.org",
        "pending": "pending@example.org",
        "active": "active@example.org",
        "unsubscribed": "left@example.org",
        "bounced": "bounced@example.org",
        "complained": "complained@example.org",
        "suppressed only": "gone@example.org",
        "erased": "erased@example.org",
    }


def test_answer_is_identical_and_sent_before_any_store_or_provider_work(
    web: Web, web_settings: Settings, store: Store, signer: TokenSigner
) -> None:
    states = _states(web)
    log: list[str] = []
    provider = Recording(build_provider(web_settings), log)
    app = create_app(web_settings, store, provider=provider, signer=signer, clock=web.clock)
    ctx = app.state.ctx
    csrf = CsrfTokens([SECRET]).issue("subscribe", 0)
    answers: dict[str, tuple[int, list[Any], bytes]] = {}
    calls: dict[str, list[str]] = {}
    active = store.subscribers.find("active@example.org")
    assert active is not None
    consents_before = len(store.consents.for_subscriber(active.id))

    async def run() -> None:
        for state, mail in states.items():
            body = (
                f"csrf_token={csrf}&page_locale=en&email={mail}&name=Ivo&locale=en&lists=news&consent=yes"
            ).encode()
            log.clear()
            answers[state] = await _post(app, body, log)
            # the answer is out; nothing was looked up, recorded or sent yet
            assert log == ["response"], state
            if state == "new":
                assert store.subscribers.find(mail) is None
            if state == "active":
                assert len(store.consents.for_subscriber(active.id)) == consents_before
            await ctx.background.drain()
            calls[state] = list(log)
        await ctx.aclose()

    asyncio.run(run())
    first = answers["new"]
    assert first[0] == 200 and b"Check your inbox" in first[2]
    for state, answer in answers.items():
        assert answer == first, state  # status, every header, every byte of the body
    # the work did happen afterwards: mail only where the address may receive one
    may_receive = {"new", "pending", "active", "unsubscribed", "erased"}
    for state in states:
        expected = ["response", "provider"] if state in may_receive else ["response"]
        assert calls[state] == expected, state
    new = store.subscribers.find("new@example.org")
    assert new is not None and new.status is SubscriberStatus.PENDING
