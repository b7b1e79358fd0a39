"""One in five requests fails (429 with Retry-After, 500, connection reset, read timeout):
every reader still gets the edition exactly once, and nobody gets it twice unasked.

- Resend: its fake's read timeouts come *after* it delivered the batch (the ambiguous
  case). The same batch goes again under the same Idempotency-Key and is recognised, so
  everyone has it exactly once with no operator step.
- Postmark cannot recognise a repeat. Its fake resets or stalls *before* taking a batch,
  but the worker cannot tell that from a lost answer: those rows end ``unknown``, never
  re-sent by the worker, and ``editions resume --resend-unknown`` asks Postmark's search,
  finds none of them and sends them; then everyone has it exactly once.
- Postmark, answers lost after acceptance: a second fake takes chosen batches and answers
  only after the client's timeout. Those readers have the message but their rows are
  ``unknown`` (``editions show`` says so), and the worker never sends them again; the
  operator's ``--resend-unknown`` finds them in Postmark's search and marks them sent, so
  nobody gets a second copy.
"""

from __future__ import annotations

from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from typer.testing import CliRunner

from newsletter.cli import app
from newsletter.models import DeliveryStatus
from send.delivery.fakeprovider import FAULTS, FakeProvider, serve
from send.delivery.harness import Proc, rows, run, sqlite_edition

RECIPIENTS = 1000
#: the edition the late-answering fake gets, and the requests it takes but answers late
LATE_RECIPIENTS = 200
LATE_REQUESTS = {2, 4}
BATCH = 20
#: the client's timeout, and how long a "timeout" fault keeps the fake silent (longer)
CLIENT_TIMEOUT = 3.0
STALL = CLIENT_TIMEOUT + 1.0
WORKER = ("worker", "--once", "--lease", "5", "--retry-base", "0.2", "--max-attempts", "10")
RESEND_UNKNOWN = ("editions", "resume", "--resend-unknown", "--settle", "0")
SENT, UNKNOWN = DeliveryStatus.SENT, DeliveryStatus.UNKNOWN


@dataclass(frozen=True)
class Setup:
    """One provider's edition: its store, its config, the fake it sends to."""

    url: str
    edition: int
    config: Path
    fake: FakeProvider


def _prepare(provider: str, folder: Path, fake: FakeProvider, n: int) -> Setup:
    """A seeded edition of ``n`` readers and a config pointing ``provider`` at ``fake``."""
    url, edition, config = sqlite_edition(
        folder,
        n,
        {
            "name": provider,
            "base_url": fake.base_url,
            # generous: a loaded CI machine must not turn a healthy answer into a lost one
            "timeout": CLIENT_TIMEOUT,
            "batch_size": BATCH,
            "concurrency": 3,
        },
    )
    return Setup(url, edition, config, fake)


def _start(pool: ThreadPoolExecutor, s: Setup, *args: str) -> Future[Proc]:
    """``newsletter ARGS`` for setup ``s`` in a process of its own, run from ``pool``."""
    return pool.submit(run, s.config, *args, log=s.config.parent / f"{args[0]}-{args[1]}.log")


def _check_sent_once(s: Setup, n: int) -> None:
    """Every row sent, every reader has exactly one message, the one the row names."""
    found = rows(s.url, s.edition)
    assert Counter(status for _, status, _, _ in found) == {SENT: n}
    delivered, ids = s.fake.counts(), s.fake.ids()
    twice = {a: k for a, k in delivered.items() if k != 1}
    assert len(delivered) == n and not twice, list(twice.items())[:5]
    for address, _, message_id, _ in found:
        assert message_id in ids[address]


def _check_unknown_never_taken(s: Setup) -> None:
    """Postmark whose fake failed before taking batches: sent rows delivered once, unknown
    rows not at all (the worker did not send them again)."""
    found = rows(s.url, s.edition)
    statuses = Counter(status for _, status, _, _ in found)
    assert set(statuses) == {SENT, UNKNOWN}, statuses
    delivered, ids = s.fake.counts(), s.fake.ids()
    for address, status, message_id, _ in found:
        if status is SENT:
            assert delivered[address] == 1 and message_id in ids[address], address
        else:
            assert delivered[address] == 0, address


