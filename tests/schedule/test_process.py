"""`newsletter run` as a real process: one per database; SIGTERM mid-send loses nothing,
starts no other batch and ends a wait for retries at once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from newsletter.config import Settings, load
from newsletter.errors import SchedulerError
from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.schedule.runner import Runner
from newsletter.store import Store
from newsletter.store.runs import RunStatus
from schedule.support import register, wait_for

ROOT = Path(__file__).resolve().parents[2]

CONFIG = """\
[organisation]
name = "Test Energy Cluster"
address = "1 Example Street, 9000 Varna, Bulgaria"
website = "https://cluster.example.org"
from_email = "news@cluster.example.org"

[database]
url = "{db_url}"
url_env = "NEWSLETTER_TEST_UNUSED_URL"

[paths]
templates = "{templates}"

[locales]
default = "bg"
available = ["bg", "en"]

[scheduler]
lock_ttl = "3s"

[provider]
name = "outbox"
path = "outbox"
batch_size = 5

[[sources]]
name = "cluster-news"
kind = "folder"
path = "news"
lang = "bg"

[[lists]]
name = "members"
file = "members.csv"

[[segments]]
name = "members"
rules = [{{ field = "lists", op = "contains", value = "members" }}]

[[schedule]]
id = "members-hourly"
job = "digest"
segment = "members"
cron = "0 * * * *"
"""

# the provider of the child process: the outbox, recording every message it is handed (so
# a duplicate cannot hide behind a rewrite); with BATCH_GATE each batch stays at the
# "provider" until that file exists, so a signal lands mid-send; with BUSY every message
# is answered "try again later"
CHILD = """\
import asyncio, os, sys
from newsletter.models import ResultStatus, SendResult
from newsletter.send.providers import PROVIDERS
from newsletter.send.providers.outbox import OutboxProvider

class RecordingOutbox(OutboxProvider):
    async def send_batch(self, messages):
        if os.environ.get("BUSY"):
            results = [SendResult(m.delivery_id, ResultStatus.RETRYABLE) for m in messages]
        else:
            results = await super().send_batch(messages)
        with open(os.environ["RECORD_LOG"], "a", encoding="utf-8") as fh:
            fh.writelines(f"{m.delivery_id} {m.to_email}\\n" for m in messages)
        gate = os.environ.get("BATCH_GATE")
        while gate and not os.path.exists(gate):
            await asyncio.sleep(0.02)
        return results

