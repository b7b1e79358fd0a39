"""A real HTTP server on 127.0.0.1 that checks every request against the provider's own spec.

Provider tests point an adapter's ``base_url`` at it. Each request is parsed (JSON into
``Recorded.json``, forms into ``Recorded.form``), validated (OpenAPI through
openapi-core, or a JSON schema through jsonschema), recorded, and answered:

- a request the spec rejects is recorded with ``valid=False``, ``error`` and
  ``error_paths`` (dotted paths of the bad values) and answered by ``invalid_answer``
  (default: 400 with the validation error; pass one that imitates the provider's own
  400, as ``fake_sendgrid.invalid_answer`` does). Assert ``server.invalid == []`` at the
  end of every test that sends nothing invalid on purpose;
- otherwise the next scripted :class:`Answer` (``server.script(...)``) is used, else the
  server's ``responder`` (a function of the :class:`Recorded` request imitating the
  provider: accept, reject bad addresses, ...).

An :class:`Answer` can be delayed (past the client's timeout; shutting the server down
releases it at once) or ``reset`` the connection without answering (TCP RST). Each
record keeps the status it was ``answered`` with and the client's ``peer`` address
(same port twice: a reused keep-alive connection).

Usage (one ``fake_<provider>.py`` per provider holds the responder, ``serve()`` and the
contract factory)::

    from send.providers.specserver import SPECS, Answer, OpenApiValidator, spec_server

    SPEC = SPECS / "sendgrid" / "spec" / "json" / "tsg_mail_v3.json"
    with spec_server(OpenApiValidator(SPEC), responder) as server:
        server.script(Answer(429, {"errors": []}, headers={"Retry-After": "7"}))
        provider = SendgridProvider(api_key="k", base_url=server.base_url)
        ...
        assert server.invalid == []
        body = server.requests[0].json

Specs are parsed once per test session (cached by path). Multipart bodies of OpenAPI 3.1
specs are checked with jsonschema against the operation's schema (openapi-core's own
multipart decoding costs 10-20 ms a request); security and parameters still go through
openapi-core. Tests import this module as ``providers.specserver`` (pytest puts tests/
on sys.path).
"""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from send.providers.specvalidators import (
    SPECS,
    Invalid,
    JsonSchemaValidator,
    OpenApiValidator,
    Recorded,
    Validator,
    load_openapi,
    parse_form,
)

__all__ = [
    "SPECS",
    "Answer",
    "Invalid",
    "JsonSchemaValidator",
    "OpenApiValidator",
    "Recorded",
    "Responder",
    "SpecServer",
    "Validator",
    "default_invalid_answer",
    "load_openapi",
    "spec_server",
]


@dataclass(frozen=True)
class Answer:
    """What the server answers to one request.

    ``body``: a dict or list is sent as JSON, str/bytes as they are. ``delay``: seconds to
    wait before answering. ``reset``: drop the connection with a TCP RST instead.
    """

    status: int = 200
    body: Any = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    reset: bool = False
    content_type: str = "application/json"

    def encoded(self) -> bytes:
        """The body as bytes."""
        if self.body is None:
            return b""
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode("utf-8")
        return json.dumps(self.body, ensure_ascii=False).encode("utf-8")


Responder = Callable[[Recorded], Answer]


def default_invalid_answer(request: Recorded) -> Answer:
    """The answer to a request the spec rejects: 400 with the validation error."""
    return Answer(400, {"message": f"request does not match the spec: {request.error}"})


@dataclass
class SpecServer:
    """The running server: what it received, and what it will answer."""

    base_url: str
    validator: Validator
    responder: Responder
    #: how to answer a request the spec rejects (imitate the provider's own 400)
    invalid_answer: Responder = default_invalid_answer
    requests: list[Recorded] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    _script: deque[Answer | Responder] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def script(self, *answers: Answer | Responder) -> None:
        """Answer the next valid requests with these, in order, then the responder again."""
        with self._lock:
            self._script.extend(answers)

    @property
    def valid(self) -> list[Recorded]:
        """The requests that passed validation."""
        return [r for r in self.requests if r.valid]

    @property
    def invalid(self) -> list[Recorded]:
        """The requests the spec rejected (should be empty in every test)."""
        return [r for r in self.requests if not r.valid]

    def handle(self, request: Recorded) -> Answer:
        """Validate, record and choose the answer of one request."""
        error = self.validator(request)
        with self._lock:
            if error is not None:
                request.valid, request.error = False, str(error)
                request.error_paths = getattr(error, "paths", ())
                self.requests.append(request)
                answer = self.invalid_answer(request)
                request.answered = answer.status
                return answer
            self.requests.append(request)
            scripted = self._script.popleft() if self._script else self.responder
        answer = scripted if isinstance(scripted, Answer) else scripted(request)
        request.answered = None if answer.reset else answer.status
        return answer


def _handler(server: SpecServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # HTTP/1.1 keeps connections alive, like real APIs, so the client's pool is used
        protocol_version = "HTTP/1.1"
        # headers and body go out in separate writes; without this, Nagle plus delayed ACK
        # adds ~40 ms to every answer on loopback
        disable_nagle_algorithm = True

        def _receive(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            url = urlsplit(self.path)
            headers = {k.lower(): v for k, v in self.headers.items()}
            content_type = headers.get("content-type", "")
            parsed_json: Any = None
            if "json" in content_type and body:
                try:
                    parsed_json = json.loads(body)
                except ValueError:
                    parsed_json = None
            recorded = Recorded(
                method=self.command,
                path=url.path,
                query=parse_qs(url.query, keep_blank_values=True),
                headers=headers,
                body=body,
                json=parsed_json,
                form=parse_form(content_type, body),
                peer=(str(self.client_address[0]), int(self.client_address[1])),
            )
            answer = server.handle(recorded)
            if answer.delay:
                server.release.wait(answer.delay)
            if answer.reset:
                # linger 0: close() sends RST, the client sees a reset, not a clean close
                self.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
                self.close_connection = True
                self.connection.close()
                return
            data = answer.encoded()
            self.send_response(answer.status)
            if data:
                self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _receive

        def setup(self) -> None:
            super().setup()
            # headers and body are two writes: without NODELAY the body waits for the
            # client's delayed ACK (40 ms per request)
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def handle(self) -> None:
            # the client gave up (timeout) or we reset: nothing to answer
            with suppress(OSError):
                super().handle()

        def finish(self) -> None:
            with suppress(OSError):
                super().finish()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def spec_server(
    validator: Validator,
    responder: Responder | None = None,
    *,
    invalid_answer: Responder = default_invalid_answer,
) -> Iterator[SpecServer]:
    """Start a :class:`SpecServer` on 127.0.0.1 (free port) in a thread; stop it after.

    ``responder`` answers valid requests (default: 200 ``{}``); ``invalid_answer`` answers
    the requests the spec rejects (default: 400 with the validation error).
    """
    server = SpecServer(
        base_url="",
        validator=validator,
        responder=responder or (lambda request: Answer(200, {})),
        invalid_answer=invalid_answer,
    )
    http = ThreadingHTTPServer(("127.0.0.1", 0), _handler(server))
    http.daemon_threads = True
    server.base_url = f"http://127.0.0.1:{http.server_address[1]}"
    # a short poll interval makes shutdown (once per test) quick
    thread = threading.Thread(target=http.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        http.shutdown()
        http.server_close()
        thread.join(5)
