"""A local stand-in for Resend's ``POST /emails/batch``, answering as its documentation says.

Requests are validated against Resend's own OpenAPI document (``resend/resend.yaml``,
through openapi-core: path, Bearer security, the ``Idempotency-Key`` header, the body
schema). The responder follows Resend's documented behaviour: at most 100 emails; strict
validation by default (one invalid email fails the call with 422), ``x-batch-validation:
permissive`` returning ``data`` for created emails and ``errors`` with ``index`` for the
others; idempotency keys replaying the first answer for the same body and refusing a
different body with ``409 invalid_idempotent_request``.
"""

from __future__ import annotations

import hashlib
import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Any

from newsletter.send.providers.resend import ResendProvider
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
    mailbox_parts,
)

API_KEY = "re_test_key"
SPEC = SPECS / "resend" / "resend.yaml"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")
INVALID_TO = (
    "Invalid `to` field. The email address needs to follow the `email@example.com` or "
    "`Name <email@example.com>` format."
)


def _error(status: int, name: str, message: str) -> Answer:
    return Answer(status, {"statusCode": status, "name": name, "message": message})


@dataclass
class Delivered:
    """One email Resend would have sent."""

    to: str
    name: str
    subject: str
    html: str
    headers: dict[str, str]
    tags: dict[str, str]


@dataclass
class FakeResend:
    """The responder; ``delivered`` lists every email created."""

    delivered: list[Delivered] = field(default_factory=list)
    #: idempotency key -> (body digest, the answer given)
    keys: dict[str, tuple[str, Answer]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid request."""
        if request.headers.get("authorization") != f"Bearer {API_KEY}":
            return _error(403, "invalid_api_key", "API key is invalid")
        key = request.headers.get("idempotency-key")
        digest = hashlib.sha256(request.body).hexdigest()
        if key is not None and key in self.keys:
            seen, answer = self.keys[key]
            if seen != digest:
                return _error(
                    409,
                    "invalid_idempotent_request",
                    "Same idempotency key used with a different request payload.",
                )
            return answer
        answer = self._send(request)
        if key is not None and answer.status == 200:
            self.keys[key] = (digest, answer)
        return answer

    def _send(self, request: Recorded) -> Answer:
        emails: list[dict[str, Any]] = request.json
        if len(emails) > 100:
            return _error(422, "validation_error", "Too many emails: the maximum is 100.")
        permissive = request.headers.get("x-batch-validation") == "permissive"
        errors = []
        for index, item in enumerate(emails):
            to = item["to"] if isinstance(item["to"], list) else [item["to"]]
            if not all(_ADDRESS.match(parseaddr(t)[1]) for t in to):
                if not permissive:
                    return _error(422, "validation_error", INVALID_TO)
                errors.append({"index": index, "message": INVALID_TO})
        bad = {e["index"] for e in errors}
        data = []
        for index, item in enumerate(emails):
            if index in bad:
                continue
            to = item["to"] if isinstance(item["to"], list) else [item["to"]]
            name, addr = parseaddr(to[0])
            self.delivered.append(
                Delivered(
                    to=addr,
                    name=name,
                    subject=item["subject"],
                    html=item.get("html", ""),
                    headers=item.get("headers", {}),
                    tags={t["name"]: t["value"] for t in item.get("tags", [])},
                )
            )
            data.append({"id": str(uuid.UUID(int=next(self._ids)))})
        if permissive:
            return Answer(200, {"data": data, "errors": errors})
        return Answer(200, {"data": data})


@contextmanager
def serve(fake: FakeResend | None = None) -> Iterator[SpecServer]:
    """A running fake Resend."""
    with spec_server(OpenApiValidator(SPEC), fake or FakeResend()) as server:
        yield server


def received(server: SpecServer) -> list[Received]:
    """Every email of the batches the fake accepted (rejected addresses included: the
    contract suite sends them only where it checks results, not what arrived)."""
    out = []
    for n, request in accepted(server.requests):
        for item in request.json:
            to = item["to"] if isinstance(item["to"], list) else [item["to"]]
            to_name, to_email = mailbox_parts(to[0])
            out.append(
                Received(
                    to_email=to_email,
                    to_name=to_name,
                    from_name=mailbox_parts(item["from"])[0],
                    subject=item["subject"],
                    headers=lower_keys(item.get("headers", {})),
                    request=n,
                )
            )
    return out


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory: a provider wired to a fresh fake, checked after."""
    with serve() as server:
        provider = ResendProvider(API_KEY, base_url=server.base_url, timeout=5, resend_pause=0)
        yield Contract(provider, lambda: received(server))
        assert server.invalid == [], server.invalid[0].error


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: ResendProvider(API_KEY, base_url=url, timeout=LOST_ANSWER_TIMEOUT, resend_pause=0),
    requests=1,
)
