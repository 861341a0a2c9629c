"""Monitoring reports (issue 6): one row per drift, matured-performance or fairness report.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29

Self-contained on purpose: a migration must not import the ORM, which keeps changing after it.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
TIMESTAMP = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "monitoring_reports",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("created_at", TIMESTAMP, nullable=False),
        sa.Column("run_id", sa.Integer(), nullable=True),
        sa.Column("as_of", sa.Date(), nullable=True),
        sa.Column("model_name", sa.String(100), nullable=True),
        sa.Column("model_version", sa.String(40), nullable=True),
        sa.Column("reference", sa.String(200), nullable=True),
        sa.Column("current", sa.String(200), nullable=True),
        sa.Column("flagged", sa.Boolean(), nullable=False),
        sa.Column("flags", JSON, nullable=False),
        sa.Column("summary", JSON, nullable=False),
        sa.Column("config_hash", sa.String(16), nullable=False),
        sa.Column("html_path", sa.String(500), nullable=True),
        sa.Column("json_path", sa.String(500), nullable=True),
        sa.CheckConstraint("kind IN ('drift', 'performance', 'fairness')",
                           name=op.f("ck_monitoring_reports_kind")),
        sa.ForeignKeyConstraint(["run_id"], ["scoring_runs.id"],
                                name=op.f("fk_monitoring_reports_run_id_scoring_runs"), ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_monitoring_reports")),
    )
    op.create_index(op.f("ix_monitoring_reports_run_id"), "monitoring_reports", ["run_id"])
    op.create_index(op.f("ix_monitoring_reports_kind_created_at"), "monitoring_reports",
                    ["kind", "created_at"])


def downgrade() -> None:
    op.drop_table("monitoring_reports")
