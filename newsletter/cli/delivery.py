"""Commands that drive sending: the worker, and pause / resume / cancel / show an edition."""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.cli.app import _progress, app, editions_app, now, opened, out, settings
from newsletter.cli.output import JsonOpt, print_json, print_table, safe

if TYPE_CHECKING:
    from newsletter.models import DeliveryStatus, Progress
    from newsletter.send.control import EditionReport
    from newsletter.send.engine import SendReport
    from newsletter.send.reconcile import ReconcileReport

EditionId = Annotated[int, typer.Argument(help="Edition id (see `newsletter editions list`).")]
# newsletter.send.reconcile.DEFAULT_SETTLE, written out so that `--help` does not import
# the sending stack (tests/cli/test_startup.py checks that the two agree)
SETTLE_SECONDS = 120.0
SettleOpt = Annotated[
    float,
    typer.Option(
        "--settle",
        help="Seconds after which a message the provider's search does not show is taken "
        "as never arrived (searches lag behind sending).",
    ),
]
COLUMNS = ("queued", "claimed", "retry", "sent", "failed", "unknown", "skipped")


def _counts(counts: dict[DeliveryStatus, int]) -> str:
    return ", ".join(f"{k.value} {v}" for k, v in sorted(counts.items()) if v) or "no rows"


@app.command("worker")
def worker_cmd(
    once: Annotated[
        bool, typer.Option("--once", help="Send what is due, wait out near retries, exit.")
    ] = False,
    lease: Annotated[
        float, typer.Option(help="Seconds a claimed batch is held (> provider timeout).")
    ] = 600.0,
    poll: Annotated[float, typer.Option(help="Seconds between looks for work when idle.")] = 5.0,
    wait: Annotated[
        float, typer.Option(help="With --once: longest wait for a retry or lease, seconds.")
    ] = 60.0,
    retry_base: Annotated[
        float, typer.Option(help="First retry delay in seconds; doubles per attempt.")
    ] = 30.0,
    max_attempts: Annotated[
        int, typer.Option(help="Attempts before a failing message is marked failed.")
    ] = 5,
) -> None:
    """Send every edition in 'sending' status until SIGTERM/SIGINT (or, with --once, drained).

    Start as many as you like against one PostgreSQL database: they share editions
    without sending anything twice. A signal stops a worker after its current batches.
    """
    from newsletter.send.worker import WorkerOptions, run_worker

    cfg = settings()
    options = WorkerOptions(
        once=once,
        lease=lease,
        poll=poll,
        wait=wait,
        retry_base=retry_base,
        max_attempts=max_attempts,
    )
    report = run_worker(cfg, options=options)
    for edition_id, res in sorted(report.editions.items()):
        state = "finished" if res.finished else _counts(res.counts)
        out.print(
            f"edition {edition_id}: sent {res.sent}, failed {res.failed}, skipped {res.skipped}, "
            f"unknown {res.unknown}, retries {res.retry}, throttled {res.throttled}x — {state}",
            highlight=False,
        )
    for edition_id, problem in sorted(report.problems.items()):
        out.print(f"[red]edition {edition_id}[/]: {safe(problem)}", highlight=False)
    out.print("stopped by signal" if report.stopped else "nothing left to send")
    if report.problems:
        raise typer.Exit(1)


@editions_app.command("pause")
def editions_pause(edition_id: EditionId) -> None:
    """Stop sending an edition after the batches in flight; resume continues from there."""
    from newsletter.send.control import pause_edition

    cfg = settings()
    with opened(cfg) as store:
        e = pause_edition(store, edition_id, now())
        counts = store.deliveries.counts(e.id)
    out.print(f"edition {e.id} paused ({_counts(counts)})", highlight=False)


@editions_app.command("cancel")
def editions_cancel(edition_id: EditionId) -> None:
    """Cancel an edition: rows not sent yet become skipped ("cancelled"), nothing more goes."""
    from newsletter.send.control import cancel_edition

    cfg = settings()
    with opened(cfg) as store:
        res = cancel_edition(store, edition_id, now())
        counts = store.deliveries.counts(edition_id)
    out.print(
        f"edition {edition_id} cancelled: {res.skipped} row(s) skipped now, "
        f"{res.unknown} held by a dead worker marked unknown; {_counts(counts)}",
        highlight=False,
    )


