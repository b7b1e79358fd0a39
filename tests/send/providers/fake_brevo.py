"""A local stand-in for Brevo's ``POST /v3/smtp/email``, answering as its documentation says.

Every request is validated against the ``sendSmtpEmail`` definition of Brevo's own Swagger
2.0 spec (``brevo/swagger.yaml``; openapi-core reads only OpenAPI 3, so the definitions are
used as a JSON schema) plus the ``api-key`` header the spec's security section names.
Addresses are checked by the responder, as Brevo does (``400 invalid_parameter: email is
not valid in to``, without naming the address), and so are the documented limits: 1000
message versions and 2000 recipients per request, 99 recipients per version, an
``idempotencyKey`` that is a UUID and not seen in the last 30 minutes
(``400 duplicate_parameter``).
"""

from __future__ import annotations

import functools
import itertools
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from newsletter.send.providers.brevo import BrevoProvider
from send.providers.specserver import SPECS, Answer, Recorded, SpecServer, spec_server
from send.providers.support import (
    LOST_ANSWER_TIMEOUT,
    Contract,
    LostAnswer,
    Received,
    accepted,
    lower_keys,
)

API_KEY = "xkeysib-test-key"
SPEC = SPECS / "brevo" / "swagger.yaml"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")


@functools.cache
def _schema() -> dict[str, Any]:
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    return {"$ref": "#/definitions/sendSmtpEmail", "definitions": spec["definitions"]}


class BrevoValidator:
    """Body against ``sendSmtpEmail`` (draft 4, as Swagger 2.0), ``api-key`` and JSON type."""

    def __init__(self) -> None:
        self.validator = jsonschema.Draft4Validator(_schema())

    def __call__(self, request: Recorded) -> str | None:
        """The validation error of ``request``, or None."""
        if (request.method, request.path) != ("POST", "/v3/smtp/email"):
            return f"no route {request.method} {request.path} in the spec"
        if not request.headers.get("api-key"):
            return "header api-key: missing (securityDefinitions api-key)"
        if not request.content_type.startswith("application/json"):
            return f"content-type: expected application/json, got {request.content_type!r}"
        if not isinstance(request.json, dict):
            return "body is not a JSON object"
        errors = sorted(self.validator.iter_errors(request.json), key=lambda e: list(e.path))
        if errors:
            return " | ".join(
                f"{'/'.join(map(str, e.absolute_path)) or '<body>'}: {e.message}"
                for e in errors[:10]
            )
        return None


def _error(code: str, message: str, status: int = 400) -> Answer:
    return Answer(status, {"code": code, "message": message})


@dataclass
class Delivered:
    """One message Brevo would have sent."""

    to: str
    name: str
    subject: str
    html: str
    headers: dict[str, str]
    key: str


@dataclass
class FakeBrevo:
    """The responder; ``delivered`` lists every message taken, ``keys`` the keys seen."""

    delivered: list[Delivered] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid request."""
        if request.headers.get("api-key") != API_KEY:
            return _error("unauthorized", "Key not found", 401)
        body: dict[str, Any] = request.json
        versions = body.get("messageVersions") or [{"to": body.get("to") or []}]
        if len(versions) > 1000:
            return _error("invalid_parameter", "messageVersions: maximum 1000 versions allowed")
        if sum(len(v["to"]) for v in versions) > 2000:
            return _error("invalid_parameter", "Total recipients must not exceed 2000")
        if any(not 1 <= len(v["to"]) <= 99 for v in versions):
            return _error("invalid_parameter", "unexpected recipients: want 1 to 99 per version")
        headers = dict(body.get("headers") or {})
        key = str(headers.pop("idempotencyKey", ""))
        if key:
            try:
                uuid.UUID(key)
            except ValueError:
                return _error("invalid_parameter", "idempotencyKey must be a valid UUID")
            if key in self.keys:
                return _error(
                    "duplicate_parameter", "A request with this idempotencyKey was already made"
                )
        for version in versions:
            for person in version["to"]:
                if not _ADDRESS.match(person["email"]):
                    return _error("invalid_parameter", "email is not valid in to")
        if key:
            self.keys.add(key)
        ids = []
        for version in versions:
            for person in version["to"]:
                self.delivered.append(
                    Delivered(
                        to=person["email"],
                        name=person.get("name", ""),
                        subject=version.get("subject", body.get("subject", "")),
                        html=version.get("htmlContent", body.get("htmlContent", "")),
                        headers=headers,
                        key=key,
                    )
                )
            ids.append(f"<20261128.{next(self._ids)}@smtp-relay.mailin.fr>")
        if "messageVersions" in body:
            return Answer(201, {"messageIds": ids})
        return Answer(201, {"messageId": ids[0]})


@contextmanager
def serve(fake: FakeBrevo | None = None) -> Iterator[SpecServer]:
    """A running fake Brevo."""
    with spec_server(BrevoValidator(), fake or FakeBrevo()) as server:
        yield server


def received(server: SpecServer) -> list[Received]:
    """Every message of the requests the fake accepted, versions expanded."""
    out = []
    for n, request in accepted(server.requests):
        body: dict[str, Any] = request.json
        headers = lower_keys(dict(body.get("headers", {})))
        headers.pop("idempotencykey", None)
        for version in body.get("messageVersions") or [{"to": body["to"]}]:
            for person in version["to"]:
                out.append(
                    Received(
                        to_email=person["email"],
                        to_name=person.get("name", ""),
                        from_name=body["sender"].get("name", ""),
                        subject=version.get("subject", body.get("subject", "")),
                        headers=headers,
                        request=n,
                    )
                )
    return out


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory: the default mode (our List-Unsubscribe headers, one
    message per request, 10 at once), wired to a fresh fake. The messageVersions mode is
    covered by ``test_brevo.py``."""
    with serve() as server:
        provider = BrevoProvider(API_KEY, base_url=server.base_url, timeout=5, resend_pause=0)
        yield Contract(provider, lambda: received(server))
        assert server.invalid == [], server.invalid[0].error


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: BrevoProvider(API_KEY, base_url=url, timeout=LOST_ANSWER_TIMEOUT, resend_pause=0),
    requests=2,
)