PROVIDERS["outbox"] = RecordingOutbox
from newsletter.cli import main
sys.argv[0] = "newsletter"
main()
"""

READERS = 40


@dataclass
class Child:
    """A `newsletter run` child process; its stderr goes to a file the test can read."""

    proc: subprocess.Popen[str]
    err_path: Path

    def err(self) -> str:
        """What the child has logged so far."""
        return self.err_path.read_text(encoding="utf-8")

    def finish(self, timeout: float = 30.0) -> str:
        """Wait for the child to exit; its whole stderr."""
        self.proc.wait(timeout=timeout)
        return self.err()


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[Callable[..., Child]]:
    """A config on disk and a way to start `newsletter run` children on it."""
    (tmp_path / "config.toml").write_text(
        CONFIG.format(db_url=db_url, templates=ROOT / "templates"), encoding="utf-8"
    )
    (tmp_path / "news").mkdir()
    rows = "".join(
        f"reader{n}@members.example.org,Reader {n},bg,Org,BG,members,,active,"
        "2026-01-05T10:00+02:00,form\n"
        for n in range(READERS)
    )
    (tmp_path / "members.csv").write_text(
        "email,name,locale,organisation,country,lists,tags,status,consent_at,consent_source\n"
        + rows,
        encoding="utf-8",
    )
    (tmp_path / "child.py").write_text(CHILD, encoding="utf-8")
    children: list[Child] = []

    def start(gate: Path | None = None, busy: bool = False) -> Child:
        env = {
            **os.environ,
            "NEWSLETTER_SECRET_KEY": "process-test-key",
            "RECORD_LOG": str(tmp_path / "sent.log"),
            "BATCH_GATE": str(gate or ""),
            "BUSY": "1" if busy else "",
            # log lines unwrapped, whatever terminal the tests run in
            "COLUMNS": "200",
        }
        err_path = tmp_path / f"child{len(children)}.err"
        with err_path.open("w", encoding="utf-8") as err:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    str(tmp_path / "child.py"),
                    "-c",
                    str(tmp_path / "config.toml"),
                    "run",
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=err,
                text=True,
            )
        child = Child(proc, err_path)
        children.append(child)
        return child

    yield start
    for child in children:
        if child.proc.poll() is None:
            child.proc.kill()
        child.proc.wait(timeout=10)


def holder(store: Store) -> str | None:
    lock = store.locks.get("scheduler")
    return None if lock is None else lock.holder


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def due_now(settings: Settings, store: Store, tmp_path: Path) -> datetime:
    """A news item from yesterday and the jobs registered 90 minutes ago.

    The hourly digest fell due since, within the grace period: a child runs it at once.
    """
    real_now = datetime.now(UTC)
    (tmp_path / "news" / "item.bg.md").write_text(
        f'---\ntitle: "Новина"\ndate: {(real_now - timedelta(days=1)).isoformat()}\n---\nТекст.\n',
        encoding="utf-8",
    )
    register(settings, store, real_now - timedelta(minutes=90))
    return real_now


def test_a_second_scheduler_process_is_refused_and_a_crashed_one_does_not_block(
    setup: Callable[..., Child], tmp_path: Path
) -> None:
    settings = load(tmp_path / "config.toml")
    with Store.open(settings.database_url()) as store:
        first = setup()
        wait_for(lambda: holder(store))
        assert f":{first.proc.pid}:" in (holder(store) or "")
        second = setup()
        err = second.finish()
        assert second.proc.returncode == 1
        (line,) = err.strip().splitlines()
        assert line.startswith("error: another scheduler is running (")
        assert f":{first.proc.pid}:" in line and "last heartbeat" in line
        assert first.proc.poll() is None
        # a crash (SIGKILL) leaves the lock behind: refused until it lapses (lock_ttl 3s)
        first.proc.kill()
        first.proc.wait(timeout=10)
        runner = Runner(settings, store)
        with pytest.raises(SchedulerError, match="another scheduler is running"):
            runner.start()
        wait_for(lambda: not store.locks.get("scheduler").alive(datetime.now(UTC)))  # type: ignore[union-attr]
        runner.start()
        try:
            assert holder(store) == runner.holder
        finally:
            runner.shutdown()
        assert holder(store) is None


def test_sigterm_during_a_send_loses_nothing_and_starts_no_other_batch(
    setup: Callable[..., Child], tmp_path: Path
) -> None:
    settings = load(tmp_path / "config.toml")
    log = tmp_path / "sent.log"
    gate = tmp_path / "gate"
    with Store.open(settings.database_url()) as store:
        due_now(settings, store, tmp_path)
        child = setup(gate=gate)
        # the first batch is at the provider, held there until the gate opens
        wait_for(lambda: len(lines(log)) >= 5)
        child.proc.send_signal(signal.SIGTERM)
        # the send has seen the stop: from here on no batch may start
        wait_for(lambda: "stop requested: no new batch is started" in child.err())
        assert len(lines(log)) == 5
        gate.touch()
        err = child.finish()
        assert child.proc.returncode == 0, err
        assert "SIGTERM: finishing the current batch, then stopping" in err
        (edition,) = store.editions.list(segment="members")
        # the batch in flight was recorded, no other one went out, none is left claimed
        assert store.deliveries.counts(edition.id) == {
            DeliveryStatus.SENT: 5,
            DeliveryStatus.QUEUED: READERS - 5,
        }
        assert len(lines(log)) == 5
        (run,) = store.runs.history("members-hourly")
        assert run.status is RunStatus.INTERRUPTED

        again = setup()
        wait_for(
            lambda: (
                store.editions.get(edition.id).status is EditionStatus.FINISHED
                and store.runs.latest()["members-hourly"].status is RunStatus.DONE
            )
        )
        again.proc.send_signal(signal.SIGTERM)
        err = again.finish()
        assert again.proc.returncode == 0, err
        assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: READERS}
        handed = lines(log)
        # every reader exactly once across both processes
        assert len(handed) == READERS == len({line.split()[1] for line in handed})
        assert len(list((tmp_path / "outbox").rglob("*.eml"))) == READERS
        statuses = [r.status for r in reversed(store.runs.history("members-hourly"))]
        assert statuses == [RunStatus.RESUMED, RunStatus.DONE]
        assert len(store.editions.list(segment="members")) == 1
        # a clean stop releases the lock: the next start need not wait
        assert holder(store) is None


def test_sigterm_during_a_wait_for_retries_stops_at_once(
    setup: Callable[..., Child], tmp_path: Path
) -> None:
    settings = load(tmp_path / "config.toml")
    log = tmp_path / "sent.log"
    with Store.open(settings.database_url()) as store:
        due_now(settings, store, tmp_path)
        child = setup(busy=True)

        def all_waiting() -> bool:
            editions = store.editions.list(segment="members")
            counts = store.deliveries.counts(editions[0].id) if editions else {}
            return counts == {DeliveryStatus.RETRY: READERS}

        # every row was tried and waits ~30 s for its retry, which the send waits for
        wait_for(all_waiting)
        (edition,) = store.editions.list(segment="members")
        retry_at = store.deliveries.next_retry_at(edition.id)
        assert retry_at is not None and retry_at > datetime.now(UTC) + timedelta(seconds=20)
        signalled = time.monotonic()
        child.proc.send_signal(signal.SIGTERM)
        err = child.finish(timeout=60)
        # generous: only a stop that waits for the retry (20 s and more away) fails this
        assert time.monotonic() - signalled < 20
        assert child.proc.returncode == 0, err
        assert "stop requested: no new batch is started" in err
        assert store.deliveries.counts(edition.id) == {DeliveryStatus.RETRY: READERS}
        assert len(lines(log)) == READERS  # tried once each, nothing after the signal
        (run,) = store.runs.history("members-hourly")
        assert run.status is RunStatus.INTERRUPTED
        assert "stopped: continues on the next start" in run.detail
