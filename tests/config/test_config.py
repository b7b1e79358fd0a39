"""Config loading: validation messages name the file, the key path and a hint."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from newsletter import config
from newsletter.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


MINIMAL = """
[organisation]
name = "Cluster"
from_email = "news@example.org"
"""


def test_bundled_config_loads_and_resolves_paths_relative_to_the_file() -> None:
    cfg = config.load(ROOT / "config.toml")
    assert cfg.paths.templates == ROOT / "templates"
    folder = next(s for s in cfg.sources if s.kind == "folder")
    assert folder.path == ROOT / "news"  # type: ignore[union-attr]
    assert cfg.database_url() == f"sqlite:///{ROOT / 'var' / 'newsletter.db'}"


def test_unknown_key_names_file_and_key_path(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[[segments]]\nname = "m"\nperiod = "week"\ncolour = "x"\n')
    with pytest.raises(ConfigError) as exc:
        config.load(path)
    msg = str(exc.value)
    assert str(path) in msg and "segments[0].colour" in msg and "unknown key" in msg
    assert "\n" not in msg


def test_wrong_type_names_key_and_value(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[web]\nport = "eighty"\n')
    with pytest.raises(ConfigError, match=r"web\.port: .*eighty"):
        config.load(path)


def test_unknown_source_kind_lists_the_known_ones(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[[sources]]\nname = "x"\nkind = "telegram"\n')
    with pytest.raises(ConfigError, match=r"sources\[0\].*'telegram'.*folder"):
        config.load(path)


def test_bad_time_zone_and_cron_are_caught_at_load(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + '\n[[segments]]\nname = "m"\ntimezone = "Europe/Varna"\n')
    with pytest.raises(ConfigError, match="Europe/Varna"):
        config.load(path)
    path = write(
        tmp_path, MINIMAL + '\n[[schedule]]\nid = "g"\njob = "gather"\ncron = "99 * * * *"\n'
    )
    with pytest.raises(ConfigError, match=r"schedule\[0\].*cron"):
        config.load(path)


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not valid TOML"):
        config.load(write(tmp_path, "[organisation\n"))
    with pytest.raises(ConfigError, match="not found"):
        config.load(tmp_path / "nope.toml")


def test_database_url_from_environment_overrides_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = config.load(write(tmp_path, MINIMAL))
    assert cfg.database_url() == f"sqlite:///{tmp_path / 'var' / 'newsletter.db'}"
    monkeypatch.setenv("NEWSLETTER_DATABASE_URL", "postgresql://u@127.0.0.1/db")
    assert cfg.database_url() == "postgresql://u@127.0.0.1/db"


def test_locale_chain_and_resolution(make_config) -> None:  # type: ignore[no-untyped-def]
    cfg = make_config(locales={"available": ["bg", "en", "de"], "fallback": {"ro": ["en", "bg"]}})
    assert cfg.locales.chain("ro") == ["ro", "en", "bg"]
    assert cfg.locales.chain("de") == ["de", "en"]
    assert cfg.locales.resolve("ro") == "en"
    assert cfg.locales.resolve("de") == "de"


def test_cli_config_error_is_one_line_and_exit_2(tmp_path: Path) -> None:
    path = write(tmp_path, MINIMAL + "\n[render]\nmax_items = -3\n")
    proc = subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(path), "items", "list"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and "render.max_items" in lines[0] and "Traceback" not in proc.stderr
