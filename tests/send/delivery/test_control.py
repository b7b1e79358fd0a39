"""Pause, resume and cancel an edition while a worker process is sending it (SQLite), and
stop a worker with SIGTERM mid-send: in-flight batches are recorded, nothing is lost.
"""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from pathlib import Path

from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.store import Store
from send.delivery.fakeprovider import FakeProvider, serve
from send.delivery.harness import NOW, counts, rows, run, seed_edition, start, write_config

RECIPIENTS = 400


def _wait(what: str, test: object, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not test():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def _settled(url: str, edition: int) -> bool:
    """No row is held by a worker (the batches in flight were recorded)."""
    return not counts(url, edition).get(DeliveryStatus.CLAIMED)


def _sent(url: str, edition: int) -> int:
    return counts(url, edition).get(DeliveryStatus.SENT, 0)


def _check_once_each(url: str, edition: int, fake: FakeProvider, period: str) -> None:
    found = rows(url, edition)
    delivered, ids = fake.counts(period), fake.ids(period)
    sent = [(a, m) for a, s, m, _ in found if s is DeliveryStatus.SENT]
    assert set(delivered.values()) <= {1}, "someone got the edition twice"
    assert {a for a, _ in sent} == set(delivered)
    assert all(m in ids[a] for a, m in sent)


def test_pause_then_resume_sends_only_the_rest_and_cancel_sends_nothing_more(
    tmp_path: Path,
) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    first = seed_edition(url, RECIPIENTS, period="2026-W48")
    second = seed_edition(url, RECIPIENTS, period="2026-W49")
    with Store.open(url) as store:  # held back until the first part is done
        store.editions.set_status(second, EditionStatus.PAUSED, NOW)
    with serve(latency=0.01) as fake:
        # a paced worker, so there is time to act while it is sending
        config = write_config(
            tmp_path,
            url,
            {
                "name": "postmark",
                "base_url": fake.base_url,
                "batch_size": 10,
                "concurrency": 2,
                "messages_per_second": 50,
            },
        )
        # the fake holds every request after the third until the test lets it go, so the
        # pause lands mid-send however slowly a loaded machine starts the CLI
        fake.hold, fake.hold_after = threading.Event(), 3
        worker = start(config, "worker", "--poll", "0.1", "--lease", "60", log=tmp_path / "w.log")
        try:
            # pause the first edition mid-send
            _wait("the worker is sending", lambda: _sent(url, first) >= 30)
            run(config, "editions", "pause", str(first), log=tmp_path / "pause.log")
            fake.hold.set()
            _wait("in-flight batches are recorded", lambda: _settled(url, first))
            paused_at = _sent(url, first)
            assert 0 < paused_at < RECIPIENTS
            assert sum(fake.counts("2026-W48").values()) == paused_at
            time.sleep(1.0)  # a worker that ignored the pause would go on sending here
            assert _sent(url, first) == paused_at
            assert sum(fake.counts("2026-W48").values()) == paused_at

            # resume in the foreground (the worker joins in): only the rest goes out
            res = run(config, "editions", "resume", str(first), log=tmp_path / "resume.log")
            assert "finished" in res.output()
            assert counts(url, first) == {DeliveryStatus.SENT: RECIPIENTS}
            assert sum(fake.counts("2026-W48").values()) == RECIPIENTS
            _check_once_each(url, first, fake, "2026-W48")

            # the worker takes up the second edition; cancel it mid-send
            fake.hold, fake.hold_after = threading.Event(), len(fake.log) + 3
            with Store.open(url) as store:
                store.editions.set_status(second, EditionStatus.SENDING, NOW)
            _wait("the second edition is sending", lambda: _sent(url, second) >= 30)
            out = run(config, "editions", "cancel", str(second), log=tmp_path / "cancel.log")
            fake.hold.set()
            assert "cancelled" in out.output()
            _wait("in-flight batches are recorded", lambda: _settled(url, second))
            time.sleep(1.0)
            final = counts(url, second)
            sent = final.get(DeliveryStatus.SENT, 0)
            assert set(final) == {DeliveryStatus.SENT, DeliveryStatus.SKIPPED}, final
            assert final[DeliveryStatus.SKIPPED] == RECIPIENTS - sent > 0
            assert sum(fake.counts("2026-W49").values()) == sent
            _check_once_each(url, second, fake, "2026-W49")
            shown = run(config, "editions", "show", str(second), log=tmp_path / "show.log")
            assert f"{RECIPIENTS - sent} × cancelled" in shown.output()
            assert "cancelled" in shown.output().splitlines()[0]
        finally:
            worker.popen.send_signal(signal.SIGTERM)
            code = worker.popen.wait(timeout=30)
        assert code == 0, worker.output()


def test_sigterm_stops_a_worker_after_recording_its_batches_in_flight(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    edition = seed_edition(url, 300)
    # slow answers: when the signal comes, batches are certainly in flight
    with serve(latency=0.4) as fake:
        config = write_config(
            tmp_path,
            url,
            {"name": "resend", "base_url": fake.base_url, "batch_size": 10, "concurrency": 3},
        )
        worker = start(config, "worker", "--lease", "60", log=tmp_path / "w.log")
        _wait("a request arrives", lambda: len(fake.log) >= 2)
        worker.popen.send_signal(signal.SIGTERM)
        code = worker.popen.wait(timeout=30)
        assert code == 0, worker.output()
        assert "stopped by signal" in worker.output()

    found = Counter(s for _, s, _, _ in rows(url, edition))
    # nothing is left claimed: what was in flight got recorded as sent
    assert DeliveryStatus.CLAIMED not in found
    assert 0 < found[DeliveryStatus.SENT] == sum(fake.counts().values())
    assert found[DeliveryStatus.QUEUED] == 300 - found[DeliveryStatus.SENT]
