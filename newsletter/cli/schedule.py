"""Commands of the scheduler: run it, list its jobs, print the health summary."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

import typer

from newsletter.cli.app import app, now, opened, out, settings, state
from newsletter.cli.output import JsonOpt, print_json, print_table, safe, styled

if TYPE_CHECKING:
    from rich.text import Text

    from newsletter.schedule.status import Health
    from newsletter.schedule.triggers import JobView
    from newsletter.store.runs import JobRun

schedule_app = typer.Typer(help="Inspect the scheduled jobs.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

_STYLE = {"done": "green", "skipped": "yellow", "failed": "red", "missed": "red"}


def _status(run: JobRun) -> Text:
    return styled(run.status.value, _STYLE.get(run.status.value, "white"))


def _last(run: JobRun | None, tz: str) -> Text:
    from rich.text import Text

    from newsletter.schedule.triggers import local_text

    if run is None:
        return Text("-")
    when = run.started_at or run.finished_at or run.scheduled_for
    return Text(f"{local_text(when, tz)} ").append_text(_status(run))


def _run_json(run: JobRun) -> dict[str, object]:
    return {
        "id": run.id,
        "job": run.job_id,
        "scheduled_for": run.scheduled_for,
        "started_at": run.started_at,
        "finished_at": run.finished_at,
        "status": run.status,
        "detail": run.detail,
    }


def _job_json(job: JobView) -> dict[str, object]:
    return {
        "id": job.id,
        "does": job.what,
        "schedule": job.schedule,
        "window": job.window,
        "timezone": job.timezone,
        "next_run": job.next_run,
        "pending": [{"what": label, "at": when} for label, when in job.pending],
        "last_run": _run_json(job.last) if job.last else None,
        "state": job.state,
        "problem": job.problem,
    }


@app.command("run")
def run_cmd() -> None:
    """Run the scheduler: the jobs of the config's schedule tables, until SIGTERM or Ctrl-C.

    One scheduler per database: a second one refuses to start. On SIGTERM or Ctrl-C the
    running send finishes its current batch, records it and stops; it continues on the
    next start.
    """
    from newsletter.schedule.runner import run_scheduler

    cfg = settings()
    if not state.debug:
        # a service's log: say what ran and what was missed, without APScheduler's chatter
        logging.getLogger("newsletter").setLevel(logging.INFO)
    run_scheduler(cfg)


@schedule_app.command("list")
def schedule_list(as_json: JsonOpt = False) -> None:
    """Every job: its schedule, next run in its own time zone, last run and status."""
    from newsletter.schedule.status import scheduler_state
    from newsletter.schedule.triggers import list_jobs, local_text

    cfg = settings()
    with opened(cfg) as store:
        at = now()
        alive = scheduler_state(store, at).alive
        jobs = list_jobs(cfg, store, at, scheduler_alive=alive)
    if as_json:
        print_json([_job_json(job) for job in jobs])
        return
    rows = []
    for job in jobs:
        schedule = job.schedule + (f"\nwindow {job.window}" if job.window else "")
        nxt = local_text(job.next_run, job.timezone) if job.next_run else "-"
        for label, when in job.pending:
            nxt += f"\n{label}: {local_text(when, job.timezone)}"
        status = styled(job.state, "red") if job.problem else job.state
        rows.append((job.id, job.what, schedule, nxt, _last(job.last, job.timezone), status))
    print_table(("job", "does", "schedule", "next run", "last run", "status"), rows)
    if not alive:
        out.print("[yellow]The scheduler is not running[/] (start it with `newsletter run`).")


@schedule_app.command("history")
def schedule_history(
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 20,
    as_json: JsonOpt = False,
) -> None:
    """The most recent runs, newest first: when each was due, how it ended."""
    from newsletter.schedule.triggers import local_text, span_text

    cfg = settings()
    zones = {j.id: j.timezone for j in cfg.schedule}
    with opened(cfg) as store:
        runs = store.runs.history(job, limit=limit)
    if as_json:
        print_json([_run_json(run) for run in runs])
        return
    rows = []
    for run in runs:
        tz = zones.get(run.job_id, "UTC")
        took = (
            span_text(run.finished_at - run.started_at)
            if run.started_at and run.finished_at
            else "-"
        )
        rows.append(
            (
                run.job_id,
                local_text(run.scheduled_for, tz),
                local_text(run.started_at, tz),
                took,
                _status(run),
                run.detail,
            )
        )
    print_table(("job", "due", "started", "took", "status", "detail"), rows)


def _health_json(report: Health) -> dict[str, object]:
    sched = report.scheduler
    return {
        "ok": report.ok,
        "scheduler": {
            "alive": sched.alive,
            "holder": sched.holder,
            "heartbeat_at": sched.heartbeat_at,
            "expires_at": sched.expires_at,
            "text": sched.text,
        },
        "jobs": [_job_json(job) for job in report.jobs],
        "sources": [
            {
                "name": src.name,
                "configured": src.configured,
                "last_gathered_at": src.last_gathered_at,
                "count": src.count,
                "error": src.error,
            }
            for src in report.sources
        ],
        "segments": [
            {
                "segment": seg.segment,
                "edition": None
                if seg.edition is None
                else {
                    "id": seg.edition.id,
                    "period": seg.edition.period,
                    "status": seg.edition.status,
                    "created_at": seg.edition.created_at,
                },
                "deliveries": {k.value: v for k, v in sorted(seg.counts.items()) if v},
            }
            for seg in report.segments
        ],
        "problems": report.problems,
    }


@app.command("status")
def status_cmd(as_json: JsonOpt = False) -> None:
    """Health summary: scheduler alive, last gather per source, last edition per segment."""
    from newsletter.schedule.status import health
    from newsletter.schedule.triggers import local_text

    cfg = settings()
    with opened(cfg) as store:
        at = now()
        report = health(cfg, store, at)
    if as_json:
        print_json(_health_json(report))
        return
    sched = report.scheduler
    out.print(
        f"Scheduler: [{'green' if sched.alive else 'yellow'}]{safe(sched.text)}[/]",
        highlight=False,
    )
    local = ZoneInfo(cfg.segments[0].timezone) if cfg.segments else ZoneInfo("UTC")
    sources = []
    for src in report.sources:
        result = (
            styled(src.error, "red")
            if src.error
            else f"{src.count} item(s)"
            if src.count is not None
            else "not modified"
            if src.last_gathered_at
            else "never gathered"
        )
        name = src.name if src.configured else f"{src.name} (not in config)"
        sources.append((name, local_text(src.last_gathered_at, local), result))
    print_table(("source", "last gathered", "result"), sources, title="Sources")
    editions = []
    for seg in report.segments:
        if seg.edition is None:
            editions.append((seg.segment, "-", "-", "none yet", "-"))
            continue
        counts = ", ".join(f"{k.value} {v}" for k, v in sorted(seg.counts.items()) if v)
        editions.append(
            (
                seg.segment,
                str(seg.edition.id),
                seg.edition.period,
                seg.edition.status.label,
                counts or "no recipients",
            )
        )
    print_table(
        ("segment", "edition", "period", "status", "deliveries"), editions, title="Last editions"
    )
    if report.problems:
        out.print("[red]Needs attention:[/]")
        for problem in report.problems:
            out.print(f"  - {safe(problem)}", highlight=False)
    else:
        out.print("[green]Nothing needs attention.[/]")