def _late_readers(fake: FakeProvider) -> set[str]:
    with fake.lock:
        return {d.to for d in fake.delivered if d.request in LATE_REQUESTS}


def _check_unknown_after_acceptance(s: Setup) -> None:
    """The late batches' readers have the message once, and their rows are unknown."""
    late = _late_readers(s.fake)
    assert len(late) == BATCH * len(LATE_REQUESTS)
    found = rows(s.url, s.edition)
    assert {a for a, st, _, _ in found if st is UNKNOWN} == late
    assert {a for a, st, _, _ in found if st is SENT} == {a for a, _, _, _ in found} - late
    delivered = s.fake.counts()
    assert len(delivered) == LATE_RECIPIENTS and set(delivered.values()) == {1}


def test_faults_at_20_percent_still_deliver_everyone_exactly_once(tmp_path: Path) -> None:
    with (
        serve(fault_rate=0.2, retry_after=0.3, seed=7, stall=STALL) as resend_fake,
        serve(
            fault_rate=0.2, retry_after=0.3, seed=8, stall=STALL, timeout_after_processing=False
        ) as pm_fake,
        serve(
            stall_requests=LATE_REQUESTS, stall=STALL, timeout_after_processing=True
        ) as late_fake,
    ):
        # seeding migrates a store: in this thread (Alembic's context is process-global)
        resend = _prepare("resend", tmp_path / "resend", resend_fake, RECIPIENTS)
        postmark = _prepare("postmark", tmp_path / "postmark", pm_fake, RECIPIENTS)
        late = _prepare("postmark", tmp_path / "late", late_fake, LATE_RECIPIENTS)
        with ThreadPoolExecutor(3) as pool:
            setups = {"resend": resend, "postmark": postmark, "late": late}
            jobs = {name: _start(pool, setup, *WORKER) for name, setup in setups.items()}
            workers = {name: job.result(timeout=180) for name, job in jobs.items()}
            for name, faulty in (("resend", resend), ("postmark", postmark)):
                # every kind of fault really happened, and throttling slowed the worker down
                outcomes = faulty.fake.outcomes()
                assert all(outcomes[f] > 0 for f in FAULTS), (name, outcomes)
                assert "throttled 0x" not in workers[name].output(), workers[name].output()
            # Resend's timeouts hit after delivery: the repeats were recognised, not re-sent
            _check_sent_once(resend, RECIPIENTS)
            assert resend_fake.replays > 0
            _check_unknown_never_taken(postmark)
            _check_unknown_after_acceptance(late)

            # the operator resends the unknown rows once the provider is healthy again
            pm_fake.fault_rate = 0.0
            resent = _start(pool, postmark, *RESEND_UNKNOWN, str(postmark.edition))
            # meanwhile `editions show` (in this process: it only reads) reports the others
            args = ["-c", str(late.config), "editions", "show", str(late.edition)]
            shown = CliRunner().invoke(app, args, env={"COLUMNS": "250"})
            assert shown.exit_code == 0, shown.output
            unknown = BATCH * len(LATE_REQUESTS)
            assert f"{unknown} row(s) unknown" in shown.output, shown.output
            assert f"{unknown} × postmark: no answer from" in shown.output, shown.output
            assert "it may have been accepted, so it is not sent again" in shown.output
            late_resent = _start(pool, late, *RESEND_UNKNOWN, str(late.edition))
            resent.result(timeout=180)
            late_resent.result(timeout=180)
        _check_sent_once(postmark, RECIPIENTS)
        # the late batches' readers were found at the provider: nobody has a second copy
        _check_sent_once(late, LATE_RECIPIENTS)
        found_late = f"{BATCH * len(LATE_REQUESTS)} accepted (now sent), 0 never arrived"
        assert found_late in late_resent.result().output()
