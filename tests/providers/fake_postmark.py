"""A local stand-in for Postmark's batch API, answering as its documentation says.

Requests are validated against ``postmark_schema.json`` (Postmark publishes no OpenAPI
document). Each element of a batch is answered on its own: ``ErrorCode`` 0 with a
MessageID, 300 for an address Postmark's documented rules reject, 406 for an address in
``inactive`` (bounced, complained, suppressed). The HTTP status is 200 either way.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from email.utils import parseaddr
from pathlib import Path

from newsletter.providers.postmark import PostmarkProvider
from providers.specserver import Answer, JsonSchemaValidator, Recorded, SpecServer, spec_server
from providers.support import Contract, Received, accepted, mailbox_parts

SCHEMA = json.loads((Path(__file__).parent / "postmark_schema.json").read_text(encoding="utf-8"))
TOKEN = "pm-test-server-token"

# the regular expressions Postmark's support article on ErrorCode 300 says it applies
_MAILBOX = re.compile(r"^[a-z0-9\.!#\$%&'`\*\+\-\/=\^_\{\}\|~]+$", re.IGNORECASE)
_DOMAIN = re.compile(r"^((\.)?[a-zA-Z0-9\-])+$")


def validator() -> JsonSchemaValidator:
    """Checks the body against the schema and the headers Postmark requires."""
    return JsonSchemaValidator(
        {("POST", "/email/batch"): SCHEMA},
        required_headers={
            "x-postmark-server-token": None,
            "accept": "application/json",
            "content-type": "application/json",
        },
    )


def address_error(to: str) -> str | None:
    """Postmark's ErrorCode 300 message for a malformed ``To``, or None."""
    _name, addr = parseaddr(to)
    local, at, domain = addr.rpartition("@")
    if not at:
        return (
            f"Error parsing 'To': Illegal email address '{addr}'. It must contain the '@' symbol."
        )
    if not _MAILBOX.match(local) or not _DOMAIN.match(domain):
        return f"Error parsing 'To': Illegal email address '{addr}'."
    return None


class FakePostmark:
    """The responder: per-element results; ``inactive`` holds suppressed addresses."""

    def __init__(self, inactive: set[str] | None = None) -> None:
        self.inactive = inactive or set()
        self._ids = itertools.count(1)

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid batch request."""
        if request.headers.get("x-postmark-server-token") != TOKEN:
            return Answer(
                401, {"ErrorCode": 10, "Message": "The Server API Token you provided was invalid."}
            )
        return Answer(200, [self._element(msg) for msg in request.json])

    def _element(self, msg: dict[str, object]) -> dict[str, object]:
        to = str(msg["To"])
        error = address_error(to)
        if error is not None:
            return {"ErrorCode": 300, "Message": error}
        addr = parseaddr(to)[1]
        if addr in self.inactive:
            return {
                "ErrorCode": 406,
                "Message": "You tried to send to recipient(s) that have been marked as "
                f"inactive. Found inactive addresses: {addr}. Inactive recipients are ones "
                "that have generated a hard bounce, a spam complaint, or a manual suppression.",
            }
        return {
            "To": to,
            "SubmittedAt": "2026-11-28T08:00:00.0000000-05:00",
            "MessageID": str(uuid.UUID(int=next(self._ids))),
            "ErrorCode": 0,
            "Message": "OK",
        }


@contextmanager
def serve(inactive: set[str] | None = None) -> Iterator[SpecServer]:
    """A running fake Postmark."""
    with spec_server(validator(), FakePostmark(inactive)) as server:
        yield server


def received(server: SpecServer) -> list[Received]:
    """Every message of the batches the fake accepted, as Postmark reads it."""
    out = []
    for n, request in accepted(server.requests):
        for msg in request.json:
            to_name, to_email = mailbox_parts(msg["To"])
            out.append(
                Received(
                    to_email=to_email,
                    to_name=to_name,
                    from_name=mailbox_parts(msg["From"])[0],
                    subject=msg["Subject"],
                    headers={h["Name"].lower(): h["Value"] for h in msg.get("Headers", [])},
                    request=n,
                )
            )
    return out


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory: a provider wired to a fresh fake, checked after."""
    with serve() as server:
        provider = PostmarkProvider(TOKEN, base_url=server.base_url, timeout=5)
        # not closed here: its connections belong to the event loop the test ran and closed
        yield Contract(provider, lambda: received(server))
        assert server.invalid == [], server.invalid[0].error
