"""Benchmark: ``newsletter gather`` against rss2email on the same loopback feeds, one run.

Run from the project folder (rss2email comes from the ``bench`` extra:
``pip install -e '.[bench]'``):

    python benchmarks/gather_bench.py [--feeds 100] [--items 20] [--hosts 10] \\
        [--latency 0.05] [--runs 3]

A feed server (``benchmarks/feedserver.py``) runs in a process of its own on
127.0.0.1 … 127.0.0.H: N RSS feeds of M items, each answer delayed by the latency, strong
ETags and 304 on ``If-None-Match``. Each run, for both tools, is:

- **cold**: a fresh state (an empty SQLite store / an empty rss2email data file), every
  feed answers 200 and every item is new;
- **warm**: the same command again, every feed answers 304.

Both tools are timed as the command a user runs (``newsletter gather`` and
``r2e run --no-send``: rss2email fetches, parses and builds every message but mails none,
as ``gather`` stores items but mails none), so start-up is included for both. The two
alternate inside each run; the figures printed are medians over ``--runs`` and the ratio
is rss2email's time divided by ours (above 1: we are faster).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _config(workdir: Path, urls: list[str], origins: list[str]) -> Path:
    """The demo config with only the benchmark's feeds and a store in ``workdir``."""
    demo = (ROOT / "config.toml").read_text(encoding="utf-8")
    head = demo.split("[[sources]]", 1)[0]
    head = head.replace('url = "sqlite:///var/newsletter.db"', 'url = "sqlite:///nl.db"')
    head = head.replace('templates = "templates"', f'templates = "{ROOT / "templates"}"')
    lines = [head, "[gather]", f"allow_private = {json.dumps(origins)}", ""]
    for i, url in enumerate(urls):
        lines += ["[[sources]]", f'name = "feed{i}"', 'kind = "feed"', f'url = "{url}"', ""]
    path = workdir / "nl.toml"
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _r2e_config(workdir: Path, urls: list[str]) -> Path:
    path = workdir / "r2e.cfg"
    lines = [
        "[DEFAULT]",
        "to = bench@example.org",
        "from = bench@example.org",
        "same-server-fetch-interval = 0",
        "",
    ]
    for i, url in enumerate(urls):
        lines += [f"[feed.feed{i}]", f"url = {url}", ""]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:3])} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return elapsed


def _newsletter(config: Path, workdir: Path, env: dict[str, str]) -> tuple[float, float]:
    (workdir / "nl.db").unlink(missing_ok=True)
    shutil.rmtree(workdir / "var", ignore_errors=True)
    subprocess.run(  # migrate first: creating the schema is not gathering
        [str(BIN / "newsletter"), "-c", str(config), "db", "upgrade"],
        cwd=workdir,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    cmd = [str(BIN / "newsletter"), "-c", str(config), "gather"]
    return _timed(cmd, workdir, env), _timed(cmd, workdir, env)


def _rss2email(config: Path, workdir: Path, env: dict[str, str]) -> tuple[float, float]:
    data = workdir / "r2e.json"
    data.unlink(missing_ok=True)
    cmd = [str(BIN / "r2e"), "-c", str(config), "-d", str(data), "run", "--no-send"]
    return _timed(cmd, workdir, env), _timed(cmd, workdir, env)


def main() -> None:
    """Start the feed server, run both tools cold and warm ``--runs`` times, print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--feeds", type=int, default=100)
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--hosts", type=int, default=10)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("r2e", path=str(BIN)) is None:
        raise SystemExit("rss2email is missing: pip install -e '.[bench]'")
    server = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "feedserver.py"),
            f"--feeds={args.feeds}",
            f"--items={args.items}",
            f"--hosts={args.hosts}",
            f"--latency={args.latency}",
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        served = json.loads(server.stdout.readline())
        with tempfile.TemporaryDirectory(prefix="nl-gather-bench-") as tmp:
            workdir = Path(tmp)
            env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench-key"}
            env.pop("NEWSLETTER_DATABASE_URL", None)
            config = _config(workdir, served["urls"], served["origins"])
            r2e_config = _r2e_config(workdir, served["urls"])
            ours: list[tuple[float, float]] = []
            theirs: list[tuple[float, float]] = []
            print(
                f"{args.feeds} feeds x {args.items} items on {args.hosts} loopback hosts, "
                f"{args.latency * 1000:g} ms latency, ETag/304"
            )
            for run in range(args.runs):
                ours.append(_newsletter(config, workdir, env))
                theirs.append(_rss2email(r2e_config, workdir, env))
                print(
                    f"run {run + 1}: newsletter cold {ours[-1][0]:.2f} s warm {ours[-1][1]:.2f} s"
                    f" | rss2email cold {theirs[-1][0]:.2f} s warm {theirs[-1][1]:.2f} s"
                )
    finally:
        if server.stdin is not None:
            server.stdin.close()
        server.wait(timeout=10)
    for label, k in (("cold", 0), ("warm", 1)):
        mine = statistics.median(r[k] for r in ours)
        peer = statistics.median(r[k] for r in theirs)
        print(
            f"{label}: newsletter {mine:.2f} s, rss2email {peer:.2f} s, "
            f"ratio {peer / mine:.2f}x (median of {args.runs})"
        )


if __name__ == "__main__":
    main()
