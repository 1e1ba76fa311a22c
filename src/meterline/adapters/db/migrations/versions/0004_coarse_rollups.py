"""Coarser daily rollups for reports at scale: per end user, and per project.

``usage_user_daily`` sums ``usage_daily_rollups`` over models and providers,
``usage_project_daily`` over end users too. The revenue report reads its totals and daily
series from the project table (one row per day) and ranks end users from the user table,
instead of reading one row per (user, model, provider, day). Both are written in the
same transaction as the events, so they always equal the sum of their events; this
revision fills them from the existing rollups.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

SUMS = (
    "requests",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "provider_cost_nanos",
    "markup_nanos",
    "charge_nanos",
    "unpriced_requests",
)


def _sum_columns() -> list[sa.Column[int]]:
    return [sa.Column(name, sa.BigInteger(), nullable=False) for name in SUMS]


def _fill(table: str, keys: tuple[str, ...]) -> None:
    cols = ", ".join(keys)
    sums = ", ".join(f"SUM({name})" for name in SUMS)
    op.execute(
        f"INSERT INTO {table} ({cols}, {', '.join(SUMS)}) "  # noqa: S608 - fixed names
        f"SELECT {cols}, {sums} FROM usage_daily_rollups GROUP BY {cols}"
    )


def upgrade() -> None:
    op.create_table(
        "usage_user_daily",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("end_user_id", sa.String(256), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_sum_columns(),
        sa.PrimaryKeyConstraint(
            "project_id", "environment", "end_user_id", "day", name="pk_usage_user_daily"
        ),
    )
    op.create_index(
        "ix_usage_user_daily_project_day",
        "usage_user_daily",
        ["project_id", "environment", "day"],
    )
    op.create_table(
        "usage_project_daily",
        sa.Column("project_id", sa.String(64), nullable=False),
        sa.Column("environment", sa.String(8), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        *_sum_columns(),
        sa.PrimaryKeyConstraint("project_id", "environment", "day", name="pk_usage_project_daily"),
    )
    _fill("usage_user_daily", ("project_id", "environment", "end_user_id", "day"))
    _fill("usage_project_daily", ("project_id", "environment", "day"))


def downgrade() -> None:
    op.drop_table("usage_project_daily")
    op.drop_index("ix_usage_user_daily_project_day", table_name="usage_user_daily")
    op.drop_table("usage_user_daily")
