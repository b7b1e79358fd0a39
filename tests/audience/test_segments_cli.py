"""``newsletter segments explain``, and the overlap lines of ``digest --dry-run`` and
``preview``, as an operator runs them on the demo config (real subprocesses)."""

from __future__ import annotations

import json
from pathlib import Path

from support import cli, project

ENGEL = "m.engel@sonnenfeld-energie.example.com"
OVERLAP = "  members + partners-abroad -> members (first in order): 1"


def test_explain_text_and_json_before_a_send(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    text = cli(cfg, "segments", "explain", "--segment", "partners-abroad")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    # the lists' files are merged first, as the next digest would
    assert "List members: 40 added, 0 updated from its file" in lines
    assert any(
        ln.startswith("partners-abroad (week ") and "17 match, 16 get it" in ln for ln in lines
    )
    assert not any(ln.startswith("members (week ") for ln in lines)
    assert (
        f"  - {ENGEL}: lists contains partners; country != BG (DE)"
        "  [also matches members, goes to members (first in order)]"
    ) in lines
    assert "1 subscriber(s) matched more than one segment:" in lines and OVERLAP in lines

    data = json.loads(cli(cfg, "segments", "explain", "--json").stdout)
    assert [(s["name"], s["matched"], s["receiving"]) for s in data["segments"]] == [
        ("members", 37, 37),
        ("partners-abroad", 17, 16),
    ]
    engel = next(p for p in data["segments"][1]["subscribers"] if p["email"] == ENGEL)
    assert engel["receives"] is False and engel["also_matches"] == ["members"]
    assert data["overlaps"]["subscribers"] == 1

    unknown = cli(cfg, "segments", "explain", "--segment", "nobody")
    assert unknown.returncode == 2 and "unknown segment 'nobody'" in unknown.stderr


def test_dry_run_and_preview_say_where_overlapping_subscribers_went(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    assert cli(cfg, "subscribers", "import", "subscribers/members.csv").returncode == 0
    assert cli(cfg, "subscribers", "import", "subscribers/partners.csv").returncode == 0
    dry = cli(cfg, "digest", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "1 subscriber(s) matched more than one segment:" in dry.stdout
    assert OVERLAP in dry.stdout.splitlines()
    prev = cli(cfg, "preview", "--segment", "members", "--locale", "de")
    assert prev.returncode == 0, prev.stderr
    assert OVERLAP in prev.stdout.splitlines()


def test_a_bad_overlap_value_is_a_one_line_config_error(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    text = cfg.read_text(encoding="utf-8").replace(
        'sources = ["cluster-news", "partner-news"]',
        'sources = ["cluster-news", "partner-news"]\noverlap = "both"',
    )
    cfg.write_text(text, encoding="utf-8")
    proc = cli(cfg, "segments", "explain")
    assert proc.returncode == 2
    (line,) = proc.stderr.strip().splitlines()
    assert "segments[1].overlap" in line and '"allow"' in line and "'both'" in line
