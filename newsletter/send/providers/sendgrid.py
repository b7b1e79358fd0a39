"""SendGrid v3: ``POST /v3/mail/send``, one body per request, one personalization per reader.

Messages made from the same shared body (:class:`~newsletter.models.SharedBody`: same
variant, same empty values) travel in one request: the HTML and text are sent once and
each recipient's values go in its personalization's ``substitutions``, with its own
List-Unsubscribe header and ``custom_args`` (edition, subscriber and delivery ids, which
SendGrid echoes in its event webhook). SendGrid accepts or rejects a request as a whole
(``202`` with one ``X-Message-Id``); a rejected address is found from the error's
``field`` (``personalizations.3.to.0.email``) and only that recipient fails.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Final, Literal, Self, Unpack

import httpx
from pydantic import Field

from newsletter.config.providers import HttpProviderBase
from newsletter.models import OutgoingMessage, ResultStatus, SendResult
from newsletter.send.providers.http import (
    ERROR_LIMIT,
    ClientOptions,
    Failed,
    HttpProvider,
    client_options,
    env_secret,
    error_text,
    json_body,
    share_key,
)

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["SendgridProvider", "SendgridProviderConfig"]

HOSTS: Final = {"global": "https://api.sendgrid.com", "eu": "https://api.eu.sendgrid.com"}
#: custom_args sent per recipient (SendGrid echoes them in every event)
CUSTOM_ARGS: Final = ("edition_id", "subscriber_id")
_PERSONALIZATION = re.compile(r"\bpersonalizations\.(\d+)\.")


class SendgridProviderConfig(HttpProviderBase):
    """``[provider] name = "sendgrid"``: POST /v3/mail/send, one body and up to 1000
    personalizations a request."""

    name: Literal["sendgrid"] = Field(
        default="sendgrid", description='Selects SendGrid: "sendgrid".'
    )
    api_key_env: str = Field(
        default="SENDGRID_API_KEY",
        description="Name of the environment variable holding the SendGrid API key.",
    )
    region: Literal["global", "eu"] = Field(
        default="global",
        description='"eu" sends through api.eu.sendgrid.com (an EU-pinned subuser), '
        '"global" through api.sendgrid.com; base_url wins over it.',
    )
    categories: tuple[str, ...] = Field(
        default=(),
        max_length=9,
        description="Categories added to every message, at most 9 (the segment's name is "
        "always added as well).",
    )


class SendgridProvider(HttpProvider):
    """Sends through SendGrid's Mail Send API; ``region="eu"`` uses the EU host."""

    name: ClassVar[str] = "sendgrid"
    max_batch: ClassVar[int] = 1000
    personal_bodies: ClassVar[bool] = False
    default_base_url: ClassVar[str] = HOSTS["global"]
    config_type: ClassVar[type[SendgridProviderConfig]] = SendgridProviderConfig

    def __init__(
        self,
        api_key: str,
        *,
        region: str = "global",
        categories: Sequence[str] = (),
        **options: Unpack[ClientOptions],
    ) -> None:
        if not options.get("base_url"):
            options["base_url"] = HOSTS[region]
        super().__init__(headers={"Authorization": f"Bearer {api_key}"}, **options)
        self.categories = tuple(categories)

    @classmethod
    def build(cls, config: SendgridProviderConfig, settings: Settings) -> Self:
        """From ``[provider] name = "sendgrid"``; the key comes from ``api_key_env``."""
        return cls(
            env_secret(config, "api_key_env", settings),
            region=config.region,
            categories=config.categories,
            **client_options(config),
        )

    async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """One request per shared body (usually one or two per locale); results in order."""
        self.start_batch(messages)
        groups: dict[tuple[str, ...], list[int]] = {}
        for index, msg in enumerate(messages):
            groups.setdefault(share_key(msg), []).append(index)
        return await self.send_groups(messages, groups.values(), self._send_group, self._culprits)

    def payload(self, group: Sequence[OutgoingMessage]) -> dict[str, Any]:
        """The Mail Send body for messages sharing body, subject and sender."""
        first = group[0]
        html = first.shared.html if first.shared else first.html
        text = first.shared.text if first.shared else first.text
        common = {
            k: v for k, v in first.headers.items() if all(m.headers.get(k) == v for m in group)
        }
        content = []
        if text:  # SendGrid wants text/plain before text/html
            content.append({"type": "text/plain", "value": text})
        content.append({"type": "text/html", "value": html})
        body: dict[str, Any] = {
            "personalizations": [self._personalization(m, common) for m in group],
            "from": {
                "email": first.from_email,
                **({"name": first.from_name} if first.from_name else {}),
            },
            "subject": first.subject,
            "content": content,
        }
        if common:
            body["headers"] = common
        categories = list(dict.fromkeys([*self.categories, first.metadata.get("segment", "")]))
        if categories := [c[:255] for c in categories if c][:10]:
            body["categories"] = categories
        if first.reply_to:
            body["reply_to"] = {"email": first.reply_to}
        return body

    def _personalization(self, msg: OutgoingMessage, common: dict[str, str]) -> dict[str, Any]:
        to: dict[str, str] = {"email": msg.to_email}
        if msg.to_name:
            to["name"] = msg.to_name
        person: dict[str, Any] = {
            "to": [to],
            "custom_args": {
                "delivery_id": str(msg.delivery_id),
                **{k: msg.metadata[k] for k in CUSTOM_ARGS if msg.metadata.get(k)},
            },
        }
        own = {k: v for k, v in msg.headers.items() if k not in common}
        if own:
            person["headers"] = own
        if msg.shared is not None and msg.substitutions:
            person["substitutions"] = dict(msg.substitutions)
        return person

    async def _send_group(self, group: Sequence[OutgoingMessage]) -> list[SendResult] | Failed:
        answer = await self.exchange(group, "POST", "/v3/mail/send", json=self.payload(group))
        if isinstance(answer, Failed):
            return answer
        request_id = answer.headers.get("x-message-id")
        if not request_id:
            # accepted, but nothing to match events against: keep the send, say so
            request_id = f"sendgrid-{answer.status_code}-no-x-message-id"
        return [
            SendResult(
                m.delivery_id,
                ResultStatus.ACCEPTED,
                provider_message_id=f"{request_id}/{m.delivery_id}",
            )
            for m in group
        ]

    def _culprits(self, failed: Failed, group: Sequence[OutgoingMessage]) -> Collection[int] | None:
        """Personalizations named in a 400's ``errors[].field``; None when none is."""
        if failed.status != 400 or failed.rejection is None:
            return None
        found = {int(m[1]) for m in _PERSONALIZATION.finditer(failed.rejection)}
        return found or None

    def error_text(self, response: httpx.Response) -> str:
        """SendGrid's ``errors[]`` as ``message [field]; ...`` (the field names the recipient)."""
        body = json_body(response)
        errors = body.get("errors") if isinstance(body, dict) else None
        if not isinstance(errors, list) or not errors:
            return error_text(response)
        parts = []
        for err in errors:
            if not isinstance(err, dict):
                continue
            field = err.get("field")
            suffix = f" [{field}]" if isinstance(field, str) and field and field != "null" else ""
            parts.append(f"{err.get('message', '')}{suffix}")
        return f"HTTP {response.status_code}: {'; '.join(parts)}"[:ERROR_LIMIT]
