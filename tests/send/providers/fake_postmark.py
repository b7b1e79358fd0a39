"""A local stand-in for Postmark's batch API, answering as its documentation says.

Requests are validated against ``postmark_schema.json`` (Postmark publishes no OpenAPI
document). Each element of a batch is answered on its own: ``ErrorCode`` 0 with a
MessageID, 300 for an address Postmark's documented rules reject, 406 for an address in
``inactive`` (bounced, complained, suppressed). The HTTP status is 200 either way.

``GET /messages/outbound`` is Postmark's outbound message search over what the fake
accepted: ``count`` (at most 500) and ``offset`` are required and may not add up past
10,000, only the documented filters are known, and one ``metadata_<key>`` filter at most.
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

from newsletter.send.providers.postmark import PostmarkProvider
from send.providers.specserver import Answer, JsonSchemaValidator, Recorded, SpecServer, spec_server
from send.providers.support import (
    LOST_ANSWER_TIMEOUT,
    Contract,
    LostAnswer,
    Received,
    accepted,
    mailbox_parts,
)

SCHEMA = json.loads((Path(__file__).parent / "postmark_schema.json").read_text(encoding="utf-8"))
TOKEN = "pm-test-server-token"

# the regular expressions Postmark's support article on ErrorCode 300 says it applies
_MAILBOX = re.compile(r"^[a-z0-9\.!#\$%&'`\*\+\-\/=\^_\{\}\|~]+$", re.IGNORECASE)
_DOMAIN = re.compile(r"^((\.)?[a-zA-Z0-9\-])+$")


SEARCH = "/messages/outbound"
#: the search's documented query parameters (besides ``metadata_<key>``)
SEARCH_PARAMS = frozenset(
    {"count", "offset", "recipient", "fromemail", "tag", "status", "todate", "fromdate"}
    | {"subject", "messagestream"}
)


def search_error(request: Recorded) -> str | None:
    """Why a message search request breaks Postmark's documented rules, or None."""
    if not request.headers.get("x-postmark-server-token"):
        return "header x-postmark-server-token: expected a value"
    if request.headers.get("accept") != "application/json":
        return "header accept: expected application/json"
    query = request.query
    if any(len(v) != 1 for v in query.values()):
        return "a search parameter is repeated"
    metadata = [k for k in query if k.startswith("metadata_")]
    unknown = set(query) - SEARCH_PARAMS - set(metadata)
    if unknown or len(metadata) > 1:
        return f"unknown or too many search parameters: {sorted(unknown) or metadata}"
    try:
        count, offset = int(query["count"][0]), int(query["offset"][0])
    except (KeyError, ValueError):
        return "count and offset are required numbers"
    if not 0 < count <= 500 or offset < 0 or count + offset > 10_000:
        return f"count {count} / offset {offset} out of range"
    return None


class PostmarkValidator:
    """The batch body against the schema, and the search against :func:`search_error`."""

    def __init__(self) -> None:
        self.batch = JsonSchemaValidator(
            {("POST", "/email/batch"): SCHEMA},
            required_headers={
                "x-postmark-server-token": None,
                "accept": "application/json",
                "content-type": "application/json",
            },
        )

    def __call__(self, request: Recorded) -> str | None:
        """The validation error of ``request``, or None."""
        if request.method == "GET" and request.path == SEARCH:
            return search_error(request)
        return self.batch(request)


def validator() -> PostmarkValidator:
    """Checks the body against the schema and the headers Postmark requires."""
    return PostmarkValidator()


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
        #: every message accepted, as the search lists it (newest last)
        self.sent: list[dict[str, object]] = []

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid batch or search request."""
        if request.headers.get("x-postmark-server-token") != TOKEN:
            return Answer(
                401, {"ErrorCode": 10, "Message": "The Server API Token you provided was invalid."}
            )
        if request.path == SEARCH:
            return self._search(request.query)
        elements = [self._element(msg) for msg in request.json]
        for msg, element in zip(request.json, elements, strict=True):
            if element["ErrorCode"] == 0:
                self.sent.append(
                    {
                        "MessageID": element["MessageID"],
                        "Recipients": [parseaddr(str(msg["To"]))[1]],
                        "Subject": msg["Subject"],
                        "MessageStream": msg.get("MessageStream", "outbound"),
                        "Metadata": msg.get("Metadata", {}),
                        "Status": "Sent",
                    }
                )
        return Answer(200, elements)

    def _search(self, query: dict[str, list[str]]) -> Answer:
        """The outbound search, newest first, filtered as documented."""
        q = {k: v[0] for k, v in query.items()}
        found = [
            m
            for m in reversed(self.sent)
            if q.get("messagestream", m["MessageStream"]) == m["MessageStream"]
            and all(
                str(m["Metadata"].get(k[len("metadata_") :])) == v  # type: ignore[attr-defined]
                for k, v in q.items()
                if k.startswith("metadata_")
            )
        ]
        start, count = int(q["offset"]), int(q["count"])
        return Answer(200, {"TotalCount": len(found), "Messages": found[start : start + count]})

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


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: PostmarkProvider(TOKEN, base_url=url, timeout=LOST_ANSWER_TIMEOUT), requests=1
)
