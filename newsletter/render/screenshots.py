"""Screenshots of rendered variants in headless Chromium, so editors see what readers see.

``newsletter preview --screenshots`` writes ``<locale>-600.png`` and ``<locale>-375.png``
beside each variant's HTML: a desktop client's reading pane and a phone. While doing so it
measures the page at each width and reports elements wider than the viewport (text a
phone reader would have to scroll sideways for).

Needs the optional extra ``screenshots`` (the ``playwright`` package) and a Chromium
binary: ``/usr/bin/chromium`` (Debian's ``chromium`` package) unless ``$NEWSLETTER_CHROMIUM``
names another. Playwright's own browser download is never used.

Every request the page makes is intercepted: image URLs come from gathered content, so
a hostile story could point one at ``http://127.0.0.1:8080/admin/...`` or a cloud metadata
address and have the operator's machine ask it. Remote images are loaded by default (that
is what readers see), but through the same guarded client as gathering
(:class:`~newsletter.gather.netguard.GuardedClient`: public addresses only, checked at connect
and every redirect, ``[gather]`` byte limit, a deadline), never by Chromium itself. An
image that is refused or fails becomes a neutral grey box of its declared size; anything
else remote is blocked. With ``remote_images=False`` no request leaves the machine: every
image is a grey box. Only origins in ``[gather] allow_private`` are passed to Chromium
as they are, in both modes.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from newsletter.config import Gather, Settings
from newsletter.config.gather import DEFAULT_PORTS
from newsletter.digest.trial import preview
from newsletter.errors import DestinationRefusedError, ScreenshotError, SourceError
from newsletter.gather.netguard import GuardedClient
from newsletter.gather.sources.fetch import fetch_url
from newsletter.redact import mask_url
from newsletter.render.preview import PageEntry, screenshot_path, write_index
from newsletter.store import Store

#: the reading pane of a desktop client, and a phone
WIDTHS: tuple[int, ...] = (600, 375)
CHROMIUM_ENV = "NEWSLETTER_CHROMIUM"
DEFAULT_CHROMIUM = "/usr/bin/chromium"
#: no sandbox (containers, CI), and nothing a preview does not need
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: seconds one remote image may take, redirects and body included
IMAGE_TIMEOUT = 10.0

log = logging.getLogger(__name__)
#: stands in for a blocked remote image: no intrinsic size, so the <img> keeps its own
PLACEHOLDER_IMAGE = (
    b'<svg xmlns="http://www.w3.org/2000/svg"><rect width="100%" height="100%" '
    b'fill="#c5ccd3"/></svg>'
)

# Every visible element whose box leaves the viewport, described for a human.
_OVERFLOW_JS = """
() => {
  const vw = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > vw + 0.5 || r.left < -0.5) {
      const cls = el.getAttribute('class');
      out.push(`<${el.tagName.toLowerCase()}${cls ? ' class="' + cls + '"' : ''}> spans `
               + `${Math.round(r.left)}..${Math.round(r.right)} px`);
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, clientWidth: vw,
          overflow: out.slice(0, 20)};
}
"""


@dataclass(frozen=True)
class Shot:
    """One screenshot of one HTML file at one viewport width."""

    html: Path
    png: Path
    #: the viewport width; the PNG is this wide unless the page overflows it
    width: int
    #: the PNG's height: the whole page
    height: int
    #: the document's scrollWidth: more than ``width`` means sideways scrolling
    scroll_width: int
    #: elements that stick out of the viewport (empty when everything fits)
    overflow: list[str] = field(default_factory=list)

    @property
    def fits(self) -> bool:
        """True when nothing is wider than the viewport."""
        return self.scroll_width <= self.width and not self.overflow


def png_size(path: Path) -> tuple[int, int]:
    """(width, height) of a PNG file, read from its IHDR chunk."""
    with path.open("rb") as fh:
        head = fh.read(24)
    if len(head) < 24 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        raise ScreenshotError(f"{path}: not a PNG file")
    width, height = struct.unpack(">II", head[16:24])
    return int(width), int(height)


def _origin(parts: Any) -> str:
    """``scheme://host:port`` as ``[gather] allow_private`` writes origins."""
    host = (parts.hostname or "").rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    try:
        port = parts.port or DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return ""
    return f"{parts.scheme}://{shown}:{port}"


def _first_line(exc: BaseException) -> str:
    # playwright appends a multi-line call log; the first line says what went wrong
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def find_chromium(executable: str | Path | None = None) -> str:
    """The Chromium binary to use; :class:`ScreenshotError` in one line when there is none."""
    path = Path(executable or os.environ.get(CHROMIUM_ENV) or DEFAULT_CHROMIUM)
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ScreenshotError(
            f"Chromium not found at {path}: install it (Debian/Ubuntu: apt-get install "
            f"chromium) or set ${CHROMIUM_ENV} to its path"
        )
    return str(path)


