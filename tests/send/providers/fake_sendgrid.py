"""A local stand-in for SendGrid's Mail Send API, checked against SendGrid's OpenAPI spec.

Valid requests get ``202`` with an ``X-Message-Id``. Requests the spec rejects get
SendGrid's own 400 shape: ``{"errors": [{"message", "field", "help"}]}``, where an
invalid address reads "Does not contain a valid address." with the field path of the
personalization, as SendGrid answers. :func:`expand` rebuilds the message each recipient
would get (substitutions applied), so tests compare it with what was composed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsletter.send.providers.sendgrid import SendgridProvider
from send.providers.specserver import (
    SPECS,
    Answer,
    OpenApiValidator,
    Recorded,
    SpecServer,
    spec_server,
)
from send.providers.support import (
    LOST_ANSWER_TIMEOUT,
    Contract,
    LostAnswer,
    Received,
    accepted,
    lower_keys,
)

SPEC = SPECS / "sendgrid" / "spec" / "json" / "tsg_mail_v3.json"
API_KEY = "SG.test-key.example"
HELP = "https://www.twilio.com/docs/sendgrid/api-reference/mail-send/errors"


def invalid_answer(request: Recorded) -> Answer:
    """SendGrid's 400 for a request that breaks its schema."""
    errors = []
    for path in request.error_paths or ("",):
        if path.endswith(".email"):
            errors.append(
                {"message": "Does not contain a valid address.", "field": path, "help": HELP}
            )
        else:
            errors.append(
                {"message": request.error or "invalid request", "field": path or None, "help": None}
            )
    return Answer(400, {"errors": errors})


class FakeSendgrid:
    """The responder for valid requests: 202 and a fresh X-Message-Id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid Mail Send request."""
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return Answer(
                401,
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, "
                            "expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
            )
        return Answer(202, headers={"X-Message-Id": f"sgTest{next(self._ids):06d}xyz"})


@dataclass(frozen=True)
class Delivered:
    """What one recipient of a Mail Send request receives."""

    to: dict[str, str]
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    custom_args: dict[str, str]


def _apply(value: str, substitutions: dict[str, str]) -> str:
    for key, sub in substitutions.items():
        value = value.replace(key, sub)
    return value


def expand(body: dict[str, Any]) -> list[Delivered]:
    """Every recipient's message from a Mail Send body, as SendGrid assembles it."""
    content = {c["type"]: c["value"] for c in body["content"]}
    out = []
    for person in body["personalizations"]:
        subs = person.get("substitutions", {})
        out.append(
            Delivered(
                to=person["to"][0],
                subject=_apply(person.get("subject", body["subject"]), subs),
                html=_apply(content["text/html"], subs),
                text=_apply(content.get("text/plain", ""), subs),
                headers={**body.get("headers", {}), **person.get("headers", {})},
                custom_args=person.get("custom_args", {}),
            )
        )
    return out


@contextmanager
def serve() -> Iterator[SpecServer]:
    """A running fake SendGrid."""
    with spec_server(
        OpenApiValidator(SPEC), FakeSendgrid(), invalid_answer=invalid_answer
    ) as server:
        yield server


def received(server: SpecServer) -> list[Received]:
    """Every recipient's message of the requests the fake accepted (:func:`expand`)."""
    return [
        Received(
            to_email=d.to["email"],
            to_name=d.to.get("name", ""),
            from_name=request.json["from"].get("name", ""),
            subject=d.subject,
            headers=lower_keys(d.headers),
            request=n,
        )
        for n, request in accepted(server.requests)
        for d in expand(request.json)
    ]


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory; afterwards, only addresses may have been invalid."""
    with serve() as server:
        provider = SendgridProvider(API_KEY, base_url=server.base_url, timeout=5)
        # not closed here: its connections belong to the event loop the test ran and closed
        yield Contract(provider, lambda: received(server))
        for request in server.invalid:
            assert request.error_paths, request.error
            assert all(p.endswith(".email") for p in request.error_paths), request.error


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: SendgridProvider(API_KEY, base_url=url, timeout=LOST_ANSWER_TIMEOUT), requests=1
)
