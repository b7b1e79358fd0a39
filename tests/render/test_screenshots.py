"""Screenshots in real headless Chromium: sizes, no sideways scrolling on a phone, offline.

Nothing here reaches the internet: remote images are replaced in the page, and the tests
that check this run their own servers on loopback addresses (127.0.0.1, 127.0.0.2), which
hostile image URLs must never reach unless allow-listed.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from support import cli, project

from newsletter.config import Gather, load
from newsletter.errors import DestinationRefusedError, ScreenshotError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.run import gather
from newsletter.gather.sources.fetch import Fetched
from newsletter.models import DigestEntry
from newsletter.render import screenshots
from newsletter.render.renderer import Renderer, personalize
from newsletter.render.screenshots import (
    WIDTHS,
    Screenshotter,
    Shot,
    find_chromium,
    png_size,
)
from newsletter.store import Store
from render.samples import DEMO, LOCALES, VALUES, demo_settings, entries

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Debian's chromium package at /usr/bin/chromium"
)

# A 1x1 transparent PNG, served by the local "image hosts".
PIXEL = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000154a24f5d0000000049454e44ae426082"
)


@pytest.fixture(scope="module")
def shooter() -> Iterator[Screenshotter]:
    """One offline browser for the module (starting Chromium takes seconds)."""
    with Screenshotter(remote_images=False) as browser:
        yield browser


@pytest.fixture(scope="module")
def shots(shooter: Screenshotter, tmp_path_factory: pytest.TempPathFactory) -> list[Shot]:
    """Every locale's digest (sections, lead image, labels, a story without link), offline."""
    folder = tmp_path_factory.mktemp("screens")
    settings = demo_settings()
    renderer = Renderer(settings)
    pages = []
    for locale in LOCALES:
        variant = renderer.render(
            segment=settings.segment("by-tag"),
            period_label="16–22.11.2026",
            edition_date=date(2026, 11, 23),
            entries=entries(locale, 6),
            locale=locale,
            view_url=f"https://news.cluster.example.org/archive/1/{locale}",
        )
        page = folder / f"{locale}.html"
        page.write_text(personalize(variant, VALUES)[0], encoding="utf-8")
        pages.append(page)
    return [shot for page in pages for shot in shooter.capture(page)]


def test_every_variant_is_shot_at_600_and_375(shots: list[Shot]) -> None:
    """One PNG per (variant, width) beside the HTML, exactly as wide as the viewport."""
    assert len(shots) == len(LOCALES) * 2
    for shot in shots:
        assert shot.png.parent == shot.html.parent
        assert shot.png.name == f"{shot.html.stem}-{shot.width}.png"
        width, height = png_size(shot.png)
        assert (width, height) == (shot.width, shot.height)
        assert shot.height > 1600, "the whole page, not just the viewport"
    assert sorted({s.width for s in shots}) == sorted(WIDTHS)
    # the narrow layout is taller: the column really reflowed
    by_page: dict[Path, dict[int, int]] = {}
    for shot in shots:
        by_page.setdefault(shot.html, {})[shot.width] = shot.height
    assert all(h[375] > h[600] for h in by_page.values())


def test_nothing_overflows_a_phone_screen(shots: list[Shot]) -> None:
    """At 375 px (and 600) the document is no wider than the viewport; no element sticks out."""
    for shot in shots:
        assert shot.scroll_width <= shot.width, (shot.png.name, shot.scroll_width)
        assert shot.overflow == [], (shot.png.name, shot.overflow)
        assert shot.fits


def test_long_words_and_a_wide_logo_fit_a_phone(shooter: Screenshotter, tmp_path: Path) -> None:
    """A 70-letter word, a bare URL in a summary and a 552 px logo wrap or shrink at 375 px."""
    word = "Energieeffizienzsteigerungsmaßnahmenverordnungsnovellierungsentwurf"
    url = "https://partners.example.com/nordkueste/2026/11/supply-chain-pilots-for-black-sea-ports"
    organisation = {**DEMO["organisation"], "logo_width": 552, "logo_height": 120}
    settings = demo_settings(organisation=organisation)
    shown = entries("de", 3)
    long_item = replace(
        shown[1].item, title=f"{word} vorgestellt", summary_html=f"<p>Siehe {url} zu {word}.</p>"
    )
    shown[1] = DigestEntry(long_item, "bg", True)
    variant = Renderer(settings).render(
        segment=settings.segment("members"),
        period_label="W48",
        edition_date=date(2026, 11, 23),
        entries=shown,
        locale="de",
        view_url="https://news.cluster.example.org/archive/1/de",
    )
    page = tmp_path / "de.html"
    page.write_text(personalize(variant, VALUES)[0], encoding="utf-8")
    for shot in shooter.capture(page):
        assert shot.fits, (shot.width, shot.scroll_width, shot.overflow)


