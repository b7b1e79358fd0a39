"""A local stand-in for Amazon SES v2 ``SendEmail``, answering as the service does.

Requests are validated against SES's own service model (``amazon-ses-v2/service-2.json``)
by :class:`providers.aws.ServiceModelValidator`, and their SigV4 signature is recomputed
with the test secret (:func:`providers.aws.verify_sigv4`); a bad signature is answered
``403 SignatureDoesNotMatch`` as AWS does. The raw MIME is decoded and parsed. Errors
carry their name in ``x-amzn-ErrorType`` and a ``message`` in the body, with the status
the service model gives each error shape.
"""

from __future__ import annotations

import base64
import email
import email.policy
import itertools
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from newsletter.send.providers.ses import SesProvider
from send.providers.aws import ServiceModelValidator, load_model, verify_sigv4
from send.providers.specserver import SPECS, Answer, Recorded, SpecServer, spec_server
from send.providers.support import (
    LOST_ANSWER_TIMEOUT,
    Contract,
    LostAnswer,
    Received,
    accepted,
    from_mime,
)

MODEL = SPECS / "amazon-ses-v2" / "service-2.json"
# AWS's documented example credentials: not a real key
ACCESS_KEY = "AKIDEXAMPLE"
SECRET_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
REGION = "eu-central-1"
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[A-Za-z0-9-]{2,}$")


def aws_error(name: str, message: str) -> Answer:
    """An error answer as SES sends it; the status comes from the service model."""
    shape = load_model(MODEL)["shapes"].get(name, {})
    status = shape.get("error", {}).get("httpStatusCode", 400)
    return Answer(
        status,
        {"message": message},
        headers={
            "x-amzn-ErrorType": f"{name}:http://internal.amazon.com/coral/com.amazonaws.sesv2/"
        },
    )


@dataclass
class Sent:
    """One message SES took."""

    to: list[str]
    mime: EmailMessage
    raw: bytes
    tags: dict[str, str]
    message_id: str


@dataclass
class FakeSes:
    """The responder. ``verified``: sending identities (domains or addresses);
    ``sandbox_unverified``: recipients refused as in the SES sandbox."""

    verified: set[str] = field(default_factory=lambda: {"cluster.example.org"})
    sandbox_unverified: set[str] = field(default_factory=set)
    session_token: str | None = None
    sent: list[Sent] = field(default_factory=list)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def __call__(self, request: Recorded) -> Answer:
        """Answer one request that matched the service model."""
        problem = verify_sigv4(
            request,
            access_key=ACCESS_KEY,
            secret_key=SECRET_KEY,
            region=REGION,
            service="ses",
            session_token=self.session_token,
        )
        if problem is not None:
            return Answer(
                403,
                {"message": f"The request signature we calculated does not match ({problem})"},
                headers={"x-amzn-ErrorType": "SignatureDoesNotMatch:"},
            )
        body: dict[str, Any] = request.json
        raw = base64.b64decode(body["Content"]["Raw"]["Data"])
        mime = email.message_from_bytes(raw, policy=email.policy.default)
        assert isinstance(mime, EmailMessage)
        sender = body.get("FromEmailAddress") or mime["From"].addresses[0].addr_spec
        if sender not in self.verified and sender.rpartition("@")[2] not in self.verified:
            return aws_error(
                "MessageRejected",
                "Email address is not verified. The following identities failed the check "
                f"in region {REGION.upper()}: {sender}",
            )
        to = body.get("Destination", {}).get("ToAddresses") or [
            a.addr_spec for a in mime["To"].addresses
        ]
        for addr in to:
            if not _ADDRESS.match(addr):
                return aws_error("BadRequestException", f"Illegal address: {addr}")
            if addr in self.sandbox_unverified:
                return aws_error(
                    "MessageRejected",
                    "Email address is not verified. The following identities failed the "
                    f"check in region {REGION.upper()}: {addr}",
                )
        message_id = f"0107018d{next(self._ids):08x}-5e6f7a8b-0000-0000-0000-000000000000-000000"
        tags = {t["Name"]: t["Value"] for t in body.get("EmailTags", [])}
        self.sent.append(Sent(to, mime, raw, tags, message_id))
        return Answer(200, {"MessageId": message_id})


@contextmanager
def serve(fake: FakeSes | None = None) -> Iterator[SpecServer]:
    """A running fake SES."""
    with spec_server(ServiceModelValidator(MODEL), fake or FakeSes()) as server:
        yield server


def provider_for(server: SpecServer, **options: Any) -> SesProvider:
    """A provider with the test credentials, pointed at ``server``."""
    settings: dict[str, Any] = {"base_url": server.base_url, "timeout": 5}
    settings.update(options)
    return SesProvider(ACCESS_KEY, SECRET_KEY, REGION, **settings)


def received(server: SpecServer) -> list[Received]:
    """Every raw message of the SendEmail calls the fake accepted."""
    return [
        from_mime(base64.b64decode(request.json["Content"]["Raw"]["Data"]), n)
        for n, request in accepted(server.requests)
    ]


@contextmanager
def contract_factory(tmp_path: Path) -> Iterator[Contract]:
    """The contract suite's factory: a provider wired to a fresh fake, checked after."""
    with serve() as server:
        yield Contract(provider_for(server), lambda: received(server))
        assert server.invalid == [], server.invalid[0].error


#: for test_lost_answers.py: this provider, its requests for two messages
LOST_ANSWER = LostAnswer(
    lambda url: SesProvider(
        ACCESS_KEY, SECRET_KEY, REGION, base_url=url, timeout=LOST_ANSWER_TIMEOUT
    ),
    requests=2,
)
