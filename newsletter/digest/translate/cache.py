"""The translation cache, re-exported for the translate package.

The repository itself lives in :mod:`newsletter.store.translations`, next to the other
repositories, so that the store never imports this package (that import would be
circular: the store facade attaches the cache as ``store.translations``).
"""

from __future__ import annotations

from newsletter.store.translations import CachedTranslation, TranslationCache

__all__ = ["CachedTranslation", "TranslationCache"]