def test_overflow_is_detected(shooter: Screenshotter, tmp_path: Path) -> None:
    """The measurement is real: a fixed 500 px block at 375 px is reported."""
    page = tmp_path / "wide.html"
    page.write_text(
        '<!DOCTYPE html><html><body style="margin:0">'
        '<table class="too-wide" width="500"><tr><td>x</td></tr></table></body></html>',
        encoding="utf-8",
    )
    (shot,) = shooter.capture(page, [375])
    assert not shot.fits and shot.scroll_width >= 500
    assert any('class="too-wide"' in line for line in shot.overflow)
    # the shot names the viewport it was taken at; the full-page PNG is as wide as the page
    assert shot.width == 375 and png_size(shot.png)[0] >= 500


@contextmanager
def image_host(host: str) -> Iterator[tuple[str, list[str]]]:
    """A tiny image server on ``host`` (a loopback address); yields (base URL, paths asked)."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", str(len(PIXEL)))
            self.end_headers()
            self.wfile.write(PIXEL)

        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer((host, 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://{host}:{httpd.server_address[1]}", seen
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def _images_page(tmp_path: Path, *urls: str) -> Path:
    page = tmp_path / "images.html"
    page.write_text(
        "<!DOCTYPE html><html><body>"
        + "".join(f'<img src="{url}" width="552" height="310" alt="i">' for url in urls)
        + "</body></html>",
        encoding="utf-8",
    )
    return page


@contextmanager
def settings_of(shooter: Screenshotter, *, remote: bool, allowed: list[str]) -> Iterator[None]:
    """The module's shooter with other image settings for one test."""
    shooter.remote_images, shooter.policy = remote, Gather(allow_private=allowed)
    try:
        yield
    finally:
        shooter.remote_images, shooter.policy = False, Gather()


def test_offline_mode_asks_no_host_but_allow_listed_ones(
    shooter: Screenshotter, tmp_path: Path
) -> None:
    """Offline, not even 127.0.0.1 is asked unless its origin is in gather.allow_private:
    loopback is where an internal service listens, and image URLs come from content."""
    with (
        image_host("127.0.0.1") as (local, local_seen),
        image_host("127.0.0.2") as (
            other,
            other_seen,
        ),
    ):
        page = _images_page(tmp_path, f"{local}/local.png", f"{other}/admin.png")
        (offline,) = shooter.capture(page, [600])
        assert local_seen == [] and other_seen == []
        # the blocked image still takes its declared place (a grey box), so layout is real
        assert offline.height >= 310
        with settings_of(shooter, remote=False, allowed=[local]):
            shooter.capture(page, [600])
        assert local_seen == ["/local.png"] and other_seen == []


@pytest.mark.parametrize(
    "path",
    ["/admin/delete?all=1", "/latest/meta-data/"],
)
def test_remote_images_of_hostile_content_never_reach_internal_addresses(
    shooter: Screenshotter, tmp_path: Path, path: str
) -> None:
    """A story's image pointing inward (loopback in every spelling, metadata, a redirect
    from an allowed host) is refused by the guard; the screenshot shows a grey box."""
    with (
        image_host("127.0.0.1") as (inner, inner_seen),
        image_host("127.0.0.2") as (
            allowed,
            allowed_seen,
        ),
    ):
        port = inner.rsplit(":", 1)[1]
        page = _images_page(
            tmp_path,
            f"{inner}{path}",
            f"http://2130706433:{port}{path}",
            f"http://0x7f.1:{port}{path}",
            f"http://[::ffff:127.0.0.1]:{port}{path}",
            f"http://localhost:{port}{path}",
            "http://169.254.169.254/latest/meta-data/",
            f"{allowed}/ok.png",
        )
        with settings_of(shooter, remote=True, allowed=[allowed]):
            (shot,) = shooter.capture(page, [375])
        assert inner_seen == []
        assert allowed_seen == ["/ok.png"]  # the operator's own origin loads as it is
        assert shot.png.exists() and shot.height >= 7 * 310


