"""DeepL text translation over httpx (POST /v2/translate, JSON body, HTML tag handling).

Language lists follow DeepL's "Languages supported" page (stable languages only; beta
languages need ``enable_beta_languages`` and are not used). Georgian (``ka``) is not a
DeepL language, so :meth:`DeepLTranslator.supports` says no and ``ka`` readers keep the
fallback chain.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx

from newsletter.digest.translate.base import TranslationError, Translator

FREE_URL = "https://api-free.deepl.com"
PRO_URL = "https://api.deepl.com"
#: API host per configured plan
PLAN_URLS = {"free": FREE_URL, "pro": PRO_URL}

# fmt: off
SOURCE_LANGS = frozenset({
    "AR", "BG", "CS", "DA", "DE", "EL", "EN", "ES", "ET", "FI", "FR", "HU", "ID", "IT", "JA",
    "KO", "LT", "LV", "NB", "NL", "PL", "PT", "RO", "RU", "SK", "SL", "SV", "TR", "UK", "ZH",
})
TARGET_LANGS = frozenset({
    "AR", "BG", "CS", "DA", "DE", "EL", "EN-GB", "EN-US", "ES", "ET", "FI", "FR", "HU", "ID",
    "IT", "JA", "KO", "LT", "LV", "NB", "NL", "PL", "PT-BR", "PT-PT", "RO", "RU", "SK", "SL",
    "SV", "TR", "UK", "ZH-HANS", "ZH-HANT",
})
# fmt: on
# DeepL wants a variant for these; the cluster writes to European readers
_DEFAULT_VARIANT = {"EN": "EN-GB", "PT": "PT-PT", "ZH": "ZH-HANS"}

# status -> (what it means, retryable)
_STATUS = {
    400: ("bad request", False),
    403: ("authorization failed, check the API key", False),
    404: ("endpoint not found, check base_url", False),
    413: ("request too large", False),
    429: ("too many requests", True),
    456: ("quota exceeded", False),
    529: ("too many requests", True),
}


def target_code(locale: str) -> str:
    """The DeepL target code for a locale: "en" -> "EN-GB", "pt_BR" -> "PT-BR", "de" -> "DE"."""
    code = locale.replace("_", "-").upper()
    return _DEFAULT_VARIANT.get(code, code)


def source_code(locale: str) -> str:
    """The DeepL source code for a locale: the language without its region ("en-GB" -> "EN")."""
    return locale.replace("_", "-").split("-", 1)[0].upper()


class DeepLTranslator(Translator):
    """Translates through DeepL's REST API; pass ``client`` to share or test a connection pool."""

    name = "deepl"

    def __init__(
        self,
        api_key: str,
        *,
        base_url: str = FREE_URL,
        timeout: float = 15.0,
        client: httpx.Client | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._headers = {"Authorization": f"DeepL-Auth-Key {api_key}"}
        self._owns_client = client is None
        self._client = client if client is not None else httpx.Client(timeout=timeout)

    def supports(self, target: str) -> bool:
        """Whether DeepL translates into ``target`` (Georgian, for one, it does not)."""
        return target_code(target) in TARGET_LANGS

    def translate(self, texts: Sequence[str], *, source: str, target: str) -> list[str]:
        """Translate HTML fragments in one request; empty fragments are not sent."""
        if not self.supports(target):
            raise TranslationError(f"DeepL cannot translate into {target!r}")
        wanted = [i for i, text in enumerate(texts) if text.strip()]
        out = list(texts)
        if not wanted:
            return out
        body: dict[str, Any] = {
            "text": [texts[i] for i in wanted],
            "target_lang": target_code(target),
            "tag_handling": "html",
        }
        # an unknown source language is left to DeepL's detection instead of a 400
        if source_code(source) in SOURCE_LANGS:
            body["source_lang"] = source_code(source)
        url = f"{self.base_url}/v2/translate"
        translated = self._post(url, body)
        if len(translated) != len(wanted):
            raise TranslationError(
                f"{url}: {len(translated)} translations for {len(wanted)} texts", retryable=True
            )
        for i, text in zip(wanted, translated, strict=True):
            out[i] = text
        return out

    def _post(self, url: str, body: dict[str, Any]) -> list[str]:
        try:
            response = self._client.post(url, json=body, headers=self._headers)
        except httpx.TimeoutException as exc:
            raise TranslationError(f"{url}: timed out", retryable=True) from exc
        except httpx.HTTPError as exc:
            raise TranslationError(f"{url}: {exc}", retryable=True) from exc
        if response.status_code != 200:
            what, retryable = _STATUS.get(
                response.status_code, ("server error", response.status_code >= 500)
            )
            raise TranslationError(
                f"{url}: HTTP {response.status_code} {what}{_detail(response)}",
                retryable=retryable,
            )
        try:
            data = response.json()
            return [str(t["text"]) for t in data["translations"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise TranslationError(f"{url}: unexpected answer: {exc}", retryable=True) from exc

    def close(self) -> None:
        """Close the HTTP client if this translator created it."""
        if self._owns_client:
            self._client.close()


def _detail(response: httpx.Response) -> str:
    """DeepL's own error message, if the body has one."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return ""
    return f" ({message})" if isinstance(message, str) and message else ""
