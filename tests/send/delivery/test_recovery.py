"""Recovery after a crash does not stall: rows held by a dead process come back at once.

- ``newsletter digest`` killed with SIGKILL mid-send (a real process, a real signal, the
  default ten-minute lease): the next ``digest`` finishes the edition, and through Resend
  (idempotency keys) nobody has it twice.
- A holder on this host whose pid now names another process (same pid, another start
  time) is gone; a killed, not yet reaped process (a zombie) is gone; a live one is not.
- ``editions resume`` of an edition whose ``digest`` died while planning plans and sends it.
- A holder on another host whose heartbeat stopped is taken for dead after the staleness
  limit (an injected clock), long before its lease; with a fresh heartbeat it is left be.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import cli, project

from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.send.holders import Holder, current_holder, holder_state, process_start, this_host
from newsletter.send.leases import STALE, LeaseKeeper
from newsletter.store import Store
from newsletter.store.tables import deliveries, variants
from send.delivery.fakeprovider import Kill, serve
from send.delivery.harness import NOW, rows, run, seed_edition, start

LEASE = timedelta(minutes=10)


def test_after_sigkill_mid_send_the_next_digest_finishes_the_edition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "recovery-test-key")
    cfg = project(tmp_path)
    with serve(latency=0.05) as fake:
        text = cfg.read_text(encoding="utf-8")
        outbox = '[provider]\nname = "outbox"\npath = "outbox"\n'
        assert outbox in text
        resend = f'[provider]\nname = "resend"\nbase_url = "{fake.base_url}"\nbatch_size = 3\n'
        cfg.write_text(text.replace(outbox, resend), encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'var' / 'newsletter.db'}"

        first = start(cfg, "digest", "--segment", "members", log=tmp_path / "first.log")
        # delivered by the provider, but the process dies before it hears so: its rows
        # stay claimed under its ten-minute lease
        fake.kill = Kill(first.popen.pid, at=3, when="after")
        assert first.popen.wait(timeout=120) == -signal.SIGKILL, first.output()
        assert fake.kill.fired.is_set()
        with Store.open(url) as store:
            (edition,) = store.editions.list()
            assert store.deliveries.counts(edition.id).get(DeliveryStatus.CLAIMED)

        again = run(cfg, "digest", "--segment", "members", log=tmp_path / "again.log")
        assert "took back" in again.output() or "gone" in again.output(), again.output()
        with Store.open(url) as store:
            assert store.editions.status(edition.id) is EditionStatus.FINISHED
        found = rows(url, edition.id)
        assert {status for _, status, _, _ in found} == {DeliveryStatus.SENT}
        # the dead process's batch went again under its key: recognised, not delivered twice
        assert fake.counts() == {address: 1 for address, _, _, _ in found}
        assert fake.replays > 0


def _claimed(db_url: str, holder: Holder) -> tuple[Store, int]:
    edition = seed_edition(db_url, 6)
    store = Store.open(db_url)
    store.deliveries.claim_batch(edition, "gone#1", 3, LEASE, NOW, holder=holder)
    return store, edition


def test_a_reused_pid_is_a_dead_holder_and_its_rows_come_back(db_url: str) -> None:
    me = current_holder()
    assert me.started is not None, "this test needs /proc"
    reused = Holder(me.host, me.pid, me.started + 1)  # same pid, a younger process
    assert holder_state(reused) is False
    assert holder_state(me) is True
    store, edition = _claimed(db_url, reused)
    try:
        keeper = LeaseKeeper(store, me, lease=LEASE, stale=STALE, clock=lambda: NOW)
        # a second later: the lease and the heartbeat are fresh, the holder is not there
        assert keeper.sweep(edition, NOW + timedelta(seconds=1), resend=True) == 3
        counts = store.deliveries.counts(edition)
        assert counts == {DeliveryStatus.QUEUED: 6}
    finally:
        store.close()


def test_a_live_holder_on_this_host_keeps_its_rows(db_url: str) -> None:
    me = current_holder()
    store, edition = _claimed(db_url, me)
    try:
        keeper = LeaseKeeper(store, me, lease=LEASE, stale=STALE, clock=lambda: NOW)
        assert keeper.sweep(edition, NOW + timedelta(seconds=1), resend=False) == 0
        assert store.deliveries.counts(edition)[DeliveryStatus.CLAIMED] == 3
    finally:
        store.close()


def test_a_killed_unreaped_process_is_dead_and_so_is_a_vanished_one() -> None:
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        started = process_start(child.pid)
        holder = Holder(this_host(), child.pid, started)
        assert started is not None and holder_state(holder) is True
        os.kill(child.pid, signal.SIGKILL)
        # not reaped yet: a zombie keeps its pid and start time, and is dead all the same
        deadline = time.monotonic() + 30
        while holder_state(holder) is not False:
            assert time.monotonic() < deadline, "the killed child never showed as dead"
            time.sleep(0.01)
    finally:
        child.kill()
        child.wait()
    assert holder_state(holder) is False  # reaped: no such pid
    # elsewhere nothing can be asked: the heartbeat decides
    assert holder_state(Holder("another-host/b00t/1", child.pid, started)) is None


def test_a_remote_holder_whose_heartbeat_stopped_loses_its_rows_in_a_minute(
    db_url: str,
) -> None:
    remote = Holder("worker-7.example.org/0a1b2c3d/4026531836", 4242, 123456)
    store, edition = _claimed(db_url, remote)
    try:
        me = current_holder()
        clock = NOW
        keeper = LeaseKeeper(store, me, lease=LEASE, stale=STALE, clock=lambda: clock)
        # it beats for a while: its rows stay its own, whatever the time
        for seconds in (20, 40, 60, 80):
            clock = NOW + timedelta(seconds=seconds)
            assert store.deliveries.heartbeat(["gone#1"], LEASE, clock) == 3
            assert keeper.sweep(edition, clock + timedelta(seconds=30), resend=False) == 0
        # then it stops; a minute later (its lease has nine minutes to go) the rows are
        # taken back, and without idempotency they become unknown
        last = clock
        assert keeper.sweep(edition, last + STALE - timedelta(seconds=1), resend=False) == 0
        assert keeper.sweep(edition, last + STALE + timedelta(seconds=1), resend=False) == 3
        assert store.deliveries.counts(edition) == {
            DeliveryStatus.UNKNOWN: 3,
            DeliveryStatus.QUEUED: 3,
        }
    finally:
        store.close()


def test_resume_of_an_edition_still_being_planned_plans_and_sends_it(tmp_path: Path) -> None:
    """A ``digest`` that died while planning leaves an edition ``planned`` with no rows
    and no variants; ``editions resume`` finishes the planning and sends it."""
    cfg = project(tmp_path)
    first = cli(cfg, "digest", "--segment", "members")
    assert first.returncode == 0, first.stderr
    outbox = tmp_path / "outbox"
    sent = {p.name for p in outbox.rglob("*.eml")}
    assert sent
    url = f"sqlite:///{tmp_path / 'var' / 'newsletter.db'}"
    with Store.open(url) as store:
        (edition,) = store.editions.list()
        total = sum(store.deliveries.counts(edition.id).values())
        locales = set(store.editions.variants(edition.id))
        # back to the state a crash during planning leaves
        with store.engine.begin() as conn:
            conn.execute(sa.delete(deliveries).where(deliveries.c.edition_id == edition.id))
            conn.execute(sa.delete(variants).where(variants.c.edition_id == edition.id))
        store.editions.set_status(edition.id, EditionStatus.PLANNED, NOW)
    shutil.rmtree(outbox)

    resumed = cli(cfg, "editions", "resume", str(edition.id))
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert "finished" in resumed.stdout, resumed.stdout
    with Store.open(url) as store:
        assert store.editions.status(edition.id) is EditionStatus.FINISHED
        assert store.deliveries.counts(edition.id) == {DeliveryStatus.SENT: total}
        assert set(store.editions.variants(edition.id)) == locales
    assert {p.name for p in outbox.rglob("*.eml")} == sent
