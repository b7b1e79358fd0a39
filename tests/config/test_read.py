"""A config file that cannot be read or parsed: one line naming the file, exit 2, no
traceback, in a real ``newsletter`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import child_env

GOOD = '[organisation]\nname = "Клъстер"\nfrom_email = "news@example.org"\n'


def _status(config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(config), "status"],
        capture_output=True,
        text=True,
        check=False,
        cwd=config.parent if config.parent.is_dir() else None,
        env=child_env(),
    )


def _one_line(proc: subprocess.CompletedProcess[str], *needles: str) -> str:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    [line] = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    for needle in needles:
        assert needle in line, line
    return line


def _directory(tmp: Path) -> Path:
    folder = tmp / "conf.d"
    folder.mkdir()
    return folder


def _cp1251(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_bytes(GOOD.encode("cp1251"))
    return path


def _nul(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_bytes(GOOD.encode() + b'[web]\nbase_url = "https://news.example.org\x00"\n')
    return path


def _syntax(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text(GOOD + "[web\nport = 1\n", encoding="utf-8")
    return path


def _under_a_file(tmp: Path) -> Path:
    blocker = tmp / "plain-file"
    blocker.write_text("x", encoding="utf-8")
    return blocker / "config.toml"


def _utf16(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_bytes(GOOD.encode("utf-16"))
    return path


def _deep(tmp: Path) -> Path:
    # tomllib parses nesting recursively: 100,000 levels overflow Python's stack
    path = tmp / "config.toml"
    path.write_text(GOOD + "[web]\nx = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    return path


def _deep_table(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_text("x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n", encoding="utf-8")
    return path


def _endless(tmp: Path) -> Path:
    return Path("/dev/zero")


def _huge(tmp: Path) -> Path:
    path = tmp / "config.toml"
    path.write_bytes(GOOD.encode() + b"#" * (5 * 1024 * 1024) + b"\n")
    return path


@pytest.mark.parametrize(
    ("make", "needles"),
    [
        (_directory, ("conf.d", "is a directory")),
        (_utf16, ("config.toml", "line 1", "not UTF-8", "0xff")),
        (_deep, ("config.toml", "not valid TOML", "nested too deeply")),
        (_deep_table, ("config.toml", "not valid TOML", "nested too deeply")),
        (_endless, ("/dev/zero", "larger than")),
        (_huge, ("config.toml", "larger than 4194304 bytes")),
        (_cp1251, ("config.toml", "line 2", "not UTF-8", "0xca")),
        (_nul, ("config.toml", "not valid TOML", "\\x00")),
        (_syntax, ("config.toml", "not valid TOML", "line 4")),
        (_under_a_file, ("plain-file/config.toml", "cannot read")),
    ],
    ids=[
        "directory",
        "utf-16",
        "deeply-nested-array",
        "deeply-nested-table",
        "dev-zero",
        "huge",
        "cp1251",
        "nul-byte",
        "toml-syntax",
        "not-a-directory",
    ],
)
def test_unreadable_config_is_one_line_and_exit_2(
    tmp_path: Path, make: Callable[[Path], Path], needles: tuple[str, ...]
) -> None:
    _one_line(_status(make(tmp_path)), *needles)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file; permissions are not checked")
def test_config_without_read_permission_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(GOOD, encoding="utf-8")
    path.chmod(0)
    _one_line(_status(path), "config.toml", "permission denied")


def test_markup_in_the_config_path_is_printed_as_text(tmp_path: Path) -> None:
    folder = tmp_path / "[bold red]conf.d"
    folder.mkdir()
    _one_line(_status(folder), "[bold red]conf.d", "is a directory")


def test_a_utf8_byte_order_mark_is_read(tmp_path: Path) -> None:
    """Windows editors save UTF-8 with a byte order mark: that is still the config."""
    path = tmp_path / "config.toml"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode("utf-8"))
    proc = _status(path)
    assert "not valid TOML" not in proc.stderr and "Traceback" not in proc.stderr
    assert "config error" not in proc.stderr, proc.stderr
