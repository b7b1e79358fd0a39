"""SQLAlchemy table definitions: the one schema, used by queries and by the migrations."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

items = sa.Table(
    "items",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("source", sa.String(100), nullable=False),
    sa.Column("guid", sa.String(1000), nullable=False),
    sa.Column("link", sa.String(2000)),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("summary_html", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("published_at", UTCDateTime, nullable=False),
    sa.Column("lang", sa.String(16), nullable=False),
    sa.Column("translation_key", sa.String(500)),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("image", sa.String(2000)),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("first_seen_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("source", "guid", name="uq_items_source_guid"),
    sa.Index("ix_items_link", "link"),
    sa.Index("ix_items_content_hash", "content_hash"),
    sa.Index("ix_items_translation_key", "translation_key"),
    sa.Index("ix_items_published_at", "published_at"),
)

source_state = sa.Table(
    "source_state",
    metadata,
    sa.Column("source", sa.String(100), primary_key=True),
    sa.Column("etag", sa.String(500)),
    sa.Column("last_modified", sa.String(100)),
    sa.Column("last_gathered_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    sa.Column("last_count", sa.Integer),
)

subscribers = sa.Table(
    "subscribers",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("organisation", sa.String(300), nullable=False),
    sa.Column("country", sa.String(2), nullable=False),
    sa.Column("lists", sa.JSON, nullable=False),
    sa.Column("tags", sa.JSON, nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("consent_at", UTCDateTime),
    sa.Column("consent_source", sa.String(300), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Column("status_changed_at", UTCDateTime),
    sa.Column("status_source", sa.String(300)),
    # preference centre "pause for N weeks": nothing is sent before this time
    sa.Column("paused_until", UTCDateTime),
)

editions = sa.Table(
    "editions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("segment", sa.String(100), nullable=False),
    sa.Column("period", sa.String(50), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    # approval workflow (segments with approval = "required"): asked when, due when, by whom
    sa.Column("approval_requested_at", UTCDateTime),
    sa.Column("approval_deadline", UTCDateTime),
    sa.Column("approved_by", sa.String(320)),
    sa.Column("approved_at", UTCDateTime),
    sa.UniqueConstraint("segment", "period", name="uq_editions_segment_period"),
)

edition_items = sa.Table(
    "edition_items",
    metadata,
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id"), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    # the story, not the variant: a segment never gets the same story twice
    sa.Column("group_key", sa.String(500), nullable=False),
    sa.Index("ix_edition_items_group_key", "group_key"),
)

variants = sa.Table(
    "variants",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("subject", sa.Text, nullable=False),
    sa.Column("preheader", sa.Text, nullable=False),
    sa.Column("from_name", sa.Text, nullable=False),
    sa.Column("html", sa.Text, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("item_count", sa.Integer, nullable=False),
    # the render's marker nonce ('' for variants stored before nonces: never personalized)
    sa.Column("nonce", sa.String(64), nullable=False, server_default=""),
    sa.UniqueConstraint("edition_id", "locale", name="uq_variants_edition_locale"),
)

deliveries = sa.Table(
    "deliveries",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id"), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("claimed_by", sa.String(200)),
    # the token of the first claim: a row that must go again goes with the same batch
    sa.Column("batch_key", sa.String(200)),
    sa.Column("lease_until", UTCDateTime),
    # who holds a claimed row (see newsletter.send.holders) and when it last said it is alive
    sa.Column("holder_host", sa.String(300)),
    sa.Column("holder_pid", sa.Integer),
    sa.Column("holder_started", sa.BigInteger),
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("next_attempt_at", UTCDateTime),
    sa.Column("provider_message_id", sa.String(500)),
    sa.Column("error", sa.Text),
    sa.Column("sent_at", UTCDateTime),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    # what the provider reported afterwards (webhooks): delivered, soft_bounce, complaint, ...
    sa.Column("provider_event", sa.String(20)),
    sa.Column("provider_event_at", UTCDateTime),
    sa.UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
    sa.Index("ix_deliveries_edition_status", "edition_id", "status"),
    sa.Index("ix_deliveries_provider_message_id", "provider_message_id"),
    sa.Index("ix_deliveries_edition_batch", "edition_id", "batch_key"),
    # claiming: queued rows of a released batch, retries due, without scanning sent rows
    sa.Index("ix_deliveries_edition_status_batch", "edition_id", "status", "batch_key"),
)

# machine translations of items, made once per (item, language, content) and reused
translations = sa.Table(
    "translations",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False),
    sa.Column("content_hash", sa.String(64), nullable=False),
    sa.Column("target_lang", sa.String(16), nullable=False),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("body_html", sa.Text, nullable=False),
    sa.Column("summary_html", sa.Text, nullable=False),
    sa.Column("provider", sa.String(50), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint(
        "item_id", "target_lang", "content_hash", name="uq_translations_item_target_hash"
    ),
)

# addresses that must never be (re-)added: only a hash of the normalized address is kept,
# so an erased person leaves no readable trace (see store/suppressions.py)
suppressions = sa.Table(
    "suppressions",
    metadata,
    sa.Column("email_hash", sa.String(64), primary_key=True),
    sa.Column("reason", sa.String(50), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# what happened to a subscriber and through which channel (unsubscribe, confirm, ...);
# deleted with the subscriber on erasure
subscriber_events = sa.Table(
    "subscriber_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("kind", sa.String(50), nullable=False),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Index("ix_subscriber_events_subscriber_id", "subscriber_id"),
)

# GDPR Art. 7 consent records: one per sign-up request, confirmed by the double opt-in link
consents = sa.Table(
    "consents",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column(
        "subscriber_id",
        sa.Integer,
        sa.ForeignKey("subscribers.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("requested_at", UTCDateTime, nullable=False),
    sa.Column("confirmed_at", UTCDateTime),
    sa.Column("source", sa.String(300), nullable=False),
    sa.Column("form_version", sa.String(100), nullable=False),
    sa.Column("consent_text", sa.Text, nullable=False),
    sa.Column("name", sa.String(300), nullable=False),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("lists", sa.JSON, nullable=False),
    sa.Column("ip", sa.String(64)),
    sa.Index("ix_consents_subscriber_id", "subscriber_id"),
)

# provider webhook events and request nonces already seen: an event is applied once, a
# replayed request is refused (see store/webhooks.py). No address is kept here.
webhook_events = sa.Table(
    "webhook_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("provider", sa.String(20), nullable=False),
    sa.Column("event_id", sa.String(300), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("subscriber_id", sa.Integer, sa.ForeignKey("subscribers.id", ondelete="SET NULL")),
    sa.Column("occurred_at", UTCDateTime, nullable=False),
    sa.Column("received_at", UTCDateTime, nullable=False),
    # engagement (issue 17): the event's delivery and, through it, edition and locale; the
    # story is the link's target; ``machine`` marks opens a provider says were automatic
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE")),
    sa.Column("delivery_id", sa.Integer, sa.ForeignKey("deliveries.id", ondelete="SET NULL")),
    sa.Column("locale", sa.String(16)),
    sa.Column("story", sa.String(2000)),
    sa.Column("machine", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.UniqueConstraint("provider", "event_id", name="uq_webhook_events_provider_event_id"),
    sa.Index("ix_webhook_events_subscriber_kind", "subscriber_id", "kind"),
    sa.Index("ix_webhook_events_received_at", "received_at"),
    # covering for the reports: counts and distinct readers per edition and kind
    sa.Index("ix_webhook_events_edition_kind", "edition_id", "kind", "machine", "delivery_id"),
    sa.Index("ix_webhook_events_delivery_id", "delivery_id"),
)

# engagement events older than ``[tracking] retention_days``, folded into counts: one row
# per (edition, locale, story, kind, machine); ``readers`` adds the distinct deliveries of
# each fold (a reader whose events straddle two folds counts in both)
engagement_counts = sa.Table(
    "engagement_counts",
    metadata,
    sa.Column(
        "edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("locale", sa.String(16), primary_key=True),
    sa.Column("story", sa.String(2000), primary_key=True),
    sa.Column("kind", sa.String(20), primary_key=True),
    sa.Column("machine", sa.Boolean, primary_key=True),
    sa.Column("total", sa.Integer, nullable=False),
    sa.Column("readers", sa.Integer, nullable=False),
)

# named leases held by one process at a time (the scheduler's single-instance lock): a
# holder renews expires_at by heartbeat; a crashed holder's lock lapses at expires_at
locks = sa.Table(
    "locks",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    sa.Column("holder", sa.String(200), nullable=False),
    sa.Column("acquired_at", UTCDateTime, nullable=False),
    sa.Column("heartbeat_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

# one row per scheduled run of a [[schedule]] job: what ran, when, and how it ended
schedule_runs = sa.Table(
    "schedule_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("job_id", sa.String(100), nullable=False),
    sa.Column("scheduled_for", UTCDateTime, nullable=False),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("detail", sa.Text, nullable=False, server_default=""),
    sa.Column("holder", sa.String(200)),
    sa.Index("ix_schedule_runs_job_id", "job_id", "id"),
    sa.Index("ix_schedule_runs_status", "status"),
)

# the desk's staff accounts (argon2 hashes; locales limit what a translator may edit)
desk_users = sa.Table(
    "desk_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("email", sa.String(320), nullable=False, unique=True),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("locales", sa.JSON, nullable=False),
    sa.Column("password_hash", sa.String(300), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# server-side desk sessions: only a hash of the cookie's random id is stored, so a copy
# of the database lets nobody log in
desk_sessions = sa.Table(
    "desk_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column(
        "user_id",
        sa.Integer,
        sa.ForeignKey("desk_users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("last_seen_at", UTCDateTime, nullable=False),
    sa.Index("ix_desk_sessions_user_id", "user_id"),
)

# every change made through the desk or `newsletter desk`: who, what, when; the actor is
# kept as text so the trail outlives a removed account
desk_audit = sa.Table(
    "desk_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(320), nullable=False),
    sa.Column("action", sa.String(100), nullable=False),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
    sa.Index("ix_desk_audit_at", "at"),
)

# stories written in the desk: the Markdown as written (the item holds the rendered HTML)
desk_stories = sa.Table(
    "desk_stories",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("markdown", sa.Text, nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("updated_by", sa.String(320), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

# a locale version of a story made in the desk (by hand or machine draft): the item is a
# desk item sharing the story's key; this row says how it was made and who reviewed it
item_versions = sa.Table(
    "item_versions",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column(
        "original_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), nullable=False
    ),
    sa.Column("locale", sa.String(16), nullable=False),
    sa.Column("source_lang", sa.String(16), nullable=False),
    # human | machine | reviewed (see newsletter.digest.editorial.versions.ReviewState)
    sa.Column("state", sa.String(20), nullable=False),
    sa.Column("provider", sa.String(50)),
    # the original's content hash when this version was made: differs once it is edited
    sa.Column("original_hash", sa.String(64), nullable=False),
    sa.Column("created_by", sa.String(320), nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("reviewed_by", sa.String(320)),
    sa.Column("reviewed_at", UTCDateTime),
    sa.UniqueConstraint("original_id", "locale", name="uq_item_versions_original_locale"),
)

# items kept out of every future edition (any source), until shown again
hidden_items = sa.Table(
    "hidden_items",
    metadata,
    sa.Column(
        "item_id", sa.Integer, sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True
    ),
    sa.Column("hidden_by", sa.String(320), nullable=False),
    sa.Column("hidden_at", UTCDateTime, nullable=False),
    sa.Column("reason", sa.String(500), nullable=False, server_default=""),
)

# the editors' overrides of a segment's next edition; edition_id is NULL until an edition
# is created from them, then they belong to it (its intros are rendered from here)
edition_plans = sa.Table(
    "edition_plans",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("segment", sa.String(100), nullable=False),
    sa.Column("edition_id", sa.Integer, sa.ForeignKey("editions.id", ondelete="CASCADE")),
    sa.Column("lead_key", sa.String(500)),
    sa.Column("excluded", sa.JSON, nullable=False),
    sa.Column("ordering", sa.JSON, nullable=False),
    sa.Column("intros", sa.JSON, nullable=False),
    sa.Column("updated_by", sa.String(320), nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
    sa.Index("ix_edition_plans_segment", "segment", "edition_id"),
)
