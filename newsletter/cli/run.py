"""Commands that do the work: gather, digest, preview."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.app import _ids, _progress, app, err, now, opened, out, settings
from newsletter.cli.output import print_table, safe

if TYPE_CHECKING:
    from newsletter.digest.edition import DigestReport
    from newsletter.gather.run import GatherReport
    from newsletter.models import Progress


def _print_gather(report: GatherReport) -> None:
    print_table(
        ("source", "new", "updated", "unchanged", "problem"),
        (
            (s.name, str(s.new), str(s.updated), str(s.unchanged), s.error or "")
            for s in report.sources
        ),
        title="Gathered",
    )


@app.command("gather")
def gather_cmd(
    source: Annotated[
        list[str] | None, typer.Option("--source", "-s", help="Only this source (repeatable).")
    ] = None,
) -> None:
    """Fetch every configured source and store new or changed items."""
    from newsletter.gather.run import gather

    cfg = settings()
    with opened(cfg) as store, err.status("gathering…") as status:
        report = gather(
            cfg,
            store,
            only=source or None,
            on_source=lambda s: status.update(f"gathered {safe(s.name)}"),
        )
    _print_gather(report)
    if report.sources and all(s.error for s in report.sources):
        raise typer.Exit(1)


def _print_digest(report: DigestReport, *, dry_run: bool) -> None:
    for name, imp in report.lists.items():
        if imp.added or imp.updated or imp.errors:
            out.print(
                f"List {safe(name)}: {imp.added} added, {imp.updated} updated from its file"
                + (f", {len(imp.errors)} bad row(s):" if imp.errors else ""),
                highlight=False,
            )
        for e in imp.errors:
            out.print(f"  [yellow]line {e.line}[/]: {safe(e.reason)}", highlight=False)
    if report.gathered is not None:
        g = report.gathered
        failed = [s for s in g.sources if s.error]
        out.print(
            f"Gathered {g.new} new and {g.updated} updated item(s) from "
            f"{len(g.sources)} source(s)" + (f"; {len(failed)} failed:" if failed else ".")
        )
        for s in failed:
            out.print(f"  [yellow]{safe(s.name)}[/]: {safe(s.error)}", highlight=False)
    rows = []
    for r in report.segments:
        per_locale = ", ".join(f"{loc} {n}" for loc, n in sorted(r.recipients.items()))
        if r.awaiting_approval:
            result = "awaiting approval: `newsletter editions approve ID` or the desk"
        elif r.skipped:
            result = f"skipped: {r.skipped}"
        elif dry_run:
            result = "dry run: " + ", ".join(
                f"{loc} {v.html_bytes / 1024:.0f} KB" for loc, v in sorted(r.variants.items())
            )
        elif r.sent is not None:
            c = r.sent.counts
            done = ", ".join(f"{k.value} {v}" for k, v in sorted(c.items()) if v)
            result = ("resumed; " if r.resumed else "") + done
            if r.sent.next_retry_at:
                result += f"; retries due {r.sent.next_retry_at:%Y-%m-%d %H:%M} UTC"
        else:
            result = "sent to test address"
        rows.append(
            (r.segment, r.period, str(r.edition_id or "-"), str(r.items), per_locale or "-", result)
        )
    print_table(("segment", "period", "edition", "items", "recipients per locale", "result"), rows)
    if report.overlaps is not None:
        for line in report.overlaps.overlap_lines():
            out.print(line, highlight=False, markup=False, soft_wrap=True)
    if report.outbox is not None:
        out.print(
            f"Outbox: {safe(report.outbox.parent)}  (index: {safe(report.outbox)})",
            highlight=False,
        )


@app.command("digest")
def digest_cmd(
    segment: Annotated[
        list[str] | None, typer.Option("--segment", "-s", help="Only this segment (repeatable).")
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Select and render, store and send nothing.")
    ] = False,
    test_to: Annotated[
        str | None,
        typer.Option("--test-to", help="Send one message per locale to this address only."),
    ] = None,
    items: Annotated[
        list[str] | None,
        typer.Option("--items", help="Send exactly these item ids (comma-separated or repeated)."),
    ] = None,
    no_gather: Annotated[bool, typer.Option("--no-gather", help="Skip gathering first.")] = False,
) -> None:
    """Gather, then build and send this period's edition for each segment."""
    from rich.progress import TaskID

    from newsletter.digest.pipeline import run_digest

    cfg = settings()
    with opened(cfg) as store, _progress() as bar:
        tasks: dict[str, TaskID] = {}

        def progress(p: Progress) -> None:
            if p.segment not in tasks:
                tasks[p.segment] = bar.add_task(f"sending {p.segment}", total=p.total)
            bar.update(tasks[p.segment], completed=p.done, total=p.total)

        report = run_digest(
            cfg,
            store=store,
            segments=segment or None,
            item_ids=_ids(items) or None,
            dry_run=dry_run,
            test_to=test_to,
            do_gather=not no_gather,
            on_progress=progress,
        )
    _print_digest(report, dry_run=dry_run)


@app.command("preview")
def preview_cmd(
    segment: Annotated[
        list[str] | None, typer.Option("--segment", "-s", help="Only this segment (repeatable).")
    ] = None,
    locale: Annotated[
        list[str] | None, typer.Option("--locale", "-l", help="Only this locale (repeatable).")
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Folder to write to (default: paths.preview).")
    ] = None,
    screenshots: Annotated[
        bool,
        typer.Option(
            "--screenshots",
            help="Also PNGs at 600 and 375 px beside each HTML file (headless Chromium; "
            "needs the 'screenshots' extra).",
        ),
    ] = False,
    remote_images: Annotated[
        bool,
        typer.Option(
            "--remote-images/--no-remote-images",
            help="Screenshots load remote images, or show grey boxes and stay offline.",
        ),
    ] = True,
) -> None:
    """Render this period's digest for every (segment, locale) into HTML files and an index."""
    import newsletter.digest  # noqa: F401  (first: digest and audience.explain import each other)
    from newsletter.audience.explain import explain
    from newsletter.digest.trial import preview
    from newsletter.render.screenshots import Shot, preview_with_screenshots

    cfg = settings()
    shots: list[Shot] = []
    with opened(cfg) as store:
        if screenshots:
            index, entries, shots = preview_with_screenshots(
                cfg,
                store,
                segments=segment or None,
                locales=locale or None,
                out=out_dir,
                remote_images=remote_images,
            )
        else:
            index, entries = preview(
                cfg, store, segments=segment or None, locales=locale or None, out=out_dir
            )
        overlaps = explain(cfg, store, now(), details=False)
    print_table(
        ("segment", "locale", "subject", "HTML", "items"),
        (
            (
                e.group,
                e.variant.locale,
                e.variant.subject,
                f"{e.variant.html_bytes / 1024:.1f} KB",
                str(e.variant.item_count),
            )
            for e in entries
        ),
    )
    if not entries:
        out.print(
            "[yellow]Nothing to preview:[/] no segment has new items this period "
            "(run `newsletter gather` first?)",
            highlight=False,
        )
    for shot in shots:
        if not shot.fits:
            where = "; ".join(shot.overflow[:3]) or f"page is {shot.scroll_width} px wide"
            out.print(
                f"[yellow]{safe(shot.png.name)}[/]: wider than {shot.width} px: {safe(where)}",
                highlight=False,
            )
    if shots:
        out.print(f"{len(shots)} screenshot(s) beside the HTML files")
    for line in overlaps.overlap_lines():
        out.print(line, highlight=False, markup=False, soft_wrap=True)
    out.print(f"Preview index: {safe(index)}", highlight=False)
