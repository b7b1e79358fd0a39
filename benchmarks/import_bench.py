"""Benchmark: ``subscribers import`` of a large CSV beside a bare driver insert, one run.

Run from the project folder (PostgreSQL optional):

    python benchmarks/import_bench.py [--rows 100000] [--runs 3] \\
        [--postgres postgresql://postgres@127.0.0.1:5432/nl_bench]

A CSV of ``--rows`` distinct subscribers (Bulgarian names, four locales, lists and tags)
is written once. Each run imports it with :func:`import_csv` into an empty, freshly
migrated store (migrating is not timed): read, decode, validate every row, merge, report.
Its **ceiling** is the same rows, already parsed, written by the bare driver with no
validation at all (``sqlite3`` executemany into the same table; psycopg ``COPY`` on
PostgreSQL). Printed: rows/s for both, the ratio, and the goal (100,000 rows ≤ 5 s).
The PostgreSQL database given is emptied (its tables dropped) before each run.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from newsletter.audience.subscribers import import_csv
from newsletter.store import Store
from newsletter.store.tables import metadata

NAMES = ["Ивелина Драганова", "Борислав Стоянов", "Радостина Кирилова", "Калоян Маринов"]
LOCALES = ["bg", "en", "de", "ro"]
COLUMNS = ["email", "name", "locale", "organisation", "country", "lists", "tags"]


def write_csv(path: Path, rows: int) -> None:
    """``rows`` distinct subscribers as an import file."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(COLUMNS)
        for i in range(rows):
            writer.writerow(
                [
                    f"member{i}@org{i % 211}.example.org",
                    NAMES[i % len(NAMES)],
                    LOCALES[i % len(LOCALES)],
                    "Черноморски енергиен клъстер",
                    "BG",
                    "members;partners" if i % 3 else "members",
                    "energy;solar",
                ]
            )


def _reset(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def ours(url: str, path: Path) -> float:
    """Seconds for :func:`import_csv` into an empty store at ``url``."""
    with Store.open(url) as store:
        start = time.perf_counter()
        report = import_csv(store, path, list_name=None, default_locale="bg", now=datetime.now(UTC))
        took = time.perf_counter() - start
    assert not report.errors and report.added == report.rows, report
    return took


def ceiling(url: str, path: Path) -> float:
    """Seconds for the bare driver to write the same rows, parsed beforehand, unvalidated."""
    with path.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    now = datetime.now(UTC)
    values = [
        (
            r["email"],
            r["name"],
            r["locale"],
            r["organisation"],
            r["country"],
            json.dumps(sorted(r["lists"].split(";"))),
            json.dumps(sorted(r["tags"].split(";"))),
            "active",
            "",
            now,
            now,
        )
        for r in rows
    ]
    columns = (
        "email, name, locale, organisation, country, lists, tags, status, consent_source,"
        " created_at, updated_at"
    )
    with Store.open(url) as store:
        raw = store.engine.raw_connection()
        try:
            cursor = raw.cursor()
            start = time.perf_counter()
            if url.startswith("postgresql"):
                with cursor.copy(f"COPY subscribers ({columns}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                    for value in values:
                        copy.write_row(value)
            else:
                marks = ", ".join("?" * 11)
                plain = [
                    (*v[:9], v[9].replace(tzinfo=None), v[10].replace(tzinfo=None)) for v in values
                ]
                cursor.executemany(f"INSERT INTO subscribers ({columns}) VALUES ({marks})", plain)
            raw.commit()
            return time.perf_counter() - start
        finally:
            raw.close()


def main() -> None:
    """Write the file, then per backend and run: ours and the ceiling; print medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="a database URL to use (emptied)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="nl-import-bench-") as tmp:
        path = Path(tmp) / "subscribers.csv"
        write_csv(path, args.rows)
        backends = [("SQLite", None)]
        if args.postgres:
            backends.append(("PostgreSQL", args.postgres))
        for label, url in backends:
            mine, bare = [], []
            for run in range(args.runs):
                for timings, fn in ((mine, ours), (bare, ceiling)):
                    target = url
                    if target is None:
                        db = Path(tmp) / f"run{run}-{fn.__name__}.db"
                        target = f"sqlite:///{db}"
                    else:
                        _reset(target)
                    timings.append(fn(target, path))
                print(
                    f"{label} run {run + 1}: import {mine[-1]:.2f} s, bare driver {bare[-1]:.2f} s"
                )
            m, b = statistics.median(mine), statistics.median(bare)
            verdict = "met" if m <= 5.0 * args.rows / 100_000 else "not met"
            print(
                f"{label}: {args.rows} rows in {m:.2f} s = {args.rows / m:,.0f} rows/s; bare "
                f"driver {args.rows / b:,.0f} rows/s; ratio {b / m:.2f} of the ceiling; goal "
                f"(100,000 rows <= 5 s) {verdict} (median of {args.runs})"
            )


if __name__ == "__main__":
    main()
