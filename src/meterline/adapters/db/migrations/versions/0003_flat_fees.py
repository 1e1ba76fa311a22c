"""Flat per-request fees kept apart: on each usage event and each invoice line.

``markup`` already includes the flat fee; these columns say how much of it the fee is, so
invoice lines can show "markup" and "flat fees" as the contract asks. Events recorded
before this revision have NULL (unknown split); their lines show 0 flat fees.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("usage_events", sa.Column("flat_fee_nanos", sa.BigInteger(), nullable=True))
    op.add_column(
        "invoice_lines",
        sa.Column("flat_fee_nanos", sa.BigInteger(), nullable=False, server_default="0"),
    )


def downgrade() -> None:
    with op.batch_alter_table("invoice_lines") as batch:
        batch.drop_column("flat_fee_nanos")
    with op.batch_alter_table("usage_events") as batch:
        batch.drop_column("flat_fee_nanos")
