"""Mailgun: ``POST /v3/{domain}/messages``, one body and up to 1000 recipients per call.

Batch sending: every recipient is a ``to`` field and ``recipient-variables`` holds each
one's values, so Mailgun sends one message per recipient (without recipient-variables
every reader would see every address). The shared body's placeholders become
``%recipient.<name>%``; per-recipient headers (List-Unsubscribe) and ids (``v:``
variables, echoed in Mailgun's webhooks) use recipient variables the same way. Mailgun
accepts or rejects a call as a whole; a rejected address fails only its recipient (the
call is split until the address is found).

Mailgun substitutes ``%recipient.<name>%`` (and its own ``%recipient_email%``,
``%unsubscribe_url%`` ...) anywhere in the body and subject, including text a story
wrote. Before our variables go in, every such sequence already there is made inert
(``&#37;`` in HTML, a word joiner after ``%`` in text), so content cannot reach a
recipient variable, fixed names such as ``h_list_unsubscribe`` included.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, ClassVar, Final, Literal, Self, Unpack

import httpx
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.base import Probe
from newsletter.send.providers.http import (
    ClientOptions,
    Failed,
    HttpProvider,
    Unanswered,
    client_options,
    env_secret,
    json_body,
    mailbox,
    share_key,
)

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["MailgunProvider", "MailgunProviderConfig"]

HOSTS: Final = {"us": "https://api.mailgun.net", "eu": "https://api.eu.mailgun.net"}
#: ids sent as ``v:`` variables (Mailgun returns them as user-variables in events)
VARIABLES: Final = ("edition_id", "subscriber_id")
#: Mailgun allows three o:tag values per message
MAX_TAGS: Final = 3
#: the events API answers at most 300 events a page; a lookup reads this many pages
EVENTS_PAGE: Final = 300
EVENTS_PAGES: Final = 10
_UNSAFE = re.compile(r"[^A-Za-z0-9]+")
# the start of every variable Mailgun substitutes: recipient variables and its own
# (mailing-list) ones; none can be a URL's percent-escape (r, u, t, m are not hex digits)
_MAILGUN_VARIABLE = re.compile(
    r"%(?=recipient|unsubscribe_|tag_unsubscribe_|mailing_list_unsubscribe_)", re.IGNORECASE
)
#: U+2060 WORD JOINER: invisible, breaks the match in text where no entity is available
_JOINER: Final = "\u2060"
# Mailgun's texts for a bad recipient ("'to' parameter is not a valid address ...")
_RECIPIENT_FAULT = re.compile(r"\bto\b.*\baddress|\brecipient", re.IGNORECASE | re.DOTALL)


def inert_html(html: str) -> str:
    """``html`` with every Mailgun variable made literal text (``%`` as ``&#37;``)."""
    return _MAILGUN_VARIABLE.sub("&#37;", html)


def inert_text(text: str) -> str:
    """``text`` with every Mailgun variable broken by an invisible word joiner."""
    return _MAILGUN_VARIABLE.sub("%" + _JOINER, text)


def _variable(marker: str) -> str:
    """A recipient-variable name for a placeholder string or header name."""
    return _UNSAFE.sub("_", marker).strip("_").lower()


class MailgunProviderConfig(HttpProviderBase):
    """``[provider] name = "mailgun"``: POST /v3/{domain}/messages with
    recipient-variables, up to 1000 a call."""

    name: Literal["mailgun"] = Field(default="mailgun", description='Selects Mailgun: "mailgun".')
    domain: str = Field(
        min_length=3,
        pattern=r"^[A-Za-z0-9.-]+$",
        examples=["mg.example.org"],
        description='The sending domain as set up in Mailgun, e.g. "mg.example.org".',
    )
    api_key_env: str = Field(
        default="MAILGUN_API_KEY",
        description="Name of the environment variable holding the Mailgun private API key.",
    )
    region: Literal["us", "eu"] = Field(
        default="us",
        description='"eu" sends through api.eu.mailgun.net, "us" through api.mailgun.net; '
        "base_url wins over it.",
    )
    tags: tuple[str, ...] = Field(
        default=(),
        max_length=2,
        description="o:tag values added to every message, at most 2 (the segment's name is "
        "always added; Mailgun allows 3).",
    )


class MailgunProvider(HttpProvider):
    """Sends through Mailgun's messages API for one sending ``domain``.

    :meth:`lookup` finds a message whose answer was lost in the events API: the
    ``accepted`` events of its recipient since the edition began, matched on the
    ``delivery_id`` user variable every message carries.
    """

    name: ClassVar[str] = "mailgun"
    max_batch: ClassVar[int] = 1000
    personal_bodies: ClassVar[bool] = False
    default_base_url: ClassVar[str] = HOSTS["us"]
    #: Mailgun keeps events for at least three days
    lookup_horizon: ClassVar[timedelta | None] = timedelta(days=3)
    config_type: ClassVar[type[MailgunProviderConfig]] = MailgunProviderConfig

    def __init__(
        self,
        api_key: str,
        domain: str,
        *,
        region: str = "us",
        tags: Sequence[str] = (),
        **options: Unpack[ClientOptions],
    ) -> None:
        if not options.get("base_url"):
            options["base_url"] = HOSTS[region]
        super().__init__(auth=httpx.BasicAuth("api", api_key), **options)
        self.domain = domain
        self.tags = tuple(tags)

    @classmethod
    def build(cls, config: MailgunProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "mailgun"``; the key comes from ``api_key_env``."""
        return cls(
            env_secret(config, "api_key_env", settings),
            config.domain,
            region=config.region,
            tags=config.tags,
            **client_options(config),
        )

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One call per shared body and sender; results in the order given."""
        self.start_batch(messages)
        groups = self._groups(messages)
        return await self.send_groups(messages, groups, self._send_group, self._culprits)

    def _groups(self, messages: Sequence[OutgoingMessage]) -> list[list[int]]:
        """Indexes of messages that can share a call; an address appears once per call
        (recipient-variables are keyed by address)."""
        groups: dict[tuple[tuple[str, ...], int], list[int]] = {}
        seen: dict[tuple[tuple[str, ...], str], int] = {}
        for index, msg in enumerate(messages):
            key = share_key(msg)
            round_ = seen.get((key, msg.to_email), 0)
            seen[(key, msg.to_email)] = round_ + 1
            groups.setdefault((key, round_), []).append(index)
        return list(groups.values())

    def form(self, group: Sequence[OutgoingMessage]) -> list[tuple[str, str]]:
        """The multipart fields of one call (repeated names in order)."""
        first = group[0]
        # inert first: then the only recipient variables in the body are the ones put below
        html = inert_html(first.shared.html if first.shared else first.html)
        text = inert_text(first.shared.text if first.shared else first.text)
        markers = sorted(first.substitutions, key=len, reverse=True) if first.shared else []
        for marker in markers:
            html = html.replace(marker, f"%recipient.{_variable(marker)}%")
            text = text.replace(marker, f"%recipient.{_variable(marker)}%")
        names = dict.fromkeys(name for m in group for name in m.headers)
        variables: dict[str, dict[str, str]] = {}
        for msg in group:
            values = {"delivery_id": str(msg.delivery_id)}
            values.update({k: msg.metadata[k] for k in VARIABLES if msg.metadata.get(k)})
            values.update({f"h_{_variable(k)}": msg.headers.get(k, "") for k in names})
            if msg.shared is not None:
                values.update({_variable(k): v for k, v in msg.substitutions.items()})
            variables[msg.to_email] = values
        fields = [("from", mailbox(first.from_name, first.from_email))]
        fields += [("to", mailbox(m.to_name, m.to_email)) for m in group]
        fields += [("subject", inert_text(first.subject)), ("html", html)]
        if text:
            fields.append(("text", text))
        for name in names:
            value = first.headers.get(name)
            same = all(m.headers.get(name) == value for m in group)
            if value is not None and same:
                fields.append((f"h:{name}", value))
            else:
                fields.append((f"h:{name}", f"%recipient.h_{_variable(name)}%"))
        if first.reply_to:
            fields.append(("h:Reply-To", first.reply_to))
        tags = list(dict.fromkeys([*self.tags, first.metadata.get("segment", "")]))
        fields += [("o:tag", tag) for tag in tags if tag][:MAX_TAGS]
        fields += [(f"v:{k}", f"%recipient.{k}%") for k in ("delivery_id", *VARIABLES)]
        fields.append(("recipient-variables", json.dumps(variables, ensure_ascii=False)))
        return fields

    async def _send_group(self, group: Sequence[OutgoingMessage]) -> list[SendResult] | Failed:
        path = f"/v3/{self.domain}/messages"
        # encoded in memory: streamed, httpx writes every field separately (dozens of sends)
        encoded = httpx.Request(
            "POST", self.url(path), files=[(k, (None, v)) for k, v in self.form(group)]
        )
        answer = await self.exchange(
            group,
            "POST",
            path,
            content=encoded.read(),
            headers={"Content-Type": encoded.headers["Content-Type"]},
        )
        if isinstance(answer, Failed):
            return answer
        body = json_body(answer)
        call_id = body.get("id") if isinstance(body, dict) else None
        if not isinstance(call_id, str) or not call_id:
            call_id = f"mailgun-{answer.status_code}-no-id"
        call_id = call_id.strip("<>")
        return [
            SendResult(
                m.delivery_id,
                ResultStatus.ACCEPTED,
                provider_message_id=f"{call_id}/{m.delivery_id}",
            )
            for m in group
        ]

    async def lookup_one(self, probe: Probe) -> str | None:
        """``<message-id>/<delivery id>`` (as :meth:`send_batch` records it) of the
        accepted event for ``probe``'s delivery row, or None when there is none."""
        wanted = str(probe.delivery_id)
        url = f"/v3/{self.domain}/events"
        params: dict[str, str] | None = {
            "event": "accepted",
            "recipient": probe.to_email,
            "begin": str(int(probe.since.timestamp())),
            "ascending": "yes",
            "limit": str(EVENTS_PAGE),
        }
        for _ in range(EVENTS_PAGES):
            body = await self.get_json(url, params)
            items = body.get("items") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise Unanswered(f"mailgun: unreadable events answer: {str(body)[:200]!r}")
            for event in items:
                found = _accepted_id(event, wanted)
                if found is not None:
                    return f"{found}/{wanted}"
            paging = body.get("paging")
            following = paging.get("next") if isinstance(paging, dict) else None
            if len(items) < EVENTS_PAGE or not isinstance(following, str):
                return None
            url, params = following, None
        raise Unanswered(f"mailgun: more than {EVENTS_PAGES} pages of events for a recipient")

    def _culprits(self, failed: Failed, group: Sequence[OutgoingMessage]) -> Collection[int] | None:
        """Recipients a 400 names; empty (split to find out) when it blames an address."""
        if failed.status != 400 or failed.rejection is None:
            return None
        named = {i for i, m in enumerate(group) if m.to_email and m.to_email in failed.rejection}
        if named:
            return named
        return () if _RECIPIENT_FAULT.search(failed.rejection) else None


def _accepted_id(event: object, delivery_id: str) -> str | None:
    """The Message-Id of an ``accepted`` event for ``delivery_id``, else None."""
    if not isinstance(event, dict) or event.get("event") != "accepted":
        return None
    variables = event.get("user-variables")
    if not isinstance(variables, dict) or str(variables.get("delivery_id")) != delivery_id:
        return None
    message = event.get("message")
    headers = message.get("headers") if isinstance(message, dict) else None
    message_id = headers.get("message-id") if isinstance(headers, dict) else None
    return message_id.strip("<>") if isinstance(message_id, str) and message_id else None
