"""Benchmark: the delivery engine end to end, sends per second and peak memory.

Run from the project folder:

    python benchmarks/delivery_bench.py [--recipients 20000 100000] [--modes outbox postmark]

For each size and mode a fresh SQLite store gets N subscribers; then a *separate process*
(so its peak RSS is the engine's alone) plans the edition by streaming the segment's
recipients, and a ``Worker`` sends it with ``--once``: claim with lease, personalize
(token signing, placeholder substitution), hand batches to the provider, record every
result. Modes:

- ``outbox``: the default provider, one .eml file per message (200 per batch, 4 in
  flight);
- ``postmark``: the real Postmark adapter over HTTP to the local fake provider from
  ``tests/delivery/fakeprovider.py``, itself in a third process (500 per batch, 4 in
  flight).

The variant is a ~30 KB HTML digest with the per-recipient placeholders, so each message
is a full, personalized body. Figures vary with the machine; compare the ratios.
"""

from __future__ import annotations

import argparse
import json
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

import sqlalchemy as sa  # noqa: E402

from newsletter.config import Settings, from_dict  # noqa: E402
from newsletter.models import EditionStatus, NewSubscriber, RenderedVariant  # noqa: E402
from newsletter.personalize import PLACEHOLDERS, TEXT_PLACEHOLDERS  # noqa: E402
from newsletter.segments import recipients  # noqa: E402
from newsletter.store import Store  # noqa: E402
from newsletter.store.subscribers import SubscriberStore  # noqa: E402
from newsletter.store.tables import subscribers  # noqa: E402
from newsletter.worker import WorkerOptions, run_worker  # noqa: E402

NOW = datetime(2026, 11, 30, 8, 0, tzinfo=UTC)
TOKEN_ENV = "BENCH_POSTMARK_TOKEN"


def variant(locale: str) -> RenderedVariant:
    """A digest-sized variant (~30 KB of HTML) with the per-recipient placeholders."""
    story = (
        "<tr><td><h2>Соларен парк в община Варна</h2><p>"
        + "Клъстерът организира обучение за енергийни мениджъри в общините. " * 6
        + "</p></td></tr>"
    )
    html = (
        f"<html><body><p>Здравейте, {PLACEHOLDERS['name']}!</p><table>{story * 20}</table>"
        f'<a href="{PLACEHOLDERS["unsubscribe_url"]}">Отписване</a> '
        f'<a href="{PLACEHOLDERS["preferences_url"]}">Настройки</a></body></html>'
    )
    text = f"Здравейте, {TEXT_PLACEHOLDERS['name']}!\n{TEXT_PLACEHOLDERS['unsubscribe_url']}\n"
    return RenderedVariant(locale, f"Бюлетин {locale}", "", "Клъстер", html, text, 20)


def settings(folder: Path, url: str, mode: str, base_url: str | None) -> Settings:
    """The config a user would write for this mode."""
    provider: dict[str, Any] = {
        "name": "outbox",
        "path": str(folder / "outbox"),
        "batch_size": 200,
        "concurrency": 4,
    }
    if mode == "postmark":
        provider = {
            "name": "postmark",
            "base_url": base_url,
            "token_env": TOKEN_ENV,
            "batch_size": 500,
            "concurrency": 4,
        }
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


def seed(url: str, n: int) -> None:
    """N subscribers, inserted in bulk (not part of the measurement)."""
    with Store.open(url) as store, store.engine.begin() as conn:
        for start in range(0, n, 10_000):
            rows = [
                SubscriberStore._values(
                    NewSubscriber(
                        email=f"reader{i:07d}@example.org",
                        name=f"Читател {i}",
                        locale="bg" if i % 3 else "en",
                        lists=("members",),
                        consent_at=NOW,
                    ),
                    NOW,
                )
                for i in range(start, min(start + 10_000, n))
            ]
            conn.execute(sa.insert(subscribers), rows)


def child(folder: Path, url: str, mode: str, base_url: str | None) -> dict[str, Any]:
    """Plan and send one edition in this process; the figures as a dict."""
    cfg = settings(folder, url, mode, base_url)
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
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "planned": planned,
        "plan_s": t1 - t0,
        "send_s": t2 - t1,
        "sent": report.sent,
        "counts": counts,
        "peak_rss_mb": peak_kb / 1024,
    }


def serve_forever() -> None:
    """Run the fake provider until stdin closes; print its URL first."""
    from delivery.fakeprovider import serve

    with serve() as fake:
        print(fake.base_url, flush=True)
        sys.stdin.read()
        print(json.dumps({"delivered": len(fake.delivered)}), flush=True)


def measure(n: int, mode: str) -> dict[str, Any]:
    """Seed a store with ``n`` readers, send in a child process, return its figures."""
    with tempfile.TemporaryDirectory(prefix="nl-bench-") as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        seed(url, n)
        server = None
        base_url = ""
        if mode == "postmark":
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
            assert server.stdout is not None and server.stdin is not None
            base_url = server.stdout.readline().strip()
        try:
            env = {**os.environ, TOKEN_ENV: "bench-token", "NEWSLETTER_SECRET_KEY": "bench"}
            out = subprocess.run(
                [sys.executable, __file__, "--child", mode, str(folder), url, base_url],
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
                figures_server = server.stdout.read().strip()
                server.wait(timeout=30)
                figures["provider_received"] = json.loads(figures_server)["delivered"]
        return figures


def main() -> None:
    """Parse arguments, run every (size, mode), print a table."""
    if sys.argv[1:2] == ["--serve"]:
        serve_forever()
        return
    if sys.argv[1:2] == ["--child"]:
        mode, folder, url, base_url = sys.argv[2:6]
        print(json.dumps(child(Path(folder), url, mode, base_url or None)))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, nargs="+", default=[20_000])
    parser.add_argument("--modes", nargs="+", default=["outbox", "postmark"])
    args = parser.parse_args()
    print(f"{'mode':9} {'recipients':>10} {'plan s':>7} {'send s':>7} {'msg/s':>7} {'peak RSS':>9}")
    for n in args.recipients:
        for mode in args.modes:
            f = measure(n, mode)
            assert f["sent"] == n == f["counts"].get("sent"), f
            if "provider_received" in f:
                assert f["provider_received"] == n, f
            print(
                f"{mode:9} {n:>10} {f['plan_s']:>7.2f} {f['send_s']:>7.2f} "
                f"{n / f['send_s']:>7.0f} {f['peak_rss_mb']:>6.0f} MB",
                flush=True,
            )


if __name__ == "__main__":
    main()
