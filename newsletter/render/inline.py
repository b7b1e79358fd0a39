"""CSS inlining with premailer, tuned for email and for rendering many variants quickly.

Mail clients such as Gmail keep only inline ``style`` attributes reliably, so the rules of
the template's stylesheet are copied onto every element once per variant; rules that
cannot be inlined (media queries, ``:hover``) stay in a ``<style>`` block, and blocks
marked ``data-premailer="ignore"`` are left alone.
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

from premailer import Premailer

from newsletter.errors import RenderError


class _CachingPremailer(Premailer):  # type: ignore[misc]  # premailer has no type hints
    """Premailer that serializes each stylesheet's rules once, not on every transform.

    premailer caches the parsed stylesheet but formats every declaration again (through
    cssutils, slowly) for each document; every variant of a run shares one stylesheet, so
    that work is cached here by the stylesheet's text. The cached rules are only read by
    premailer, as its own parse cache already relies on.
    """

    _rules: ClassVar[dict[tuple[str, int], Any]] = {}
    _MAX = 64

    def _parse_style_rules(self, css_body: str, ruleset_index: int) -> Any:
        key = (css_body, ruleset_index)
        found = self._rules.get(key)
        if found is None:
            found = super()._parse_style_rules(css_body, ruleset_index)
            if len(self._rules) >= self._MAX:
                self._rules.clear()
            self._rules[key] = found
        return found


def inline_css(html: str) -> str:
    """``html`` with its stylesheet inlined; :class:`RenderError` if the CSS cannot be."""
    try:
        return str(
            _CachingPremailer(
                html,
                strip_important=False,
                # the inlined rules are not needed twice; leftovers (media queries,
                # :hover) stay in a <style> block
                keep_style_tags=False,
                # the template sets width/height (in pixels) and bgcolor (on tables and
                # cells only) itself: CSS values such as 100% must not overwrite them, and
                # bgcolor on a <span> or <img> is not HTML
                disable_basic_attributes=["width", "height", "bgcolor"],
                cssutils_logging_level=logging.CRITICAL,
                disable_validation=True,
                allow_network=False,
                allow_loading_external_files=False,
                disable_link_rewrites=True,
                remove_classes=False,
                exclude_pseudoclasses=True,
                cache_css_parsing=True,
            ).transform(pretty_print=False)
        )
    except Exception as exc:  # premailer raises assorted cssutils/lxml errors
        raise RenderError(f"CSS inlining failed: {exc}") from exc
