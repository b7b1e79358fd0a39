"""Four worker processes share one edition of 20,000 on PostgreSQL: nobody twice, nobody
missed. They are started while the edition is paused and released together, so all four
really compete for the same rows; SIGTERM then stops each cleanly.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from newsletter.models import DeliveryStatus, EditionStatus
from newsletter.store import Store
from send.delivery.fakeprovider import serve
from send.delivery.harness import NOW, counts, rows, seed_edition, start, write_config

PG_URL = os.environ.get("NEWSLETTER_TEST_DATABASE_URL")
RECIPIENTS = 20_000
WORKERS = 4

pytestmark = pytest.mark.skipif(not PG_URL, reason="NEWSLETTER_TEST_DATABASE_URL is not set")


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A new, empty PostgreSQL database for this test only, dropped afterwards."""
    assert PG_URL is not None
    server = sa.make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"nl_workers_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(server.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _connections(url: str) -> int:
    """Sessions open on this database (each idle worker holds a pooled one)."""
    target = sa.make_url(url)
    engine = sa.create_engine(target.set(database="postgres"))
    try:
        with engine.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :db"),
                    {"db": target.database},
                ).scalar_one()
            )
    finally:
        engine.dispose()


def test_four_workers_on_postgres_send_20000_exactly_once(tmp_path: Path, pg_url: str) -> None:
    edition = seed_edition(pg_url, RECIPIENTS)
    with Store.open(pg_url) as store:
        store.editions.set_status(edition, EditionStatus.PAUSED, NOW)
    with serve(latency=0.02) as fake:
        config = write_config(
            tmp_path,
            pg_url.replace("postgresql+psycopg://", "postgresql://"),
            {"name": "postmark", "base_url": fake.base_url, "batch_size": 100, "concurrency": 2},
        )
        procs = [
            start(config, "worker", "--poll", "0.1", "--lease", "60", log=tmp_path / f"w{n}.log")
            for n in range(WORKERS)
        ]
        try:
            deadline = time.monotonic() + 60
            while _connections(pg_url) < WORKERS:
                assert time.monotonic() < deadline, "workers did not come up"
                for p in procs:
                    assert p.popen.poll() is None, p.output()
                time.sleep(0.1)
            # all four are polling: release the edition to them at once
            with Store.open(pg_url) as store:
                store.editions.set_status(edition, EditionStatus.SENDING, NOW)
            deadline = time.monotonic() + 180
            while counts(pg_url, edition).get(DeliveryStatus.SENT, 0) < RECIPIENTS:
                assert time.monotonic() < deadline, counts(pg_url, edition)
                time.sleep(0.2)
        finally:
            for p in procs:
                p.popen.send_signal(signal.SIGTERM)
            codes = [p.popen.wait(timeout=30) for p in procs]
        assert codes == [0] * WORKERS, [p.output() for p in procs]

        found = rows(pg_url, edition)
        assert Counter(s for _, s, _, _ in found) == {DeliveryStatus.SENT: RECIPIENTS}
        delivered, ids = fake.counts(), fake.ids()
        assert len(delivered) == RECIPIENTS and set(delivered.values()) == {1}
        assert all(message_id in ids[address] for address, _, message_id, _ in found)
        # the claim tokens are "host:pid#n": every worker took its share of the batches
        pids = Counter(batch.split(":")[1].split("#")[0] for _, _, _, batch in found if batch)
        assert {str(p.popen.pid) for p in procs} == set(pids), pids
        with Store.open(pg_url) as store:
            assert store.editions.status(edition) is EditionStatus.FINISHED
