"""A loopback feed server for the gather benchmark: N feeds over H addresses, fixed latency.

Run as a process of its own (so it never competes with the measured tool for the GIL):

    python benchmarks/feedserver.py --feeds 100 --items 20 --hosts 10 --latency 0.05

It prints one JSON line ``{"urls": [...], "origins": [...]}`` when it listens and serves
until its stdin closes. Every feed is RSS 2.0 with ``--items`` entries and a strong
``ETag``; a request whose ``If-None-Match`` matches gets ``304 Not Modified``. Every
answer (200 or 304) waits ``--latency`` seconds first, like a server across the network.
HTTP/1.1 keep-alive is honoured. Addresses are 127.0.0.1, 127.0.0.2, ... only.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

_WORDS = [
    "енергия",
    "клъстер",
    "проект",
    "партньори",
    "среща",
    "Варна",
    "водород",
    "слънце",
    "вятър",
    "мрежа",
    "ефективност",
    "сграда",
    "община",
    "университет",
    "иновации",
    "съхранение",
    "батерии",
]


def feed_xml(index: int, items: int) -> bytes:
    """RSS 2.0 for feed ``index``: ``items`` entries with HTML descriptions."""
    start = datetime(2024, 5, 1, tzinfo=UTC)
    entries = []
    for n in range(items):
        words = " ".join(_WORDS[(index + n + k) % len(_WORDS)] for k in range(60))
        when = format_datetime(start - timedelta(hours=index * items + n))
        entries.append(
            f"<item><title>Новина {index}-{n}: {_WORDS[n % len(_WORDS)]}</title>"
            f"<link>https://news{index}.example.org/story/{n}</link>"
            f"<guid>https://news{index}.example.org/story/{n}</guid>"
            f"<pubDate>{when}</pubDate>"
            f'<description><![CDATA[<p>{words}.</p><p><a href="/more/{n}">Още</a> '
            f'<img src="/img/{n}.png" alt="снимка"></p>]]></description></item>'
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>Feed {index}</title><link>https://news{index}.example.org/</link>"
        f"<description>Feed {index}</description><language>bg</language>"
        + "".join(entries)
        + "</channel></rss>"
    ).encode()


class Server:
    """Serves ``/feed/<i>.xml`` for every feed, after ``latency`` seconds."""

    def __init__(self, feeds: int, items: int, latency: float) -> None:
        self.latency = latency
        self.bodies = {f"/feed/{i}.xml": feed_xml(i, items) for i in range(feeds)}
        self.etags = {
            path: '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
            for path, body in self.bodies.items()
        }

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection until the client closes it."""
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                path = lines[0].split(" ")[1] if len(lines[0].split(" ")) > 1 else "/"
                headers = {}
                for line in lines[1:]:
                    if ":" in line:
                        key, value = line.split(":", 1)
                        headers[key.strip().lower()] = value.strip()
                await asyncio.sleep(self.latency)
                close = headers.get("connection", "").lower() == "close" or lines[0].endswith(
                    "HTTP/1.0"
                )
                body = self.bodies.get(path.split("?")[0])
                if body is None:
                    status, extra, payload = "404 Not Found", "", b"not found"
                elif headers.get("if-none-match") == self.etags[path]:
                    status, extra, payload = "304 Not Modified", "", b""
                else:
                    status, payload = "200 OK", body
                    extra = "Content-Type: application/rss+xml; charset=utf-8\r\n"
                etag = f"ETag: {self.etags[path]}\r\n" if body is not None else ""
                conn = "Connection: close\r\n" if close else "Connection: keep-alive\r\n"
                writer.write(
                    (
                        f"HTTP/1.1 {status}\r\n{extra}{etag}{conn}"
                        f"Content-Length: {len(payload)}\r\n\r\n"
                    ).encode()
                    + payload
                )
                await writer.drain()
                if close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            pass
        finally:
            writer.close()


async def main() -> None:
    """Listen, print the feed URLs, serve until stdin closes."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()
    server = Server(args.feeds, args.items, args.latency)
    servers = []
    origins = []
    for h in range(args.hosts):
        host = f"127.0.0.{h + 1}"
        srv = await asyncio.start_server(server.handle, host, 0, backlog=512)
        servers.append(srv)
        origins.append(f"http://{host}:{srv.sockets[0].getsockname()[1]}")
    urls = [f"{origins[i % args.hosts]}/feed/{i}.xml" for i in range(args.feeds)]
    print(json.dumps({"urls": urls, "origins": origins}), flush=True)
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    for srv in servers:
        srv.close()


if __name__ == "__main__":
    asyncio.run(main())
