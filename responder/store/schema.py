"""Tables, as SQLAlchemy Core: commands use Core statements (cheaper per request than the ORM)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.types import TypeDecorator

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# SQLite only autoincrements an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit identity.
Id = BigInteger().with_variant(Integer, "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes in and out, on every backend (SQLite drops the zone otherwise)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


people = Table(
    "people",
    metadata,
    Column("id", String(64), primary_key=True),  # the council file's person id
    Column("name", String(200), nullable=False),
    Column("role", String(20), nullable=False),
    Column("aad_object_id", String(64), unique=True),
    Column("on_duty", Boolean, nullable=False, default=True),
    # Learnt from Teams when the person installs or messages the bot ("29:..." id).
    Column("teams_user_id", String(200)),
    # False once the person is no longer in the council file (kept for history).
    Column("active", Boolean, nullable=False, default=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

teams = Table(
    "teams",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("routing", String(20), nullable=False),
    # Round-robin cursor: the officer most recently given a task.
    Column("last_assigned", String(64)),
    Column("active", Boolean, nullable=False, default=True),
    # The Teams channel linked to this team ("link team <code>"): a conversations.key.
    Column("channel", String(300)),
)

wards = Table(
    "wards",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("active", Boolean, nullable=False, default=True),
)

tasks = Table(
    "tasks",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("type", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("address", String(500)),
    Column("ward", String(200), nullable=False),
    Column("team", String(64), nullable=False),
    Column("assignee", String(64)),
    Column("status", String(20), nullable=False),
    Column("priority", String(64), nullable=False),
    Column("due_at", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("closed_at", UTCDateTime),
    Column("source", String(64), nullable=False),
    Column("raised_by", String(20), nullable=False),  # resident | councillor | officer | manager
    Column("raised_by_person", String(64)),
    Column("photos", JSON, nullable=False, default=list),
    Column("priority_reasons", JSON, nullable=False, default=list),
    Column("routing_reasons", JSON, nullable=False, default=list),
    # Reports behind this task: the first plus every linked duplicate.
    Column("report_count", Integer, nullable=False, default=1),
    Column("outcome", String(64)),
    # Bumped on every change: cards carry it so a stale click can be recognised.
    Column("version", Integer, nullable=False, default=1),
    Index(None, "status", "team"),
    Index(None, "type", "status", "lat"),
    # The work list and the map (queries/task_list.py, migration 0012): a viewer's tasks
    # by each team, ward and assignee they see, one status at a time, in due order.
    Index(None, "team", "status", "due_at", "id"),
    Index(None, "ward", "status", "due_at", "id"),
    Index(None, "assignee", "status", "due_at", "id"),
    # The digest and the performance page: a team's (a ward's) tasks created, and closed,
    # in a period.
    Index(None, "team", "created_at"),
    Index(None, "team", "closed_at"),
    Index(None, "ward", "created_at"),
    Index(None, "ward", "closed_at"),
)

# Append-only audit history: who, when, from what, to what.
task_events = Table(
    "task_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100), nullable=False),  # person id, 'system' or 'intake:<key name>'
    Column("action", String(32), nullable=False),
    Column("from_status", String(20)),
    Column("to_status", String(20)),
    Column("note", Text),
    Column("data", JSON),
    # Open311's servicerequestupdates and webhooks read the history by time window.
    Index(None, "at"),
)

# Each report received, linked to the task it created or joined as a duplicate.
reports = Table(
    "reports",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("type", String(64), nullable=False),
    Column("lat", Float, nullable=False),
    Column("lon", Float, nullable=False),
    Column("received_at", UTCDateTime, nullable=False),
    Column("source", String(64), nullable=False),
    Column("external_id", String(200)),
    Column("duplicate", Boolean, nullable=False, default=False),
    # SHA-256 (hex) of the report's content as intake normalised it, no personal data:
    # the same source + external_id with other content is refused (409), not replayed.
    # NULL for reports from chat and from before migration 0009.
    Column("content_hash", String(64)),
    # What the source said beyond the report itself (Open311 attribute[...], a form's
    # extra answers), never contact details: e.g. {"fixmystreet_id": "123", "uprn": "..."}.
    Column("attributes", JSON),
    UniqueConstraint("source", "external_id"),
    # Repeat reports nearby: type, then a narrow band of latitude, then the time window.
    Index(None, "type", "lat", "received_at"),
)

# Reporters' contact details, apart from tasks and reports so they are joined only where a
# message needs them, and erased after the retention period.
contacts = Table(
    "contacts",
    metadata,
    Column("report_id", ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True),
    Column("name", String(200)),
    Column("email", String(320)),
    Column("phone", String(32)),
    Column("updates", JSON, nullable=False, default=list),  # ["email", "sms"]
    Column("erased_at", UTCDateTime),
)

# Transactional outbox: one row per message that must be sent, written in the same
# transaction as the change that causes it.
outbox = Table(
    "outbox",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("kind", String(32), nullable=False),  # teams.card | teams.refresh | notify | ...
    Column("idempotency_key", String(200), nullable=False, unique=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), index=True),
    Column("payload", JSON, nullable=False),
    Column("status", String(16), nullable=False, default="pending"),  # pending|done|parked
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # The dispatcher's lane (the channel: teams | notify | default, from the kind) and,
    # within it, the order: the earliest deadline first (the task's due time).
    Column("lane", String(16), nullable=False),
    Column("deliver_by", UTCDateTime, nullable=False),
    # Claiming: a lane's pending rows, most urgent first.
    Index(None, "status", "lane", "deliver_by"),
)


# How to reach someone in Teams: a stored conversation reference per person (personal
# chat) or per channel. key is "person:<id>" or "channel:<teams channel id>".
conversations = Table(
    "conversations",
    metadata,
    Column("key", String(300), primary_key=True),
    Column("conversation_id", String(500), nullable=False),
    Column("service_url", String(500), nullable=False),
    Column("tenant_id", String(64)),
    Column("bot_id", String(200)),
    Column("reference", JSON, nullable=False),  # the full reference, as Teams gave it
    Column("updated_at", UTCDateTime, nullable=False),
)

# Every task card sent, so a change updates each copy in place instead of sending anew.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False),
    # "person:<id>" or "channel:<team code>": whose copy this is (decides the view).
    Column("recipient", String(300), nullable=False),
    Column("conversation_id", String(500), nullable=False),
    Column("service_url", String(500), nullable=False),
    Column("activity_id", String(500), nullable=False),
    Column("version", Integer, nullable=False),  # the task version this copy shows
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    UniqueConstraint("task_id", "recipient"),
)


# Each message handed to GOV.UK Notify, and what Notify later says became of it.
notifications = Table(
    "notifications",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    # Notify's 'reference': the outbox row's idempotency key (no personal data).
    Column("reference", String(200), nullable=False, unique=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("report_id", ForeignKey("reports.id", ondelete="CASCADE"), nullable=False),
    Column("event", String(32), nullable=False),  # received | completed | ...
    Column("channel", String(8), nullable=False),  # email | sms
    Column("notify_id", String(64), unique=True),  # Notify's notification id
    # sending | delivered | permanent-failure | temporary-failure | technical-failure |
    # not-sent (e.g. no API key: recorded, visible on the task, never silent)
    Column("status", String(32), nullable=False),
    Column("detail", Text),
    # Set when a permanent failure on one channel was retried on the other (once).
    Column("fallback_reference", String(200)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Who follows which case: a councillor who raises a case follows it, and anyone may
# follow a case they can see. Followers hear when its status changes.
follows = Table(
    "follows",
    metadata,
    Column("person_id", String(64), primary_key=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), primary_key=True, index=True),
    Column("created_at", UTCDateTime, nullable=False),
)


# Conversation state for multi-turn dialogs (botbuilder's Storage, see bot/state_storage.py),
# in the database so a dialog survives a restart and moves between instances.
bot_state = Table(
    "bot_state",
    metadata,
    Column("key", String(500), primary_key=True),
    Column("etag", String(64), nullable=False),
    Column("document", Text, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
)


# Photos officers send the bot. Served at /api/photos/<token> (an unguessable token, so a
# card image needs no sign-in); task_id is null until the officer says which task.
photos = Table(
    "photos",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("token", String(64), nullable=False, unique=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), index=True),
    Column("person_id", String(64), nullable=False, index=True),
    Column("content_type", String(100), nullable=False),
    Column("data", LargeBinary, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)


# Signed form posts already accepted (HMAC sources): the same signature again inside the
# timestamp window is a replay, refused. Rows past expires_at are deleted as new ones come.
intake_replays = Table(
    "intake_replays",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 hex of source + signature
    Column("source", String(64), nullable=False),
    Column("expires_at", UTCDateTime, nullable=False, index=True),
)


# Residents' ratings of finished work (the completion message's feedback link): one per
# report, so each resident who asked for updates rates once. The comment is the
# resident's own words: shown to staff, erased with the report's contact details.
feedback = Table(
    "feedback",
    metadata,
    Column("report_id", ForeignKey("reports.id", ondelete="CASCADE"), primary_key=True),
    Column("task_id", ForeignKey("tasks.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("rating", Integer, nullable=False),  # 1 to 5
    Column("comment", Text),
    Column("created_at", UTCDateTime, nullable=False, index=True),  # the period's ratings
)


# The scheduler's jobs (digest, escalations, purge): one row per job. Whoever holds an
# unexpired lease runs it; last_slot is the latest scheduled time already run, so a run
# missed while the service was down happens once, not once per missed slot.
job_leases = Table(
    "job_leases",
    metadata,
    Column("name", String(64), primary_key=True),
    Column("holder", String(200)),
    Column("expires_at", UTCDateTime),
    Column("last_slot", UTCDateTime),
    Column("last_run_at", UTCDateTime),
)


# Each digest sent, per team: the next one covers what happened since this one.
digests = Table(
    "digests",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("team", String(64), nullable=False, index=True),
    Column("period_start", UTCDateTime, nullable=False),
    Column("period_end", UTCDateTime, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
)
