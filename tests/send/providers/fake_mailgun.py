"""A local stand-in for Mailgun's messages API, checked against Mailgun's OpenAPI spec.

Valid calls get ``200 {"id": "<...>", "message": "Queued. Thank you."}``. Like Mailgun,
the fake refuses the whole call with ``400 {"message": "'to' parameter is not a valid
address. please check documentation"}`` when one recipient is malformed, and (stricter
than Mailgun, to catch a privacy bug) refuses a call to several recipients without a
recipient-variables entry for each. :func:`expand` rebuilds what every recipient gets.

``GET /v3/{domain}/events`` lists an ``accepted`` event per recipient of every accepted
call (with its ``user-variables`` filled in), filtered by ``event``, ``recipient`` and
``begin``, at most ``limit`` a page, with a ``paging.next`` link on this host.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path
from urllib.parse import urlencode

from newsletter.send.providers.mailgun import MailgunProvider
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

SPEC = SPECS / "mailgun" / "openapi.yaml"
API_KEY = "key-test-mailgun-example"
DOMAIN = "mg.cluster.example.org"
_VARIABLE = re.compile(r"%recipient\.([A-Za-z0-9_]+)%")
#: Mailgun's own template variables, filled per recipient as well
_OWN = re.compile(
    r"%(recipient_email|recipient_name|recipient|unsubscribe_url|tag_unsubscribe_url"
    r"|mailing_list_unsubscribe_url)%"
)
#: Mailgun's answer to a malformed recipient, word for word
BAD_ADDRESS = "'to' parameter is not a valid address. please check documentation"


def _authorized(request: Recorded) -> bool:
    expected = base64.b64encode(f"api:{API_KEY}".encode()).decode()
    return request.headers.get("authorization") == f"Basic {expected}"


class FakeMailgun:
    """The responder for spec-valid calls."""

    def __init__(self, clock: float = 1_795_000_000.0) -> None:
        self._ids = itertools.count(1)
        #: the fake's time for events (epoch seconds); tests move it
        self.clock = clock
        #: every accepted event, oldest first
        self.events: list[dict[str, object]] = []
        self.base_url = ""

    def __call__(self, request: Recorded) -> Answer:
        """Answer one valid messages or events call."""
        if not _authorized(request):
            return Answer(401, "Forbidden", content_type="text/plain")
        if request.method == "GET" and request.path == f"/v3/{DOMAIN}/events":
            return self._events({k: v[0] for k, v in request.query.items()})
        if request.path != f"/v3/{DOMAIN}/messages":
            return Answer(404, {"message": f"Domain not found: {request.path}"})
        form = request.form or {}
        recipients = [parseaddr(to)[1] for to in form.get("to", [])]
        if len(recipients) > 1000:
            return Answer(400, {"message": "Too many recipients: 1000 max"})
        for addr in recipients:
            local, at, domain = addr.rpartition("@")
            if not (at and local and "." in domain):
                return Answer(400, {"message": BAD_ADDRESS})
        variables = json.loads(form.get("recipient-variables", ["{}"])[0])
        if len(recipients) > 1 and any(addr not in variables for addr in recipients):
            return Answer(400, {"message": "batch call without recipient-variables for every 'to'"})
        message_id = f"20261128080000.{next(self._ids)}@{DOMAIN}"
        for d in expand(form):
            self.events.append(
                {
                    "event": "accepted",
                    "id": f"ev{len(self.events)}",
                    "timestamp": self.clock,
                    "recipient": parseaddr(d.to)[1],
                    "user-variables": d.variables,
                    "message": {"headers": {"message-id": message_id, "subject": d.subject}},
                }
            )
        return Answer(200, {"id": f"<{message_id}>", "message": "Queued. Thank you."})

    def _events(self, query: dict[str, str]) -> Answer:
        """One page of events, oldest first, and the link to the next."""
        begin = float(query.get("begin", "0"))
        limit = int(query.get("limit", "100"))
        start = int(query.get("page", "0"))
        found = [
            e
            for e in self.events
            if e["event"] == query.get("event", e["event"])
            and e["recipient"] == query.get("recipient", e["recipient"])
            and float(e["timestamp"]) >= begin  # type: ignore[arg-type]
        ]
        following = {**query, "page": str(start + limit)}
        link = f"{self.base_url}/v3/{DOMAIN}/events?{urlencode(following)}"
        return Answer(200, {"items": found[start : start + limit], "paging": {"next": link}})


@dataclass(frozen=True)
class Delivered:
    """What one recipient of a call receives."""

    to: str
    sender: str
    subject: str
    html: str
    text: str
    headers: dict[str, str]
    variables: dict[str, str]
    tags: list[str]


def expand(form: dict[str, list[str]]) -> list[Delivered]:
    """Every recipient's message from a call's fields, as Mailgun assembles them."""
    variables = json.loads(form["recipient-variables"][0])

    def fill(value: str, own: dict[str, str]) -> str:
        value = _VARIABLE.sub(lambda m: str(own.get(m[1], m[0])), value)
        return _OWN.sub(lambda m: own[f"%{m[1]}%"], value)

    out = []
    for to in form["to"]:
        name, address = parseaddr(to)
        own = {
            **variables.get(address, {}),
            "%recipient%": address,
            "%recipient_email%": address,
            "%recipient_name%": name,
            **{
                f"%{k}%": f"https://mailgun.example/{k}/{address}"
                for k in ("unsubscribe_url", "tag_unsubscribe_url", "mailing_list_unsubscribe_url")
            },
        }
        out.append(
            Delivered(
                to=to,
                sender=form["from"][0],
                subject=fill(form["subject"][0], own),
                html=fill(form["html"][0], own),
                text=fill(form.get("text", [""])[0], own),
                headers={k[2:]: fill(v[0], own) for k, v in form.items() if k.startswith("h:")},
                variables={k[2:]: fill(v[0], own) for k, v in form.items() if k.startswith("v:")},
                tags=form.get("o:tag", []),
            )
        )
    return out


@contextmanager
def serve() -> Iterator[SpecServer]:
    """A running fake Mailgun."""
    fake = FakeMailgun()
    with spec_server(OpenApiValidator(SPEC), fake) as server:
        fake.base_url = server.base_url
        yield server


def received(server: SpecServer) -> list[Received]:
    """Every recipient's message of the calls the fake accepted (:func:`expand`)."""
    out = []
    for n, request in accepted(server.requests):
        for d in expand(request.form or {}):
            to_name, to_email = mailbox_parts(d.to)
            out.append(
                Received(
                    to_email=to_email,
                    to_name=to_name,
                    from_name=mailbox_parts(d.sender)[0],
                    subject=d.subject,
                    headers=lower_keys(d.headers),
                    request=n,
                )
            )
    return out


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory: a provider wired to a fresh fake, checked after."""
    with serve() as server:
        provider = MailgunProvider(API_KEY, DOMAIN, base_url=server.base_url, timeout=5)
        # not closed here: its connections belong to the event loop the test ran and closed
        yield Contract(provider, lambda: received(server))
        assert server.invalid == [], server.invalid[0].error


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: MailgunProvider(API_KEY, DOMAIN, base_url=url, timeout=LOST_ANSWER_TIMEOUT),
    requests=1,
)
