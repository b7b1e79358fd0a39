"""A recording, fault-injecting stand-in for Postmark, Resend and SendGrid on 127.0.0.1.

Speaks just enough of these batch APIs for the real adapters (``providers/postmark.py``,
``providers/resend.py``, ``providers/sendgrid.py``) pointed at it with ``base_url``:

- ``POST /email/batch`` (Postmark): a JSON array of messages, answered with one element
  per message (``ErrorCode`` 0 and a ``MessageID``). Postmark has no idempotency: every
  request it accepts delivers every message in it, duplicates included.
- ``POST /emails/batch`` (Resend): a JSON array, answered ``{"data": [{"id": ...}]}``.
  Like Resend, a request repeating an ``Idempotency-Key`` already answered gets the same
  answer and delivers nothing; the same key with a different body is refused with 409
  ``invalid_idempotent_request``; a request whose key is still being processed (a
  batch in flight twice: its lease ran out) gets 409 ``concurrent_idempotent_requests``.
- ``POST /v3/mail/send`` (SendGrid): one body and a ``personalizations`` list, answered
  ``202`` with an ``X-Message-Id``; every personalization is one delivered message.

Every delivered message is recorded (recipient, provider id, request number). Faults are
injected per request at ``fault_rate``: 429 with Retry-After, 500, a connection reset, or
a read timeout (the server goes silent past the client's timeout; with
``timeout_after_processing`` it has delivered the request first, the ambiguous case).
``stall_requests`` and ``throttle_requests`` inject a read timeout or a 429 at chosen
request numbers instead.
``kill`` makes the server SIGKILL a worker process when its n-th request arrives, before
or after delivering it: a crash at an exact point, from outside the worker.

``GET /messages/outbound?metadata_delivery_id=N`` is Postmark's message search over the
Postmark messages delivered (never faulted), for reconciling unknown rows.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import random
import signal
import socket
import struct
import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qs, urlsplit

FAULTS = ("429", "500", "reset", "timeout")
POSTMARK = "/email/batch"
RESEND = "/emails/batch"
SENDGRID = "/v3/mail/send"


@dataclass(frozen=True)
class Delivered:
    """One message the fake provider accepted and would have delivered."""

    to: str
    provider_id: str
    request: int
    subject: str
    idempotency_key: str | None
    #: Postmark's Metadata of the message (empty for the others)
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass
class Kill:
    """SIGKILL ``pid`` when the ``at``-th accepted request arrives (``before``/``after``
    delivering it); ``fired`` is set once done."""

    pid: int
    at: int
    when: Literal["before", "after"]
    fired: threading.Event = field(default_factory=threading.Event)
    #: accepted requests seen since this kill was armed
    seen: int = 0


@dataclass
class FakeProvider:
    """State of the running fake: knobs the test sets, and what was delivered."""

    base_url: str = ""
    fault_rate: float = 0.0
    faults: tuple[str, ...] = FAULTS
    #: seconds in the Retry-After of a 429 (None: no Retry-After, as Postmark and SES)
    retry_after: float | None = 1.0
    #: seconds the server stays silent for a "timeout" fault (longer than the client waits)
    stall: float = 1.5
    timeout_after_processing: bool = True
    #: seconds every accepted request takes (to make runs long enough to pause or kill)
    latency: float = 0.0
    #: answer these request numbers (1-based, all requests) with 429 regardless of fault_rate
    throttle_requests: set[int] = field(default_factory=set)
    #: these request numbers get the "timeout" fault regardless of fault_rate
    stall_requests: set[int] = field(default_factory=set)
    kill: Kill | None = None
    #: with ``hold`` set, requests numbered above ``hold_after`` wait for it before they
    #: are processed: the test acts while the sender is held, whatever the machine's load
    hold: threading.Event | None = None
    hold_after: int = 0
    seed: int = 0
    delivered: list[Delivered] = field(default_factory=list)
    #: requests that repeated an Idempotency-Key already answered (Resend)
    replays: int = 0
    #: (request number, path, injected fault or "ok", arrival time.monotonic())
    log: list[tuple[int, str, str, float]] = field(default_factory=list)
    #: (request number, Idempotency-Key or None) of every request
    request_keys: list[tuple[int, str | None]] = field(default_factory=list)
    #: requests being handled right now, and the most at once
    active: int = 0
    max_active: int = 0
    #: when each 429 answer was sent (time.monotonic())
    throttled_at: list[float] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: Resend idempotency: key -> (sha256 of the body, the answer given)
    keys: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    #: Resend idempotency: keys of requests being processed right now
    pending: set[str] = field(default_factory=set)
    #: requests refused because the same key was still being processed
    concurrent: int = 0
    _numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _rng: random.Random = field(default_factory=random.Random)

    def counts(self, subject: str = "") -> Counter[str]:
        """Messages delivered per recipient address (only those whose subject has
        ``subject`` in it)."""
        with self.lock:
            return Counter(d.to for d in self.delivered if subject in d.subject)

    def ids(self, subject: str = "") -> dict[str, set[str]]:
        """Provider message ids delivered per recipient address."""
        out: dict[str, set[str]] = {}
        with self.lock:
            for d in self.delivered:
                if subject in d.subject:
                    out.setdefault(d.to, set()).add(d.provider_id)
        return out

    def outcomes(self) -> Counter[str]:
        """How many requests were answered normally ("ok") or with each injected fault."""
        with self.lock:
            return Counter(kind for _, _, kind, _ in self.log)


def _address(mailbox: str) -> str:
    """``"Name" <a@b>`` or ``a@b`` -> ``a@b``."""
    return mailbox.rsplit("<", 1)[-1].rstrip(">").strip().lower()


def _handler(state: FakeProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            with state.lock:
                state.active += 1
                state.max_active = max(state.max_active, state.active)
            try:
                self._post()
            finally:
                with state.lock:
                    state.active -= 1

        def do_GET(self) -> None:
            url = urlsplit(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path != "/messages/outbound" or not self.headers.get("X-Postmark-Server-Token"):
                self._json(404, {"message": "not found"})
                return
            wanted = {
                k.removeprefix("metadata_"): v
                for k, v in query.items()
                if k.startswith("metadata_")
            }
            with state.lock:
                found = [
                    {"MessageID": d.provider_id, "Recipients": [d.to], "Metadata": d.metadata}
                    for d in state.delivered
                    if d.metadata and all(d.metadata.get(k) == v for k, v in wanted.items())
                ]
            count, offset = int(query["count"]), int(query["offset"])
            self._json(200, {"TotalCount": len(found), "Messages": found[offset : offset + count]})

        def _post(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            path = self.path.split("?", 1)[0]
            if path not in (POSTMARK, RESEND, SENDGRID):
                self._json(404, {"message": "not found"})
                return
            if not (
                self.headers.get("X-Postmark-Server-Token")
                or self.headers.get("Authorization", "").startswith("Bearer ")
            ):
                self._json(401, {"ErrorCode": 10, "Message": "missing credentials"})
                return
            with state.lock:
                number = next(state._numbers)
                fault = None
                if number in state.throttle_requests:
                    fault = "429"
                elif number in state.stall_requests:
                    fault = "timeout"
                elif state.fault_rate and state._rng.random() < state.fault_rate:
                    fault = state._rng.choice(state.faults)
                state.log.append((number, path, fault or "ok", time.monotonic()))
                state.request_keys.append((number, self.headers.get("Idempotency-Key")))
                hold = state.hold if number > state.hold_after else None
            if hold is not None:
                hold.wait(60)
            if fault == "429":
                self._throttle(path)
            elif fault == "500":
                self._json(500, {"message": "internal error (injected)", "ErrorCode": 500})
            elif fault == "reset":
                self._reset()
            elif fault == "timeout":
                if state.timeout_after_processing:
                    self._process(path, body, number, answer=False)
                time.sleep(state.stall)
                self._reset()
            else:
                self._process(path, body, number, answer=True)

        def _process(self, path: str, body: bytes, number: int, *, answer: bool) -> None:
            parsed = json.loads(body)
            # SendGrid: one message per personalization, the subject shared
            messages = (
                [{**p, "subject": parsed.get("subject", "")} for p in parsed["personalizations"]]
                if path == SENDGRID
                else parsed
            )
            assert isinstance(messages, list) and messages, "a batch is a non-empty JSON array"
            key = self.headers.get("Idempotency-Key") if path == RESEND else None
            digest = hashlib.sha256(body).hexdigest()
            with state.lock:
                if key is not None and key in state.keys:
                    seen, stored = state.keys[key]
                    state.replays += 1
                    if seen != digest:
                        reply = (409, {"name": "invalid_idempotent_request", "statusCode": 409})
                    else:
                        reply = (200, json.loads(stored))
                    if answer:
                        self._json(*reply)
                    return
                if key is not None and key in state.pending:
                    # as Resend: the first request with this key has not finished yet
                    state.concurrent += 1
                    if answer:
                        reply = (409, {"name": "concurrent_idempotent_requests", "statusCode": 409})
                        self._json(*reply)
                    return
                if key is not None:
                    state.pending.add(key)  # reserved under the lock: no two deliver
                kill = state.kill
                hit = False
                if kill is not None and not kill.fired.is_set():
                    kill.seen += 1
                    hit = kill.seen == kill.at
            try:
                if kill is not None and hit and kill.when == "before":
                    self._kill(kill)
                    self._reset()
                    return
                if state.latency:
                    time.sleep(state.latency)
                reply_body = self._deliver(path, messages, number, key)
                with state.lock:
                    if key is not None:
                        state.keys[key] = (digest, reply_body)
            finally:
                with state.lock:
                    state.pending.discard(key or "")
            if kill is not None and hit and kill.when == "after":
                # delivered, but the worker dies before it hears so and commits
                self._kill(kill)
                self._reset()
                return
            if answer and path == SENDGRID:
                self._raw(202, b"", {"X-Message-Id": f"fake{number:08d}"})
            elif answer:
                self._raw(200, reply_body)

        def _deliver(self, path: str, messages: list[Any], number: int, key: str | None) -> bytes:
            out = []
            with state.lock:
                for msg in messages:
                    pid = str(uuid.uuid4())
                    if path == SENDGRID:
                        # the adapter's provider id for it: "<X-Message-Id>/<delivery id>"
                        pid = f"fake{number:08d}/{msg['custom_args']['delivery_id']}"
                        to = msg["to"][0]["email"].lower()
                    elif path == RESEND:
                        raw = msg.get("to")
                        to = _address(raw[0] if isinstance(raw, list) else str(raw))
                    else:
                        to = _address(str(msg.get("To", "")))
                    subject = str(msg.get("Subject") or msg.get("subject") or "")
                    metadata = msg.get("Metadata", {}) if path == POSTMARK else {}
                    state.delivered.append(Delivered(to, pid, number, subject, key, metadata))
                    if path == POSTMARK:
                        out.append(
                            {
                                "ErrorCode": 0,
                                "Message": "OK",
                                "MessageID": pid,
                                "SubmittedAt": "2026-11-29T09:00:00Z",
                                "To": msg.get("To", ""),
                            }
                        )
                    else:
                        out.append({"id": pid})
            reply: Any = out if path == POSTMARK else {"data": out}
            return json.dumps(reply).encode()

        def _throttle(self, path: str) -> None:
            if path == POSTMARK:
                body: dict[str, Any] = {"ErrorCode": 429, "Message": "Rate limit exceeded"}
            elif path == SENDGRID:
                body = {"errors": [{"message": "too many requests", "field": None}]}
            else:
                body = {"statusCode": 429, "name": "rate_limit_exceeded", "message": "slow down"}
            with state.lock:
                state.throttled_at.append(time.monotonic())
            wait = state.retry_after
            self._json(429, body, {} if wait is None else {"Retry-After": f"{wait:g}"})

        def _kill(self, kill: Kill) -> None:
            with suppress(ProcessLookupError):
                os.kill(kill.pid, signal.SIGKILL)
            kill.fired.set()

        def _reset(self) -> None:
            # SO_LINGER 0: close() sends RST, the client sees "connection reset by peer"
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            with suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

        def _json(self, status: int, body: Any, extra: dict[str, str] | None = None) -> None:
            self._raw(status, json.dumps(body).encode(), extra)

        def _raw(self, status: int, data: bytes, extra: dict[str, str] | None = None) -> None:
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for k, v in (extra or {}).items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)
            except OSError:
                self.close_connection = True  # the client went away (killed)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextmanager
def serve(**knobs: Any) -> Iterator[FakeProvider]:
    """Run the fake provider on a free port for the duration of the block."""
    state = FakeProvider(**knobs)
    state._rng.seed(state.seed)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.base_url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield state
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()
