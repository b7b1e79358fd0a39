"""`newsletter run` as a real process: one per database, and SIGTERM mid-send loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import time_machine

from newsletter.config import load
from newsletter.errors import SchedulerError
from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.runner import Runner
from newsletter.store import Store
from newsletter.store.runs import RunStatus

ROOT = Path(__file__).resolve().parent.parent

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

# the provider of the child process: the outbox, slowed down (so a signal lands mid-send)
# and recording every message it is handed, so a duplicate cannot hide behind a rewrite
CHILD = """\
import asyncio, os, sys
from newsletter.providers import PROVIDERS
from newsletter.providers.outbox import OutboxProvider

class RecordingOutbox(OutboxProvider):
    async def send_batch(self, messages):
        results = await super().send_batch(messages)
        with open(os.environ["RECORD_LOG"], "a", encoding="utf-8") as fh:
            fh.writelines(f"{m.delivery_id} {m.to_email}\\n" for m in messages)
        await asyncio.sleep(float(os.environ.get("BATCH_PAUSE", "0")))
        return results

PROVIDERS["outbox"] = RecordingOutbox
from newsletter.cli import main
sys.argv[0] = "newsletter"
main()
"""

READERS = 40


@pytest.fixture
def setup(tmp_path: Path, db_url: str) -> Iterator[Callable[..., subprocess.Popen[str]]]:
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
    children: list[subprocess.Popen[str]] = []

    def start(pause: float = 0.0) -> subprocess.Popen[str]:
        env = {
            **os.environ,
            "NEWSLETTER_SECRET_KEY": "process-test-key",
            "RECORD_LOG": str(tmp_path / "sent.log"),
            "BATCH_PAUSE": str(pause),
        }
        child = subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "child.py"),
                "-c",
                str(tmp_path / "config.toml"),
                "run",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        children.append(child)
        return child

    yield start
    for child in children:
        if child.poll() is None:
            child.kill()
        child.communicate(timeout=10)


def wait_for(check: Callable[[], object], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def holder(store: Store) -> str | None:
    lock = store.locks.get("scheduler")
    return None if lock is None else lock.holder


def test_a_second_scheduler_process_is_refused_and_a_crashed_one_does_not_block(
    setup: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    settings = load(tmp_path / "config.toml")
    with Store.open(settings.database_url()) as store:
        first = setup()
        wait_for(lambda: holder(store))
        assert f":{first.pid}:" in (holder(store) or "")
        second = setup()
        _, err = second.communicate(timeout=30)
        assert second.returncode == 1
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: another scheduler is running (")
        assert f":{first.pid}:" in lines[0] and "last heartbeat" in lines[0]
        assert first.poll() is None
        # a crash (SIGKILL) leaves the lock behind: refused until it lapses (lock_ttl 3s)
        first.kill()
        first.wait(timeout=10)
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


def test_sigterm_during_a_send_loses_nothing(
    setup: Callable[..., subprocess.Popen[str]], tmp_path: Path
) -> None:
    settings = load(tmp_path / "config.toml")
    log = tmp_path / "sent.log"
    real_now = datetime.now(UTC)
    (tmp_path / "news" / "item.bg.md").write_text(
        f'---\ntitle: "Новина"\ndate: {(real_now - timedelta(days=1)).isoformat()}\n---\nТекст.\n',
        encoding="utf-8",
    )
    with Store.open(settings.database_url()) as store:
        # the jobs were registered 90 minutes ago: an hourly digest fell due since, within
        # the grace period, so the child runs it as soon as it starts
        with time_machine.travel(real_now - timedelta(minutes=90), tick=False):
            runner = Runner(settings, store)
            runner.start()
            runner.shutdown()
        child = setup(pause=0.25)
        wait_for(lambda: log.exists() and log.read_text().count("\n") >= 5)
        child.send_signal(signal.SIGTERM)
        _, err = child.communicate(timeout=30)
        assert child.returncode == 0, err
        assert "SIGTERM: finishing the current batch, then stopping" in err
        (edition,) = store.editions.list(segment="members")
        counts = store.deliveries.counts(edition.id)
        sent = counts.get(DeliveryStatus.SENT, 0)
        # whole batches were recorded; none is left claimed; the rest waits, queued
        assert sent % 5 == 0 and 5 <= sent < READERS
        assert counts == {DeliveryStatus.SENT: sent, DeliveryStatus.QUEUED: READERS - sent}
        assert len(log.read_text().splitlines()) == sent
        (run,) = store.runs.history("members-hourly")
        assert run.status is RunStatus.INTERRUPTED

        again = setup()
        wait_for(
            lambda: (
                store.editions.get(edition.id).status is EditionStatus.FINISHED
                and store.runs.latest()["members-hourly"].status is RunStatus.DONE
            )
        )
        again.send_signal(signal.SIGTERM)
        _, err = again.communicate(timeout=30)
        assert again.returncode == 0, err
        assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: READERS}
        handed = log.read_text().splitlines()
        # every reader exactly once across both processes
        assert len(handed) == READERS == len({line.split()[1] for line in handed})
        assert len(list((tmp_path / "outbox").rglob("*.eml"))) == READERS
        statuses = [r.status for r in reversed(store.runs.history("members-hourly"))]
        assert statuses == [RunStatus.RESUMED, RunStatus.DONE]
        assert len(store.editions.list(segment="members")) == 1
        # a clean stop releases the lock: the next start need not wait
        assert holder(store) is None
