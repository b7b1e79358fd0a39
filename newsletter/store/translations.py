"""Machine translations stored once per (item, target language, content hash).

The content hash is the original item's: when the original changes, its old translations
are simply no longer found, and a new one is made on the next digest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa

from newsletter.errors import StoreError
from newsletter.store.tables import translations

# stays under SQLite's and PostgreSQL's bound-parameter limits
_CHUNK = 500


@dataclass(frozen=True)
class CachedTranslation:
    """The translated fields of one item in one language."""

    title: str
    body_html: str
    summary_html: str
    provider: str


class TranslationCache:
    """Reads and writes the ``translations`` table."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, item_id: int, target: str, content_hash: str) -> CachedTranslation | None:
        """The stored translation of this version of the item into ``target``, if any."""
        query = sa.select(
            translations.c.title,
            translations.c.body_html,
            translations.c.summary_html,
            translations.c.provider,
        ).where(
            translations.c.item_id == item_id,
            translations.c.target_lang == target,
            translations.c.content_hash == content_hash,
        )
        try:
            with self.engine.connect() as conn:
                row = conn.execute(query).first()
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"translations of item {item_id} ({target}): {exc}") from exc
        if row is None:
            return None
        return CachedTranslation(
            title=row.title,
            body_html=row.body_html,
            summary_html=row.summary_html,
            provider=row.provider,
        )

    def get_many(
        self, items: Sequence[tuple[int, str]], targets: Sequence[str]
    ) -> dict[int, dict[str, CachedTranslation]]:
        """Stored translations of (item id, content hash) pairs into ``targets``, by item
        id and language: one query per chunk instead of one per item and language."""
        out: dict[int, dict[str, CachedTranslation]] = {}
        hashes = dict(items)
        ids = sorted(hashes)
        if not ids or not targets:
            return out
        try:
            with self.engine.connect() as conn:
                for start in range(0, len(ids), _CHUNK):
                    query = sa.select(translations).where(
                        translations.c.item_id.in_(ids[start : start + _CHUNK]),
                        translations.c.target_lang.in_(list(targets)),
                    )
                    for row in conn.execute(query):
                        # a translation of an older version of the item is not this one's
                        if hashes[row.item_id] == row.content_hash:
                            out.setdefault(row.item_id, {})[row.target_lang] = CachedTranslation(
                                title=row.title,
                                body_html=row.body_html,
                                summary_html=row.summary_html,
                                provider=row.provider,
                            )
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(f"translations of {len(ids)} item(s): {exc}") from exc
        return out

    def put(
        self,
        item_id: int,
        target: str,
        content_hash: str,
        translation: CachedTranslation,
        now: datetime,
    ) -> None:
        """Store a translation; one already stored for the same key is kept as it is."""
        values = {
            "item_id": item_id,
            "target_lang": target,
            "content_hash": content_hash,
            "title": translation.title,
            "body_html": translation.body_html,
            "summary_html": translation.summary_html,
            "provider": translation.provider,
            "created_at": now,
        }
        try:
            with self.engine.begin() as conn:
                conn.execute(translations.insert().values(**values))
        except sa.exc.IntegrityError as exc:
            # another worker stored the same translation first; theirs is as good
            if self.get(item_id, target, content_hash) is not None:
                return
            raise StoreError(
                f"cannot store translation of item {item_id} ({target}): {exc.orig}"
            ) from exc
        except sa.exc.SQLAlchemyError as exc:
            raise StoreError(
                f"cannot store translation of item {item_id} ({target}): {exc}"
            ) from exc

    def count(self) -> int:
        """How many translations are stored."""
        with self.engine.connect() as conn:
            return int(
                conn.execute(sa.select(sa.func.count()).select_from(translations)).scalar_one()
            )