@editions_app.command("resume")
def editions_resume(
    edition_id: EditionId,
    resend_unknown: Annotated[
        bool,
        typer.Option(
            "--resend-unknown",
            help="Also send rows whose outcome is unknown (some readers may get it twice).",
        ),
    ] = False,
    no_reconcile: Annotated[
        bool,
        typer.Option(
            "--no-reconcile",
            help="With --resend-unknown: resend every unknown row without asking the "
            "provider which ones it accepted.",
        ),
    ] = False,
    settle: SettleOpt = SETTLE_SECONDS,
    lease: Annotated[float, typer.Option(help="Seconds a claimed batch is held.")] = 600.0,
) -> None:
    """Resume a paused or stalled edition and send the rest here, with a progress bar.

    With --resend-unknown, rows whose outcome is unknown are first looked up at the
    provider where it can tell (Postmark, Mailgun): only what never arrived goes again.
    """
    from rich.progress import TaskID

    from newsletter.send.worker import WorkerOptions, resume_edition

    cfg = settings()
    with _progress() as bar:
        task: TaskID | None = None

        def progress(p: Progress) -> None:
            nonlocal task
            if task is None:
                task = bar.add_task(f"sending edition {edition_id}", total=p.total)
            bar.update(task, completed=p.done, total=p.total)

        res = resume_edition(
            cfg,
            edition_id,
            resend_unknown=resend_unknown,
            reconcile_first=not no_reconcile,
            settle=timedelta(seconds=settle),
            options=WorkerOptions(once=True, lease=lease),
            on_progress=progress,
            on_reconciled=_print_reconciled,
        )
    _print_resumed(edition_id, res)


@editions_app.command("approve")
def editions_approve(
    edition_id: EditionId,
    no_send: Annotated[
        bool,
        typer.Option(
            "--no-send",
            help="Only approve; a running worker or scheduler sends it.",
        ),
    ] = False,
) -> None:
    """Approve an edition awaiting approval (segments with approval = "required").

    Inside the segment's send window (or without one) sending starts: here, with a
    progress bar, unless --no-send. Outside it the approval is recorded and the worker or
    scheduler starts sending when the window opens.
    """
    from rich.progress import TaskID

    from newsletter.digest.approval import approve_edition, send_edition

    cfg = settings()
    with opened(cfg) as store:
        _change, state = approve_edition(cfg, store, edition_id, actor="cli", now=now())
        out.print(f"edition {edition_id} approved", highlight=False)
        if state.starts_at is not None:
            opens = f"{state.starts_at:%Y-%m-%d %H:%M} UTC"
            out.print(f"outside its send window: sending starts at {opens}", highlight=False)
            return
        if no_send:
            out.print("sending: a worker or the scheduler sends it", highlight=False)
            return
        with _progress() as bar:
            task: TaskID | None = None

            def progress(p: Progress) -> None:
                nonlocal task
                if task is None:
                    task = bar.add_task(f"sending edition {edition_id}", total=p.total)
                bar.update(task, completed=p.done, total=p.total)

            res = send_edition(cfg, store, edition_id, on_progress=progress)
    _print_resumed(edition_id, res)


@editions_app.command("reconcile")
def editions_reconcile(
    edition_id: EditionId, settle: SettleOpt = SETTLE_SECONDS, as_json: JsonOpt = False
) -> None:
    """Ask the provider which unknown rows it accepted: those become sent, the ones it
    never got are queued again (`editions resume` sends them); nothing is sent here."""
    from newsletter.send.worker import reconcile_edition

    rep = reconcile_edition(settings(), edition_id, settle=timedelta(seconds=settle))
    if as_json:
        print_json(
            {
                "edition": rep.edition_id,
                "provider": rep.provider,
                "unknown": rep.unknown,
                "sent": rep.sent,
                "requeued": rep.requeued,
                "recent": rep.recent,
                "unanswered": rep.unanswered,
                "too_old": rep.too_old,
                "check_again_at": rep.check_again_at.isoformat() if rep.check_again_at else None,
            }
        )
    else:
        _print_reconciled(rep)


def _print_reconciled(rep: ReconcileReport) -> None:
    n = rep.edition_id
    out.print(
        f"edition {n}: {rep.unknown} unknown row(s) looked up at {rep.provider}: "
        f"{rep.sent} accepted (now sent), {rep.requeued} never arrived (queued again)",
        highlight=False,
    )
    if rep.requeued:
        out.print(f"`newsletter editions resume {n}` sends the queued rows", highlight=False)
    if rep.recent:
        when = f"{rep.check_again_at:%Y-%m-%d %H:%M:%S} UTC" if rep.check_again_at else "later"
        out.print(
            f"{rep.recent} row(s) not found yet, too soon after sending to be sure: "
            f"reconcile again after {when}",
            highlight=False,
        )
    if rep.unanswered:
        out.print(
            f"{rep.unanswered} row(s) the provider did not answer for: reconcile again",
            highlight=False,
        )
    if rep.too_old:
        out.print(
            f"{rep.too_old} row(s) older than {rep.provider} keeps its records: "
            f"`newsletter editions resume {n} --resend-unknown --no-reconcile` resends them "
            "(some readers may get a second copy)",
            highlight=False,
        )


