"""``kind = "desk"``: stories written in the editor's desk, with no files involved.

Desk stories are written straight into the store (``newsletter.digest.editorial``) as
items of the source named ``desk``; there is nothing to fetch, so the source is always
available and needs no ``[[sources]]`` table. Listing one (to give its items tags, say)
is allowed and gathers nothing.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import ConfigDict, Field

from newsletter.config import SourceBase
from newsletter.gather.sources.base import FetchResult, Source, SourceState


class DeskSourceConfig(SourceBase):
    """``kind = "desk"``: the stories written in the desk (no keys of its own)."""

    #: the keys of a smallest working table besides name and kind (docs and tests use it)
    model_config = ConfigDict(json_schema_extra={"examples": [{}]})

    kind: Literal["desk"] = Field(description='Selects the desk\'s own stories: "desk".')


class DeskSource(Source[DeskSourceConfig]):
    """The desk's stories are stored as they are written: a gather finds nothing new."""

    kind: ClassVar[str] = "desk"
    config_type: ClassVar[type[SourceBase]] = DeskSourceConfig

    def fetch(self, state: SourceState) -> FetchResult:
        """Nothing to fetch: desk stories are in the store already."""
        return FetchResult(items=[])
