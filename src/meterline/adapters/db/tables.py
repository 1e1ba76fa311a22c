"""The schema, as SQLAlchemy Core tables: the single source the migrations must match.

Rules that hold for every table: money that is ever summed is ``BigInteger`` nano-dollars
(exact on SQLite and PostgreSQL alike; there is no float column anywhere), exact decimals
that are not summed (percentages, per-MTok prices) are text, timestamps are aware UTC,
and ids are text generated in Python with a readable prefix (see :func:`new_id`).
Keys that must be unique even when a part is absent (an event without an end user, a
model-less rollup) store ``''`` rather than NULL, because NULLs never collide in a
unique index on either backend.
"""

from __future__ import annotations

import uuid

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    ForeignKey,
    Index,
    MetaData,
    PrimaryKeyConstraint,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from meterline.adapters.db.types import DecimalText, UTCDateTime

__all__ = [
    "ROLLUP_SUM_COLUMNS",
    "USAGE_EVENT_KEY",
    "admin_users",
    "alerts",
    "api_keys",
    "end_users",
    "invoice_counters",
    "invoice_event_links",
    "invoice_lines",
    "invoices",
    "metadata",
    "new_id",
    "organizations",
    "price_overrides",
    "processed_webhook_events",
    "projects",
    "provider_credentials",
    "rate_plans",
    "stripe_connections",
    "usage_daily_rollups",
    "usage_events",
    "usage_project_daily",
    "usage_user_daily",
]

#: Deterministic constraint names, so migrations can address them on both backends.
NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING)


def new_id(prefix: str) -> str:
    """``org_3f2a…``: readable in logs and URLs, unique without a database round trip."""
    return f"{prefix}_{uuid.uuid4().hex}"


def _created() -> Column[object]:
    return Column("created_at", UTCDateTime(), nullable=False)


def _project_fk() -> Column[str]:
    return Column(
        "project_id", String(64), ForeignKey("projects.id", ondelete="CASCADE"), nullable=False
    )


organizations = Table(
    "organizations",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("name", String(200), nullable=False),
    _created(),
)

admin_users = Table(
    "admin_users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "organization_id",
        String(64),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", Text, nullable=False),  # argon2id, never the password
    _created(),
)

