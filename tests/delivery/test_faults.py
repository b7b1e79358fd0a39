"""One in five requests fails (429 with Retry-After, 500, connection reset, read timeout):
every reader still gets the edition exactly once.

Resend's read timeouts come *after* the provider delivered the batch (the ambiguous
case): the same batch goes again under the same Idempotency-Key and is recognised.
Postmark cannot recognise a repeat, so its fake stalls *before* taking the batch: a
timeout after Postmark took a batch is a known limit (see the delivery README section).
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from delivery.fakeprovider import FAULTS, FakeProvider, serve
from delivery.harness import rows, run, seed_edition, write_config
from newsletter.models import DeliveryStatus

RECIPIENTS = 1000


def _prepare(provider: str, folder: Path, fake: FakeProvider) -> tuple[str, int, Path]:
    """A seeded edition and a config pointing ``provider`` at ``fake``."""
    folder.mkdir()
    url = f"sqlite:///{folder / 'store.db'}"
    edition = seed_edition(url, RECIPIENTS)
    config = write_config(
        folder,
        url,
        {
            "name": provider,
            "base_url": fake.base_url,
            "timeout": 1.0,
            "batch_size": 20,
            "concurrency": 3,
        },
    )
    return url, edition, config


def test_faults_at_20_percent_still_deliver_everyone_exactly_once(tmp_path: Path) -> None:
    with (
        serve(fault_rate=0.2, retry_after=0.3, seed=7) as resend_fake,
        serve(fault_rate=0.2, retry_after=0.3, seed=8, timeout_after_processing=False) as pm_fake,
    ):
        # seeding migrates a store: in this thread (Alembic's context is process-global)
        setups = {
            "resend": (*_prepare("resend", tmp_path / "resend", resend_fake), resend_fake),
            "postmark": (*_prepare("postmark", tmp_path / "postmark", pm_fake), pm_fake),
        }
        args = ("worker", "--once", "--lease", "5", "--retry-base", "0.2", "--max-attempts", "10")
        with ThreadPoolExecutor(2) as pool:
            jobs = {
                name: pool.submit(run, config, *args, log=config.parent / "worker.log")
                for name, (_, _, config, _) in setups.items()
            }
            outputs = {name: job.result(timeout=180).output() for name, job in jobs.items()}

        for name, (url, edition, _, fake) in setups.items():
            found = rows(url, edition)
            statuses = Counter(status for _, status, _, _ in found)
            assert statuses == {DeliveryStatus.SENT: RECIPIENTS}, (name, statuses)
            delivered, ids = fake.counts(), fake.ids()
            assert len(delivered) == RECIPIENTS
            twice = {a: n for a, n in delivered.items() if n != 1}
            assert not twice, f"{name}: delivered more than once: {list(twice.items())[:5]}"
            for address, _, message_id, _ in found:
                assert message_id in ids[address]
            # every kind of fault really happened, and throttling slowed the worker down
            outcomes = fake.outcomes()
            assert all(outcomes[f] > 0 for f in FAULTS), (name, outcomes)
            assert "throttled 0x" not in outputs[name], outputs[name]
        # Resend's timeouts hit after delivery: the repeats were recognised, not re-sent
        assert resend_fake.replays > 0
