"""Shared parts of the scheduler tests: sample people and news, a clock-driving driver,
and the ``build`` and ``opened`` fixtures (a test module imports ``build_fixture`` and
``opened_fixture`` to use them).

time-machine freezes the clock; :class:`Driver` moves it to each next fire time and waits
(real time, milliseconds) until the scheduler has run what fell due. Nothing sleeps until
a real Monday.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import time_machine

from newsletter.config import Settings
from newsletter.models import OutgoingMessage, SendResult
from newsletter.schedule.runner import Runner
from newsletter.send.providers.outbox import OutboxProvider
from newsletter.store import Store
from newsletter.store.runs import JobRun

SOFIA = ZoneInfo("Europe/Sofia")
HEADER = "email,name,locale,organisation,country,lists,tags,status,consent_at,consent_source\n"


def person(email: str, name: str, locale: str, country: str, list_name: str) -> str:
    """One CSV row of an active, consenting subscriber."""
    return (
        f"{email},{name},{locale},Org,{country},{list_name},,active,2026-01-05T10:00+02:00,form\n"
    )


MEMBERS_CSV = (
    HEADER
    + person("ana@members.example.org", "Ана Петрова", "bg", "BG", "members")
    + person("boris@members.example.org", "Борис Илиев", "en", "BG", "members")
)
PARTNERS_CSV = (
    HEADER
    + person("clara@partners.example.com", "Clara Pop", "ro", "RO", "partners")
    + person("dan@partners.example.com", "Dan Ionescu", "en", "RO", "partners")
)
SCHEDULE = [
    {"id": "gather", "job": "gather", "cron": "0 */6 * * *"},
    # 03:30 on Sunday vanishes on 2026-03-29 and happens twice on 2026-10-25 in Sofia
    {"id": "members-weekly", "job": "digest", "segment": "members", "cron": "30 3 * * sun"},
    {
        "id": "partners-weekly",
        "job": "digest",
        "segment": "partners",
        "cron": "0 9 * * mon",
        "timezone": "Europe/Bucharest",
    },
]


def local(*args: int) -> datetime:
    return datetime(*args, tzinfo=SOFIA)  # type: ignore[misc]


@pytest.fixture(name="build")
def build_fixture(
    make_config: Callable[..., Settings],
    tmp_path: Path,
    db_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> Callable[..., Settings]:
    """Settings for a scheduler test; keyword overrides replace top-level tables."""
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "schedule-test-key")
    (tmp_path / "news").mkdir(exist_ok=True)
    (tmp_path / "members.csv").write_text(MEMBERS_CSV, encoding="utf-8")
    (tmp_path / "partners.csv").write_text(PARTNERS_CSV, encoding="utf-8")

    def make(**overrides: Any) -> Settings:
        raw: dict[str, Any] = {
            "database": {"url": db_url},
            "sources": [{"name": "cluster-news", "kind": "folder", "path": "news", "lang": "bg"}],
            "lists": [
                {"name": "members", "file": "members.csv"},
                {"name": "partners", "file": "partners.csv"},
            ],
            "segments": [
                {
                    "name": "members",
                    "rules": [{"field": "lists", "op": "contains", "value": "members"}],
                },
                {
                    "name": "partners",
                    "rules": [{"field": "lists", "op": "contains", "value": "partners"}],
                    "timezone": "Europe/Bucharest",
                },
            ],
            "provider": {"name": "outbox", "path": "outbox"},
            "schedule": SCHEDULE,
        }
        raw.update(overrides)
        return make_config(**raw)

    return make


class Stores:
    """Opens stores for settings and closes them all at the end of a test."""

    def __init__(self) -> None:
        self.opened: list[Store] = []

    def __call__(self, settings: Settings) -> Store:
        store = Store.open(settings.database_url())
        self.opened.append(store)
        return store

    def close(self) -> None:
        for store in self.opened:
            store.close()


@pytest.fixture(name="opened")
def opened_fixture() -> Iterator[Stores]:
    """Opens stores for settings; closed at the end of the test."""
    stores = Stores()
    yield stores
    stores.close()


def write_news(folder: Path, when: datetime) -> None:
    slug = when.astimezone(SOFIA).strftime("%Y-%m-%d-%H%M")
    (folder / f"{slug}.bg.md").write_text(
        f'---\ntitle: "Новина {slug}"\ndate: {when.isoformat()}\nlang: bg\n---\nТекст {slug}.\n',
        encoding="utf-8",
    )


class Driver:
    """Moves the frozen clock from fire time to fire time and lets the scheduler catch up."""

    def __init__(self, runner: Runner, traveller: Any) -> None:
        self.runner = runner
        self.traveller = traveller

    @property
    def scheduler(self) -> Any:
        assert self.runner.scheduler is not None
        return self.runner.scheduler

    def next_run(self) -> datetime | None:
        times = [j.next_run_time for j in self.scheduler.get_jobs() if j.next_run_time]
        return min(times) if times else None

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until nothing is due at the frozen now and no run is queued or running."""
        deadline = time.monotonic() + timeout
        while True:
            # the executor counts a run before the job store moves the job on, so nothing
            # due (read first) and then idle means the scheduler has caught up
            nxt = self.next_run()
            due = nxt is not None and nxt <= datetime.now(UTC)
            if self.runner.executor.idle:
                if not due:
                    return
                self.scheduler.wakeup()
            assert time.monotonic() < deadline, "the scheduler did not catch up"
            time.sleep(0.005)

    def advance(self, when: datetime) -> None:
        self.traveller.move_to(when)
        self.settle()

    def run_until(
        self, end: datetime, news: list[datetime] | None = None, folder: Path | None = None
    ) -> None:
        """Step through every fire time up to ``end``; news files appear at their times."""
        pending = sorted(news or [])
        self.settle()
        while True:
            nxt = self.next_run()
            if pending and (nxt is None or pending[0] <= nxt) and pending[0] <= end:
                when = pending.pop(0)
                self.traveller.move_to(when)
                assert folder is not None
                write_news(folder, when)
                continue
            if nxt is None or nxt > end:
                break
            self.advance(nxt)
        self.advance(end)


