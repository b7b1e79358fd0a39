"""Data rights: JSON export, erasure from the preference centre and the CLI, suppression."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from support import child_env

from newsletter.audience.subscribers import import_csv
from newsletter.models import NewSubscriber
from newsletter.store import Store
from newsletter.store.tables import consents, deliveries, subscriber_events, subscribers
from newsletter.store.webhooks import EventRow
from web.web_helpers import NOW, Web, csrf_of, publish_edition


def _form(web: Web, token: str, suffix: str) -> str:
    return csrf_of(web.client.get(f"/preferences/{token}").text, suffix)


def test_export_downloads_everything_about_the_subscriber(web: Web) -> None:
    sub = web.add(organisation="Варна Солар")
    other = web.add("ivo@example.org")
    edition = publish_edition(web.settings, web.store)
    web.store.deliveries.plan(edition.id, [(sub.id, "bg"), (other.id, "bg")], web.clock())
    web.store.events.record(sub.id, "preferences", source="test", now=web.clock())
    token = web.token("preferences", sub)
    res = web.client.post(
        f"/preferences/{token}/export", data={"csrf_token": _form(web, token, "/export")}
    )
    assert res.status_code == 200
    assert res.headers["content-type"].startswith("application/json")
    assert "attachment" in res.headers["content-disposition"]
    data = json.loads(res.content)
    assert data["subscriber"]["email"] == "ana@example.org"
    assert data["subscriber"]["organisation"] == "Варна Солар"
    assert [e["kind"] for e in data["events"]] == ["preferences"]
    assert [d["edition_id"] for d in data["deliveries"]] == [edition.id]
    assert "ivo@example.org" not in res.text
    # what providers reported about the person is theirs to see too
    row = web.store.webhooks.find_delivery(
        email=sub.email, edition_id=edition.id, subscriber_id=sub.id
    )
    assert row is not None
    web.store.webhooks.note_delivery(row, "soft_bounce", NOW, NOW, keep=())
    web.store.webhooks.claim("mailgun", [EventRow("evt-1", "soft_bounce", sub.id, NOW)], NOW)
    again = web.client.post(
        f"/preferences/{token}/export", data={"csrf_token": _form(web, token, "/export")}
    )
    data = json.loads(again.content)
    [delivery] = data["deliveries"]
    assert delivery["provider_event"] == "soft_bounce"
    assert data["provider_events"] == [
        {
            "provider": "mailgun",
            "kind": "soft_bounce",
            "occurred_at": NOW.isoformat(),
            "received_at": NOW.isoformat(),
            # engagement fields: this claim named no delivery
            "edition_id": None,
            "locale": None,
            "story": None,
            "machine": False,
        }
    ]


def test_export_and_erase_refuse_bad_tokens(web: Web) -> None:
    sub = web.add()
    csrf = _form(web, web.token("preferences", sub), "/erase")
    for token in (web.token("unsubscribe", sub), "garbage", web.token("preferences", 404)):
        for action in ("export", "erase"):
            res = web.client.post(
                f"/preferences/{token}/{action}", data={"csrf_token": csrf, "confirm": "yes"}
            )
            assert res.status_code == 400 and "<h1>" in res.text, (token, action)
    assert web.store.subscribers.find(sub.email) is not None


def test_export_needs_its_own_csrf_token(web: Web) -> None:
    sub = web.add()
    token = web.token("preferences", sub)
    url = f"/preferences/{token}/export"
    assert web.client.post(url, data={}).status_code == 403
    wrong = _form(web, token, "/erase")
    assert web.client.post(url, data={"csrf_token": wrong}).status_code == 403


def test_erase_deletes_personal_data_and_blocks_reimport(web: Web, tmp_path: Path) -> None:
    sub = web.add()
    keep = web.add("ivo@example.org")
    edition = publish_edition(web.settings, web.store)
    web.store.deliveries.plan(edition.id, [(sub.id, "bg"), (keep.id, "bg")], web.clock())
    web.store.events.record(sub.id, "preferences", source="test", now=web.clock())
    token = web.token("preferences", sub)
    url = f"/preferences/{token}/erase"
    # without the ticked box nothing happens
    res = web.client.post(url, data={"csrf_token": _form(web, token, "/erase")})
    assert res.status_code == 400
    assert web.store.subscribers.find("ana@example.org") is not None
    res = web.client.post(url, data={"csrf_token": _form(web, token, "/erase"), "confirm": "yes"})
    assert res.status_code == 200 and "Данните ви бяха изтрити" in res.text
    assert web.store.subscribers.find("ana@example.org") is None
    with web.store.engine.connect() as conn:
        for table in (deliveries, subscriber_events, consents):
            rows = conn.execute(sa.select(table).where(table.c.subscriber_id == sub.id)).all()
            assert rows == [], table.name
        dump = " ".join(str(r) for r in conn.execute(sa.select(subscribers)).all())
    assert "ana@example.org" not in dump and "ivo@example.org" in dump
    entry = web.store.suppressions.get("ana@example.org")
    assert entry is not None and entry.reason == "erased" and entry.source == "web:preferences"
    # the old links are dead now
    assert web.client.get(f"/preferences/{token}").status_code == 400
    # a later CSV import does not bring the address back
    csv_path = tmp_path / "members.csv"
    csv_path.write_text("email,name\nAna@Example.org,Ана\nnew@example.org,New\n", "utf-8")
    report = import_csv(web.store, csv_path, list_name="news", default_locale="bg", now=web.clock())
    assert (report.added, report.suppressed) == (1, 1)
    assert web.store.subscribers.find("ana@example.org") is None


def test_cli_erase(tmp_path: Path) -> None:
    db = tmp_path / "var" / "nl.db"
    cfg = tmp_path / "config.toml"
    cfg.write_text(
        '[organisation]\nname = "Test Cluster"\nfrom_email = "news@cluster.example.org"\n'
        f'[database]\nurl = "sqlite:///{db}"\n',
        encoding="utf-8",
    )

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "newsletter", "--config", str(cfg), *args],
            capture_output=True,
            text=True,
            check=False,
            cwd=tmp_path,
            env=child_env(COLUMNS="200", NEWSLETTER_SECRET_KEY="k"),
        )

    with Store.open(f"sqlite:///{db}") as store:
        store.subscribers.add(NewSubscriber(email="mila@example.org", name="Мила"), NOW)
    done = cli("subscribers", "erase", "Mila@example.org", "--yes")
    assert done.returncode == 0, done.stderr
    assert "mila@example.org erased" in done.stdout
    with Store.open(f"sqlite:///{db}") as store:
        assert store.subscribers.find("mila@example.org") is None
        assert store.suppressions.contains("mila@example.org")
    unknown = cli("subscribers", "erase", "nobody@example.org", "--yes")
    assert unknown.returncode == 0 and "added to the suppression list" in unknown.stdout