projects = Table(
    "projects",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "organization_id",
        String(64),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
    Column("name", String(200), nullable=False),
    Column("billing_enabled", Boolean, nullable=False),
    Column("default_markup_percentage", DecimalText(), nullable=False),
    Column("default_flat_rate_nanos", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("model_map", JSON, nullable=False),
    _created(),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("key_hash", String(128), nullable=False, unique=True),
    Column("prefix", String(32), nullable=False),
    _created(),
    Column("revoked_at", UTCDateTime(), nullable=True),
)

provider_credentials = Table(
    "provider_credentials",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("provider", String(64), nullable=False),
    Column("encrypted_secret", Text, nullable=False),
    Column("base_url", String(500), nullable=True),
    _created(),
    UniqueConstraint("project_id", "provider"),
)

rate_plans = Table(
    "rate_plans",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("name", String(200), nullable=False),
    Column("slug", String(200), nullable=False),
    Column("is_default", Boolean, nullable=False),
    Column("overage_action", String(16), nullable=False),
    Column("daily_token_limit", BigInteger, nullable=True),
    Column("monthly_token_limit", BigInteger, nullable=True),
    Column("daily_request_limit", BigInteger, nullable=True),
    Column("monthly_request_limit", BigInteger, nullable=True),
    Column("requests_per_minute", BigInteger, nullable=True),
    Column("daily_cost_limit_nanos", BigInteger, nullable=True),
    Column("monthly_cost_limit_nanos", BigInteger, nullable=True),
    Column("markup_percentage", DecimalText(), nullable=True),
    Column("flat_rate_nanos", BigInteger, nullable=True),
    Column("allowed_models", JSON, nullable=False),
    _created(),
    Index("ix_rate_plans_project_id", "project_id"),
)

end_users = Table(
    "end_users",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("end_user_id", String(256), nullable=False),
    Column("rate_plan_id", String(64), ForeignKey("rate_plans.id"), nullable=True, index=True),
    Column("blocked", Boolean, nullable=False),
    Column("email", String(320), nullable=True),
    Column("name", String(200), nullable=True),
    Column("stripe_customer_id", String(64), nullable=True),
    _created(),
    UniqueConstraint("project_id", "environment", "end_user_id"),
)

#: An event's identity in the ledger: a retry that repeats it is the same event (the
#: unique key both backends' inserts resolve conflicts on).
USAGE_EVENT_KEY = ("project_id", "environment", "event_id")

usage_events = Table(
    "usage_events",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("event_id", String(256), nullable=False),
    Column("end_user_id", String(256), nullable=True),
    Column("timestamp", UTCDateTime(), nullable=False),
    Column("model", String(200), nullable=True),
    Column("provider", String(64), nullable=True),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    Column("cached_tokens", BigInteger, nullable=False),
    Column("priced", Boolean, nullable=False),
    Column("estimated", Boolean, nullable=False),
    # NULL when unpriced: an unknown price is never stored as $0.
    Column("provider_cost_nanos", BigInteger, nullable=True),
    Column("markup_nanos", BigInteger, nullable=True),
    Column("flat_fee_nanos", BigInteger, nullable=True),  # the fee part of markup
    Column("charge_nanos", BigInteger, nullable=True),
    Column("latency_ms", BigInteger, nullable=True),
    Column("status", String(32), nullable=False),
    Column("metadata", JSON, nullable=False),
    Column("reservation_id", String(128), nullable=True),
    Column("fingerprint", String(128), nullable=False),
    Column("source", String(32), nullable=False),
    Column("recorded_at", UTCDateTime(), nullable=False),
    UniqueConstraint(*USAGE_EVENT_KEY),
    Index("ix_usage_events_user_time", "project_id", "environment", "end_user_id", "timestamp"),
    Index("ix_usage_events_time", "project_id", "environment", "timestamp"),
)

#: The additive columns of every rollup table, in a fixed order.
ROLLUP_SUM_COLUMNS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "provider_cost_nanos",
    "markup_nanos",
    "charge_nanos",
    "unpriced_requests",
)


#: Rollup rows are updated in place on every write: free room on each page lets
#: PostgreSQL keep the new version on its page without touching the indexes (migration
#: 0005 says more).
ROLLUP_STORAGE = {"fillfactor": 70}


def _sums() -> list[Column[int]]:
    return [Column(name, BigInteger, nullable=False) for name in ROLLUP_SUM_COLUMNS]


usage_daily_rollups = Table(
    "usage_daily_rollups",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("environment", String(8), primary_key=True),
    Column("end_user_id", String(256), primary_key=True),  # '' = project-level usage
    Column("model", String(200), primary_key=True),  # '' = no model named
    Column("provider", String(64), primary_key=True),  # '' = no provider named
    Column("day", Date, primary_key=True),
    *_sums(),
    Index("ix_usage_daily_rollups_project_day", "project_id", "environment", "day"),
    postgresql_with=ROLLUP_STORAGE,
)


#: ``usage_daily_rollups`` summed over models and providers: one row per end user and
#: day, for reports that rank end users (revenue's top users) without reading every
#: model's row. Written in the same transaction as the events, like its source.
usage_user_daily = Table(
    "usage_user_daily",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("environment", String(8), primary_key=True),
    Column("end_user_id", String(256), primary_key=True),  # '' = project-level usage
    Column("day", Date, primary_key=True),
    *_sums(),
    Index("ix_usage_user_daily_project_day", "project_id", "environment", "day"),
    postgresql_with=ROLLUP_STORAGE,
)

#: ``usage_daily_rollups`` summed over end users, models and providers: one row per
#: project, environment and day, for the revenue report's totals and daily series.
usage_project_daily = Table(
    "usage_project_daily",
    metadata,
    Column("project_id", String(64), primary_key=True),
    Column("environment", String(8), primary_key=True),
    Column("day", Date, primary_key=True),
    *_sums(),
    postgresql_with=ROLLUP_STORAGE,
)

