"""Helpers for the web tests: a settable clock, the app wrapper, CSRF and edition helpers."""

from __future__ import annotations

import contextlib
import email
import email.policy
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import Any

from factories import make_item
from support import child_env

from newsletter.config import Settings
from newsletter.models import DigestEntry, Edition, EditionStatus, Item, NewSubscriber, Subscriber
from newsletter.render.renderer import Renderer
from newsletter.send.tokens import TokenSigner
from newsletter.store import Store

with warnings.catch_warnings():
    # Starlette 1.x asks for httpx2; the httpx client it wraps works the same for these tests
    warnings.filterwarnings("ignore", message=".*httpx2", category=UserWarning)
    from starlette.testclient import TestClient as _StarletteClient


class TestClient(_StarletteClient):
    """Starlette's test client that, after each request, waits for the work the app
    handed off (the sign-up's store work and email), as a later visit would find it done.

    Used as a context manager (the app's event loop then outlives a request).
    """

    __test__ = False

    def request(self, *args: Any, **kwargs: Any) -> Any:
        response = super().request(*args, **kwargs)
        ctx = getattr(getattr(self.app, "state", None), "ctx", None)
        background = getattr(ctx, "background", None)
        if background is not None and self.portal is not None:
            self.portal.call(background.drain)
        return response


NOW = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
LOCALES = ["bg", "en", "de", "ru"]
SECRET = "web-test-key"


class Clock:
    """A settable clock for the app and the sender."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@dataclass
class Web:
    """A running app with what the tests need to poke at."""

    client: TestClient
    settings: Settings
    store: Store
    signer: TokenSigner
    clock: Clock
    outbox: Path

    def add(self, mail: str = "ana@example.org", **fields: Any) -> Subscriber:
        """Store an active subscriber."""
        fields.setdefault("name", "Ана Петрова")
        fields.setdefault("locale", "bg")
        fields.setdefault("lists", ("news",))
        return self.store.subscribers.add(NewSubscriber(email=mail, **fields), self.clock())

    def token(self, purpose: str, sub: Subscriber | int, edition_id: int | None = None) -> str:
        sid = sub if isinstance(sub, int) else sub.id
        return self.signer.sign(purpose, sid, edition_id)

    def emails(self) -> list[EmailMessage]:
        """Every message the outbox provider wrote, oldest first."""
        out = []
        for path in sorted(self.outbox.rglob("*.eml"), key=lambda p: p.stat().st_mtime_ns):
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            out.append(msg)
        return out


def csrf_of(html: str, action_suffix: str = "") -> str:
    """The CSRF token of the (first) form whose action ends with ``action_suffix``."""
    for form in re.findall(r"<form\b[^>]*>.*?</form>", html, re.S):
        action = re.search(r'action="([^"]*)"', form)
        if action and action.group(1).endswith(action_suffix):
            found = re.search(r'name="csrf_token" value="([^"]+)"', form)
            if found:
                return found.group(1)
    raise AssertionError(f"no form ending in {action_suffix!r} with a CSRF token")


def item(n: int) -> Item:
    """A made-up stored item."""
    return make_item(
        n,
        when=NOW,
        guid=f"g{n}",
        title=f"Соларен парк „Добрич {n}“ е пуснат",
        link=f"https://cluster.example.org/n/{n}",
        content_hash=f"h{n}",
    )


def publish_edition(
    settings: Settings,
    store: Store,
    *,
    period: str = "2026-W48",
    locales: tuple[str, ...] = ("bg", "en"),
    status: EditionStatus = EditionStatus.FINISHED,
    stories: list[DigestEntry] | None = None,
) -> Edition:
    """An edition with really rendered variants (placeholders in them), in ``status``."""
    segment = settings.segments[0]
    edition = store.editions.create(segment.name, period, [], NOW)
    renderer = Renderer(settings)
    for loc in locales:
        variant = renderer.render(
            segment=segment,
            period_label="23–29.11.2026",
            edition_date=date(2026, 11, 27),
            entries=stories or [DigestEntry(item(1), "bg", loc != "bg")],
            locale=loc,
            view_url=f"{settings.web.base_url}/archive/{edition.id}/{loc}",
        )
        store.editions.save_variant(edition.id, variant)
    store.editions.set_status(edition.id, status, NOW)
    return store.editions.get(edition.id)


def free_port() -> int:
    """A TCP port free right now on 127.0.0.1 (the server binds it a moment later)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Served:
    """A ``newsletter serve`` subprocess and where it listens."""

    proc: subprocess.Popen[str]
    base_url: str
    port: int
    config: Path
    outbox: Path


def write_config(tmp_path: Path, db_url: str, port: int, extra: str = "") -> Path:
    """A config file for ``newsletter serve`` on 127.0.0.1:``port`` with a public list;
    ``extra`` TOML is appended (its first keys still belong to the ``[[segments]]`` table)."""
    root = Path(__file__).resolve().parents[2]
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        f"""
[organisation]
name = "Test Energy Cluster"
names = {{ bg = "Тестов енергиен клъстер", de = "Test-Energiecluster" }}
address = "1 Example Street, 9000 Varna, Bulgaria"
from_email = "news@cluster.example.org"

[database]
url = "{db_url}"

[paths]
templates = "{root / "templates"}"

[locales]
default = "bg"
available = ["bg", "en", "de"]

[web]
base_url = "http://127.0.0.1:{port}"
host = "0.0.0.0"
port = 1

[provider]
name = "outbox"
path = "outbox"

[[lists]]
name = "news"
description = "Weekly news"
public = true

[[segments]]
name = "news"
rules = [{{ field = "lists", op = "contains", value = "news" }}]
{extra}""",
        encoding="utf-8",
    )
    return cfg


@contextlib.contextmanager
def serve(tmp_path: Path, db_url: str, extra: str = "") -> Iterator[Served]:
    """Run ``newsletter serve --host 127.0.0.1 --port N`` (overriding [web] host/port) until
    it answers /healthz; stop it with SIGTERM afterwards and check it exits cleanly."""
    port = free_port()
    cfg = write_config(tmp_path, db_url, port, extra)
    args = ["--config", str(cfg), "serve", "--host", "127.0.0.1", "--port", str(port)]
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", *args],
        cwd=tmp_path,
        env=child_env(NEWSLETTER_SECRET_KEY=SECRET),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"serve exited early:\n{proc.stdout.read() if proc.stdout else ''}"
                )
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=1) as res:
                    if res.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("serve did not answer /healthz within 30 s")
            time.sleep(0.1)
        yield Served(proc, base, port, cfg, tmp_path / "outbox")
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stdout:
            proc.stdout.close()


def signup(web: Web, client: TestClient | None = None, **fields: Any) -> Any:
    client = client or web.client
    lang = fields.pop("page_lang", "en")
    page = client.get(f"/subscribe?lang={lang}")
    data = {
        "csrf_token": csrf_of(page.text, "/subscribe"),
        "page_locale": lang,
        "email": "mila@example.org",
        "name": "Мила Иванова",
        "locale": "ru",
        "lists": ["news", "events"],
        "consent": "yes",
        **fields,
    }
    return client.post("/subscribe", data=data)


def confirm_link(web: Web) -> str:
    msg = web.emails()[-1]
    text = msg.get_body(("plain",))
    assert text is not None
    found = re.search(r"https://news\.example\.org(/confirm/\S+)", text.get_content())
    assert found, text.get_content()
    return found.group(1)
