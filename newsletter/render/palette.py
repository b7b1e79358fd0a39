"""Brand colours for the templates: derived colours and a WCAG contrast check.

The configured colours (``[organisation.colors]``) are all a rebrand needs; the colours
that sit *on* a brand colour (masthead text, button text) are picked here so that they
always contrast with it, and every pair the default templates put text on is checked
against WCAG 2.x: 4.5:1, the minimum for body text. A palette that fails is refused before
anything is rendered, with the two keys and the ratio in the message.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config import Colors, Settings
from newsletter.errors import ConfigError

#: WCAG 2.x minimum contrast for normal-size text (success criterion 1.4.3, level AA)
MIN_TEXT_CONTRAST = 4.5

WHITE = "#ffffff"


def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(color: str) -> float:
    """WCAG relative luminance of ``#rrggbb``: 0 for black, 1 for white."""
    r, g, b = (int(color[i : i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast(foreground: str, background: str) -> float:
    """WCAG contrast ratio of two ``#rrggbb`` colours, from 1.0 to 21.0."""
    a, b = sorted((luminance(foreground), luminance(background)), reverse=True)
    return (a + 0.05) / (b + 0.05)


def mix(color: str, other: str, amount: float) -> str:
    """``color`` moved ``amount`` (0..1) of the way towards ``other`` (for hairlines)."""
    out = []
    for i in (1, 3, 5):
        x, y = int(color[i : i + 2], 16), int(other[i : i + 2], 16)
        out.append(round(x + (y - x) * amount))
    return "#" + "".join(f"{v:02x}" for v in out)


def readable_on(background: str, *candidates: str) -> str:
    """The candidate with the highest contrast on ``background`` (first wins a tie)."""
    return max(candidates, key=lambda c: contrast(c, background))


@dataclass(frozen=True)
class Palette:
    """Every colour the default templates use, light and dark; attribute names are public.

    Templates written for the plain :class:`~newsletter.config.Colors` keep working: the
    configured names are all here, unchanged.
    """

    primary: str
    accent: str
    text: str
    muted: str
    background: str
    surface: str
    dark_background: str
    dark_surface: str
    dark_text: str
    dark_muted: str
    dark_primary: str
    dark_accent: str
    #: text on the masthead band (``primary``) and on buttons (``accent``)
    on_primary: str
    on_accent: str
    dark_on_accent: str
    #: hairlines between items: decoration, no contrast requirement
    border: str
    dark_border: str

    @classmethod
    def from_colors(cls, colors: Colors) -> Palette:
        """Derive the full palette from the configured colours."""
        return cls(
            primary=colors.primary,
            accent=colors.accent,
            text=colors.text,
            muted=colors.muted,
            background=colors.background,
            surface=colors.surface,
            dark_background=colors.dark_background,
            dark_surface=colors.dark_surface,
            dark_text=colors.dark_text,
            dark_muted=colors.dark_muted,
            dark_primary=colors.dark_primary,
            dark_accent=colors.dark_accent,
            on_primary=readable_on(colors.primary, WHITE, colors.text),
            on_accent=readable_on(colors.accent, WHITE, colors.text),
            dark_on_accent=readable_on(colors.dark_accent, WHITE, colors.dark_background),
            border=mix(colors.surface, colors.text, 0.12),
            dark_border=mix(colors.dark_surface, colors.dark_text, 0.18),
        )

    def text_pairs(self) -> list[tuple[str, str, str]]:
        """(foreground key, background key, what reads there) for every text the templates show."""
        return [
            ("text", "surface", "body text"),
            ("primary", "surface", "headings"),
            ("muted", "surface", "dates and labels"),
            ("muted", "background", "footer text and links"),
            ("on_primary", "primary", "masthead text"),
            ("on_accent", "accent", "'read more' buttons"),
            ("dark_text", "dark_surface", "body text in dark mode"),
            ("dark_primary", "dark_surface", "headings in dark mode"),
            ("dark_muted", "dark_surface", "dates and labels in dark mode"),
            ("dark_muted", "dark_background", "footer text in dark mode"),
            ("dark_on_accent", "dark_accent", "buttons in dark mode"),
        ]

    def problems(self, minimum: float = MIN_TEXT_CONTRAST) -> list[str]:
        """One line per text colour pair below ``minimum`` contrast (empty: all readable)."""
        out = []
        for fg, bg, what in self.text_pairs():
            ratio = contrast(getattr(self, fg), getattr(self, bg))
            if ratio < minimum:
                out.append(
                    f"{_key(fg)} {getattr(self, fg)} on {_key(bg)} {getattr(self, bg)} has "
                    f"contrast {ratio:.2f}:1, {what} need at least {minimum:g}:1"
                )
        return out


def _key(name: str) -> str:
    if name.startswith(("on_", "dark_on_")):
        base = name.replace("on_", "")
        return f"text chosen for organisation.colors.{base}"
    return f"organisation.colors.{name}"


def checked_palette(settings: Settings) -> Palette:
    """The template palette; :class:`ConfigError` for unreadable colours or relative URLs."""
    where = settings.config_path or "config"
    palette = Palette.from_colors(settings.organisation.colors)
    problems = palette.problems()
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ConfigError(f"{where}: {problems[0]}{more}")
    org = settings.organisation
    for key, url in (("website", org.website), ("logo_url", org.logo_url)):
        if url is not None and not url.startswith(("https://", "http://")):
            raise ConfigError(
                f"{where}: organisation.{key}: {url!r} must be an absolute http(s) URL "
                "(mail clients have no base to resolve a relative one)"
            )
    return palette