alerts = Table(
    "alerts",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("end_user_id", String(256), nullable=False),  # '' = project-level alert
    Column("kind", String(64), nullable=False),
    Column("window", String(32), nullable=False),
    Column("message", Text, nullable=False),
    _created(),
    UniqueConstraint("project_id", "environment", "end_user_id", "kind", "window"),
    Index("ix_alerts_project_time", "project_id", "environment", "created_at"),
)

price_overrides = Table(
    "price_overrides",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("provider", String(64), nullable=False),  # '' = any provider
    Column("model", String(200), nullable=False),
    Column("input_per_mtok", DecimalText(), nullable=False),
    Column("output_per_mtok", DecimalText(), nullable=False),
    Column("cached_input_per_mtok", DecimalText(), nullable=True),
    _created(),
    UniqueConstraint("project_id", "provider", "model"),
)

invoices = Table(
    "invoices",
    metadata,
    Column("id", String(64), primary_key=True),
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("end_user_id", String(256), nullable=False),
    Column("period_start", Date, nullable=False),
    Column("period_end", Date, nullable=False),
    Column("status", String(16), nullable=False),  # domain.invoices.InvoiceStatus
    Column("number", String(64), nullable=True),  # per (project, environment), see 0002
    Column("currency", String(3), nullable=False),
    Column("subtotal_cents", BigInteger, nullable=False),
    Column("total_cents", BigInteger, nullable=False),
    Column("stripe_invoice_id", String(64), nullable=True),
    _created(),
    Column("finalized_at", UTCDateTime(), nullable=True),
    Column("voided_at", UTCDateTime(), nullable=True),
    Column("hosted_invoice_url", String(500), nullable=True),
    UniqueConstraint(
        "project_id",
        "environment",
        "end_user_id",
        "period_start",
        "period_end",
        name="uq_invoices_user_period",
    ),
    UniqueConstraint("project_id", "environment", "number"),
    Index("ix_invoices_stripe_invoice_id", "stripe_invoice_id"),
)

invoice_lines = Table(
    "invoice_lines",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("invoice_id", String(64), ForeignKey("invoices.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(200), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("total_tokens", BigInteger, nullable=False),
    Column("provider_cost_nanos", BigInteger, nullable=False),
    Column("markup_nanos", BigInteger, nullable=False),
    Column("charge_nanos", BigInteger, nullable=False),
    Column("amount_cents", BigInteger, nullable=False),
    Column("late", Boolean, nullable=False, server_default=false()),
    Column("unpriced_requests", BigInteger, nullable=False, server_default="0"),
    Column("flat_fee_nanos", BigInteger, nullable=False, server_default="0"),
    UniqueConstraint("invoice_id", "provider", "model", "late"),
)

#: Which finalized invoice billed each usage event. The ledger stays append-only (events
#: are never updated to say so), and the primary key on ``event_pk`` is what guarantees
#: that no event is ever on two invoices, even when two finalizations race.
invoice_event_links = Table(
    "invoice_event_links",
    metadata,
    Column(
        "event_pk",
        String(64),
        ForeignKey("usage_events.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column(
        "invoice_id",
        String(64),
        ForeignKey("invoices.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    ),
)

#: The last invoice number issued per (project, environment): incremented with an atomic
#: upsert inside the finalizing transaction, so numbers have no gaps and no repeats.
invoice_counters = Table(
    "invoice_counters",
    metadata,
    _project_fk(),
    Column("environment", String(8), nullable=False),
    Column("last_number", BigInteger, nullable=False),
    PrimaryKeyConstraint("project_id", "environment"),
)

stripe_connections = Table(
    "stripe_connections",
    metadata,
    Column("id", String(64), primary_key=True),
    Column(
        "organization_id",
        String(64),
        ForeignKey("organizations.id", ondelete="CASCADE"),
        nullable=False,
        unique=True,
    ),
    Column("stripe_account_id", String(64), nullable=False),
    Column("livemode", Boolean, nullable=False),
    Column("encrypted_refresh_token", Text, nullable=True),
    _created(),
)

processed_webhook_events = Table(
    "processed_webhook_events",
    metadata,
    Column("event_id", String(128), primary_key=True),
    Column("type", String(128), nullable=False),
    Column("received_at", UTCDateTime(), nullable=False),
)
