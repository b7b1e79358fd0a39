"""Language detection for items that declare no language.

py3langid is used because its model ships inside a ~4.6 MB wheel (lingua-language-detector's
is ~96 MB); restricted to the configured languages it is accurate on paragraph-length news,
which is what gather feeds it. Very short texts get a low normalized probability, so the
caller's confidence threshold sends them to the source's configured language instead.
"""

from __future__ import annotations

import copy
import functools
import logging
import re
import threading
from collections.abc import Sequence

import lxml.html
from lxml import etree
from py3langid.langid import MODEL_FILE, LanguageIdentifier

log = logging.getLogger("newsletter.gather.langdetect")

#: texts with fewer letters than this carry no usable signal: ``detect`` returns ``None``
MIN_LETTERS = 3
#: the classifier walks every byte in Python; a few paragraphs are plenty to decide
MAX_CHARS = 3000

_TAG = re.compile(r"<[A-Za-z/!]")


@functools.cache
def _base_identifier() -> LanguageIdentifier:
    """The full model, loaded once per process (decompressing it takes most of a second)."""
    log.debug("loading the py3langid model")
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def language_part(locale: str) -> str:
    """``pt_BR`` / ``pt-BR`` -> ``pt``: py3langid knows languages, not regions."""
    return locale.strip().replace("_", "-").split("-", 1)[0].lower()


def plain_text(text: str) -> str:
    """``text`` without HTML tags, whitespace collapsed; plain text passes through.

    Unlike the summary's text, headings and captions are kept: every visible word is
    evidence of the language. Text nodes are joined with spaces so block boundaries
    never glue two words together.
    """
    if not _TAG.search(text):
        return " ".join(text.split())
    try:
        root = lxml.html.fragment_fromstring(text, create_parent="div")
    except (etree.ParserError, ValueError):
        return " ".join(text.split())
    for el in list(root.iter("script", "style")):
        el.drop_tree()
    return " ".join(" ".join(root.itertext()).split())


class LanguageDetector:
    """Detects the language of a text among the configured locales only.

    Restricting the model to the languages readers actually get avoids confusions with
    languages nobody writes in (Macedonian for Bulgarian, for example) and sharpens the
    probabilities. Locales the model does not know are ignored; a detector left with no
    language detects nothing.
    """

    def __init__(self, languages: Sequence[str]) -> None:
        base = _base_identifier()
        known = set(base.labels)
        wanted = list(dict.fromkeys(language_part(lang) for lang in languages))
        self.languages: tuple[str, ...] = tuple(lang for lang in wanted if lang in known)
        ignored = [lang for lang in wanted if lang not in known]
        if ignored:
            log.info("language detection ignores unknown languages: %s", ", ".join(ignored))
        self._identifier: LanguageIdentifier | None = None
        if self.languages:
            # a shallow copy shares the model arrays; set_languages only rebinds the copy's
            identifier = copy.copy(base)
            identifier.set_languages(list(self.languages))
            self._identifier = identifier

    def detect(self, text: str) -> tuple[str, float] | None:
        """``(language, probability 0..1)`` of ``text`` (HTML allowed), or ``None``.

        ``None`` means there was nothing to judge: empty or too short text, or no known
        language configured.
        """
        if self._identifier is None:
            return None
        plain = plain_text(text)[:MAX_CHARS]
        if sum(ch.isalpha() for ch in plain) < MIN_LETTERS:
            return None
        lang, confidence = self._identifier.classify(plain)
        return str(lang), float(confidence)


class LazyLanguageDetector(LanguageDetector):
    """A :class:`LanguageDetector` that loads the model only when first asked to detect.

    Loading takes most of a second; a gather where every item declares its language, or
    every feed answers 304, never pays it.
    """

    def __init__(self, languages: Sequence[str]) -> None:  # deliberately not super()
        self._wanted = tuple(languages)
        self._loaded: LanguageDetector | None = None
        self._loading = threading.Lock()

    def detect(self, text: str) -> tuple[str, float] | None:
        """As :meth:`LanguageDetector.detect`, loading the model the first time.

        Safe from several threads: the model is loaded once and only read afterwards.
        """
        if self._loaded is None:
            with self._loading:
                if self._loaded is None:
                    self._loaded = LanguageDetector(self._wanted)
        return self._loaded.detect(text)
