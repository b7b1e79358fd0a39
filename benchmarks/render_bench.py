"""Benchmark: render + inline every variant, and the per-recipient personalization cost.

Run from the project folder:  python benchmarks/render_bench.py [--repeat 5] [--recipients 20000]

It renders a 15-item digest for 9 locales x 4 segments (36 variants) with the bundled
templates and premailer, then personalizes one variant for N recipients (token signing +
placeholder substitution, and the full message composition the providers receive). It
prints medians over the repeats; the machine is noisy, so compare medians and ratios.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter import config  # noqa: E402
from newsletter.models import DigestEntry, Item  # noqa: E402
from newsletter.render.renderer import Renderer, personalize  # noqa: E402
from newsletter.send.compose import Composer, Recipient  # noqa: E402
from newsletter.send.mime import to_bytes  # noqa: E402
from newsletter.send.tokens import TokenSigner  # noqa: E402

LOCALES = ["bg", "en", "ro", "tr", "el", "ru", "uk", "ka", "de"]
NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def items(n: int) -> list[Item]:
    """A made-up 15-item edition: Bulgarian bodies of realistic length."""
    body = "<p>" + "Клъстерът организира обучение за енергийни мениджъри в общините. " * 12 + "</p>"
    return [
        Item(
            id=i,
            source="bench",
            guid=f"g{i}",
            title=f"Новина номер {i}: соларен парк и водород",
            body_html=body,
            summary_html=body[:400] + "…</p>",
            link=f"https://cluster.example.org/news/{i}",
            published_at=NOW - timedelta(hours=i),
            lang="bg",
            translation_key=None,
            tags=("energy",),
            image="https://cluster.example.org/img/lead.jpg" if i == 0 else None,
            content_hash=f"h{i}",
            first_seen_at=NOW,
            updated_at=NOW,
        )
        for i in range(n)
    ]


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--recipients", type=int, default=20_000)
    args = parser.parse_args()

    settings = config.load(ROOT / "config.toml")
    segments = [settings.segments[0].model_copy(update={"name": f"segment-{k}"}) for k in range(4)]
    renderer = Renderer(settings)
    stories = items(15)

    totals = []
    variant = None
    for _ in range(args.repeat):
        start = time.perf_counter()
        for segment in segments:
            for locale in LOCALES:
                entries = [DigestEntry(i, "bg", locale != "bg") for i in stories]
                variant = renderer.render(
                    segment=segment,
                    period_label="23–29.11.2026",
                    edition_date=date(2026, 11, 28),
                    entries=entries,
                    locale=locale,
                    view_url="https://news.example.org/archive/1/bg",
                )
        totals.append(time.perf_counter() - start)
    assert variant is not None
    n_variants = len(segments) * len(LOCALES)
    med = statistics.median(totals)
    print(
        f"render+inline {n_variants} variants (15 items each): median {med:.2f} s "
        f"over {args.repeat} runs ({med / n_variants * 1000:.0f} ms per variant); "
        f"largest HTML {variant.html_bytes / 1024:.1f} KB"
    )

    signer = TokenSigner(["benchmark-secret"])
    composer = Composer(settings, signer, edition_id=1, segment="members", period="2026-W48")
    values = {
        "name": "Иван Петров",
        "email": "ivan@example.org",
        "unsubscribe_url": "https://news.example.org/unsubscribe/x",
        "preferences_url": "https://news.example.org/preferences/x",
    }
    subst, comp, mime = [], [], []
    n = args.recipients
    for _ in range(args.repeat):
        start = time.perf_counter()
        for _i in range(n):
            personalize(variant, values)
        subst.append((time.perf_counter() - start) / n)
        start = time.perf_counter()
        for i in range(n):
            composer.compose(variant, Recipient(i, i, f"p{i}@example.org", "Иван Петров"))
        comp.append((time.perf_counter() - start) / n)
        start = time.perf_counter()
        for i in range(n // 10):
            to_bytes(composer.compose(variant, Recipient(i, i, f"p{i}@example.org", "Иван")))
        mime.append((time.perf_counter() - start) / (n // 10))
    print(
        f"per recipient: placeholder substitution {statistics.median(subst) * 1e6:.0f} µs, "
        f"compose (2 signed tokens + substitution) {statistics.median(comp) * 1e6:.0f} µs, "
        f"compose + MIME bytes (outbox) {statistics.median(mime) * 1e6:.0f} µs; "
        f"render-once / per-recipient ratio {med / n_variants / statistics.median(comp):.0f}x"
    )


if __name__ == "__main__":
    main()
