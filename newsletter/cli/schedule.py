"""Commands of the scheduler: run it, list its jobs, print the health summary."""

from __future__ import annotations

import logging
from typing import Annotated
from zoneinfo import ZoneInfo

import typer
from rich.table import Table

from newsletter.cli.app import app, now, opened, out, settings, state
from newsletter.runner import run_scheduler
from newsletter.schedule import list_jobs, local_text, span_text
from newsletter.status import health, scheduler_state
from newsletter.store.runs import JobRun

schedule_app = typer.Typer(help="Inspect the scheduled jobs.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

_STYLE = {"done": "green", "skipped": "yellow", "failed": "red", "missed": "red"}


def _last(run: JobRun | None, tz: str) -> str:
    if run is None:
        return "-"
    when = run.started_at or run.finished_at or run.scheduled_for
    return f"{local_text(when, tz)} [{_STYLE.get(run.status.value, 'white')}]{run.status}[/]"


@app.command("run")
def run_cmd() -> None:
    """Run the scheduler: the jobs of the config's schedule tables, until SIGTERM or Ctrl-C.

    One scheduler per database: a second one refuses to start. On SIGTERM or Ctrl-C the
    running send finishes its current batch, records it and stops; it continues on the
    next start.
    """
    cfg = settings()
    if not state.debug:
        # a service's log: say what ran and what was missed, without APScheduler's chatter
        logging.getLogger("newsletter").setLevel(logging.INFO)
    run_scheduler(cfg)


@schedule_app.command("list")
def schedule_list() -> None:
    """Every job: its schedule, next run in its own time zone, last run and status."""
    cfg = settings()
    with opened(cfg) as store:
        at = now()
        alive = scheduler_state(store, at).alive
        jobs = list_jobs(cfg, store, at, scheduler_alive=alive)
    table = Table("job", "does", "schedule", "next run", "last run", "status")
    for job in jobs:
        schedule = job.schedule + (f"\nwindow {job.window}" if job.window else "")
        nxt = local_text(job.next_run, job.timezone) if job.next_run else "-"
        for label, when in job.pending:
            nxt += f"\n{label}: {local_text(when, job.timezone)}"
        status = f"[red]{job.state}[/]" if job.problem else job.state
        table.add_row(job.id, job.what, schedule, nxt, _last(job.last, job.timezone), status)
    out.print(table)
    if not alive:
        out.print("[yellow]The scheduler is not running[/] (start it with `newsletter run`).")


@schedule_app.command("history")
def schedule_history(
    job: Annotated[str | None, typer.Argument(help="Only this job.")] = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many runs.")] = 20,
) -> None:
    """The most recent runs, newest first: when each was due, how it ended."""
    cfg = settings()
    zones = {j.id: j.timezone for j in cfg.schedule}
    with opened(cfg) as store:
        runs = store.runs.history(job, limit=limit)
    table = Table("job", "due", "started", "took", "status", "detail")
    for run in runs:
        tz = zones.get(run.job_id, "UTC")
        took = (
            span_text(run.finished_at - run.started_at)
            if run.started_at and run.finished_at
            else "-"
        )
        table.add_row(
            run.job_id,
            local_text(run.scheduled_for, tz),
            local_text(run.started_at, tz),
            took,
            f"[{_STYLE.get(run.status.value, 'white')}]{run.status}[/]",
            run.detail,
        )
    out.print(table)


@app.command("status")
def status_cmd() -> None:
    """Health summary: scheduler alive, last gather per source, last edition per segment."""
    cfg = settings()
    with opened(cfg) as store:
        at = now()
        report = health(cfg, store, at)
    sched = report.scheduler
    out.print(f"Scheduler: [{'green' if sched.alive else 'yellow'}]{sched.text}[/]")
    local = ZoneInfo(cfg.segments[0].timezone) if cfg.segments else ZoneInfo("UTC")
    sources = Table("source", "last gathered", "result", title="Sources")
    for src in report.sources:
        result = (
            f"[red]{src.error}[/]"
            if src.error
            else f"{src.count} item(s)"
            if src.count is not None
            else "not modified"
            if src.last_gathered_at
            else "never gathered"
        )
        name = src.name if src.configured else f"{src.name} (not in config)"
        sources.add_row(name, local_text(src.last_gathered_at, local), result)
    out.print(sources)
    editions = Table("segment", "edition", "period", "status", "deliveries", title="Last editions")
    for seg in report.segments:
        if seg.edition is None:
            editions.add_row(seg.segment, "-", "-", "none yet", "-")
            continue
        counts = ", ".join(f"{k.value} {v}" for k, v in sorted(seg.counts.items()) if v)
        editions.add_row(
            seg.segment,
            str(seg.edition.id),
            seg.edition.period,
            seg.edition.status.value,
            counts or "no recipients",
        )
    out.print(editions)
    if report.problems:
        out.print("[red]Needs attention:[/]")
        for problem in report.problems:
            out.print(f"  - {problem}", highlight=False)
    else:
        out.print("[green]Nothing needs attention.[/]")