def test_remote_images_are_fetched_by_the_guarded_client(
    shooter: Screenshotter, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chromium itself never connects: an image is fetched through fetch_url, under the
    [gather] policy, and handed to the page; a refusal or failure is a grey box."""
    asked: list[tuple[str, int]] = []

    def fake_fetch(client: GuardedClient, url: str, *, timeout: float) -> Fetched:
        asked.append((url, client.policy.max_bytes))
        if "refused" in url:
            raise DestinationRefusedError(f"{url} refused: 10.0.0.1 is a private address")
        return Fetched(url, 200, httpx.Headers({"content-type": "image/png"}), PIXEL)

    monkeypatch.setattr(screenshots, "fetch_url", fake_fetch)
    with settings_of(shooter, remote=True, allowed=[]):
        shooter.policy = Gather(max_bytes=4096)
        ok = shooter.decide("https://images.example.org/a.png", "image")
        refused = shooter.decide("https://refused.example.org/a.png", "image")
        script = shooter.decide("https://images.example.org/x.js", "script")
        here = shooter.decide("file:///tmp/page.html", "document")
    assert ok == ("fulfill", PIXEL, "image/png")
    assert refused[0] == "fulfill" and refused[2] == "image/svg+xml"
    assert script[0] == "abort" and here[0] == "continue"
    assert asked == [
        ("https://images.example.org/a.png", 4096),
        ("https://refused.example.org/a.png", 4096),
    ]
    # offline, nothing is fetched at all
    assert shooter.decide("https://images.example.org/a.png", "image")[2] == "image/svg+xml"
    assert len(asked) == 2


def test_missing_chromium_is_one_clear_line(tmp_path: Path) -> None:
    """A wrong browser path fails before anything starts, naming the path and the fix."""
    with pytest.raises(ScreenshotError) as info:
        Screenshotter(tmp_path / "no-chromium")
    message = str(info.value)
    assert str(tmp_path / "no-chromium") in message and "apt-get install chromium" in message
    assert "\n" not in message
    assert find_chromium(CHROMIUM) == str(CHROMIUM)


def test_missing_playwright_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the optional extra installed, the error says which extra to install."""
    # a None entry makes "import playwright.sync_api" raise ImportError, as if absent
    monkeypatch.setitem(sys.modules, "playwright.sync_api", None)
    with pytest.raises(ScreenshotError, match=r"pip install 'newsletter\[screenshots\]'"):
        Screenshotter(CHROMIUM)


def test_preview_command_writes_screenshots_beside_the_html(tmp_path: Path) -> None:
    """``newsletter preview --screenshots`` as a user runs it, offline."""
    cfg = project(tmp_path)
    settings = load(cfg)
    with Store.open(settings.database_url()) as store:  # in-process: one process less
        assert gather(settings, store).new > 0
    proc = cli(cfg, "preview", "--screenshots", "--no-remote-images", "-s", "members", "-l", "de")
    assert proc.returncode == 0, proc.stderr
    folder = tmp_path / "preview" / "members"
    for width in WIDTHS:
        assert png_size(folder / f"de-{width}.png")[0] == width
    assert "2 screenshot(s)" in proc.stdout and "wider than" not in proc.stdout
    index = (tmp_path / "preview" / "index.html").read_text(encoding="utf-8")
    assert 'href="members/de-375.png"' in index and 'href="members/de-600.png"' in index
    # the archive copy written beside it is the same HTML the screenshots show
    assert (folder / "de.html").read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_preview_command_with_nothing_gathered_says_so(tmp_path: Path) -> None:
    """Before any gather there is nothing to render: a hint, exit 0, no screenshots."""
    cfg = project(tmp_path)
    proc = cli(cfg, "preview", "--screenshots", "--no-remote-images")
    assert proc.returncode == 0, proc.stderr
    assert "Nothing to preview" in proc.stdout and "newsletter gather" in proc.stdout
    assert not list(tmp_path.glob("preview/**/*.png"))


def test_preview_command_without_chromium_fails_in_one_line(tmp_path: Path) -> None:
    """A missing browser: exit 1, one line on stderr, no traceback, nothing rendered."""
    cfg = project(tmp_path)
    proc = cli_env(
        cfg, {"NEWSLETTER_CHROMIUM": str(tmp_path / "missing")}, "preview", "--screenshots"
    )
    assert proc.returncode == 1
    assert "Chromium not found" in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "preview").exists()


def cli_env(cfg: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """Like ``test_cli.cli`` with extra environment variables."""
    return subprocess.run(
        [sys.executable, "-m", "newsletter", "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=cfg.parent,
        env={
            "PATH": "/usr/bin:/bin",
            "COLUMNS": "200",
            "NEWSLETTER_SECRET_KEY": "test-key",
            **env,
        },
    )


def test_a_failing_page_is_one_line_and_the_browser_stays_usable(
    shooter: Screenshotter, tmp_path: Path
) -> None:
    """A file that cannot be opened: ScreenshotError in one line; the next capture works."""
    with pytest.raises(ScreenshotError, match=r"missing\.html: screenshot failed") as info:
        shooter.capture(tmp_path / "missing.html")
    assert "\n" not in str(info.value)
    page = tmp_path / "ok.html"
    page.write_text("<!DOCTYPE html><p>ok</p>", encoding="utf-8")
    assert shooter.capture(page, [375])[0].fits
