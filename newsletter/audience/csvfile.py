"""CSV files as spreadsheets make them and attackers craft them: encodings, lines, formulas.

Reading turns a file into rows that each carry the physical line they start on, so every
report names the line a person sees in an editor. Nothing is dropped silently: each record
after the header becomes either a row or a row error, and problems with the file as a whole
(unreadable, wrong encoding, bad header) are one :class:`SubscriberError` raised before the
first row is handed out.

Writing escapes cells a spreadsheet would run as a formula (OWASP "CSV injection"): a cell,
or a part of one that a spreadsheet splitting on another delimiter would see as a cell,
starting with ``= + - @``, tab, CR or their full-width and small forms gets a ``'`` in
front. A ``'`` already there gets one too, so reading can undo exactly what writing did.
"""

from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from newsletter.errors import SubscriberError

#: characters that make a spreadsheet treat a cell as a formula (or a DDE command)
FORMULA_START = frozenset("=+-@\t\r\uff1d\uff0b\uff0d\uff20\ufe66\ufe62\ufe63\ufe6b")
_QUOTE = "'"
_NEEDS_QUOTE = FORMULA_START | {_QUOTE}
# A spreadsheet told to split on ";" or tab, or one that ignores CSV quoting, starts a new
# cell after any of these; what follows them is escaped like the start of a cell.
_CELL_BREAKS = frozenset(",;\t\r\n")
# skipped over when a spreadsheet decides whether a cell is a formula
_LEADING = frozenset('" \u00a0\u3000')

#: files larger than this are refused as a whole (a subscriber list is far smaller)
MAX_FILE_BYTES = 64 * 1024 * 1024
#: one record (a row, with all the lines of its quoted cells) at most this many characters
MAX_ROW_CHARS = 64 * 1024
#: a cell at most this many characters unless the caller gives a column its own limit
MAX_CELL_CHARS = 4096

