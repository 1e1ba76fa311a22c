"""Invoices: event links, per-(project, environment) numbering, late and unpriced lines.

* ``invoice_event_links``: which finalized invoice billed each event (the ledger itself
  stays append-only); its primary key keeps an event off a second invoice.
* ``invoice_counters``: the last number issued per (project, environment).
* ``invoices.number`` becomes unique per (project, environment) instead of globally (every
  project numbers from ``ML-000001``); ``hosted_invoice_url`` for Stripe.
* ``invoice_lines``: ``late`` (usage of an earlier, already finalized period) and
  ``unpriced_requests``; a line is unique per (invoice, provider, model, late).

The invoice tables held no rows before this revision (nothing wrote them), so SQLite's
batch mode may rebuild them freely.

Revision ID: 0002
Revises: 0001
Create Date: 2026-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

ID = sa.String(64)


def upgrade() -> None:
    with op.batch_alter_table("invoices") as batch:
        batch.drop_constraint("uq_invoices_number", type_="unique")
        batch.add_column(sa.Column("hosted_invoice_url", sa.String(500), nullable=True))
        batch.create_unique_constraint(
            "uq_invoices_project_id_environment_number", ["project_id", "environment", "number"]
        )
        batch.create_index("ix_invoices_stripe_invoice_id", ["stripe_invoice_id"])
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_constraint("uq_invoice_lines_invoice_id_provider_model", type_="unique")
        batch.add_column(sa.Column("late", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(
            sa.Column("unpriced_requests", sa.BigInteger(), nullable=False, server_default="0")
        )
        batch.create_unique_constraint(
            "uq_invoice_lines_invoice_id_provider_model_late",
            ["invoice_id", "provider", "model", "late"],
        )
    op.create_table(
        "invoice_event_links",
        sa.Column("event_pk", ID, nullable=False),
        sa.Column("invoice_id", ID, nullable=False),
        sa.PrimaryKeyConstraint("event_pk", name="pk_invoice_event_links"),
        sa.ForeignKeyConstraint(
            ["event_pk"],
            ["usage_events.id"],
            name="fk_invoice_event_links_event_pk_usage_events",
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name="fk_invoice_event_links_invoice_id_invoices",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_invoice_event_links_invoice_id", "invoice_event_links", ["invoice_id"])
    op.create_table(
        "invoice_counters",
        sa.Column("project_id", ID, nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("project_id", "environment", name="pk_invoice_counters"),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name="fk_invoice_counters_project_id_projects",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    op.drop_table("invoice_counters")
    op.drop_index("ix_invoice_event_links_invoice_id", table_name="invoice_event_links")
    op.drop_table("invoice_event_links")
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_constraint("uq_invoice_lines_invoice_id_provider_model_late", type_="unique")
        batch.drop_column("unpriced_requests")
        batch.drop_column("late")
        batch.create_unique_constraint(
            "uq_invoice_lines_invoice_id_provider_model", ["invoice_id", "provider", "model"]
        )
    with op.batch_alter_table("invoices") as batch:
        batch.drop_index("ix_invoices_stripe_invoice_id")
        batch.drop_constraint("uq_invoices_project_id_environment_number", type_="unique")
        batch.drop_column("hosted_invoice_url")
        batch.create_unique_constraint("uq_invoices_number", ["number"])
