"""Optional machine translation of items missing in a reader's language (off by default).

The digest calls :func:`translate_missing` after selecting stories: for each story and
locale with no human variant, a translation is taken from the store's cache or made once
by the configured :class:`Translator`, and added as a variant tagged ``machine-translated``
so the email always says so. A translator that fails, is rate limited or out of quota
never stops a send: it is left alone for the rest of the run and readers get the
language fallback chain instead.
"""

from __future__ import annotations

import html
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Protocol

from newsletter.config import Settings
from newsletter.digest.select import Story
from newsletter.digest.translate.base import TranslationError, Translator
from newsletter.digest.translate.cache import CachedTranslation, TranslationCache
from newsletter.digest.translate.deepl import PLAN_URLS, DeepLTranslator
from newsletter.errors import ConfigError
from newsletter.models import Item

log = logging.getLogger(__name__)


class TranslatorFactory(Protocol):
    """How an adapter is built from the config: key, host and timeout."""

    def __call__(self, api_key: str, *, base_url: str, timeout: float) -> Translator: ...


#: translator adapters by the name used in ``[translation] provider``
TRANSLATORS: dict[str, TranslatorFactory] = {"deepl": DeepLTranslator}


def build_translator(
    settings: Settings, environ: Mapping[str, str] | None = None
) -> Translator | None:
    """The configured translator, or None when translation is off.

    The API key is read from the environment variable named in the config; a missing key
    with translation enabled is a :class:`ConfigError` naming that variable.
    """
    conf = settings.translation
    if not conf.enabled:
        return None
    env = os.environ if environ is None else environ
    key = env.get(conf.api_key_env, "").strip()
    if not key:
        raise ConfigError(
            f"translation is enabled but the environment variable {conf.api_key_env} "
            f"(the {conf.provider} API key) is not set"
        )
    base_url = conf.base_url or PLAN_URLS[conf.plan]
    return TRANSLATORS[conf.provider](key, base_url=base_url, timeout=conf.timeout)


def machine_variant(original: Item, target: str, t: CachedTranslation) -> Item:
    """``original`` as a machine-translated variant in ``target`` (same id and story)."""
    return replace(
        original,
        lang=target,
        title=t.title,
        body_html=t.body_html,
        summary_html=t.summary_html,
        translated_from=original.lang,
    )


def _translate(translator: Translator, item: Item, target: str) -> CachedTranslation:
    """One request per item: title, body and summary together."""
    # the title is plain text; escape it so it survives HTML tag handling unchanged
    title, body, summary = translator.translate(
        [html.escape(item.title, quote=False), item.body_html, item.summary_html],
        source=item.lang,
        target=target,
    )
    return CachedTranslation(
        title=html.unescape(title), body_html=body, summary_html=summary, provider=translator.name
    )


#: one item's title, body and summary translated in one request (the desk's machine drafts)
translate_item = _translate


def translate_missing(
    stories: Sequence[Story],
    locales: Sequence[str],
    translator: Translator | None,
    cache: TranslationCache,
    now: datetime,
) -> list[Story]:
    """``stories`` with a machine-translated variant added for each locale that lacks one.

    Translations come from ``cache`` when the original is unchanged, else from
    ``translator`` (then cached). Locales the translator does not support are skipped.
    Translation errors are logged once and never raised: after the first one, no further
    requests are made in this call and stories keep only their cached or human variants.
    """
    if translator is None:
        return list(stories)
    wanted = [loc for loc in dict.fromkeys(locales) if translator.supports(loc)]
    for loc in dict.fromkeys(locales):
        if loc not in wanted:
            log.info(
                "%s cannot translate into %s; its readers get the fallback chain",
                translator.name,
                loc,
            )
    failed = False
    out: list[Story] = []
    for story in stories:
        original = story.original
        added: list[Item] = []
        for target in wanted:
            if original.lang == target or story.in_lang(target) is not None:
                continue
            cached = cache.get(original.id, target, original.content_hash)
            if cached is None and not failed:
                try:
                    cached = _translate(translator, original, target)
                except TranslationError as exc:
                    failed = True
                    log.warning(
                        "machine translation stopped for this run, readers get the fallback "
                        "chain (item %d, %s -> %s): %s",
                        original.id,
                        original.lang,
                        target,
                        exc,
                    )
                    continue
                cache.put(original.id, target, original.content_hash, cached, now)
            if cached is not None:
                added.append(machine_variant(original, target, cached))
        out.append(replace(story, variants=(*story.variants, *added)) if added else story)
    return out


__all__ = [
    "TRANSLATORS",
    "CachedTranslation",
    "DeepLTranslator",
    "TranslationCache",
    "TranslationError",
    "Translator",
    "build_translator",
    "machine_variant",
    "translate_item",
    "translate_missing",
]