class Screenshotter:
    """One headless Chromium, reused for every screenshot; close it (or use ``with``).

    Playwright's sync API allows one running instance per thread: close a Screenshotter
    before starting another in the same thread.
    """

    def __init__(
        self,
        executable: str | Path | None = None,
        *,
        remote_images: bool = True,
        timeout_ms: float = 30_000,
        policy: Gather | None = None,
    ) -> None:
        binary = find_chromium(executable)
        try:
            from playwright.sync_api import Error, sync_playwright
        except ImportError as exc:
            raise ScreenshotError(
                "screenshots need the optional extra: pip install 'newsletter[screenshots]'"
            ) from exc
        self._error: type[Exception] = Error
        self._open_page: Any = None
        self.remote_images = remote_images
        self._client: GuardedClient | None = None
        self.policy = policy if policy is not None else Gather()
        self.timeout_ms = timeout_ms
        self._pw = sync_playwright().start()
        try:
            self._browser = self._pw.chromium.launch(
                executable_path=binary, args=CHROMIUM_ARGS, headless=True
            )
        except Error as exc:
            self._pw.stop()
            raise ScreenshotError(
                f"Chromium at {binary} failed to start: {_first_line(exc)}"
            ) from exc

    @property
    def policy(self) -> Gather:
        """The ``[gather]`` policy remote images are fetched under (may be changed)."""
        return self._policy

    @policy.setter
    def policy(self, policy: Gather) -> None:
        self._policy = policy
        self._allowed = frozenset(policy.allow_private)
        if self._client is not None:
            self._client.close()
            self._client = None

    def _route(self, route: Any) -> None:
        """Decide every request of the page: see the module's docstring."""
        request = route.request
        action, body, content_type = self.decide(request.url, request.resource_type)
        if action == "continue":
            route.continue_()
        elif action == "fulfill":
            route.fulfill(status=200, content_type=content_type, body=body)
        else:
            route.abort()

    def decide(self, url: str, resource_type: str) -> tuple[str, bytes, str]:
        """``("continue" | "fulfill" | "abort", body, content type)`` for one request.

        The page's own file and ``data:`` URLs continue, as do allow-listed origins; a
        remote image is fetched guarded (when ``remote_images``) and fulfilled, or is a
        grey box; any other remote request is aborted.
        """
        parts = urlsplit(url)
        if parts.scheme in ("file", "data"):
            return "continue", b"", ""
        if parts.scheme in DEFAULT_PORTS and _origin(parts) in self._allowed:
            return "continue", b"", ""
        if resource_type != "image":
            return "abort", b"", ""
        if self.remote_images and parts.scheme in DEFAULT_PORTS:
            fetched = self._fetch_image(url)
            if fetched is not None:
                return "fulfill", *fetched
        return "fulfill", PLACEHOLDER_IMAGE, "image/svg+xml"

    def _fetch_image(self, url: str) -> tuple[bytes, str] | None:
        if self._client is None:
            self._client = GuardedClient(self._policy)
        try:
            answer = fetch_url(self._client, url, timeout=IMAGE_TIMEOUT)
        except (DestinationRefusedError, SourceError) as exc:
            log.warning("screenshot image not loaded: %s", exc)
            return None
        except Exception as exc:  # a broken image must not stop the screenshots
            log.warning("screenshot image %s not loaded: %s", mask_url(url), type(exc).__name__)
            return None
        content_type = answer.headers.get("content-type", "application/octet-stream")
        return answer.content, content_type

    def _page(self) -> Any:
        # one page for every file and width: opening a page costs more than a screenshot
        if self._open_page is None:
            self._open_page = self._browser.new_page(viewport={"width": WIDTHS[0], "height": 800})
            self._open_page.set_default_timeout(self.timeout_ms)
            # every request, in both modes: Chromium itself never reaches the network
            self._open_page.route("**/*", self._route)
        return self._open_page

    def capture(self, html: Path, widths: Sequence[int] = WIDTHS) -> list[Shot]:
        """Screenshot the whole page of ``html`` at each viewport width, PNGs beside it."""
        page = self._page()
        shots = []
        try:
            page.set_viewport_size({"width": widths[0], "height": 800})
            page.goto(html.resolve().as_uri(), wait_until="load")
            for width in widths:
                page.set_viewport_size({"width": width, "height": 800})
                metrics = page.evaluate(_OVERFLOW_JS)
                target = screenshot_path(html, width)
                page.screenshot(path=str(target), full_page=True)
                _png_width, png_height = png_size(target)
                shots.append(
                    Shot(
                        html=html,
                        png=target,
                        width=width,
                        height=png_height,
                        scroll_width=int(metrics["scrollWidth"]),
                        overflow=[str(x) for x in metrics["overflow"]],
                    )
                )
        except self._error as exc:
            raise ScreenshotError(f"{html}: screenshot failed: {_first_line(exc)}") from exc
        return shots

    def close(self) -> None:
        """Shut the browser down."""
        try:
            self._browser.close()
        finally:
            self._pw.stop()
            if self._client is not None:
                self._client.close()

    def __enter__(self) -> Screenshotter:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def capture(
    pages: Iterable[Path],
    widths: Sequence[int] = WIDTHS,
    *,
    executable: str | Path | None = None,
    remote_images: bool = True,
    policy: Gather | None = None,
) -> list[Shot]:
    """Screenshot every HTML file in ``pages`` at every width, PNGs beside the HTML."""
    with Screenshotter(executable, remote_images=remote_images, policy=policy) as shooter:
        return [shot for page in pages for shot in shooter.capture(page, widths)]


def preview_with_screenshots(
    settings: Settings,
    store: Store,
    *,
    segments: list[str] | None = None,
    locales: list[str] | None = None,
    out: Path | None = None,
    remote_images: bool = True,
    executable: str | Path | None = None,
) -> tuple[Path, list[PageEntry], list[Shot]]:
    """``newsletter preview`` plus screenshots of every variant; the index links them."""
    # fail on a missing browser before rendering anything
    find_chromium(executable)
    index, entries = preview(settings, store, segments=segments, locales=locales, out=out)
    if not entries:  # nothing rendered: no browser to start
        return index, entries, []
    shots = capture(
        [e.path for e in entries],
        executable=executable,
        remote_images=remote_images,
        policy=settings.gather,
    )
    index = write_index(index.parent, "Preview", entries)
    return index, entries, shots
