"""Engagement reports: ``editions report ID`` and ``report --segment S``."""

from __future__ import annotations

from typing import Annotated

import typer

from newsletter.cli.app import app, editions_app, opened, out, settings
from newsletter.cli.output import JsonOpt, print_json, print_table, safe

TREND_HEADS = ["edition", "period", "sent", "delivered %", "bounced %", "complaints", "unsub"]
TREND_HEADS += ["opens~", "clickers"]
EditionId = Annotated[int, typer.Argument(help="Edition id (see `newsletter editions list`).")]


@editions_app.command("report")
def editions_report(edition_id: EditionId, as_json: JsonOpt = False) -> None:
    """What happened to an edition per locale: delivered, bounced, complained,
    unsubscribed, opens (estimates) and clicks where tracked; clicks per story."""
    from newsletter.reports import edition_report

    cfg = settings()
    with opened(cfg) as store:
        rep = edition_report(cfg, store, edition_id)
    if as_json:
        print_json(rep.to_json())
        return
    out.print(f"edition {rep.edition_id} {safe(rep.segment)} {safe(rep.period)} ({rep.status})")
    heads = ["locale", "sent", "delivered", "deferred", "hard", "soft", "complained", "unsub"]
    if rep.opens_tracked:
        heads += ["opens~", "machine~"]
    if rep.clicks_tracked:
        heads += ["clickers", "clicks"]
    rows = []
    for line in rep.locales:
        row = [line.locale, line.sent, line.delivered, line.deferred, line.hard_bounces]
        row += [line.soft_bounces, line.complained, line.unsubscribed]
        if rep.opens_tracked:
            row += [line.opens_unique, line.machine_opens]
        if rep.clicks_tracked:
            row += [line.clicks_unique, line.clicks_total]
        rows.append([str(v) for v in row])
    print_table(heads, rows)
    if rep.opens_tracked:
        out.print("~ opens are estimates (blocked images, machine prefetches counted apart)")
    clicked = [s for s in rep.stories if s.clicks]
    if clicked:
        locales = sorted({loc for s in clicked for loc in s.clicks})
        print_table(
            ["story", *locales],
            [
                [safe(s.title or s.link)[:60]]
                + [str(s.clicks.get(loc, {}).get("unique", 0)) for loc in locales]
                for s in clicked
            ],
        )


@app.command("report")
def report_cmd(
    segment: Annotated[str, typer.Option("--segment", help="Segment name.")],
    last: Annotated[int, typer.Option("--last", min=1, help="How many editions.")] = 12,
    as_json: JsonOpt = False,
) -> None:
    """The trend across a segment's last editions: delivery and bounce rates, unsubscribes,
    unique opens and clicks."""
    from newsletter.reports import segment_trend

    cfg = settings()
    if segment not in {s.name for s in cfg.segments}:
        from newsletter.errors import ConfigError

        raise ConfigError(f"segments: no segment named {segment!r}")
    with opened(cfg) as store:
        lines = segment_trend(store, segment, last)
    if as_json:
        print_json([line.to_json() for line in lines])
        return
    print_table(
        TREND_HEADS,
        [
            [
                str(x.edition_id),
                safe(x.period),
                str(x.sent),
                f"{100 * x.delivery_rate:.1f}",
                f"{100 * x.bounce_rate:.1f}",
                str(x.complained),
                str(x.unsubscribed),
                str(x.opens_unique),
                str(x.clicks_unique),
            ]
            for x in lines
        ],
    )
