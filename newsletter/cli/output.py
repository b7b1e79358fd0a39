"""How commands print what they list or show, in one place.

- On a terminal: a rich table; long values fold onto the next line instead of being cut.
- In a pipe or a file: a header line, then one tab-separated line per row, every value
  whole, so ``grep``, ``cut -f`` and ``awk -F'\\t'`` work.
- With ``--json``: one JSON document with stable keys, times in ISO 8601.

Stored values may hold control characters or rich markup (from feeds and sign-ups, or
stored before they were cleaned): table cells are never parsed as markup and control
characters are shown as ``\\xNN``, never written raw. :func:`safe` does the same for a
value put into a markup string.
"""

from __future__ import annotations

import dataclasses
import enum
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from newsletter.cli.app import out
from newsletter.textclean import visible

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for scripts instead of a table.")]

#: a table cell: plain data (never markup), or a Text a command styled itself
Cell = str | Text
#: a row, or ``None`` for a separator line (drawn on a terminal only)
Row = Sequence[Cell] | None

# DEL and C1 controls: json.dumps(ensure_ascii=False) leaves them raw, a terminal may act
_JSON_RAW = re.compile(r"[\x7f-\x9f\u2028\u2029]")


def safe(value: object) -> str:
    """``value`` ready to put into a rich markup string: inert markup, visible controls."""
    return escape(visible(str(value)))


def styled(value: str, style: str) -> Text:
    """A cell shown in ``style`` on a terminal (plain in a pipe); the value is not markup."""
    return Text(visible(value), style=style)


def is_terminal(console: Console = out) -> bool:
    """True when ``console`` writes to a terminal (a person reads it, not a program)."""
    isatty = getattr(console.file, "isatty", None)
    return bool(isatty and isatty())


def _cell_text(cell: Cell) -> str:
    plain = cell.plain if isinstance(cell, Text) else cell
    # one row per line: a value's own line breaks and tabs cannot split it
    return visible("; ".join(part.replace("\t", " ") for part in plain.splitlines()))


def _cell(cell: Cell) -> Text:
    if isinstance(cell, Text):
        return cell
    return Text("\n".join(visible(line) for line in cell.splitlines()))


def print_table(
    columns: Sequence[str],
    rows: Iterable[Row],
    *,
    title: str | None = None,
    console: Console = out,
) -> None:
    """Print ``rows`` under ``columns``: a table on a terminal, tab-separated lines if not."""
    if not is_terminal(console):
        lines = [] if title is None else [f"# {visible(title)}"]
        lines.append("\t".join(columns))
        lines.extend("\t".join(_cell_text(c) for c in row) for row in rows if row is not None)
        console.file.write("\n".join(lines) + "\n")
        console.file.flush()
        return
    table = Table(title=title)
    for name in columns:
        table.add_column(name, overflow="fold")
    for row in rows:
        if row is None:
            table.add_section()
        else:
            table.add_row(*(_cell(c) for c in row))
    console.print(table, soft_wrap=False)


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON types: times ISO 8601, enums their value, dataclasses dicts."""
    if isinstance(value, enum.Enum):
        return jsonable(value.value)
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, Path):
        return str(value)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(jsonable(k)): jsonable(v) for k, v in value.items()}
    if isinstance(value, Iterable):
        return [jsonable(v) for v in value]
    raise TypeError(f"cannot print {type(value).__name__} as JSON")


def print_json(data: Any, *, console: Console = out) -> None:
    """Print ``data`` as one indented JSON document, keys in the order given."""
    text = json.dumps(jsonable(data), ensure_ascii=False, indent=2)
    # outside strings JSON is ASCII, so these can only be inside one: \\u escapes are equal
    text = _JSON_RAW.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    console.file.write(text + "\n")
    console.file.flush()
