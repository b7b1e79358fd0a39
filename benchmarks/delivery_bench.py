"""Benchmark: the delivery engine end to end against the bare-httpx ceiling, and peak memory.

Run from the project folder:

    python benchmarks/delivery_bench.py [--recipients 20000 100000] \\
        [--modes outbox postmark sendgrid] [--batch-size N] [--concurrency N]

For each size and mode a fresh SQLite store gets N subscribers (not measured). Then a
*separate process* (so its peak RSS is the engine's alone) plans the edition by streaming
the segment's recipients and a ``Worker`` sends it with ``--once``: claim with lease,
personalize (token signing, placeholder substitution), hand batches to the provider,
record every result. Modes:

- ``outbox``: the default provider, one .eml file per message;
- ``postmark``: the real Postmark adapter, a full ~30 KB body per message, 500 per request;
- ``sendgrid``: the real SendGrid adapter, one body per request and each recipient's
  values as substitutions (batch substitution), 1000 per request.

Both HTTP modes post to the local fake provider (``tests/send/delivery/fakeprovider.py``) in a
third process. Their **ceiling** is measured the same way: the very request bodies the
adapter builds for one batch, posted ``N / batch`` times by a bare ``httpx.AsyncClient``
loop with the same concurrency; the engine's messages per second divided by the
ceiling's is the share of the achievable rate the engine reaches. Figures vary with the
machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from newsletter.audience.segments import recipients  # noqa: E402
from newsletter.config import Settings, from_dict  # noqa: E402
from newsletter.models import EditionStatus, NewSubscriber, RenderedVariant  # noqa: E402
from newsletter.send.compose import Composer, Recipient  # noqa: E402
from newsletter.send.personalize import markers, new_nonce  # noqa: E402
from newsletter.send.providers import build_provider  # noqa: E402
from newsletter.send.providers.postmark import PostmarkProvider, json_array  # noqa: E402
from newsletter.send.providers.sendgrid import SendgridProvider  # noqa: E402
from newsletter.send.tokens import TokenSigner  # noqa: E402
from newsletter.send.worker import WorkerOptions, run_worker  # noqa: E402
from newsletter.store import Store  # noqa: E402
from newsletter.store.subscribers import SubscriberStore  # noqa: E402
from newsletter.store.tables import subscribers  # noqa: E402

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TOKEN_ENV = "BENCH_PROVIDER_TOKEN"
#: messages per request by mode, unless --batch-size says otherwise
BATCH = {"outbox": 200, "postmark": 500, "sendgrid": 1000}
PATHS = {"postmark": "/email/batch", "sendgrid": "/v3/mail/send"}


def variant(locale: str) -> RenderedVariant:
    """A digest-sized variant (~30 KB of HTML) with the per-recipient placeholders."""
    story = (
        "<tr><td><h2>Соларен парк в община Варна</h2><p>"
        + "Клъстерът организира обучение за енергийни мениджъри в общините. " * 6
        + "</p></td></tr>"
    )
    nonce = new_nonce()
    p, tp = markers(nonce).placeholders, markers(nonce).text_placeholders
    html = (
        f"<html><body><p>Здравейте, {p['name']}!</p><table>{story * 20}</table>"
        f'<a href="{p["unsubscribe_url"]}">Отписване</a> '
        f'<a href="{p["preferences_url"]}">Настройки</a></body></html>'
    )
    text = f"Здравейте, {tp['name']}!\n{tp['unsubscribe_url']}\n"
    return RenderedVariant(locale, f"Бюлетин {locale}", "", "Клъстер", html, text, 20, nonce)


def settings(folder: Path, url: str, mode: str, base_url: str, batch: int, conc: int) -> Settings:
    """The config a user would write for this mode."""
    provider: dict[str, Any] = {"name": mode, "batch_size": batch, "concurrency": conc}
    if mode == "outbox":
        provider["path"] = str(folder / "outbox")
    elif mode == "postmark":
        provider |= {"base_url": base_url, "token_env": TOKEN_ENV}
    else:
        provider |= {"base_url": base_url, "api_key_env": TOKEN_ENV}
    raw = {
        "organisation": {
            "name": "Bench Energy Cluster",
            "address": "1 Example Street, Varna",
            "website": "https://cluster.example.org",
            "from_email": "news@cluster.example.org",
        },
        "database": {"url": url, "url_env": "BENCH_UNUSED_URL"},
        "paths": {"templates": str(ROOT / "templates"), "var": str(folder / "var")},
        "segments": [
            {"name": "members", "rules": [{"field": "lists", "op": "contains", "value": "members"}]}
        ],
        "provider": provider,
    }
    return from_dict(raw, folder / "config.toml")


def reader(i: int) -> NewSubscriber:
    """The i-th invented reader (two in three Bulgarian, the rest English)."""
    return NewSubscriber(
        email=f"reader{i:07d}@example.org",
        name=f"Читател {i}",
        locale="bg" if i % 3 else "en",
        lists=("members",),
        consent_at=NOW,
    )


def seed(url: str, n: int) -> None:
    """N subscribers, inserted in bulk (not part of the measurement)."""
    with Store.open(url) as store, store.engine.begin() as conn:
        for start in range(0, n, 10_000):
            last = min(start + 10_000, n)
            rows = [SubscriberStore._values(reader(i), NOW) for i in range(start, last)]
            conn.execute(sa.insert(subscribers), rows)


def engine(folder: Path, url: str, cfg: Settings) -> dict[str, Any]:
    """Plan and send one edition in this process; the figures as a dict."""
    with Store.open(url) as store:
        edition = store.editions.create("members", "2026-W49", [], NOW)
        for loc in ("bg", "en"):
            store.editions.save_variant(edition.id, variant(loc))
        t0 = time.perf_counter()
        rows = ((s.id, cfg.locales.resolve(s.locale)) for s in recipients(store, cfg.segments[0]))
        planned = store.deliveries.plan(edition.id, rows, NOW)
        store.editions.set_status(edition.id, EditionStatus.SENDING, NOW)
        t1 = time.perf_counter()
        report = run_worker(cfg, options=WorkerOptions(once=True), store=store)
        t2 = time.perf_counter()
        counts = {k.value: v for k, v in store.deliveries.counts(edition.id).items()}
    return {
        "planned": planned,
        "plan_s": t1 - t0,
        "send_s": t2 - t1,
        "sent": report.sent,
        "counts": counts,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def one_request(cfg: Settings, mode: str) -> tuple[str, dict[str, str], bytes, int]:
    """(path, headers, body, messages) of the first request the adapter would send."""
    composer = Composer(cfg, TokenSigner(["bench"]), edition_id=1, segment="members", period="W")
    batch = cfg.provider.batch_size or BATCH[mode]
    messages = [
        composer.compose(variant("bg"), Recipient(i + 1, i + 1, reader(i).email, reader(i).name))
        for i in range(batch)
    ]
    provider = build_provider(cfg)
    assert isinstance(provider, PostmarkProvider | SendgridProvider)
    if isinstance(provider, PostmarkProvider):
        [(group, parts)] = provider.chunks(messages)
        body = json_array(parts)
        content_type = "application/json"
    else:
        # httpx's own JSON encoding, as the adapter's json= request gets it
        request = httpx.Request("POST", provider.url(PATHS[mode]), json=provider.payload(messages))
        body, content_type, group = request.read(), request.headers["Content-Type"], messages
    headers = {**provider.headers, "Content-Type": content_type}
    asyncio.run(provider.aclose())
    return PATHS[mode], headers, body, len(group)


def ceiling(cfg: Settings, mode: str, n: int) -> dict[str, Any]:
    """Post one batch's request bodies ``n / batch`` times with a bare httpx loop."""
    path, headers, body, per_request = one_request(cfg, mode)
    requests = math.ceil(n / per_request)
    base_url = str(getattr(cfg.provider, "base_url", ""))

    async def post_all() -> float:
        gate = asyncio.Semaphore(cfg.provider.concurrency)
        limits = httpx.Limits(max_connections=cfg.provider.concurrency + 2)
        async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=120) as client:

            async def one() -> None:
                async with gate:
                    answer = await client.post(path, content=body, headers=headers)
                    answer.raise_for_status()

            t0 = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(requests)))
            return time.perf_counter() - t0

    seconds = asyncio.run(post_all())
    return {"send_s": seconds, "messages": requests * per_request, "body_kb": len(body) / 1024}


