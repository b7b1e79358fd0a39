"""Concurrent gathering: a per-host limit that holds, and a slow host that holds only itself.

Every wait here is on a condition (an event set by the server or the test), bounded by a
generous timeout that only turns a hang into a failure: nothing assumes how fast a loaded
machine is.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from newsletter.config import Settings
from newsletter.gather.hosts import HostSlots
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import GatherReport, gather
from newsletter.store import Store

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
WAIT = 30.0  # only ever reached when something is broken


def _rss(name: str) -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>t</title>'
        f"<language>en</language><item><title>{name}</title>"
        f"<link>https://example.org/{name}</link><guid>https://example.org/{name}</guid>"
        f"<description>Story {name}.</description></item></channel></rss>"
    ).encode()


class Gated:
    """An HTTP server whose answers for chosen paths wait for an event; counts in-flight."""

    def __init__(self, host: str, gated: Callable[[str], bool]) -> None:
        self.release = threading.Event()
        self.lock = threading.Condition()
        self.in_flight = 0
        self.most = 0
        self.answered: list[str] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                with owner.lock:
                    owner.in_flight += 1
                    owner.most = max(owner.most, owner.in_flight)
                    owner.lock.notify_all()
                try:
                    if gated(self.path):
                        owner.release.wait(WAIT)
                    body = _rss(self.path.strip("/").replace("/", "-"))
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    with owner.lock:
                        owner.in_flight -= 1
                        owner.answered.append(self.path)
                        owner.lock.notify_all()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, 0), Handler)
        self.httpd.daemon_threads = True
        self.origin = f"http://{host}:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, predicate: Callable[[], bool]) -> bool:
        with self.lock:
            return self.lock.wait_for(predicate, WAIT)

    def close(self) -> None:
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def servers() -> Iterator[list[Gated]]:
    made: list[Gated] = []
    yield made
    for server in made:
        server.close()


def _run(settings: Settings, store: Store) -> tuple[threading.Thread, list[GatherReport]]:
    out: list[GatherReport] = []

    def work() -> None:
        with GuardedClient(settings.gather) as client:
            out.append(gather(settings, store, client=client, now=NOW))

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    return thread, out


def test_host_slots_bound_and_time_out() -> None:
    slots = HostSlots(2)
    with slots.slot("a.example"), slots.slot("A.example"):
        assert slots.in_flight("a.example") == 2
        with pytest.raises(TimeoutError), slots.slot("a.example", timeout=0):
            pass
        with slots.slot("b.example"):  # another host is not held
            assert slots.in_flight("b.example") == 1
    assert slots.in_flight("a.example") == 0


def test_per_host_limit_bounds_requests_in_flight(
    make_config: Callable[..., Settings], store: Store, servers: list[Gated]
) -> None:
    server = Gated("127.0.0.1", lambda path: True)
    servers.append(server)
    sources = [{"kind": "feed", "name": f"f{i}", "url": f"{server.origin}/f{i}"} for i in range(6)]
    settings = make_config(
        sources=sources,
        gather={"allow_private": [server.origin], "concurrency": 6, "per_host": 2},
    )
    thread, out = _run(settings, store)
    assert server.wait_for(lambda: server.in_flight == 2)
    server.release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    (report,) = out
    assert report.new == 6 and not report.failed
    assert server.most == 2  # never more than per_host at once, though six could start


def test_a_slow_host_does_not_hold_the_others(
    make_config: Callable[..., Settings], store: Store, servers: list[Gated]
) -> None:
    slow = Gated("127.0.0.1", lambda path: True)
    fast = Gated("127.0.0.2", lambda path: False)
    servers += [slow, fast]
    sources = [
        {"kind": "feed", "name": "slow1", "url": f"{slow.origin}/s1"},
        {"kind": "feed", "name": "slow2", "url": f"{slow.origin}/s2"},
        *({"kind": "feed", "name": f"fast{i}", "url": f"{fast.origin}/f{i}"} for i in range(4)),
    ]
    settings = make_config(
        sources=sources,
        gather={
            "allow_private": [slow.origin, fast.origin],
            "concurrency": 3,
            "per_host": 1,
        },
    )
    thread, out = _run(settings, store)
    # with the slow host's one slot taken, the other workers fetch every fast feed
    assert fast.wait_for(lambda: len(fast.answered) == 4)
    assert slow.in_flight == 1 and not slow.answered
    slow.release.set()
    thread.join(WAIT)
    assert not thread.is_alive()
    (report,) = out
    # stored and reported in configuration order, as one after another would
    assert [s.name for s in report.sources] == ["slow1", "slow2", *(f"fast{i}" for i in range(4))]
    assert report.new == 6 and not report.failed
    assert slow.most == 1
