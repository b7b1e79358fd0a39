"""The editors' side of the digest: what the desk's pages (and shell commands) call.

Desk stories and hidden items (:mod:`.stories`), locale versions with their review state
and translation coverage (:mod:`.versions`), the next edition of a segment arranged by
hand, previewed and test-sent (:mod:`.plan`), and approval
(:mod:`newsletter.digest.approval`). Every function that changes something takes the
``actor`` (a desk user's email, or ``"cli"``) and returns a
:class:`~newsletter.models.Change` for the audit log; refused input raises
:class:`~newsletter.errors.EditorialError` with one line fit to show. See
docs/editorial.md.
"""

from __future__ import annotations

from datetime import datetime

from newsletter.config import Settings
from newsletter.digest.approval import (
    DEADLINE_ACTOR,
    Approval,
    approval_of,
    approve_edition,
    awaiting_approval,
    release_due,
    send_edition,
)
from newsletter.digest.editorial.plan import (
    EditionPlan,
    PlannedStory,
    exclude_story,
    include_story,
    move_story,
    next_edition,
    pin_lead,
    prepare_edition,
    preview_next,
    reset_plan,
    set_intro,
    test_send,
)
from newsletter.digest.editorial.stories import (
    DESK_SOURCE,
    DeskStory,
    ItemRow,
    StoryDraft,
    create_story,
    desk_story,
    edit_story,
    hide_item,
    item_sources,
    list_items,
    render_markdown,
    show_item,
)
from newsletter.digest.editorial.versions import (
    Coverage,
    LocaleCoverage,
    ReviewState,
    StoryVersions,
    Version,
    coverage_of,
    machine_draft,
    machine_translation_available,
    mark_reviewed,
    save_version,
    story_versions,
)
from newsletter.models import Change
from newsletter.store import Store


def coverage(settings: Settings, store: Store, segment: str, *, now: datetime) -> Coverage:
    """Translation coverage per locale of the stories of ``segment``'s next edition."""
    plan = next_edition(settings, store, segment, now=now)
    return plan.coverage


__all__ = [
    "DEADLINE_ACTOR",
    "DESK_SOURCE",
    "Approval",
    "Change",
    "Coverage",
    "DeskStory",
    "EditionPlan",
    "ItemRow",
    "LocaleCoverage",
    "PlannedStory",
    "ReviewState",
    "StoryDraft",
    "StoryVersions",
    "Version",
    "approval_of",
    "approve_edition",
    "awaiting_approval",
    "coverage",
    "coverage_of",
    "create_story",
    "desk_story",
    "edit_story",
    "exclude_story",
    "hide_item",
    "include_story",
    "item_sources",
    "list_items",
    "machine_draft",
    "machine_translation_available",
    "mark_reviewed",
    "move_story",
    "next_edition",
    "pin_lead",
    "prepare_edition",
    "preview_next",
    "release_due",
    "render_markdown",
    "reset_plan",
    "save_version",
    "send_edition",
    "set_intro",
    "show_item",
    "story_versions",
    "test_send",
]
