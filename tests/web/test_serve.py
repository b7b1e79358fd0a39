"""``newsletter serve`` as a real process: RFC 8058 one-click POST over a real socket."""

from __future__ import annotations

import http.client
import signal
from datetime import UTC, datetime
from pathlib import Path

from newsletter.models import NewSubscriber, SubscriberStatus
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store
from web.web_helpers import SECRET, serve

#: when the reader signed up: any fixed date (the server checks only the token)
JOINED = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def test_one_click_unsubscribe_against_the_real_server(tmp_path: Path, db_url: str) -> None:
    with Store.open(db_url) as store:
        sub = store.subscribers.add(
            NewSubscriber(email="ana@example.org", name="Ана", locale="bg", lists=("news",)),
            JOINED,
        )
    token = TokenSigner([SECRET]).sign("unsubscribe", sub.id, 1)
    # the config says host 0.0.0.0 and port 1: --host/--port override both
    with serve(tmp_path, db_url) as served:
        conn = http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)
        conn.request("GET", f"/unsubscribe/{token}")
        page = conn.getresponse()
        assert page.status == 200 and b"<button" in page.read()
        with Store.open(db_url) as store:
            assert store.subscribers.get(sub.id).status is SubscriberStatus.ACTIVE
        # what Gmail sends: a form POST with exactly this body, no cookies
        conn.request(
            "POST",
            f"/unsubscribe/{token}",
            body="List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        res = conn.getresponse()
        body = res.read()
        assert res.status == 200, body
        assert res.getheader("Set-Cookie") is None
        assert res.getheader("Server") is None
        conn.request(
            "POST", f"/unsubscribe/{token}", body="x", headers={"Content-Type": "text/plain"}
        )
        refused = conn.getresponse()
        assert refused.status == 400 and b"<h1>" in refused.read()
        conn.close()
        with Store.open(db_url) as store:
            assert store.subscribers.get(sub.id).status is SubscriberStatus.UNSUBSCRIBED
            [event] = store.events.for_subscriber(sub.id)
            assert event.source == "web:one-click" and event.detail == {"edition_id": 1}
        served.proc.send_signal(signal.SIGTERM)
        # a service manager's stop: graceful shutdown, then exit 0 (not death by signal)
        assert served.proc.wait(timeout=15) == 0
        assert served.proc.stdout is not None
        log = served.proc.stdout.read()
        assert "Traceback" not in log
        # refusals are logged at info level by default, with the token masked
        assert "/unsubscribe/{token}" in log and token not in log