def _print_resumed(edition_id: int, res: SendReport) -> None:
    out.print(
        f"edition {edition_id}: sent {res.sent}, failed {res.failed}, skipped {res.skipped} "
        f"in this run; now {_counts(res.counts)}" + (" — finished" if res.finished else ""),
        highlight=False,
    )
    if res.stopped:
        out.print("stopped by signal; resume again to continue")
    if res.held:
        # a dead holder's rows were taken back while we waited: these holders are alive
        out.print(
            f"{res.held} row(s) still held by running workers (they record them); "
            f"`newsletter editions show {edition_id}` tells when the edition is finished"
        )
    if res.next_retry_at is not None:
        out.print(
            f"retries due from {res.next_retry_at:%Y-%m-%d %H:%M:%S} UTC: a running worker "
            "sends them, or resume again then"
        )


def _duration(value: timedelta | None) -> str:
    if value is None:
        return "unknown"
    seconds = int(value.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"


def _print_report(rep: EditionReport) -> None:
    from newsletter.models import DeliveryStatus, EditionStatus
    from newsletter.send.compose import edition_label

    e = rep.edition
    out.print(
        f"Edition {e.id}: {safe(e.segment)} {safe(e.period)} — {e.status.label}, "
        f"{len(e.item_ids)} item(s), created {e.created_at:%Y-%m-%d %H:%M} UTC "
        f"({safe(edition_label(e.id, e.segment, e.period))})",
        highlight=False,
    )
    rows: list[list[str] | None] = []
    for loc, counts in sorted(rep.by_locale.items()):
        v = rep.variants.get(loc)
        rows.append(
            [
                loc,
                v.subject if v else "-",
                f"{v.html_bytes / 1024:.1f} KB" if v else "-",
                *(str(counts.get(DeliveryStatus(s), 0)) for s in COLUMNS),
                str(sum(counts.values())),
            ]
        )
    rows.append(None)
    total = [str(rep.counts.get(DeliveryStatus(s), 0)) for s in COLUMNS]
    rows.append(["all", "", "", *total, str(rep.total)])
    print_table(("locale", "subject", "HTML", *COLUMNS, "total"), rows)
    if rep.errors:
        out.print("Reasons:")
        for reason, n in rep.errors:
            out.print(f"  {n} × {safe(reason)}", highlight=False)
    if rep.remaining:
        parts = []
        if rep.recent_rate:
            parts.append(
                f"≈ {_duration(rep.eta(rep.recent_rate))} at the recent rate "
                f"({rep.recent_rate:.1f}/s)"
            )
        if rep.configured_rate:
            parts.append(
                f"at least {_duration(rep.eta(rep.configured_rate))} at the configured limit "
                f"({rep.configured_rate:g}/s)"
            )
        out.print(
            f"Left: {rep.remaining} of {rep.total}. Time left: "
            + ("; ".join(parts) or "unknown (nothing sent recently, no rate configured)"),
            highlight=False,
        )
    if rep.unknown:
        hint = (
            "they may or may not have gone out."
            if e.status is EditionStatus.CANCELLED
            else f"send them on purpose with `newsletter editions resume {e.id} --resend-unknown`."
        )
        out.print(
            f"[yellow]{rep.unknown} row(s) unknown[/]: a worker died while sending them, or the "
            f"provider's answer was lost, and it cannot deduplicate; {hint}",
            highlight=False,
        )


def _report_json(rep: EditionReport) -> dict[str, Any]:
    from newsletter.send.compose import edition_label

    e = rep.edition
    eta = rep.eta(rep.recent_rate or rep.configured_rate)
    return {
        "id": e.id,
        "segment": e.segment,
        "period": e.period,
        "status": e.status,
        "created_at": e.created_at,
        "label": edition_label(e.id, e.segment, e.period),
        "item_ids": e.item_ids,
        "counts": _all_counts(rep.counts),
        "total": rep.total,
        "remaining": rep.remaining,
        "unknown": rep.unknown,
        "locales": [
            {
                "locale": loc,
                "subject": v.subject if v else None,
                "html_bytes": v.html_bytes if v else None,
                "counts": _all_counts(counts),
                "total": sum(counts.values()),
            }
            for loc, counts in sorted(rep.by_locale.items())
            for v in [rep.variants.get(loc)]
        ],
        "errors": [{"reason": reason, "count": n} for reason, n in rep.errors],
        "recent_rate": rep.recent_rate,
        "configured_rate": rep.configured_rate,
        "seconds_left": eta.total_seconds() if eta is not None else None,
    }


def _all_counts(counts: dict[DeliveryStatus, int]) -> dict[str, int]:
    """Every status as a key, so a script never has to guess whether one is missing."""
    from newsletter.models import DeliveryStatus

    return {s.value: counts.get(s, 0) for s in DeliveryStatus}


@editions_app.command("show")
def editions_show(edition_id: EditionId, as_json: JsonOpt = False) -> None:
    """Print one edition: counts per status and locale, error reasons, time left."""
    from newsletter.send.control import edition_report

    cfg = settings()
    with opened(cfg) as store:
        rep = edition_report(cfg, store, edition_id, now())
    if as_json:
        print_json(_report_json(rep))
    else:
        _print_report(rep)
