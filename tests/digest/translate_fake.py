"""A DeepL imitation on 127.0.0.1 (shared by the translation and digest tests)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

KEY = "0f1e2d3c-test-key:fx"


class FakeDeepL:
    """A DeepL /v2/translate imitation on 127.0.0.1 that checks what it is sent."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = 200
        #: when set, every text is answered with this (a hostile or broken service)
        self.reply: str | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                problem = fake.check(self.path, dict(self.headers), body)
                if problem:
                    self.answer(400, {"message": problem})
                    return
                request = json.loads(body)
                fake.requests.append(request)
                if fake.status != 200:
                    self.answer(fake.status, {"message": f"status {fake.status}"})
                    return
                target = request["target_lang"]
                self.answer(
                    200,
                    {
                        "translations": [
                            {
                                "detected_source_language": "BG",
                                "text": fake.reply
                                if fake.reply is not None
                                else f"[{target}] {text}",
                            }
                            for text in request["text"]
                        ]
                    },
                )

            def answer(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def check(self, path: str, headers: dict[str, str], body: bytes) -> str | None:
        """What is wrong with a request, as DeepL would see it (None when it is fine)."""
        if path != "/v2/translate":
            return f"unknown path {path}"
        if headers.get("Authorization") != f"DeepL-Auth-Key {KEY}":
            return "bad Authorization header"
        if not headers.get("Content-Type", "").startswith("application/json"):
            return "not JSON"
        request = json.loads(body)
        if not isinstance(request.get("text"), list) or not all(request["text"]):
            return "text must be a list of non-empty strings"
        if request.get("tag_handling") != "html":
            return "tag_handling must be html"
        if request.get("source_lang") != "BG":
            return "source_lang must be BG"
        return None
