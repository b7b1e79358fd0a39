"""Benchmark: how long commands take to start, beside the interpreter's own floor, one run.

Run from the project folder:

    python benchmarks/startup_bench.py [--repeat 7]

Each command runs ``--repeat`` times as a fresh process; the median wall time is printed
beside its goal (``newsletter --help`` ≤ 0.3 s, a simple command ≤ 0.6 s) and beside the
floor no CLI can go under: ``python -c pass`` and ``python -c "import typer"`` in the same
virtual environment. The simple command is ``newsletter status`` on a copy of the demo
config with an empty, already migrated SQLite store (it loads the config, opens the store,
reads the status and prints a table).
"""

from __future__ import annotations

import argparse
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


def _median(cmd: list[str], repeat: int, cwd: Path, env: dict[str, str]) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True, timeout=60)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    """Time the floor and the commands; print medians, goals and ratios."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nl-startup-bench-") as tmp:
        work = Path(tmp)
        shutil.copy(ROOT / "config.toml", work / "config.toml")
        for folder in ("templates", "news", "feeds", "subscribers"):
            if (ROOT / folder).exists():
                (work / folder).symlink_to(ROOT / folder)
        env = {**os.environ, "NEWSLETTER_SECRET_KEY": "bench-key"}
        env.pop("NEWSLETTER_DATABASE_URL", None)
        nl = str(BIN / "newsletter")
        subprocess.run([nl, "db", "upgrade"], cwd=work, env=env, check=True, capture_output=True)
        floor = _median([sys.executable, "-c", "pass"], args.repeat, work, env)
        typer = _median([sys.executable, "-c", "import typer"], args.repeat, work, env)
        print(f"floor: python -c pass {floor:.3f} s, python -c 'import typer' {typer:.3f} s")
        for label, cmd, goal in (
            ("newsletter --help", [nl, "--help"], 0.3),
            ("newsletter status", [nl, "status"], 0.6),
        ):
            took = _median(cmd, args.repeat, work, env)
            verdict = "met" if took <= goal else "not met"
            print(
                f"{label}: {took:.3f} s (median of {args.repeat}); goal {goal} s {verdict}; "
                f"{took / floor:.1f}x the bare interpreter, {took / typer:.1f}x importing typer"
            )


if __name__ == "__main__":
    main()