_BOMS = (
    # UTF-32 first: its little-endian mark starts with UTF-16's
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
# the line breaks csv (and a text editor) count; str.splitlines knows more than these
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")
_BREAK = re.compile(r"\r\n|\r|\n")
# what the "surrogateescape" error handler makes of each undecodable byte
_UNDECODED = re.compile("[\udc80-\udcff]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def escape_cell(value: str) -> str:
    """``value`` as written to a CSV cell, so that no spreadsheet runs it as a formula."""
    out: list[str] = []
    at_start = True
    for ch in value:
        if at_start and ch in _LEADING:
            out.append(ch)
            continue
        if at_start and ch in _NEEDS_QUOTE:
            out.append(_QUOTE)
        out.append(ch)
        at_start = ch in _CELL_BREAKS
    return "".join(out)


def unescape_cell(cell: str) -> str:
    """The value :func:`escape_cell` wrote as ``cell`` (the exact inverse)."""
    if _QUOTE not in cell:  # only a quote is ever removed
        return cell
    out: list[str] = []
    at_start = True
    i = 0
    while i < len(cell):
        ch = cell[i]
        if at_start and ch in _LEADING:
            out.append(ch)
            i += 1
            continue
        if at_start and ch == _QUOTE and i + 1 < len(cell) and cell[i + 1] in _NEEDS_QUOTE:
            i += 1
            ch = cell[i]
        out.append(ch)
        at_start = ch in _CELL_BREAKS
        i += 1
    return "".join(out)


def text_encoding(name: str) -> str:
    """The codec's canonical name if ``name`` is a text encoding, else a ``ValueError``."""
    try:
        # not b"": decoding nothing succeeds even for bytes-to-bytes codecs like zlib
        b"a".decode(name, "replace")
    except LookupError as exc:
        raise ValueError(
            f"unknown text encoding {name!r} (for example utf-8, cp1251, utf-16)"
        ) from exc
    return codecs.lookup(name).name


@dataclass(frozen=True)
class Row:
    """One record after the header: its cells by column, or why it cannot be read."""

    #: the physical line the record starts on (1 is the file's first line)
    line: int
    cells: dict[str, str] = field(default_factory=dict)
    error: str | None = None


@dataclass
class Table:
    """A CSV file's checked header and its rows, read lazily."""

    columns: tuple[str, ...]
    header_line: int
    rows: Iterator[Row]


class _TooLong(Exception):
    pass


class _Lines:
    """Physical lines of the text, counted, with the record being read kept aside."""

    def __init__(self, text: str, codec: str, first_byte: int, count_bytes: bool) -> None:
        self._matches = _LINE.finditer(text)
        self._codec = codec
        #: undecodable bytes were kept as lone surrogates, to be reported with their row
        self.lenient = count_bytes
        self.consumed = 0
        self.record: list[str] = []
        self.record_first = 1
        self.record_byte = first_byte
        self._next_byte = first_byte
        self._chars = 0

    def start_record(self) -> None:
        # byte offsets are only needed to report undecodable bytes, kept only when counted
        if self.lenient:
            self._next_byte += sum(
                len(line.encode(self._codec, "surrogateescape")) for line in self.record
            )
        self.record = []
        self.record_first = self.consumed + 1
        self.record_byte = self._next_byte
        self._chars = 0

    def __iter__(self) -> _Lines:
        return self

    def __next__(self) -> str:
        line = next(self._matches).group()
        self.consumed += 1
        self.record.append(line)
        self._chars += len(line)
        if self._chars > MAX_ROW_CHARS:
            raise _TooLong
        return line


def _decode(data: bytes, path: Path, encoding: str | None, hint: str) -> tuple[str, str, int, bool]:
    """The file's text, the codec, the BOM's length and whether undecodable bytes were kept
    (as lone surrogates, for the rows holding them to be reported); one-line errors else."""
    bom_codec, bom_len = None, 0
    for bom, name in _BOMS:
        if data.startswith(bom):
            bom_codec, bom_len = name, len(bom)
            break
    codec = bom_codec or "utf-8"
    if encoding is not None:
        try:
            given = text_encoding(encoding)
        except ValueError as exc:
            raise SubscriberError(f"{path}: {exc}") from exc
        if bom_codec is None:
            # no mark to skip, and its encoder would add one to every line counted in bytes
            codec = "utf-8" if given == "utf-8-sig" else given
        elif given not in {bom_codec, bom_codec[:6], "utf-8-sig"} or (
            given == "utf-8-sig" and bom_codec != "utf-8"
        ):
            raise SubscriberError(
                f"{path}: starts with a {bom_codec.upper()} byte order mark, "
                f"but the encoding {encoding!r} was given"
            )
    body = data[bom_len:]
    try:
        return body.decode(codec), codec, bom_len, False
    except UnicodeDecodeError as exc:
        line = len(_BREAK.findall(body[: exc.start].decode(codec, "replace"))) + 1
        where = f"{path}: line {line}, byte offset {bom_len + exc.start}"
        bad = body[exc.start : exc.start + 1].hex()
        if encoding is None and bom_codec is None:
            raise SubscriberError(
                f"{where}: not valid UTF-8 (byte 0x{bad}); if the file is in another "
                f"encoding, give it, e.g. {hint}"
            ) from exc
        if codec.startswith(("utf-16", "utf-32")):
            raise SubscriberError(f"{where}: not valid {codec.upper()} ({exc.reason})") from exc
    # The encoding was given (or marked): a row with a byte it does not know is reported
    # by itself, and the good rows around it are still read.
    try:
        return body.decode(codec, "surrogateescape"), codec, bom_len, True
    except UnicodeDecodeError as exc:
        # surrogateescape keeps bytes from 0x80 only; a multi-byte codec can fail on less
        raise SubscriberError(f"{where}: not valid {codec} ({exc.reason})") from exc


def _records(lines: _Lines, codec: str) -> Iterator[tuple[int, list[str] | None, str | None]]:
    """(first line, cells, error) for each non-blank record."""
    reader = csv.reader(lines, strict=True)
    while True:
        lines.start_record()
        try:
            cells: list[str] | None = next(reader)
            error = None
        except StopIteration:
            return
        except _TooLong:
            cells, error = None, f"longer than {MAX_ROW_CHARS} characters"
        except csv.Error as exc:
            cells = None
            if "unexpected end of data" in str(exc):
                error = "a quoted cell that starts here is never closed"
            else:
                error = f"not valid CSV: {exc}"
        first, last = lines.record_first, lines.consumed
        raw = "".join(lines.record)
        bad = _UNDECODED.search(raw) if lines.lenient else None
        if bad:
            offset = lines.record_byte + len(raw[: bad.start()].encode(codec, "surrogateescape"))
            byte = ord(bad.group()) - 0xDC00
            line = first + len(_BREAK.findall(raw[: bad.start()]))
            cells, error = None, f"byte 0x{byte:02x} at byte offset {offset} (line {line}) "
            error += f"is not valid {codec}"
        elif cells is not None and any("\0" in c for c in cells):
            cells, error = None, "contains a NUL character"
        elif cells is not None and any(_SURROGATE.search(c) for c in cells):
            # only a strange codec makes these; no database stores them
            cells, error = None, "contains a lone surrogate, which is not a character"
        if cells is not None and not any(c.strip() for c in cells):
            continue
        if error is not None and last > first:
            error += f" (lines {first}-{last} not imported)"
        yield first, cells, error


def read_table(
    path: Path,
    *,
    allowed: Sequence[str],
    required: Sequence[str] = (),
    limits: Mapping[str, int] | None = None,
    encoding: str | None = None,
    hint: str = "--encoding cp1251",
) -> Table:
    """Open a CSV file with a header line; file-level problems are one ``SubscriberError``.

    The encoding is the byte order mark's (UTF-8, UTF-16, UTF-32), else ``encoding``, else
    UTF-8; ``hint`` is how the user names another one, shown when UTF-8 fails. Cells are
    unescaped (:func:`unescape_cell`). Each cell is at most ``limits[column]`` (default
    :data:`MAX_CELL_CHARS`) characters; a longer one makes its row an error.
    """
    try:
        # read with a cap, not by size: a FIFO or /dev/zero has no size
        with path.open("rb") as fh:
            data = fh.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SubscriberError(f"{path}: cannot read: {exc.strerror}") from exc
    if len(data) > MAX_FILE_BYTES:
        raise SubscriberError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    text, codec, bom_len, lenient = _decode(data, path, encoding, hint)
    records = _records(_Lines(text, codec, bom_len, lenient), codec)
    header = next(records, None)
    if header is None:
        raise SubscriberError(f"{path}: the file is empty; it needs a header line first")
    line, cells, error = header
    if cells is None:
        if "\0" in text and encoding is None:
            error = "contains NUL characters (UTF-16 without a byte order mark? give its encoding)"
        raise SubscriberError(f"{path}: line {line}: the header: {error}")
    columns = tuple(c.strip() for c in cells)
    _check_header(path, line, columns, allowed, required)
    return Table(columns, line, _rows(records, columns, limits or {}))


def _check_header(
    path: Path, line: int, columns: Sequence[str], allowed: Sequence[str], required: Sequence[str]
) -> None:
    where = f"{path}: line {line}"
    missing = [c for c in required if c not in columns]
    if missing:
        raise SubscriberError(f"{where}: the header has no {', '.join(map(repr, missing))} column")
    seen: set[str] = set()
    for n, name in enumerate(columns, 1):
        if not name:
            raise SubscriberError(f"{where}: column {n} of the header has no name")
        if name in seen:
            raise SubscriberError(f"{where}: the column {name!r} appears twice in the header")
        seen.add(name)
    unknown = sorted(set(columns) - set(allowed))
    if unknown:
        # a hostile header may name thousands: the message stays one readable line
        named = ", ".join(unknown[:5]) + (f" and {len(unknown) - 5} more" if unknown[5:] else "")
        raise SubscriberError(
            f"{where}: unknown column(s) {named}; expected some of {', '.join(allowed)}"
        )


def _rows(
    records: Iterator[tuple[int, list[str] | None, str | None]],
    columns: tuple[str, ...],
    limits: Mapping[str, int],
) -> Iterator[Row]:
    for line, cells, error in records:
        if cells is None:
            yield Row(line, error=error)
            continue
        extra = [c for c in cells[len(columns) :] if c.strip()]
        if extra:
            yield Row(
                line,
                error=f"{len(cells)} cells but the header has {len(columns)} columns "
                "(a comma in a cell without quotes?)",
            )
            continue
        values = {name: unescape_cell(cell) for name, cell in zip(columns, cells, strict=False)}
        too_long = [
            f"{name} has {len(v)} characters, at most {limits.get(name, MAX_CELL_CHARS)}"
            for name, v in values.items()
            if len(v) > limits.get(name, MAX_CELL_CHARS)
        ]
        if too_long:
            yield Row(line, error="; ".join(too_long))
            continue
        yield Row(line, values)