def serve_forever() -> None:
    """Run the fake provider until stdin closes; print its URL first."""
    from send.delivery.fakeprovider import serve

    with serve() as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()
        print(json.dumps({"delivered": len(fake.delivered)}), flush=True)


def profile_args(what: str) -> list[str]:
    """``-m cProfile -o FILE`` when ``BENCH_PROFILE=FILE`` asks for a profile of the engine."""
    out = os.environ.get("BENCH_PROFILE")
    return ["-m", "cProfile", "-o", out] if out and what == "engine" else []


def in_child(what: str, n: int, mode: str, batch: int, conc: int) -> dict[str, Any]:
    """Seed a store with ``n`` readers, run ``what`` (engine or ceiling) in a child."""
    with tempfile.TemporaryDirectory(prefix="nl-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        if what == "engine":
            seed(url, n)
        server = None
        base_url = ""
        if mode != "outbox":
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert server.stdout is not None
            base_url = server.stdout.readline().strip()
        try:
            env = {**os.environ, TOKEN_ENV: "bench-token", "NEWSLETTER_SECRET_KEY": "bench"}
            args = [what, mode, str(folder), url, base_url, str(n), str(batch), str(conc)]
            out = subprocess.run(
                [sys.executable, *profile_args(what), __file__, "--child", *args],
                capture_output=True,
                text=True,
                check=True,
                env=env,
            )
            figures: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
        finally:
            if server is not None:
                assert server.stdin is not None and server.stdout is not None
                server.stdin.close()
                received = server.stdout.read().strip()
                server.wait(timeout=60)
                figures["provider_received"] = json.loads(received)["delivered"]
        return figures


def child(argv: list[str]) -> dict[str, Any]:
    """The measured process: ``engine`` or ``ceiling`` for one mode and size."""
    what, mode, folder, url, base_url, n, batch, conc = argv
    cfg = settings(Path(folder), url, mode, base_url, int(batch), int(conc))
    if what == "engine":
        return engine(Path(folder), url, cfg)
    return ceiling(cfg, mode, int(n))


def main() -> None:
    """Parse arguments, run every (size, mode), print a table."""
    if sys.argv[1:2] == ["--serve"]:
        serve_forever()
        return
    if sys.argv[1:2] == ["--child"]:
        print(json.dumps(child(sys.argv[2:])))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, nargs="+", default=[20_000])
    parser.add_argument("--modes", nargs="+", default=["outbox", "postmark", "sendgrid"])
    parser.add_argument("--batch-size", type=int, help="messages per batch (default by mode)")
    parser.add_argument("--concurrency", type=int, default=4, help="batches in flight")
    args = parser.parse_args()
    print(
        f"{'mode':9} {'recipients':>10} {'batch':>5} {'plan s':>7} {'send s':>7} {'msg/s':>7} "
        f"{'ceiling':>8} {'ratio':>6} {'peak RSS':>9}"
    )
    for n in args.recipients:
        for mode in args.modes:
            batch = args.batch_size or BATCH[mode]
            f = in_child("engine", n, mode, batch, args.concurrency)
            assert f["sent"] == n == f["counts"].get("sent"), f
            if "provider_received" in f:
                assert f["provider_received"] == n, f
            rate = n / f["send_s"]
            top, ratio = "-", "-"
            if mode != "outbox":
                c = in_child("ceiling", n, mode, batch, args.concurrency)
                assert c["provider_received"] == c["messages"] >= n, c
                top_rate = c["messages"] / c["send_s"]
                top, ratio = f"{top_rate:.0f}", f"{rate / top_rate:.2f}"
            print(
                f"{mode:9} {n:>10} {batch:>5} {f['plan_s']:>7.2f} {f['send_s']:>7.2f} "
                f"{rate:>7.0f} {top:>8} {ratio:>6} {f['peak_rss_mb']:>6.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
