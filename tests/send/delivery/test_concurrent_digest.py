"""Two ``newsletter digest`` processes for the same segments and period at once (SQLite).

The second one finds the first's edition (one per segment and period: the store's unique
key) and neither creates another nor sends anything twice: it shares the sending through
leased claims, as a second worker would (or refuses). Every reader gets exactly one
message per edition, and the rows are the provider's record of it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from support import project

from newsletter.models import DeliveryStatus
from newsletter.store import Store
from send.delivery.fakeprovider import serve
from send.delivery.harness import rows, start


def test_a_second_digest_while_the_first_sends_does_not_double(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSLETTER_SECRET_KEY", "concurrent-digest-test-key")
    cfg = project(tmp_path)
    with serve(latency=0.05) as fake:
        text = cfg.read_text(encoding="utf-8")
        outbox = '[provider]\nname = "outbox"\npath = "outbox"\n'
        assert outbox in text
        paced = (
            f'[provider]\nname = "postmark"\nbase_url = "{fake.base_url}"\n'
            "batch_size = 2\nmessages_per_second = 6\n"
        )
        cfg.write_text(text.replace(outbox, paced), encoding="utf-8")
        url = f"sqlite:///{tmp_path / 'var' / 'newsletter.db'}"

        # the fake holds every request after the second until the second process has
        # joined in: the overlap does not depend on how fast a loaded machine starts it
        fake.hold, fake.hold_after = threading.Event(), 2
        first = start(cfg, "digest", log=tmp_path / "first.log")
        deadline = time.monotonic() + 120
        while len(fake.delivered) < 4:  # the first one is sending
            assert first.popen.poll() is None, first.output()
            assert time.monotonic() < deadline, first.output()
            time.sleep(0.02)
        second = start(cfg, "digest", log=tmp_path / "second.log")
        while second.popen.poll() is None and str(second.popen.pid) not in _takers(url):
            assert time.monotonic() < deadline, second.output()
            time.sleep(0.05)
        fake.hold.set()
        codes = (first.popen.wait(timeout=120), second.popen.wait(timeout=120))
        assert codes == (0, 0), first.output() + second.output()

        with Store.open(url) as store:
            editions = store.editions.list()
        assert Counter((e.segment, e.period) for e in editions) == {
            (e.segment, e.period): 1 for e in editions
        }
        assert {e.segment for e in editions} == {"members", "partners-abroad"}
        # a reader in both segments gets both editions, each once: what the provider
        # delivered per address is exactly that address's sent rows, ids matching
        found = [row for e in editions for row in rows(url, e.id)]
        assert {status for _, status, _, _ in found} == {DeliveryStatus.SENT}
        expected = Counter(address for address, _, _, _ in found)
        assert fake.counts() == expected
        ids = fake.ids()
        assert all(message_id in ids[address] for address, _, message_id, _ in found)
        # they really overlapped on the first segment's edition: the second process either
        # claimed some of its rows (sharing the send, as a second worker would) or refused
        takers = _takers(url)
        assert str(first.popen.pid) in takers
        assert str(second.popen.pid) in takers or "refused" in second.output(), second.output()


def _takers(url: str) -> set[str]:
    """Process ids that claimed rows of the members edition (none before it exists)."""
    with Store.open(url) as store:
        members = [e for e in store.editions.list() if e.segment == "members"]
    return {key.split(":")[1] for e in members for _, _, _, key in rows(url, e.id) if key}