def wait_for(check: Callable[[], object], timeout: float = 30.0, interval: float = 0.05) -> None:
    """Wait (real time) until ``check()`` is true."""
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(interval)


def runs_of(store: Store, job_id: str) -> list[JobRun]:
    return list(reversed(store.runs.history(job_id, limit=100)))


@contextmanager
def running(settings: Settings, store: Store, at: datetime, **parts: Any) -> Iterator[Driver]:
    """The scheduler started at ``at`` on a frozen clock, shut down when the block ends.

    ``parts`` go to the :class:`Runner` (``stop``, ``client``).
    """
    with time_machine.travel(at, tick=False) as traveller:
        runner = Runner(settings, store, **parts)
        runner.start()
        try:
            yield Driver(runner, traveller)
        finally:
            runner.shutdown()


def register(settings: Settings, store: Store, at: datetime) -> None:
    """Start and stop the scheduler at ``at``: its jobs are in the job store from then on."""
    with running(settings, store, at):
        pass


def start_and_settle(settings: Settings, store: Store, at: datetime) -> None:
    """Start the scheduler at ``at``, let it run what is due, stop it."""
    with running(settings, store, at) as driver:
        driver.settle()


def seven_members(tmp_path: Path) -> None:
    """Replace the members' list file with seven readers (several batches of two)."""
    people = "".join(
        person(f"reader{n}@members.example.org", f"Reader {n}", "bg", "BG", "members")
        for n in range(7)
    )
    (tmp_path / "members.csv").write_text(HEADER + people, encoding="utf-8")


def stopping_outbox(stop: threading.Event) -> type[OutboxProvider]:
    """An outbox that sets ``stop`` while its first batch is at the provider.

    What SIGTERM does mid-send; the digest notices within ``STOP_POLL`` (made short by the
    tests), long before the batch returns. A class, so the scheduler can build it from
    config once a test puts it in ``PROVIDERS``.
    """

    class StoppingOutbox(OutboxProvider):
        batches = 0

        async def send_batch(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
            results = await super().send_batch(messages)
            self.batches += 1
            stop.set()
            await asyncio.sleep(0.3)
            return results

    return StoppingOutbox


MONDAY_ONLY = [
    {"id": "members-weekly", "job": "digest", "segment": "members", "cron": "0 9 * * mon"}
]
